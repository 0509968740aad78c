"""What the evaluations share: the run folder of a checkpoint, a checkpoint's backbone and its data config."""

from pathlib import Path

from omegaconf import OmegaConf

from zoo.backbones import create_backbone
from zoo.checkpoint import complete_config
from zoo.config import DataConfig, one_line_config_errors
from zoo.data import resolved_views


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
