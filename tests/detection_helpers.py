"""What the detection tests share: a tiny COCO-format set, zoo checkpoints of torchvision / timm ResNets, the
detection scripts run as a user runs them, and detectron2's R50-C4 key names."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]


DETECTION = REPO / "downstream" / "detection"


CORRUPT_TRAIN_IMAGE = "000000000004.jpg"


# detectron2's R50-C4 (build_resnet_backbone with OUT_FEATURES ["res4"], Res5ROIHeads): the
# backbone holds the stem and res2..res4, res5 lives in roi_heads. ResNet-50 has 3, 4, 6, 3
# blocks; block 0 of each stage has a projection shortcut; every conv has a norm, and
# naiveSyncBN is a BatchNorm2d, so num_batches_tracked is a buffer of the model too.
DETECTRON2_R50_C4_STAGES = {"backbone.res2": 3, "backbone.res3": 4, "backbone.res4": 6, "roi_heads.res5": 3}


DETECTRON2_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def detectron2_r50_c4_pretrained_keys():
    """Every key of detectron2's R50-C4 model that ImageNet-style pretrained weights fill
    (MoCo's Res5ROIHeadsExtraNorm adds roi_heads.res5.norm.*, which starts fresh)."""
    convs = {"backbone.stem.conv1": None}
    for stage, blocks in DETECTRON2_R50_C4_STAGES.items():
        for block in range(blocks):
            for conv in ("conv1", "conv2", "conv3") + (("shortcut",) if block == 0 else ()):
                convs[f"{stage}.{block}.{conv}"] = None
    return [f"{conv}.weight" for conv in convs] + [f"{conv}.norm.{bn}" for conv in convs for bn in DETECTRON2_BN]


def detectron2_match(model_keys, checkpoint_keys):
    """detectron2's align_and_update_state_dicts: each model key takes the longest checkpoint key
    equal to it or ending it after a '.'; returns {model key: checkpoint key}."""
    matches = {}
    for model_key in model_keys:
        candidates = [k for k in checkpoint_keys if model_key == k or model_key.endswith("." + k)]
        if candidates:
            matches[model_key] = max(candidates, key=len)
    return matches


def write_zoo_checkpoint(path, backbone_name):
    backbone = timm.create_model(backbone_name, num_classes=0)
    state = {"backbone." + k: v for k, v in backbone.state_dict().items()}
    state["projector.0.weight"] = torch.randn(8, backbone.num_features)
    cfg = {"backbone": {"name": backbone_name}, "method": {"name": "intl"}}
    torch.save({"state_dict": state, "hyper_parameters": {"cfg": cfg}}, path)
    return backbone


def polygon_annotation(annotation_id, image_id, category_id, points):
    xs, ys = points[0::2], points[1::2]
    x, y = min(xs), min(ys)
    w, h = max(xs) - x, max(ys) - y
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": [points],
        "bbox": [x, y, w, h],
        "area": w * h / 2 if len(points) == 6 else w * h,
        "iscrowd": 0,
    }


def write_tiny_coco(root, split, sizes, first_image_id):
    """A square (category 1) and a triangle (category 3: ids need not be contiguous) per image."""
    (root / f"{split}2017").mkdir(parents=True)
    rng = np.random.default_rng(first_image_id)
    images, annotations = [], []
    for image_id, (width, height) in enumerate(sizes, start=first_image_id):
        file_name = f"{image_id:012d}.jpg"
        x0, y0 = int(rng.integers(2, width // 3)), int(rng.integers(2, height // 3))
        square = [x0, y0, x0 + 24, y0, x0 + 24, y0 + 20, x0, y0 + 20]
        triangle = [width - 40, height - 4, width - 4, height - 4, width - 22, height - 30]
        picture = Image.new("RGB", (width, height), (40, 40, 40))
        draw = ImageDraw.Draw(picture)
        draw.polygon(square, fill=(220, 60, 60))
        draw.polygon(triangle, fill=(60, 220, 60))
        picture.save(root / f"{split}2017" / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        annotations.append(polygon_annotation(2 * image_id, image_id, 1, square))
        annotations.append(polygon_annotation(2 * image_id + 1, image_id, 3, triangle))
    categories = [{"id": 1, "name": "square"}, {"id": 3, "name": "triangle"}]
    (root / "annotations").mkdir(exist_ok=True)
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(coco))


def run_script(script, *args):
    return subprocess.run(
        [sys.executable, str(DETECTION / script), *map(str, args)], check=False, capture_output=True, text=True, timeout=600
    )


def train_coco_here(capsys, *args):
    """train_coco.py's main called in this process -> (exit status, stdout, stderr)."""
    from downstream.detection import train_coco

    try:
        train_coco.main(list(map(str, args)))
        code = 0
    except SystemExit as stopped:
        code = stopped.code
    out, err = capsys.readouterr()
    return code, out, err
