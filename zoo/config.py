"""The config schema: Hydra structured configs, so every key is typed and a
misspelled key fails with Hydra's one-line message.

Method configs are not listed here: each method file registers its own
dataclass under the `method` group (see `zoo.registry`).
"""

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import EnumNode

from zoo.arguments import CHECKED_KEYS, check_values
from zoo.errors import ZooError
from zoo.names import (
    UNCLIPPED_LARS,
    BackboneWhitening,
    CorruptImages,
    Interpolation,
    LinearOptimizer,
    LinearProtocol,
    LinearSchedule,
    Loader,
    Optimizer,
    Schedule,
    ScheduleInterval,
    Tracker,
    WarmupRule,
    not_one_of,
)

# The order the ops run in when a group does not say otherwise (INTL, solo-learn).
DEFAULT_ORDER = ["crop", "jitter", "gray", "blur", "solarize", "flip"]


@dataclass
class CropGroup:
    """`count` crops, each drawn independently with these settings."""

    count: int = 1
    size: int | None = None  # None = data.image_size
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    interpolation: Interpolation = Interpolation.bicubic
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])
    solarize_p: float = 0.0
    order: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER))


@dataclass
class BackboneConfig:
    name: str = "resnet18"  # any timm model name
    # 3x3 stride-1 first conv and no max-pool; "auto" = on when crops are <= 64 px.
    small_stem: str = "auto"
    # Padding of that 3x3 conv: 1 (W-MSE, CW-RGP: 32x32 maps) or 2 (INTL, solo-learn: 34x34).
    small_stem_padding: int = 2
    small_stem_maxpool: bool = False  # keep the max-pool after the 3x3 stem (W-MSE / CW-RGP on STL-10, Tiny-ImageNet)
    zero_init_residual: bool = False  # zero-init the last BN of each residual block
    # A whitening layer as the backbone's last layer, after global pooling (Kalapos & Gyires-Toth, 2024;
    # kaland313/SSL-Whitening): none | iternorm | zca (zoo.backbones.WhiteningLayer). Every method, probe, k-NN and
    # evaluation reads the features after it; in eval mode it whitens with running averages of the batch statistics.
    whitening_layer: BackboneWhitening = BackboneWhitening.none
    whitening_iters: int = 5  # IterNorm's Newton steps (the official IterNorm's T)
    whitening_eps: float = 1e-5  # added to the covariance's diagonal: Sigma = Xc^T Xc / N + eps I
    whitening_momentum: float = 0.1  # running <- momentum x batch + (1 - momentum) x running (mean and matrix)
    whitening_groups: int = 1  # features whitened in this many groups of consecutive features (official: 1)


@dataclass
class DataConfig:
    name: str = "digits"  # digits, digits_m, cifar10, cifar100, stl10, imagenet100, imagenet, folder
    root: str | None = None
    download: bool = False  # torchvision datasets only: fetch into data.root when missing
    batch_size: int = 128  # per device; derived from global_batch_size when that is set
    global_batch_size: int | None = None  # a recipe's batch, split over devices x nodes at start-up
    eval_batch_size: int = 256
    num_workers: int | None = None  # loader workers (DALI: threads) per process; None = the CPUs this process may use, at most 8
    loader: Loader = Loader.auto  # auto | dali | torchvision
    # An image that passes the up-front check but cannot be decoded: skip (a warning names it; another image takes
    # its place in the batch) | stop (one error line names it)
    corrupt_images: CorruptImages = CorruptImages.skip
    image_size: int | None = None  # crop size of groups without one; None = the dataset's own
    eval_resize_ratio: float | None = None  # eval: resize to size*ratio, centre-crop; None = dataset's
    mean: list[float] | None = None  # None = the dataset's statistics
    std: list[float] | None = None
    num_views: int | None = None  # the crop count of a one-group views spec (W-MSE / CW-RGP: 2 or 4); None = its own
    views: list[CropGroup] = field(default_factory=lambda: [CropGroup(size=None), CropGroup(size=None)])
    digits_test_fraction: float = 0.25  # fixed seeded split of scikit-learn's digits
    # folder only: false = unlabelled images anywhere under data.root (no class folders, no validation split):
    # trains, and reports label-free diagnostics (effective rank, spectra) on a fixed subset of them, no probe or k-NN
    labels: bool = True


@dataclass
class OptimizerConfig:
    name: Optimizer = Optimizer.sgd  # sgd | lars | lars_fb | lars_google | adam | adamw (zoo.optim)
    lr: float = 0.3  # per 256 samples when scale_lr is true
    scale_lr: bool = True  # lr x global_batch / 256
    lr_scaled: float | None = None  # written at start-up: the lr actually used
    weight_decay: float = 1e-4
    momentum: float = 0.9
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    exclude_bias_and_norm: bool = False  # no weight decay (and no LARS adaptation) on 1-D params
    bias_lr_factor: float = 1.0  # lr of the 1-D params / lr, with exclude_bias_and_norm (FB Barlow Twins: 0.024)
    lars_eta: float = 0.02  # LARS trust coefficient
    lars_clip: bool = True  # LARC-style clipping (solo-learn) vs plain LARS (FB)
    probe_lr: float = 0.1  # online linear probe, per 256 samples (scaled like lr), no weight decay


@dataclass
class SchedulerConfig:
    name: Schedule = Schedule.cosine  # cosine | step | constant
    interval: ScheduleInterval = ScheduleInterval.step  # step | epoch: how often the lr changes
    warmup_epochs: float = 2.0
    warmup_steps: int = 0  # an iteration count; overrides warmup_epochs when > 0
    # The warmup of step s of W, each as its source computes it (`start` = warmup_start_lr):
    #   next:      base * (s+1) / W                     INTL, W-MSE, CW-RGP (base reached at step W-1)
    #   from_zero: start + (base - start) * s / W      FB Barlow Twins / VICReg (0 at step 0)
    #   endpoints: start + (base - start) * s / (W-1)  solo-learn's LinearWarmupCosineAnnealingLR
    warmup_rule: WarmupRule = WarmupRule.next
    warmup_start_lr: float = 0.0  # absolute lr of every scheduled group at step 0 (solo-learn: 3e-5), not scaled
    final_factor: float = 0.001  # cosine ends at this fraction of the lr
    milestones: list[int] = field(default_factory=list)  # epochs, for name=step
    gamma: float = 0.1


@dataclass
class TrainerConfig:
    """Passed to lightning.Trainer unchanged (add others with +trainer.KEY=VALUE)."""

    max_epochs: int = 15
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "${oc.decode:${oc.env:NUM_GPUS,auto}}"  # auto: every GPU present, else one CPU process
    num_nodes: int = "${oc.decode:${oc.env:NUM_NODES,1}}"
    strategy: Any = "auto"
    precision: Any = "32-true"
    sync_batchnorm: bool = False
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 0
    gradient_clip_val: float | None = None
    # Lightning's meaning: an int is that many batches, a float in [0, 1] that fraction. Typed Any, not float:
    # a float field would turn `=1` (one batch) into 1.0 (every batch).
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    deterministic: bool = False
    enable_progress_bar: bool = True


@dataclass
class EvalConfig:
    knn_k: int = 20
    knn_temperature: float = 0.07
    knn_max_train: int | None = 50000  # k-NN bank: a seeded random subset of the labelled training images beyond this
    # LiDAR at each validation (val/lidar, val/projector_lidar): `lidar_views` training-augmented views of each of
    # `lidar_samples` fixed evaluated images (zoo.data.views); 0 views: no LiDAR. Thilak et al. use 1000 x 50 (50,000
    # forwards, 28x the default run's validation); 16 x 2 keeps every health metric together under 5% of the
    # default run's validation (README, Label-free health metrics). `python -m zoo.health` takes the paper's sizes.
    lidar_samples: int = 16
    lidar_views: int = 2


@dataclass
class DivergenceConfig:
    """What a run does when its numbers go wrong (zoo.callbacks.DivergenceGuard; README, When a run fails)."""

    # Steps with a non-finite loss or gradient that are skipped (no update) instead of stopping the run, each
    # isolated (the step before it finite) and counted in summary.json; 0 = stop at the first one.
    skip_nonfinite_steps: int = 0
    # A validation under either threshold flags the run as collapsed (log, summary.json, zoo.report): the
    # backbone features' effective rank, and the std of the L2-normalised projector output x sqrt(its width)
    # (SimSiam's collapse measure: about 1 for outputs spread over the sphere, 0 for one point).
    collapse_effective_rank: float = 2.0
    collapse_output_std: float = 0.1


@dataclass
class WandbConfig:
    """Weights & Biases, with logger=wandb (WANDB_MODE=offline: no network; `wandb sync` uploads later)."""

    project: str | None = None  # None = $WANDB_PROJECT, else lightning_logs
    entity: str | None = None  # team or user; None = the account's default
    tags: list[str] = field(default_factory=list)


@dataclass
class RecipeConfig:
    """A published recipe (zoo/configs/experiment/<dataset>/<recipe>.yaml): where its values come from."""

    name: str | None = None  # <dataset>/<recipe>; None = not a recipe run
    title: str = ""
    source: str = ""  # the official code (and files) every value was read in
    protocol: str = ""  # how the paper evaluates it (the linear recipe)
    deviation: str | None = None  # what the zoo does differently, on purpose
    variant: str | None = None  # for a recipe that inherits another: what it changes
    notes: list[str] = field(default_factory=list)
    paper_gpus: int = 1  # GPUs per node and nodes of the published run: the global batch was split over them
    paper_nodes: int = 1
    # The paper's numbers for zoo.report: {protocol, top1, top5, knn, source, and what a run must match}
    targets: list[dict] = field(default_factory=list)
    no_target: str | None = None  # why a recipe has no target
    # Its linear evaluation: scripts/linear/<recipe.name>.sh, else the <dataset>/<name> of the linear script that
    # evaluates it (a variant evaluated as its base, as the tables' rows run it), else why it has none (no zoo
    # protocol is the paper's). tests/recipes/test_linear_coverage.py holds every recipe to one of the three.
    linear_script: str | None = None
    no_linear_script: str | None = None


@dataclass
class PretrainConfig:
    method: Any = MISSING
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint_every_n_steps: int = 200
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)
    # metrics.csv always; wandb and / or tensorboard beside it: logger=wandb, logger=[wandb,tensorboard] (zoo/loggers.py)
    logger: Any = "csv"
    wandb: WandbConfig = field(default_factory=WandbConfig)
    # Seeds Python, NumPy, torch and the loader workers (lightning.seed_everything); recorded in summary.json.
    # Runs that differ only in it are one row of zoo.report (mean +- std). trainer.deterministic=true
    # also makes torch pick deterministic kernels.
    seed: int = 0
    # The same command gives the same folder (so re-running it resumes); other overrides, another folder.
    run_dir: str = "runs/${method.name}-${data.name}-${zoo.overrides_id:}"


@dataclass
class LinearConfig:
    """main_linear.py: how a pretrained backbone is evaluated (protocols: see zoo/eval/linear.py)."""

    name: str = "LP-SMALL"  # the recipe protocol's name (recipes.md §6), recorded in summaries and reports
    protocol: LinearProtocol = LinearProtocol.precomputed  # precomputed (features once) | frozen (augmented images) | finetune (semi-supervised)
    epochs: int = 500
    batch_size: int = 1000  # global (split over trainer.devices x trainer.num_nodes)
    optimizer: LinearOptimizer = LinearOptimizer.adam  # adam | sgd | lars
    lr: float = 1e-2  # classifier lr as applied: not scaled by the batch
    backbone_lr: float = 0.0  # finetune: the backbone's lr
    weight_decay: float = 5e-6
    momentum: float = 0.9  # sgd, lars
    lars_eta: float = 0.001  # LARS trust coefficient (adapts every parameter, no clipping: apex LARC)
    schedule: LinearSchedule = LinearSchedule.exponential  # per epoch: exponential (to final_lr) | step | cosine (to 0) | constant
    final_lr: float = 1e-6
    milestones: list[int] = field(default_factory=lambda: [60, 80])  # epochs, for schedule=step
    gamma: float = 0.1
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])  # frozen / finetune: RRC + flip
    crop_interpolation: Interpolation = Interpolation.bilinear
    knn_k: int = 5  # k-NN on the features (Euclidean, majority vote); 0 = none
    label_fraction: int | None = None  # finetune on 1 or 10 (% of ImageNet labels, SimCLR's lists)
    subset_dir: str = "~/.cache/zoo/imagenet_subsets"  # where those lists are downloaded to
    # The protocol's changes to the checkpoint's data config (e.g. evaluation statistics), checked
    # against DataConfig when merged; `data.KEY=VALUE` overrides still win.
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class LinearRunConfig:
    """main_linear.py; its data config is the checkpoint's own, with the protocol's `data` and the
    `data.*` overrides on top."""

    linear: LinearConfig = field(default_factory=LinearConfig)
    # A published protocol (zoo/configs/linear/experiment/<dataset>/<recipe>.yaml): where its values come from.
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    # frozen / finetune run under Lightning (devices, precision, ...); max_epochs follows linear.epochs.
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    run_dir: str | None = None  # None = <checkpoint's run>/linear (finetune: semi-<fraction>pct)


# A config that does not compose or resolve: Hydra's errors and OmegaConf's (a wrong type, a name outside its enum).
CONFIG_ERRORS = (HydraException, OmegaConfBaseException)


def config_error_line(err, node_key=""):
    """The one line of a CONFIG_ERRORS error: a name outside its enum as the command-line check says it
    (`zoo.names.not_one_of`: key, value, choices; `node_key`: where the config that raised it sits in the run
    config, e.g. "data."), any other error its first line and its cause's (which name the key)."""
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    node = getattr(cause, "child_node", None)
    if isinstance(node, EnumNode) and getattr(cause, "full_key", None):
        return not_one_of(f"{node_key}{cause.full_key}", cause.value, node.enum_type)
    line = str(err).splitlines()[0]
    if cause is not err and str(cause).strip():
        line = f"{line.rstrip('.')}: {str(cause).splitlines()[0]}"
    return line


@contextlib.contextmanager
def one_line_config_errors(prefix="", node_key=""):
    """Composing or resolving a config inside: a CONFIG_ERRORS error becomes the ZooError of its one line (after
    `prefix`; `node_key`: see config_error_line)."""
    try:
        yield
    except CONFIG_ERRORS as err:
        raise ZooError(prefix + config_error_line(err, node_key)) from None


def plain_values(node):
    """A config's values resolved, as plain Python (names as strings, not zoo.names members): what leaves the
    process (checkpoint hyper-parameters, YAML) reads the same as it always did, and loads without the zoo."""
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)


def check_batch_limits(trainer):
    """trainer.limit_*_batches: None, a count of batches (an int >= 0) or a fraction (a float in [0, 1])."""
    for key in ("limit_train_batches", "limit_val_batches"):
        value = trainer[key]
        count = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        fraction = isinstance(value, float) and 0.0 <= value <= 1.0
        if not (value is None or count or fraction):
            raise ZooError(f"trainer.{key}={value} must be a number of batches (an integer >= 0) or a fraction "
                           "of them (a float between 0.0 and 1.0)")


def check_optimizer(opt):
    """ZooError for an optimizer config no optimiser here takes (checked when the config is composed; its name,
    a zoo.names.Optimizer, by the schema)."""
    if opt.name in UNCLIPPED_LARS and opt.lars_clip:
        raise ZooError(f"optimizer.lars_clip=true clips solo-learn's LARS (optimizer.name=lars); {opt.name} "
                       "has no clipping: set optimizer.lars_clip=false or optimizer.name=lars")


def chosen_trackers(choice):
    """`logger` as given (a name or a list of names) -> the trackers beyond CSV; one-line
    errors for an unknown name or a tracker whose extra is not installed."""
    names = [choice] if isinstance(choice, str) else list(choice or [])  # not an enum field: a name or a list of them
    for name in names:
        if name not in tuple(Tracker):
            raise ZooError(f"{not_one_of('logger', name, Tracker)} (several: logger=[wandb,tensorboard])")
    trackers = [name.value for name in Tracker if name in names and name != Tracker.csv]
    for name in trackers:
        try:
            __import__("wandb" if name == "wandb" else "tensorboard")
        except ImportError:
            raise ZooError(f"logger={name} needs the {name} extra: pip install 'zoo[{name}]'") from None
    return trackers


def check_pretrain_config(cfg):
    """One `error:` line for a value the schema's types let through but training cannot use,
    before any trainer, data loader or worker exists."""
    import timm
    import torch

    with one_line_config_errors():  # an interpolated value meets its type (an enum's names) here, not where it is read
        OmegaConf.to_container(cfg, resolve=True)
    check_values({key: OmegaConf.select(cfg, key) for key in CHECKED_KEYS})
    check_batch_limits(cfg.trainer)
    check_optimizer(cfg.optimizer)
    if str(cfg.trainer.accelerator) in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ZooError(f"trainer.accelerator={cfg.trainer.accelerator} but this machine has no CUDA GPU: "
                       "use trainer.accelerator=auto (or cpu)")
    if cfg.recipe.name and cfg.data.root and not cfg.data.download and not Path(cfg.data.root).exists():
        raise ZooError(f"data not found at {cfg.data.root} (set DATA_DIR or pass data.root=PATH)")
    chosen_trackers(cfg.logger)
    if not timm.is_model(cfg.backbone.name):
        raise ZooError(f"unknown timm backbone '{cfg.backbone.name}' (see timm.list_models(), e.g. resnet18, resnet50)")


def overrides_id():
    """8 hex digits naming this command's overrides (run_dir and hydra.* aside)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        # unresolved: an override whose value interpolates this very resolver must not recurse
        overrides = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
    except ValueError:  # composed outside a Hydra run (tests, compose API)
        overrides = []
    return overrides_hash(overrides)


def overrides_hash(overrides):
    """8 hex digits naming a list of overrides (run_dir and hydra.* aside, order aside): the id of
    a run folder, also computed by zoo.tables for the commands it launches."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith(("run_dir=", "hydra.")))
    return hashlib.sha1("\n".join(kept).encode()).hexdigest()[:8]


# Optimizer presets, `optimizer.*` values that several methods' defaults or default-run settings share, each
# written here once: a method's `optimizer_defaults` spreads one (`{**SOLO_LARS, "lr": 0.4}`), a config file
# takes one with `- /optimizer_preset@optimizer: solo_lars` in its defaults list.
# solo-learn's LARS (its CIFAR recipes): eta 0.02, clipped, one lr for every group, no LARS or weight decay on 1-D params.
SOLO_LARS = {"name": "lars", "lr": 0.3, "weight_decay": 1e-4, "lars_eta": 0.02, "lars_clip": True,
             "exclude_bias_and_norm": True, "bias_lr_factor": 1.0}
# facebookresearch/barlowtwins main.py and facebookresearch/vicreg main_vicreg.py: their LARS (eta 0.001, no
# clipping, no LARS or weight decay on 1-D params), base lr 0.2 x batch/256, weight decay 1e-6.
FB_LARS = {"name": "lars_fb", "lr": 0.2, "weight_decay": 1e-6, "lars_eta": 0.001, "lars_clip": False,
           "exclude_bias_and_norm": True}
# The official W-MSE and CW-RGP optimizer: Adam 3e-3, not scaled with the batch, L2 weight decay 1e-6.
WMSE_ADAM = {"name": "adam", "lr": 3e-3, "scale_lr": False, "weight_decay": 1e-6, "probe_lr": 3e-3}
OPTIMIZER_PRESETS = {"solo_lars": SOLO_LARS, "fb_lars": FB_LARS, "wmse_adam": WMSE_ADAM}

# The `embedded` option under a recipe: no file has this name, so the optional group adds nothing.
NO_EMBEDDED_SETTINGS = "none-under-a-recipe"


def embedded_choice(experiment, method):
    """pretrain.yaml's `embedded` option: the default run's settings for `method`
    (zoo/configs/embedded/<method>.yaml, optional) when no recipe is selected; none under a recipe
    (`experiment=<dataset>/<recipe>`), whose values are its own on the method's official defaults."""
    return method if experiment is None else NO_EMBEDDED_SETTINGS


def register_configs():
    if not OmegaConf.has_resolver("zoo.overrides_id"):
        OmegaConf.register_new_resolver("zoo.overrides_id", overrides_id)
    if not OmegaConf.has_resolver("zoo.embedded_choice"):
        OmegaConf.register_new_resolver("zoo.embedded_choice", embedded_choice)
    store = ConfigStore.instance()
    store.store(name="pretrain_schema", node=PretrainConfig)
    for name, values in OPTIMIZER_PRESETS.items():
        store.store(group="optimizer_preset", name=name, node=values)
