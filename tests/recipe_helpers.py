
"""What the recipe tests share: the linear protocols written out from the sources, the recipe scripts run under
bash, the recipe configs composed as `--cfg job` resolves them, and the official modules' pieces."""

import contextlib
import copy
import enum
import functools
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from default_run import compose_run
from omegaconf import OmegaConf
from torch import nn
from torchvision.transforms import v2 as T

from zoo.backbones import create_backbone
from zoo.build import build_method
from zoo.config import BackboneConfig
from zoo.data.augment import torchvision_view
from zoo.eval.cli import build_config

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DATASETS = ["cifar10", "cifar100", "imagenet-100", "imagenet"]
METHODS = ["intl", "barlow_twins", "vicreg", "wmse", "cwrgp", "simsiam"]
ALL_SCRIPTS = sorted(str(p.relative_to(SCRIPTS))[:-3] for p in SCRIPTS.glob("*/*/*.sh"))

# ---- the linear protocols (../shared/reference/recipes.md §6), written out independently of the scripts ----


def probe(name, protocol, epochs, batch, optimizer, lr, wd, schedule, **extra):
    return {"linear.name": name, "linear.protocol": protocol, "linear.epochs": epochs, "linear.batch_size": batch,
            "linear.optimizer": optimizer, "linear.lr": lr, "linear.weight_decay": wd, "linear.schedule": schedule,
            **{f"linear.{k}": v for k, v in extra.items()}}


LP_SMALL = probe("LP-SMALL", "precomputed", 500, 1000, "adam", 1e-2, 5e-6, "exponential", final_lr=1e-6, knn_k=5)
LINEAR = {f"{ds}/{m}": LP_SMALL for ds in ("cifar10", "cifar100") for m in METHODS}
LINEAR |= {f"{ds}/{m}": LP_SMALL for ds in ("stl10", "tiny-imagenet", "imagenet-100") for m in ("wmse", "cwrgp")}
LINEAR |= {
    "imagenet-100/intl": probe("LP-INTL", "frozen", 100, 256, "sgd", 0.2, 0, "step", milestones=[60, 80], knn_k=5),
    "imagenet-100/barlow_twins": probe("LP-SOLO", "frozen", 100, 256, "sgd", 0.1, 0, "step", milestones=[60, 80]),
    "imagenet-100/vicreg": probe("LP-SOLO", "frozen", 100, 256, "sgd", 0.3, 0, "step", milestones=[60, 80]),
    "imagenet-100/simsiam": probe("LP-SOLO", "frozen", 100, 256, "sgd", 30.0, 0, "step", milestones=[60, 80]),
    "imagenet/intl": probe("LP-INTL", "frozen", 100, 256, "sgd", 0.2, 0, "step", milestones=[60, 80]),
    "imagenet/intl_m": probe("LP-INTL", "frozen", 100, 256, "sgd", 0.4, 0, "step", milestones=[60, 80]),
    "imagenet/barlow_twins": probe("LP-FB-BT", "frozen", 100, 256, "sgd", 0.3, 1e-6, "cosine"),
    "imagenet/barlow_twins_ep100": probe("LP-SOLO", "frozen", 100, 256, "sgd", 0.3, 1e-5, "step", milestones=[60, 80]),
    "imagenet/vicreg": probe("LP-FB-VIC", "frozen", 100, 256, "sgd", 0.02, 1e-6, "cosine"),
    "imagenet/simsiam": probe("LP-SS-LARS", "frozen", 90, 4096, "lars", 1.6, 0, "cosine", lars_eta=0.001),
    "imagenet/cwrgp": probe("LP-CW-LARS", "frozen", 100, 1024, "lars", 0.4, 0, "cosine", lars_eta=0.001),
    "imagenet/wmse": probe("LP-CW-LARS", "frozen", 100, 1024, "lars", 0.4, 0, "cosine", lars_eta=0.001),
    "imagenet/barlow_twins_semi_1pct": probe("SS-FB-BT-1pct", "finetune", 20, 256, "sgd", 0.5, 0, "cosine", backbone_lr=0.005,
                                             label_fraction=1),
    "imagenet/vicreg_semi_1pct": probe("SS-FB-VIC-1pct", "finetune", 20, 256, "sgd", 0.08, 0, "cosine", backbone_lr=0.03,
                                       label_fraction=1),
    "imagenet/vicreg_semi_10pct": probe("SS-FB-VIC-10pct", "finetune", 20, 256, "sgd", 0.1, 0, "cosine", backbone_lr=0.01,
                                        label_fraction=10),
}
# The baselines: LP-SMALL on the small sets, solo-learn's LP-SOLO lrs on ImageNet-100, Table 4's probe on ImageNet.
BASELINES = ["simclr", "mocov2plus", "byol"]
LINEAR |= {f"{ds}/{m}": LP_SMALL for ds in ("cifar10", "cifar100") for m in BASELINES}
LINEAR |= {f"{ds}/{m}_wmse_protocol": LP_SMALL for ds in ("cifar10", "cifar100", "stl10", "tiny-imagenet") for m in ("simclr", "byol")}
LINEAR |= {f"imagenet-100/{m}": probe("LP-SOLO", "frozen", 100, 256, "sgd", lr, 0, "step", milestones=[60, 80])
           for m, lr in (("simclr", 1.0), ("mocov2plus", 3.0), ("byol", 0.3))}
LINEAR |= {f"imagenet/{m}": LINEAR["imagenet/simsiam"] for m in ("simclr", "byol")}
# SwAV and DINO as solo-learn runs them (LP-SMALL on CIFAR, its LP-SOLO lrs on ImageNet-100), MoCo v2 and SwAV on
# ImageNet under Table 4's probe, Zero-CL and Shuffled-DBN as the CW-RGP table's rows (LP-SMALL).
LINEAR |= {f"{ds}/{m}": LP_SMALL for ds in ("cifar10", "cifar100") for m in ("swav", "dino")}
LINEAR |= {f"imagenet-100/{m}": probe("LP-SOLO", "frozen", 100, 256, "sgd", lr, 0, "step", milestones=[60, 80])
           for m, lr in (("swav", 0.15), ("dino", 0.3))}
LINEAR |= {f"imagenet/{m}": LINEAR["imagenet/simsiam"] for m in ("mocov2", "swav")}
# SwAV's own probe (eval_linear.py defaults) for its multi-crop recipe.
LINEAR["imagenet/swav_multicrop_ep100"] = probe("LP-SWAV", "frozen", 100, 256, "sgd", 0.3, 1e-6, "cosine")
LINEAR |= {f"{ds}/{m}": LP_SMALL for ds in ("cifar10", "cifar100", "stl10", "tiny-imagenet") for m in ("zero_cl", "shuffled_dbn")}
for pct in (1, 10):
    for variant, backbone_lr in (("intl", 0.006), ("intl_m", 0.004)):
        LINEAR[f"imagenet/{variant}_semi_{pct}pct"] = probe(f"SS-INTL-{pct}pct", "finetune", 20, 256, "sgd", 0.2, 0, "constant",
                                                            backbone_lr=backbone_lr, label_fraction=pct)
# The whitening / spectral family: each official repository's probe (CorInfoMax's, MMCR's, MEC's, FroSSL's fork
# of solo-learn after its lr x batch x devices / 256, LeJEPA's README); tests/recipes/test_corinfomax_mmcr_mec_recipes.py and test_frossl_lejepa_recipes.py say where.
# corinfomax main_linear*.py + the README commands: SGD 0.2 (momentum 0.9, no decay), CosineAnnealingLR(100) per epoch,
# batch 256, bicubic RandomResizedCrop(size) + flip; CIFAR evaluation Resize(int(32 x 8/7) = 36) + CenterCrop(32).
LP_CIM = probe("LP-CIM", "frozen", 100, 256, "sgd", 0.2, 0, "cosine", crop_interpolation="bicubic", crop_scale=[0.08, 1.0],
               momentum=0.9, knn_k=0)
LINEAR |= {f"{ds}/corinfomax": LP_CIM for ds in ("cifar10", "cifar100", "tiny-imagenet", "imagenet-100")}
LINEAR["imagenet-100/corinfomax_resnet50"] = LP_CIM
# imagenet1k README: --lin_learning_rate 25 --lin_scheduler step --lin_step_size 20 (StepLR gamma 0.1), batch 256.
LINEAR["imagenet/corinfomax"] = probe("LP-CIM-IN", "frozen", 100, 256, "sgd", 25.0, 0, "step", milestones=[20, 40, 60, 80],
                                        gamma=0.1, crop_interpolation="bicubic", knn_k=0)
# mmcr model_select_cifar_stl.py defaults (batch 1024, lr 0.1, 50 epochs) into train_classifier: Adam, wd 1e-6, cosine.
for ds, interpolation, scale in (("cifar10", "bilinear", [0.08, 1.0]), ("cifar100", "bilinear", [0.08, 1.0]),
                                 ("stl10", "bicubic", [0.2, 1.0])):
    LINEAR[f"{ds}/mmcr"] = probe("LP-MMCR", "frozen", 50, 1024, "adam", 0.1, 1e-6, "cosine", crop_interpolation=interpolation,
                                   crop_scale=scale, knn_k=0)
# mmcr linear_classifier_imagenet.py defaults: batch 2048, lr 0.3, 100 epochs; SGD momentum 0.9, wd 1e-6, cosine.
LINEAR["imagenet/mmcr"] = probe("LP-MMCR-IN", "frozen", 100, 2048, "sgd", 0.3, 1e-6, "cosine", crop_interpolation="bicubic",
                                  momentum=0.9, knn_k=0)
# MEC main_lincls.py --lars: lr 0.03 x 4096 / 256, wd 0, LARC trust 0.001, cosine per epoch over 100 epochs.
LINEAR["imagenet/mec"] = probe("LP-MEC-LARS", "frozen", 100, 4096, "lars", 0.03 * 4096 / 256, 0, "cosine", lars_eta=0.001,
                                 crop_interpolation="bilinear", knn_k=0)
# Matrix-SSL main_lincls.py --lars (the README's command): MEC's probe, the same arguments.
LINEAR["imagenet/matrix_ssl"] = LINEAR["imagenet/mec"]
LINEAR |= {
    "imagenet-100/frossl": probe("LP-SOLO", "frozen", 100, 1024, "sgd", 0.1 * 512 * 2 / 256, 0, "step", milestones=[60, 80],
                                 crop_interpolation="bicubic"),
    "cifar10/frossl": probe("LP-FROSSL", "frozen", 100, 256, "adam", 1e-3, 0, "step", milestones=[40, 80]),
    "cifar100/frossl": probe("LP-FROSSL", "frozen", 100, 256, "adam", 1e-3, 0, "step", milestones=[40, 80]),
    "stl10/frossl": probe("LP-FROSSL", "frozen", 100, 256, "sgd", 0.01, 0, "step", milestones=[40, 80]),
    "tiny-imagenet/frossl": probe("LP-FROSSL", "frozen", 100, 256, "sgd", 0.1, 0, "step", milestones=[60, 80]),
    "imagenet-100/lejepa": probe("LP-LEJEPA", "frozen", 100, 256, "adam", 1e-3, 1e-6, "cosine"),
    "imagenet-100/lejepa_vit_small": probe("LP-LEJEPA", "frozen", 100, 256, "adam", 1e-3, 1e-6, "cosine"),
}
# FB Barlow Twins' evaluate.py, copied as Mixed Barlow Twins' evaluate_imagenet.py (--lr-classifier 0.3) and Zero-CL's
# ImageNet-100/evaluate.py (its defaults): LP-FB-BT.
LINEAR |= {name: LINEAR["imagenet/barlow_twins"] for name in ("imagenet/mix_bt", "imagenet-100/zero_cl_official")}
RECIPES = {f"linear/{k}": v for k, v in LINEAR.items()}
EXPERIMENTS = REPO / "zoo" / "configs" / "experiment"
PRETRAIN_RECIPES = sorted(str(p.relative_to(EXPERIMENTS))[:-5] for p in EXPERIMENTS.rglob("*.yaml"))


# ---- running the scripts --------------------------------------------------------------------
def script_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "NUM_GPUS", "NUM_NODES", "RUN_DIR")}
    return {**env, **{k: str(v) for k, v in extra.items()}}


def bash(script, *args, env=None, timeout=30):
    return subprocess.run(["bash", str(SCRIPTS / f"{script}.sh"), *args], check=False, capture_output=True, text=True, cwd=REPO,
                          env=env or script_env(), timeout=timeout)


def resolved(recorded, script, data_dir, **env):
    """The config a script resolves to (`--cfg job --resolve`), from the arguments it passes on,
    with the environment (DATA_DIR, NUM_GPUS, ...) the recipe config reads."""
    entry, argv = recorded(script, "--cfg", "job", DATA_DIR=data_dir, **env)
    assert "--cfg" in argv
    flags_at = argv.index("--cfg")
    overrides = argv[:flags_at] + argv[flags_at + 2:]
    if entry == "main_pretrain.py":
        return compose_recipe(overrides, DATA_DIR=data_dir, **env)
    assert entry == "main_linear.py"
    return compose_linear(overrides, DATA_DIR=data_dir, **env)


@contextlib.contextmanager
def recipe_environment(**env):
    """Only `env` of the variables the recipe configs read (oc.env) and main_linear reads (DATA_DIR)."""
    saved = {k: os.environ.get(k) for k in ("DATA_DIR", "NUM_GPUS", "NUM_NODES", "RUN_DIR")}
    try:
        for key in saved:
            os.environ.pop(key, None)
        os.environ.update({k: str(v) for k, v in env.items()})
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


# A recipe's config is composed once per test process: a composition takes about 0.2 s, and the recipe tests compose
# every recipe in several files. Each call gets its own copy to change.
@functools.cache
def resolved_container(entry, overrides, env):
    with recipe_environment(**dict(env)):
        cfg = compose_run(list(overrides)) if entry == "pretrain" else build_config(None, list(overrides))
        return OmegaConf.to_container(cfg, resolve=True)


def compose_recipe(overrides, **env):
    """Pretraining config of `overrides`, resolved under `env`."""
    return OmegaConf.create(copy.deepcopy(resolved_container("pretrain", tuple(overrides), tuple(sorted(env.items())))))


def compose_linear(overrides, **env):
    """main_linear.py's config of `overrides` without a checkpoint, resolved under `env`."""
    return OmegaConf.create(copy.deepcopy(resolved_container("linear", tuple(overrides), tuple(sorted(env.items())))))


def recipe_value(cfg, key):
    if key == "batch":
        return cfg.data.batch_size * cfg.trainer.devices * cfg.trainer.num_nodes
    if key == "projector":
        return [*cfg.method.proj_hidden, cfg.method.proj_out]
    if key == "views":
        return sum(group.count for group in cfg.data.views)
    value = OmegaConf.select(cfg, key)
    if isinstance(value, enum.Enum):  # a name of zoo.names: compared as the string the recipe gives
        return value.value
    return OmegaConf.to_container(value, enum_to_str=True) if OmegaConf.is_config(value) else value


def same_value(actual, expected):
    """Equal, floats to 1e-9 relative, through nested lists and dicts (pytest.approx takes no nesting)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            same_value(actual[k], v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, (list, tuple)) and len(actual) == len(expected) and all(
            same_value(a, e) for a, e in zip(actual, expected))
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) and not isinstance(expected, bool) and not isinstance(actual, bool):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    return type(actual) is type(expected) and actual == expected


TINY_RUN = ["data.image_size=32", "data.global_batch_size=8", "data.num_workers=0", "data.loader=torchvision", "backbone.name=resnet18",
            "method.proj_hidden=[64,64]", "method.proj_out=64", "trainer.max_steps=2", "trainer.precision=32-true",
            "trainer.enable_progress_bar=false"]


# ---- the sources' pieces ------------------------------------------------------------------------------
def linear(d_in, d_out, bias=True):
    return f"Linear {d_in}>{d_out}" + (" +bias" if bias else "")


def hidden(d_in, d_out):
    """Linear + BatchNorm + ReLU: a bias before the BatchNorm is cancelled by it, so `layers` leaves it out."""
    return [linear(d_in, d_out, bias=False), f"BN {d_out}", "ReLU"]


@dataclass
class Augment:
    """One crop as the source builds it; `ops` the order of the operations that can fire."""

    jitter: tuple  # brightness, contrast, saturation, hue
    gray_p: float
    solarize_p: float = 0.0
    scale: tuple = (0.08, 1.0)
    jitter_p: float = 0.8
    flip_p: float = 0.5
    ops: tuple = ("crop", "jitter", "gray", "blur", "flip")  # solo-learn's pipeline (solo/data/pretrain_dataloader.py)
    interpolation: T.InterpolationMode = T.InterpolationMode.BICUBIC  # of the crop: PIL bicubic / TF resize_bicubic
    size: int | None = None  # the crop's size; None = the source's `crop` (multi-crop: the small crops give theirs)


# ---- what training builds -----------------------------------------------------------------------------
def layers(mlp):
    """A projector / predictor as text, one entry per layer; a Linear's bias is shown unless a BatchNorm follows."""
    modules = list(mlp)
    described = []
    for i, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            before_bn = i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm1d)
            described.append(linear(module.in_features, module.out_features, module.bias is not None and not before_bn))
        elif isinstance(module, nn.BatchNorm1d):
            described.append(f"BN {module.num_features}" + ("" if module.affine else " no affine"))
        elif isinstance(module, (nn.ReLU, nn.GELU)):
            described.append(type(module).__name__)
        else:
            raise TypeError(f"a head layer this test cannot describe: {module}")
    return described


def check_crop(crop, expected, size):
    """One crop's torchvision pipeline (its operations in order, the random-resized crop, jitter, grey, flip,
    solarize) against the source's `Augment`."""
    ops = pipeline_ops(torchvision_view(crop, [0.5] * 3, [0.5] * 3))
    assert tuple(name for name, _ in ops) == expected.ops
    step = dict(ops)
    assert (step["crop"].size, step["crop"].scale, step["crop"].ratio) == ((size,) * 2, expected.scale, (3 / 4, 4 / 3))
    assert step["crop"].interpolation == expected.interpolation
    jitter = step["jitter"].transforms[0]
    b, c, s, h = expected.jitter
    assert [*jitter.brightness, *jitter.contrast, *jitter.saturation, *jitter.hue] == pytest.approx(
        [1 - b, 1 + b, 1 - c, 1 + c, 1 - s, 1 + s, -h, h])
    assert (step["jitter"].p, step["gray"].p, step["flip"].p) == (expected.jitter_p, expected.gray_p, expected.flip_p)
    assert (step["solarize"].p if "solarize" in step else 0.0) == expected.solarize_p


def pipeline_ops(pipeline):
    """(name, transform) of each operation of a torchvision_view pipeline that can fire."""
    names = {T.RandomResizedCrop: "crop", T.RandomGrayscale: "gray", T.RandomSolarize: "solarize", T.RandomHorizontalFlip: "flip"}
    ops = []
    for step in pipeline.transforms:
        if isinstance(step, T.RandomApply):
            name = "jitter" if isinstance(step.transforms[0], T.ColorJitter) else "blur"
        else:
            name = names.get(type(step))
        if name and getattr(step, "p", 1.0) > 0:
            ops.append((name, step))
    return ops


@functools.cache
def stem(backbone_items, crop):
    """conv1 (kernel, stride, padding), whether the max-pool is kept, and whether each residual block's last
    BatchNorm starts at zero: of the backbone really built (on the CPU, once per backbone config)."""
    model = create_backbone(BackboneConfig(**dict(backbone_items)), crop)
    last_bns = [block.bn3 if hasattr(block, "bn3") else block.bn2 for layer in (model.layer1, model.layer4) for block in layer]
    zero = {bool((bn.weight == 0).all()) for bn in last_bns}
    assert len(zero) == 1, "every block alike"
    conv = model.conv1
    return conv.kernel_size[0], conv.stride[0], conv.padding[0], not isinstance(model.maxpool, nn.Identity), zero.pop()


# Training-set sizes the official loaders see (STL-10: train+unlabeled); batches per epoch drop the last.
TRAIN_SIZE = {"cifar10": 50_000, "cifar100": 50_000, "stl10": 105_000, "tiny-imagenet": 100_000,
              "imagenet-100": 126_689, "imagenet": 1_281_167}


def swav_lr(base, start, final, warmup_epochs=10):
    """FB SwAV main_swav.py lr_schedule per step: np.linspace(start, base, W) over the warmup (both ends
    included), then final + (base - final) 1/2 (1 + cos(pi t/(T - W))) for step t after it."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return float(np.linspace(start, base, w)[s])
        return final + 0.5 * (base - final) * (1 + math.cos(math.pi * (s - w) / (total - w)))
    return lr


def constant_lr(base):
    return lambda s, spe, total: base


# FroSSL (OFSkean/FroSSL, a solo-learn fork: scripts/pretrain/<dataset>/frossl.yaml with solo-learn's lr rules) and
# LeJEPA (rbalestr-lab/lejepa README + MINIMAL.md); tests/recipes/test_frossl_lejepa_recipes.py checks the rest of these recipes.
def minimal_lejepa_lr(base, warmup_epochs=1, start_factor=0.01, end=1e-3):
    """MINIMAL.md: SequentialLR(LinearLR(start_factor=0.01, total_iters=W), cosine) with W = one epoch of steps,
    stepped every batch; LinearLR's factor is start + (1 - start) s / W. README: the cosine ends at lr / 1000."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return base * (start_factor + (1 - start_factor) * s / w)
        return base * end + (base - base * end) * 0.5 * (1 + math.cos(math.pi * (s - w) / (total - w)))
    return lr


# ---- what training uses ---------------------------------------------------------------------------
def role_of(name, param):
    if name.startswith("classifier."):
        return f"probe_{name.split('.')[1]}"
    if name.startswith("predictor."):
        return "predictor"
    return "weights" if param.ndim > 1 else "norms"


def trained_with(cfg, steps_per_epoch):
    """(method, optimizer, scheduler, {role: param-group index}) as pretraining builds them."""
    with torch.device("meta"):
        model = build_method(cfg, num_classes=10, world_size=cfg.trainer.devices * cfg.trainer.num_nodes)
    built = model.build_optimizer(steps_per_epoch, steps_per_epoch * cfg.trainer.max_epochs)
    optimizer, scheduler = built["optimizer"], built["lr_scheduler"]["scheduler"]
    group_of = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
    roles = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            roles.setdefault(role_of(name.removeprefix("method."), param), set()).add(group_of[id(param)])
    return model.method, optimizer, scheduler, roles


def probe_steps(spe, total, milestones_epochs=()):
    """Steps where schedules differ: the start, around warmups of 500 iterations, 2 and 10 epochs,
    epoch boundaries, milestones, the middle and the end."""
    steps = {0, 1, 2, total // 2, total - 1}
    for w in (500, 2 * spe, 10 * spe):
        steps |= {w - 2, w - 1, w, w + 1}
    steps |= {spe - 1, spe, 3 * spe + 5}
    for epoch in milestones_epochs:
        steps |= {epoch * spe - 1, epoch * spe}
    return sorted(s for s in steps if 0 <= s < total)
