"""`python main_pretrain.py [hydra overrides]`: self-supervised pretraining."""

import json
import logging
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from omegaconf import OmegaConf

from zoo.callbacks import AtomicCheckpointIO, ResumableCSVLogger, SpectrumPlot, atomic_write_bytes, checkpoint_callbacks
from zoo.config import check_pretrain_config, register_configs
from zoo.data import build_loaders, resolved_views
from zoo.data.augment import expand_crops
from zoo.errors import exit_on_user_error
from zoo.registry import discover_methods, get_method


def check_method_override(argv):
    """Fail in one line on `method=<unknown>` before Hydra prints its multi-line listing."""
    for arg in argv:
        if arg.startswith("method="):
            get_method(arg.split("=", 1)[1])


def write_json(path, data):
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def quiet_lightning():
    """Lightning's start-up chatter (accelerator lines, tips) would bury our one-line errors."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)


def build_trainer(cfg, run_dir):
    trainer_args = OmegaConf.to_container(cfg.trainer, resolve=True)
    callbacks = checkpoint_callbacks(run_dir, cfg.checkpoint_every_n_steps)
    callbacks.append(SpectrumPlot(run_dir / "spectrum.png"))
    return L.Trainer(
        default_root_dir=run_dir,
        logger=ResumableCSVLogger(run_dir, name="", version=""),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        **{k: v for k, v in trainer_args.items() if v is not None},
    )


def newest_checkpoint(run_dir, last_ckpt):
    """last.ckpt, or Lightning's SLURM requeue checkpoint (hpc_ckpt_N.ckpt) when that is newer."""
    candidates = [path for path in [last_ckpt, *run_dir.glob("hpc_ckpt_*.ckpt")] if path.exists()]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


def scaled_lr(optimizer_cfg, global_batch_size):
    return optimizer_cfg.lr * (global_batch_size / 256 if optimizer_cfg.scale_lr else 1.0)


def build_method(cfg, num_classes, world_size, accumulate_grad_batches=1):
    """The method as training builds it, its lr scaled by the global batch (kept as optimizer.lr_scaled)."""
    cfg.optimizer.lr_scaled = scaled_lr(cfg.optimizer, cfg.data.batch_size * world_size * accumulate_grad_batches)
    return get_method(cfg.method.name)(cfg, num_classes=num_classes, world_size=world_size)


def summarise(cfg, model, trainer, loader, last_ckpt, started):
    evaluated = getattr(model, "last_eval", {})
    keys = (
        "knn_top1", "knn_top5", "linear_top1", "linear_top5", "effective_rank", "projector_effective_rank",
        "backbone_condition_number", "transformed_effective_rank", "transformed_identity_distance",
        "transformed_condition_number",
    )
    return {
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "backbone": cfg.backbone.name,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        **{key: evaluated.get(key) for key in keys},
        "checkpoint": str(last_ckpt) if last_ckpt.exists() else None,
        "loader": loader,
        "global_batch_size": model.global_batch_size,
        "lr": cfg.optimizer.lr_scaled,
        "seconds": round(time.time() - started, 1),
    }


def pretrain(cfg):
    started = time.time()
    run_dir = Path(cfg.run_dir).resolve()
    method_cls = get_method(cfg.method.name)
    check_pretrain_config(cfg)
    method_cls.check_views(len(expand_crops(resolved_views(cfg.data))))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = build_trainer(cfg, run_dir)
    loaders = build_loaders(cfg.data, seed=cfg.seed, rank=trainer.global_rank, world_size=trainer.world_size,
                            knn_bank_size=cfg.eval.knn_max_train)
    global_batch = cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches
    model = build_method(cfg, loaders.num_classes, trainer.world_size, trainer.accumulate_grad_batches)
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True).encode())
    last_ckpt = run_dir / "checkpoints" / "last.ckpt"
    resume = newest_checkpoint(run_dir, last_ckpt)
    if trainer.is_global_zero:
        print(
            f"zoo: {cfg.method.name} on {cfg.data.name} ({loaders.loader} loader), {cfg.backbone.name}, "
            f"{trainer.world_size} x {trainer.strategy.root_device.type}, global batch {global_batch}, "
            f"lr {cfg.optimizer.lr_scaled:g}, run_dir {run_dir}"
        )
        if resume:
            print(f"Resuming from {resume}")
    trainer.fit(model, train_dataloaders=loaders.train, val_dataloaders=[loaders.knn_bank, loaders.val], ckpt_path=resume)
    if trainer.is_global_zero and resume and not model.trained_steps and (run_dir / "summary.json").exists():
        print(f"the run in {run_dir} is already complete; its summary.json stays as it was (use another run_dir to train anew)")
    elif trainer.is_global_zero:
        summary = summarise(cfg, model, trainer, loaders.loader, last_ckpt, started)
        write_json(run_dir / "summary.json", summary)
        print(json.dumps({k: summary[k] for k in ("method", "dataset", "epochs", "knn_top1", "linear_top1", "effective_rank")}))
        print(f"run written to {run_dir}")
    return model


def main():
    register_configs()
    discover_methods()
    quiet_lightning()
    exit_on_user_error(check_method_override)(sys.argv[1:])

    @hydra.main(config_path="configs", config_name="pretrain", version_base="1.3")
    @exit_on_user_error
    def run(cfg):
        torch.set_float32_matmul_precision("high")
        pretrain(cfg)

    run()


if __name__ == "__main__":
    main()
