"""`python main_pretrain.py [hydra overrides]`: self-supervised pretraining."""

import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

import hydra
import lightning as L
import torch
import yaml
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import OmegaConf

from zoo.arguments import check_pretrain_arguments, override_values
from zoo.atomic import atomic_write_bytes, write_json
from zoo.build import build_method, build_trainer
from zoo.callbacks import (
    AtomicCheckpointIO,
    Diverged,
    DivergenceGuard,
    EmbeddingPlot,
    SpectrumPlot,
    StageSpectraPlot,
    StopOnSignal,
    ValidationMetrics,
    checkpoint_callbacks,
    find_callback,
    latest_metrics,
)
from zoo.catalog import dataset_info
from zoo.checkpoint import RunFolderLock, check_resumable, check_run_folder, check_writable_folder
from zoo.config import CONFIG_ERRORS, check_pretrain_config, config_error_line, register_configs
from zoo.data import build_loaders, data_spec
from zoo.data.views import AugmentedViews
from zoo.errors import ZooError, exit_on_user_error
from zoo.loggers import run_loggers
from zoo.methods.base import typed_config
from zoo.metrics.health import HEALTH_KEYS, LIDAR_KEYS
from zoo.provenance import TrainingMeter, provenance
from zoo.registry import discover_methods, get_method


def check_run_dir_override(argv):
    """Fail in one line on a run folder that cannot be written before Hydra creates it (with a traceback)."""
    given = [arg.split("=", 1)[1] for arg in argv if arg.lstrip("+").startswith("run_dir=")]
    check_writable_folder(given[-1] if given else "runs")


def hydra_flags_first(argv):
    """Hydra's own flags (--cfg job, --help, ...) anywhere among the overrides, as recipe scripts pass them on."""
    from hydra._internal.utils import get_args_parser

    try:
        args = get_args_parser().parse_intermixed_args(argv)
    except SystemExit:  # let Hydra print its own message
        return argv
    overrides = set(args.overrides)
    return [a for a in argv if a not in overrides] + args.overrides


def check_batch_overrides(cfg):
    """A recipe gives the global batch: a per-device data.batch_size on top would be ignored."""
    from hydra.core.hydra_config import HydraConfig

    overrides = HydraConfig.get().overrides.task
    if cfg.data.global_batch_size and any(o.lstrip("+").startswith("data.batch_size=") for o in overrides):
        raise ZooError(
            f"this recipe sets data.global_batch_size={cfg.data.global_batch_size} (split over the devices); "
            "pass data.global_batch_size=N instead of data.batch_size"
        )


def quiet_lightning():
    """Lightning's start-up chatter (accelerator lines, tips) would bury our one-line errors."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)


def pretraining_trainer(cfg, run_dir):
    """The shared trainer with pretraining's outputs: a metrics.csv that survives a resume (and the
    trackers `cfg.logger` names), the validation metrics (LiDAR on `cfg.eval.lidar_*` augmented views), atomic
    periodic checkpoints, the spectrum, stage-spectra and embedding plots, the training meter, and the stops: at a
    non-finite loss or gradient (DivergenceGuard) and on SIGTERM / SIGINT (StopOnSignal)."""
    lidar = None  # drawn at the first validation, from their own seeded generator
    if cfg.eval.lidar_views:
        lidar = AugmentedViews(data_spec(cfg.data), cfg.eval.lidar_samples, cfg.eval.lidar_views, cfg.seed)
    callbacks = [ValidationMetrics(lidar), *checkpoint_callbacks(run_dir, cfg.checkpoint_every_n_steps)]
    callbacks += [SpectrumPlot(run_dir / "spectrum.png"), StageSpectraPlot(run_dir / "stage_spectra.png"),
                  EmbeddingPlot(run_dir / "embedding.png"), TrainingMeter(),
                  DivergenceGuard(run_dir / "divergence.pt", **cfg.divergence), StopOnSignal(run_dir / "checkpoints" / "last.ckpt")]
    return build_trainer(cfg.trainer, run_dir, logger=run_loggers(cfg, run_dir), callbacks=callbacks, plugins=[AtomicCheckpointIO()])


def check_batch_config(cfg, method_cls, world_size):
    """The method's batch limits (`Method.check_global_batch`) on the run config, once the per-device batch and
    the devices are known and before any data or model exists: one `error:` line instead of a NaN loss or a
    traceback at the first step."""
    config = typed_config(method_cls.Config, OmegaConf.to_container(cfg.method, resolve=True))
    method_cls.check_global_batch(config, cfg.data.batch_size * world_size)


def newest_checkpoint(run_dir, last_ckpt):
    """last.ckpt, or Lightning's SLURM requeue checkpoint (hpc_ckpt_N.ckpt) when that is newer."""
    candidates = [path for path in [last_ckpt, *run_dir.glob("hpc_ckpt_*.ckpt")] if path.exists()]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


def summarise(cfg, model, trainer, loader, last_ckpt, started, stopped=None):
    """summary.json; `stopped`: why the run ended before its planned steps (None: it finished)."""
    evaluated = latest_metrics(trainer)
    keys = (
        "knn_top1", "knn_top5", "linear_top1", "linear_top5", "evaluated_images", "effective_rank", "projector_effective_rank",
        "backbone_condition_number", "transformed_effective_rank", "transformed_identity_distance",
        "transformed_condition_number", "output_std", *HEALTH_KEYS, *LIDAR_KEYS,
    )
    stages = [key for key in evaluated if re.fullmatch(r"stage\d+/\w+", key)]
    guard = find_callback(trainer, DivergenceGuard)
    return {
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "labels": cfg.data.labels,  # false: unlabelled images, so no k-NN or probe accuracy
        "backbone": cfg.backbone.name,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "finished": stopped is None,
        "stopped": stopped,
        **{key: evaluated.get(key) for key in keys},
        "stages": evaluated.get("stage_names"),  # the backbone modules of stage1, stage2, ...
        **{key: evaluated[key] for key in stages},
        "collapsed": guard.collapsed,
        "skipped_nonfinite_steps": guard.skipped,
        "checkpoint": str(last_ckpt) if last_ckpt.exists() else None,
        "loader": loader,
        "global_batch_size": model.global_batch_size,
        "lr": cfg.optimizer.lr_scaled,
        "seconds": round(time.time() - started, 1),
        "provenance": provenance(started, cfg.seed, find_callback(trainer, TrainingMeter)),
    }


def split_global_batch(global_batch, world_size):
    if global_batch % world_size:
        raise ZooError(
            f"data.global_batch_size={global_batch} does not split over {world_size} processes: set NUM_GPUS / NUM_NODES "
            "(trainer.devices / trainer.num_nodes) to a divisor of it, or change data.global_batch_size"
        )
    return global_batch // world_size


def say_how_the_recipe_runs_here(cfg, trainer, changed):
    """One line when the machine differs from the published run: the global batch (and so the lr)
    stays the recipe's; what had to change for this machine is named."""
    if cfg.recipe.paper_gpus * cfg.recipe.paper_nodes == trainer.world_size and not changed:
        return
    print(
        f"zoo: recipe {cfg.recipe.name} was run on {cfg.recipe.paper_gpus} GPUs x {cfg.recipe.paper_nodes} node(s); here "
        f"{trainer.world_size} x {trainer.strategy.root_device.type}: global batch {cfg.data.global_batch_size} kept "
        f"({cfg.data.batch_size} per process)" + "".join(f", {change}" for change in changed)
    )


def runs_on_cuda(trainer_cfg):
    """Whether Lightning puts this run on CUDA GPUs: accelerator auto, gpu or cuda on a machine with one."""
    return str(trainer_cfg.accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def check_precision_override(cfg):
    """float16 autocast needs a CUDA GPU; on a CPU Lightning would switch to bfloat16 with a warning. Asked
    for on the command line, it is refused in one line; a recipe's 16-mixed runs as 32-true, with a notice."""
    from hydra.core.hydra_config import HydraConfig

    asked = any(o.lstrip("+").startswith("trainer.precision=") for o in HydraConfig.get().overrides.task)
    if asked and str(cfg.trainer.precision).startswith("16") and not runs_on_cuda(cfg.trainer):
        raise ZooError(f"trainer.precision={cfg.trainer.precision} (float16) needs a CUDA GPU and this run has none: "
                       "use trainer.precision=bf16-mixed (bfloat16 autocast, runs on a CPU) or 32-true")


def trainer_for_this_machine(cfg, run_dir):
    """The trainer on the devices present, with what they cannot run turned off in `cfg` (16-bit float
    precision without a GPU, SyncBN for a single process), said in one line, and the recipe's global
    batch split over them."""
    changed = []
    if str(cfg.trainer.precision).startswith("16") and not runs_on_cuda(cfg.trainer):  # decided before Lightning sees it
        changed.append(f"precision 32-true ({cfg.trainer.precision} needs a GPU)")
        cfg.trainer.precision = "32-true"
    trainer = pretraining_trainer(cfg, run_dir)
    if cfg.trainer.sync_batchnorm and trainer.world_size == 1:  # SyncBN needs processes to sync (and a GPU)
        cfg.trainer.sync_batchnorm = False
        changed.append("SyncBN off")
        trainer = pretraining_trainer(cfg, run_dir)
    if cfg.data.global_batch_size:
        cfg.data.batch_size = split_global_batch(cfg.data.global_batch_size, trainer.world_size)
    if trainer.is_global_zero and cfg.recipe.name:
        say_how_the_recipe_runs_here(cfg, trainer, changed)
    elif trainer.is_global_zero and changed:
        print(f"zoo: {', '.join(changed)}")
    return trainer


def keep_the_recipes_image_size(cfg):
    """A recipe's crops without a size take its data set's (CIFAR: 32 px). Run on another data set
    (data.name=folder data.root=PATH), they keep that size, which the recipe's stem, batch and lr were
    set for, rather than the new data set's default (224 px through a CIFAR stem); said in one line."""
    if not cfg.recipe.name or cfg.data.image_size is not None:
        return
    recipe = resources.files("zoo").joinpath("configs", "experiment", f"{cfg.recipe.name}.yaml")
    if not recipe.is_file():
        return
    recipe_data = yaml.safe_load(recipe.read_text()).get("data") or {}
    name = recipe_data.get("name")
    if name and name != cfg.data.name and recipe_data.get("image_size") is None:
        cfg.data.image_size = dataset_info(name).image_size
        print(f"zoo: recipe {cfg.recipe.name} on data.name={cfg.data.name}: crops of {cfg.data.image_size} px as on "
              f"{name} (pass data.image_size=N for another size)")


def pretrain(cfg):
    started = time.time()
    run_dir = Path(cfg.run_dir).resolve()
    method_cls = get_method(cfg.method.name)
    keep_the_recipes_image_size(cfg)
    check_pretrain_config(cfg)
    data = data_spec(cfg.data)  # the data config read once, its checks before anything is built
    method_cls.check_views(len(data.crops))
    check_run_folder(run_dir, cfg.method.name, cfg.backbone.name)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = trainer_for_this_machine(cfg, run_dir)
    data = replace(data, batch_size=cfg.data.batch_size)  # a recipe's global batch, split over this machine's devices
    check_batch_config(cfg, method_cls, trainer.world_size)
    with RunFolderLock(run_dir) if trainer.is_global_zero else contextlib.nullcontext():
        return train(cfg, data, trainer, run_dir, started)


def train(cfg, data, trainer, run_dir, started):
    """Pretraining in `run_dir` (locked by this process) on `data` (the `zoo.data.DataSpec` of cfg.data); a run
    stopped by a signal exits 128 + its number."""
    last_ckpt = run_dir / "checkpoints" / "last.ckpt"
    resume = newest_checkpoint(run_dir, last_ckpt)
    if resume:
        check_resumable(resume)
    loaders = build_loaders(data, seed=cfg.seed, rank=trainer.global_rank, world_size=trainer.world_size,
                            knn_bank_size=cfg.eval.knn_max_train)
    global_batch = cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches
    model = build_method(cfg, loaders.num_classes, trainer.world_size, trainer.accumulate_grad_batches)
    if trainer.is_global_zero:
        atomic_write_bytes(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True).encode())
        print(
            f"zoo: {cfg.method.name} on {cfg.data.name} ({loaders.loader} loader), {cfg.backbone.name}, "
            f"{trainer.world_size} x {trainer.strategy.root_device.type}, global batch {global_batch}, "
            f"lr {cfg.optimizer.lr_scaled:g}, run_dir {run_dir}"
        )
        if resume:
            print(f"Resuming from {resume}")
    val_loaders = [loaders.knn_bank, loaders.val] if loaders.knn_bank is not None else [loaders.val]
    try:
        trainer.fit(model, train_dataloaders=loaders.train, val_dataloaders=val_loaders, ckpt_path=resume)
        if model.trained_steps and find_callback(trainer, ValidationMetrics).step != trainer.global_step:
            trainer.validate(model, dataloaders=val_loaders, verbose=False)  # the summary evaluates the final weights
    except (SIGTERMException, Diverged) as stop:
        signalled = find_callback(trainer, StopOnSignal).received or "SIGTERM"
        why = str(stop).split(";")[0] if isinstance(stop, Diverged) else f"stopped by {signalled}"
        if trainer.is_global_zero:
            write_json(run_dir / "summary.json", summarise(cfg, model, trainer, loaders.loader, last_ckpt, started, why))
        if isinstance(stop, Diverged):
            raise
        if trainer.is_global_zero:
            print(f"zoo: {why} at step {trainer.global_step}: {last_ckpt} written, summary.json marks the run unfinished; "
                  "run the same command again to resume", file=sys.stderr)
        sys.exit(128 + getattr(signal, signalled))
    summary_path = run_dir / "summary.json"
    finished = summary_path.exists() and json.loads(summary_path.read_text()).get("finished", True)
    if trainer.is_global_zero and resume and not model.trained_steps and finished:
        print(f"the run in {run_dir} is already complete; its summary.json stays as it was (use another run_dir to train anew)")
    elif trainer.is_global_zero:
        summary = summarise(cfg, model, trainer, loaders.loader, last_ckpt, started)
        write_json(summary_path, summary)
        print(json.dumps({k: summary[k] for k in ("method", "dataset", "epochs", "knn_top1", "linear_top1", "effective_rank")}))
        if summary["collapsed"]:
            print(f"warning: the run looks collapsed ({summary['collapsed']}): see summary.json", file=sys.stderr)
        print(f"run written to {run_dir}")
    return model


@exit_on_user_error
def load_methods(argv):
    """The overrides' names and values checked (main_pretrain.py did so before importing torch), then
    every method registered: `method=<unknown>` fails in one line, not in Hydra's multi-line listing."""
    check_pretrain_arguments(argv)
    discover_methods()
    method = override_values(argv).get("method")
    if isinstance(method, str):
        get_method(method)


def main():
    register_configs()
    load_methods(sys.argv[1:])
    quiet_lightning()
    exit_on_user_error(check_run_dir_override)(sys.argv[1:])

    sys.argv[1:] = hydra_flags_first(sys.argv[1:])
    # Hydra reports an error of composing the config (`scheduler.name=cosin`, `optimizer.lr=abc`) in several lines
    # and exits 1; raised instead, it becomes the one `error:` line below (the run's own errors, bugs, keep their traceback).
    os.environ["HYDRA_FULL_ERROR"] = "1"
    composed = False

    @hydra.main(config_path="configs", config_name="pretrain", version_base="1.3")
    @exit_on_user_error
    def run(cfg):
        nonlocal composed
        composed = True
        if torch.cuda.is_available():  # TF32 for the backbone; a CUDA feature (the whitening stays float32)
            torch.set_float32_matmul_precision("high")
        check_batch_overrides(cfg)
        check_precision_override(cfg)
        pretrain(cfg)

    @exit_on_user_error
    def compose_and_run():
        try:
            run()
        except CONFIG_ERRORS as err:
            if composed:  # raised by the run, not by composing its config: a bug, with its traceback
                raise
            raise ZooError(config_error_line(err)) from None

    compose_and_run()


if __name__ == "__main__":
    main()
