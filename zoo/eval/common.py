"""What every runner shares (pretraining and the evaluations): the Lightning trainer, atomic
summaries, the run folder of a checkpoint, a checkpoint's backbone and its data config."""

import json
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf

from zoo.backbones import create_backbone
from zoo.callbacks import atomic_write_bytes
from zoo.checkpoint import complete_config
from zoo.config import DataConfig, one_line_config_errors
from zoo.data import resolved_views


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


def write_json(path, data):
    """`data` as indented JSON, written atomically (folders created)."""
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def run_folder(ckpt_path):
    """Where a checkpoint's evaluations go: its pretraining run, RUN of RUN/checkpoints/<name>.ckpt; a
    checkpoint kept elsewhere (moved, copied, downloaded) gets a folder of its name beside it,
    DIR/<name> for DIR/<name>.ckpt, never a folder it happens to be two levels under."""
    path = Path(ckpt_path).resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent / path.stem


def load_backbone(checkpoint):
    """The timm backbone of a checkpoint (as `zoo.checkpoint.read_checkpoint` returns it), its
    small stem decided by the pretraining crops, as in pretraining."""
    pretrain_cfg = complete_config(checkpoint["config"])
    crop_size = max(group.size for group in resolved_views(pretrain_cfg.data))
    backbone = create_backbone(pretrain_cfg.backbone, crop_size)
    backbone.load_state_dict(checkpoint["backbone"])
    return backbone


def data_config(pretrain_cfg, overrides, protocol_data=None):
    """The checkpoint's data config (or the defaults without one), with an evaluation protocol's
    values (`protocol_data`, a mapping) and then `data.KEY=VALUE` overrides on top."""
    with one_line_config_errors(node_key="data."):
        data = OmegaConf.merge(OmegaConf.structured(DataConfig), pretrain_cfg["data"] if pretrain_cfg else {},
                               protocol_data or {})
        data.merge_with_dotlist([o[len("data.") :] for o in overrides])
    return data
