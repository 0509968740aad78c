"""Convert a zoo checkpoint's ResNet-50 backbone for detection.

Two formats:
- torchvision: the state dict of `torchvision.models.resnet50` without `fc` (timm's ResNet
  key names are torchvision's, so this is a checked copy);
- detectron2: the pickle that MoCo's detection/convert-pretrain-to-detectron2.py writes
  (stem.conv1, res2..res5, convN.norm, shortcut; numpy arrays; matching_heuristics=True
  so detectron2 finds `res5.*` under `roi_heads.res5` of the C4 model by suffix).

The key checks and the detectron2 renaming are zoo.export's (`python -m zoo.export` writes the
same files for any ResNet, as safetensors for timm / torchvision).

Every backbone key must map to one ResNet-50 key of the same shape: a missing, unexpected or
misshapen key is an error, never a silent strict=False.

    python downstream/detection/convert.py CKPT --torchvision r50.pth --detectron2 r50.pkl
"""

import argparse
import os
import pickle
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch

from zoo.checkpoint import read_checkpoint
from zoo.errors import ZooError, exit_on_user_error
from zoo.export import architecture, check_state_dict, float32, shapes, to_detectron2, torchvision_model

REQUIRED_BACKBONE = "resnet50"


def check_resnet50_state_dict(state_dict, source):
    """Raise ZooError unless `state_dict` has exactly torchvision's ResNet-50 keys and shapes (no fc)."""
    check_state_dict(state_dict, shapes(torchvision_model(REQUIRED_BACKBONE)[0]), source, "torchvision's ResNet-50")


def resnet50_state_dict(checkpoint_path):
    """The backbone of a zoo checkpoint as a torchvision ResNet-50 state dict (no `fc`), float32."""
    checkpoint = read_checkpoint(checkpoint_path)
    backbone_cfg = checkpoint["config"].get("backbone")
    name = backbone_cfg.get("name") if isinstance(backbone_cfg, dict) else None
    if not isinstance(name, str) or architecture(name) != REQUIRED_BACKBONE:
        raise ZooError(
            f"{checkpoint_path}: backbone is {name!r}; R50-C4 detection transfer needs a {REQUIRED_BACKBONE} checkpoint"
        )
    state_dict = float32(checkpoint["backbone"])
    if backbone_cfg.get("whitening_layer", "none") != "none":
        # the whitening layer sits in fc's place after global pooling: detection reads the stages' feature maps only
        state_dict = {key: value for key, value in state_dict.items() if not key.startswith("fc.")}
    check_resnet50_state_dict(state_dict, checkpoint_path)
    return state_dict


def atomic_write(path, write):
    """Call write(file) on a temporary file next to `path`, then rename it into place (streamed:
    train_coco.py writes its large training checkpoints through it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        write(file)
    os.replace(temporary, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="zoo pretraining checkpoint (.ckpt)")
    parser.add_argument("--torchvision", metavar="OUT.pth", help="write a torchvision ResNet-50 state dict")
    parser.add_argument("--detectron2", metavar="OUT.pkl", help="write detectron2 weights (MODEL.WEIGHTS)")
    args = parser.parse_args(argv)
    if not (args.torchvision or args.detectron2):
        parser.error("give --torchvision OUT.pth, --detectron2 OUT.pkl or both")

    state_dict = resnet50_state_dict(args.ckpt)
    if args.torchvision:
        atomic_write(args.torchvision, lambda file: torch.save(state_dict, file))
        print(f"wrote {args.torchvision} ({len(state_dict)} tensors, torchvision ResNet-50 without fc)")
    if args.detectron2:
        atomic_write(args.detectron2, lambda file: pickle.dump(to_detectron2(state_dict), file))
        print(f"wrote {args.detectron2} ({len(state_dict)} arrays, detectron2 R50 names)")


if __name__ == "__main__":
    exit_on_user_error(main)()
