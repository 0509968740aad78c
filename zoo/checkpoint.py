"""Reading zoo pretraining checkpoints (Lightning `.ckpt` files)."""

from pathlib import Path

import torch

from zoo.errors import ZooError

BACKBONE_PREFIX = "backbone."


def read_checkpoint(path):
    """Return `{"config": dict, "backbone": state_dict}` from a zoo checkpoint.

    The backbone state dict has the timm model's own key names (the
    `backbone.` prefix stripped); `config` is the resolved run config.
    """
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"checkpoint not found: {path} (pass the path to a .ckpt written by main_pretrain.py)")
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
    return {"config": config, "backbone": backbone}
