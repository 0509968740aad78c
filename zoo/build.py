"""From a run config to what a run trains: the harness around its method (`build_method`; `load_method` rebuilds
the method from a checkpoint) and the Lightning Trainer (`build_trainer`, shared by pretraining and the linear
protocols)."""

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf

from zoo.checkpoint import complete_config, read_checkpoint
from zoo.config import plain_values
from zoo.data import data_spec
from zoo.optim import batch_scaled
from zoo.registry import create_method
from zoo.train.harness import Pretrainer


def build_method(cfg, num_classes, world_size, accumulate_grad_batches=1):
    """What training fits, built from the run config `cfg`: the harness (`zoo.train.harness.Pretrainer`) around
    the method (its `.method`, a `zoo.methods.base.Method`); the one place that turns a run config into their
    explicit arguments. The lr is scaled by the global batch of an
    optimiser step (x accumulate_grad_batches) and kept as optimizer.lr_scaled; the probe's lr
    by the batch of one forward pass. The run config also goes into the checkpoint's
    hyper-parameters ("cfg", with "num_classes" and "world_size"), where main_linear.py,
    main_knn.py and downstream/ read it, and from which `build_method` rebuilds old checkpoints."""
    global_batch = cfg.data.batch_size * world_size  # of one forward pass, over all devices
    cfg.optimizer.lr_scaled = batch_scaled(cfg.optimizer.lr, cfg.optimizer.scale_lr, global_batch * accumulate_grad_batches)
    resolved = plain_values(cfg)
    optimizer = resolved["optimizer"]
    method = create_method(
        cfg.method.name,
        resolved["method"],
        crop_sizes=[crop.size for crop in data_spec(cfg.data).crops],
        global_batch_size=global_batch,
        backbone=resolved["backbone"],
    )
    model = Pretrainer(
        method,
        num_classes=num_classes,
        optimizer=optimizer,
        scheduler=resolved["scheduler"],
        lr=optimizer["lr_scaled"],
        probe_lr=batch_scaled(optimizer["probe_lr"], optimizer["scale_lr"], global_batch),
        knn_k=cfg.eval.knn_k,
        knn_temperature=cfg.eval.knn_temperature,
    )
    model.save_hyperparameters({"cfg": resolved, "num_classes": num_classes, "world_size": world_size})
    return model


def load_method(path):
    """The method (`zoo.methods.base.Method`: backbone, projector, ...) rebuilt from a pretraining checkpoint, in
    eval mode, and the run config it was trained with: `(method, config)`. Built from the stored run config
    (on today's schema) through `build_method`, so checkpoints of every layout load."""
    checkpoint = read_checkpoint(path)
    config = complete_config(checkpoint["config"])
    method = build_method(config, checkpoint["num_classes"], checkpoint["world_size"]).method
    method.load_state_dict(checkpoint["state_dict"])
    return method.eval(), config


def build_trainer(trainer_cfg, run_dir, logger=CSVLogger, **arguments):
    """A Lightning Trainer that writes to `run_dir` (metrics.csv there, through `logger`: a logger class,
    or a list of loggers), from a `trainer.*` config (None = Lightning's default) and further Trainer
    `arguments` (callbacks, ...)."""
    trainer_args = OmegaConf.to_container(trainer_cfg, resolve=True)
    return L.Trainer(
        default_root_dir=run_dir,
        logger=logger(run_dir, name="", version="") if isinstance(logger, type) else logger,
        **arguments,
        **{k: v for k, v in trainer_args.items() if v is not None},
    )
