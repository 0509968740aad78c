"""Reading zoo pretraining checkpoints (Lightning `.ckpt` files)."""

from pathlib import Path

import torch
from omegaconf import OmegaConf

from zoo.arguments import check_checkpoint_file
from zoo.errors import ZooError

BACKBONE_PREFIX = "backbone."


def read_checkpoint(path):
    """Return `{"config": dict, "backbone": state_dict, "state_dict": ..., "num_classes": int, "world_size": int}`.

    The backbone state dict has the timm model's own key names (the
    `backbone.` prefix stripped); `config` is the resolved run config as stored;
    `state_dict` is the whole LightningModule's.
    """
    path = Path(path)
    check_checkpoint_file(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a non-checkpoint file
        raise ZooError(f"cannot read checkpoint {path}: {type(err).__name__} (is it a file written by main_pretrain.py?)") from err
    config = ckpt.get("hyper_parameters", {}).get("cfg") if isinstance(ckpt, dict) else None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if config is None or state is None:
        raise ZooError(f"{path} is not a zoo pretraining checkpoint (no 'cfg' hyper-parameters or no state_dict)")
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    if not backbone:
        raise ZooError(f"{path} holds no backbone weights (no '{BACKBONE_PREFIX}*' keys)")
    hparams = ckpt["hyper_parameters"]
    return {"config": config, "backbone": backbone, "state_dict": state, "num_classes": hparams.get("num_classes"),
            "world_size": hparams.get("world_size") or 1}


def complete_config(config):
    """A stored run config on top of today's schema, so keys added since it was written take
    their defaults (a DictConfig in struct mode)."""
    from zoo.config import PretrainConfig
    from zoo.registry import get_method

    schema = OmegaConf.structured(PretrainConfig)
    schema.method = OmegaConf.structured(get_method(config["method"]["name"]).Config)
    stored = {key: value for key, value in config.items() if key != "run_dir"}  # run_dir's default needs Hydra
    merged = OmegaConf.merge(schema, stored)
    merged.run_dir = config.get("run_dir", "")
    return merged


def load_method(path):
    """The pretraining LightningModule (backbone, projector, ...) rebuilt from its checkpoint, in eval
    mode, and the run config it was trained with: `(method, config)`. Built from the stored run config
    (on today's schema) through `zoo.pretrain.build_method`, so checkpoints of every version load."""
    from zoo.pretrain import build_method

    checkpoint = read_checkpoint(path)
    config = complete_config(checkpoint["config"])
    method = build_method(config, checkpoint["num_classes"], checkpoint["world_size"])
    method.load_state_dict(checkpoint["state_dict"])
    return method.eval(), config
