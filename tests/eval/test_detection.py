"""COCO detection transfer (downstream/detection): conversion, R50-C4 training on a tiny
COCO-format set made here, pycocotools metrics, resume, and one-line errors for bad inputs."""

import ast
import json
import math
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
import yaml
from detection_helpers import (
    CORRUPT_TRAIN_IMAGE,
    DETECTION,
    REPO,
    detectron2_match,
    detectron2_r50_c4_pretrained_keys,
    run_script,
    train_coco_here,
    write_zoo_checkpoint,
)
from PIL import Image

from downstream.detection import train_coco
from downstream.detection.config import get_config
from downstream.detection.convert import resnet50_state_dict
from downstream.detection.data import CocoInstances, coco_splits, horizontal_flip
from downstream.detection.evaluation import METRIC_KEYS, coco_metrics, coco_results
from downstream.detection.model import build_mask_rcnn_c4
from downstream.detection.train_coco import cpu_memory_needed_gib, warmup_multistep


@pytest.fixture(scope="module")
def converted(workdir, r50_checkpoint):
    tv_path, d2_path = workdir / "r50.pth", workdir / "r50.pkl"
    result = run_script("convert.py", r50_checkpoint[0], "--torchvision", tv_path, "--detectron2", d2_path)
    assert result.returncode == 0, result.stderr
    return tv_path, d2_path


def test_torchvision_weights_load_into_resnet50_with_no_missing_keys(converted, r50_checkpoint):
    state_dict = torch.load(converted[0], weights_only=True)
    resnet = torchvision.models.resnet50(weights=None)
    resnet.fc = torch.nn.Identity()  # the zoo backbone has no classifier
    resnet.load_state_dict(state_dict, strict=True)
    for key, value in r50_checkpoint[1].items():
        assert torch.equal(resnet.state_dict()[key], value), key


def test_detectron2_pickle_has_r50_c4_names(converted, r50_checkpoint):
    with open(converted[1], "rb") as file:
        d2 = pickle.load(file)
    assert d2["matching_heuristics"] is True and d2["__author__"] != "Caffe2"  # no Caffe2 renaming
    weights = d2["model"]
    assert all(isinstance(value, np.ndarray) for value in weights.values())
    assert len(weights) == len(r50_checkpoint[1])  # every backbone tensor, once
    # MoCo's converter names, spot-checked.
    assert weights["stem.conv1.weight"].shape == (64, 3, 7, 7)
    assert weights["res2.0.shortcut.norm.running_var"].shape == (256,)
    assert weights["res5.2.conv3.weight"].shape == (2048, 512, 1, 1)

    model_keys = detectron2_r50_c4_pretrained_keys()
    assert len(model_keys) == 53 * 6  # 53 convs (stem + 52 in blocks), each a weight and 5 BN tensors
    matches = detectron2_match(model_keys, weights.keys())
    assert sorted(matches) == sorted(model_keys), "detectron2 model keys left without weights"
    assert sorted(matches.values()) == sorted(weights), "converted keys detectron2 would not use, or use twice"
    assert matches["roi_heads.res5.0.shortcut.weight"] == "res5.0.shortcut.weight"
    assert matches["backbone.stem.conv1.norm.weight"] == "stem.conv1.norm.weight"


def load_detectron2_config(name):
    """A shipped detectron2 YAML with its _BASE_ chain merged, as detectron2's get_cfg would."""
    cfg = yaml.safe_load((DETECTION / "configs" / name).read_text())
    base = cfg.pop("_BASE_", None)
    return deep_merge(load_detectron2_config(base), cfg) if base else cfg


def deep_merge(base, override):
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def test_shipped_detectron2_configs_describe_the_converted_weights():
    cfg = load_detectron2_config("coco_R_50_C4_2x_moco.yaml")
    model = cfg["MODEL"]
    assert model["MASK_ON"] is True and model["ROI_HEADS"]["NAME"] == "Res5ROIHeadsExtraNorm"  # res5 in roi_heads
    assert model["BACKBONE"]["FREEZE_AT"] == 0 and model["RESNETS"]["NORM"] == "naiveSyncBN"
    # torchvision-style weights: stride in the 3x3 conv, RGB input with the ImageNet mean and std.
    assert model["RESNETS"]["STRIDE_IN_1X1"] is False
    assert model["PIXEL_MEAN"] == [123.675, 116.28, 103.53] and cfg["INPUT"]["FORMAT"] == "RGB"
    solver = cfg["SOLVER"]
    assert (solver["IMS_PER_BATCH"], solver["BASE_LR"], solver["MAX_ITER"]) == (16, 0.02, 180000)
    assert ast.literal_eval(solver["STEPS"]) == (120000, 160000)


def test_paper_schedule():
    cfg = get_config("coco_R_50_C4_2x")
    assert (cfg.ims_per_batch, cfg.base_lr, cfg.max_iter, cfg.lr_steps) == (16, 0.02, 180_000, (120_000, 160_000))
    assert cfg.min_sizes_train == (640, 672, 704, 736, 768, 800) and cfg.min_size_test == 800
    factor = warmup_multistep(cfg)
    assert factor(0) == pytest.approx(0.001) and factor(500) == pytest.approx(0.5005) and factor(1000) == 1
    assert factor(119_999) == 1 and factor(120_000) == pytest.approx(0.1) and factor(160_000) == pytest.approx(0.01)
    half = cfg.scaled_to_batch(8)
    assert (half.base_lr, half.max_iter, half.lr_steps, half.warmup_iters) == (0.01, 360_000, (240_000, 320_000), 2000)


def test_model_is_c4_and_initialised_from_the_checkpoint(r50_checkpoint):
    model = build_mask_rcnn_c4(resnet50_state_dict(r50_checkpoint[0]), 2, get_config("cpu_smoke"))
    backbone = r50_checkpoint[1]
    assert not hasattr(model.backbone, "layer4")  # res2..res4 only
    assert torch.equal(model.backbone.layer3[5].conv3.weight, backbone["layer3.5.conv3.weight"])
    assert torch.equal(model.roi_heads.res5[0].downsample[0].weight, backbone["layer4.0.downsample.0.weight"])
    assert isinstance(model.roi_heads.res5.norm, torch.nn.BatchNorm2d)  # MoCo's extra norm after res5
    assert model.rpn.anchor_generator.num_anchors_per_location() == [15]


def ground_truth_targets(coco_root, split):
    dataset = CocoInstances(coco_splits(coco_root)[split], train=True)
    for image_id in dataset.image_ids:
        info = dataset.coco.imgs[image_id]
        yield dataset, image_id, dataset.training_target(image_id, (info["height"], info["width"]))


def test_ground_truth_as_detections_scores_100(coco_root):
    results = {"bbox": [], "segm": []}
    for dataset, image_id, target in ground_truth_targets(coco_root, "val"):
        detections = {
            "boxes": target["boxes"],
            "labels": target["labels"],
            "scores": torch.ones(len(target["labels"])),
            "masks": target["masks"][:, None].float(),  # (N, 1, H, W) probabilities, as torchvision pastes them
        }
        for iou_type, items in coco_results(detections, image_id, dataset.category_ids).items():
            results[iou_type].extend(items)
    assert coco_metrics(dataset.coco, results) == pytest.approx({key: 100.0 for key in METRIC_KEYS})


def test_horizontal_flip_keeps_boxes_on_their_masks(coco_root):
    _, _, target = next(ground_truth_targets(coco_root, "val"))
    image = torch.zeros(3, *target["masks"].shape[-2:], dtype=torch.uint8)
    _, flipped = horizontal_flip(image, target)
    for box, mask in zip(flipped["boxes"], flipped["masks"]):
        columns = mask.any(dim=0).nonzero()
        assert box[0] == pytest.approx(columns.min().item(), abs=1) and box[2] == pytest.approx(columns.max().item() + 1, abs=1)


def test_train_two_iterations_then_coco_metrics_and_resume(workdir, coco_root, r50_checkpoint, capsys):
    """train_coco.py's main, called in this process (the real command: the imagenet-intl recipe's test below)."""
    output = workdir / "run"
    common = ["--ckpt", r50_checkpoint[0], "--coco-root", coco_root, "--config", "cpu_smoke", "--output", output]
    code, _, err = train_coco_here(capsys, *common, "--max-iter", 2)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"warning: skipping {coco_root / 'train2017' / CORRUPT_TRAIN_IMAGE}" in err
    metrics = json.loads((output / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert isinstance(metrics[key], float) and 0 <= metrics[key] <= 100 and not math.isnan(metrics[key]), key
    assert metrics["iteration"] == 2
    assert [json.loads(line)["iteration"] for line in (output / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert torch.load(output / "last.pth", weights_only=True)["iteration"] == 2

    code, out, err = train_coco_here(capsys, *common, "--max-iter", 3)
    assert code == 0, err
    assert "resuming at iteration 2" in out
    assert json.loads((output / "metrics.json").read_text())["iteration"] == 3
    assert not list(output.glob("*.tmp"))  # atomic writes leave no temporaries


def copy_coco(coco_root, workdir, name):
    copy = workdir / name
    shutil.copytree(coco_root, copy)
    return copy


@pytest.mark.parametrize("problem", ["no_root", "no_annotations", "resnet18", "corrupt_val_image"])
def test_bad_inputs_give_one_line_errors(problem, workdir, coco_root, r50_checkpoint, capsys):
    """train_coco.py's main, called in this process (the real command's one line: the papers-config test below)."""
    ckpt, root, expected = r50_checkpoint[0], coco_root, None
    if problem == "no_root":
        root, expected = workdir / "missing", "COCO root not found"
    elif problem == "no_annotations":
        root = copy_coco(coco_root, workdir, problem)
        (root / "annotations" / "instances_val2017.json").unlink()
        expected = "instances_val2017.json"
    elif problem == "resnet18":
        ckpt, expected = workdir / "r18.ckpt", "backbone is 'resnet18'"
        write_zoo_checkpoint(ckpt, "resnet18")
    elif problem == "corrupt_val_image":
        root = copy_coco(coco_root, workdir, problem)
        shutil.copy(root / "train2017" / "000000000001.jpg", root / "train2017" / CORRUPT_TRAIN_IMAGE)  # no warning
        (root / "val2017" / "000000000102.jpg").write_bytes(b"\xff\xd8 truncated")
        expected = "000000000102.jpg"
    with pytest.raises(SystemExit) as stopped:
        train_coco.main(["--ckpt", str(ckpt), "--coco-root", str(root), "--config", "cpu_smoke", "--max-iter", "0",
                         "--output", str(workdir / f"run_{problem}")])
    assert stopped.value.code != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], err


def test_a_checkpoint_from_the_imagenet_intl_recipe_trains_two_iterations(workdir, coco_root, tmp_path):
    """The issue's end-to-end path: scripts/pretrain/imagenet/intl.sh (ResNet-50, shrunk to a
    few steps on a generated folder) -> train_coco.py --max-iter 2 -> six pycocotools metrics."""
    for split in ("train", "val"):
        for label in range(2):
            folder = tmp_path / "imagenet" / split / f"n{label:08d}"
            folder.mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (48, 40), (60 + 120 * label, 80, 40 * i)).save(folder / f"{i}.JPEG")
    run_dir = tmp_path / "pretrain"
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "RUN_DIR", "NUM_GPUS")}
    pretrain = subprocess.run(
        ["bash", str(REPO / "scripts" / "pretrain" / "imagenet" / "intl.sh"), f"data.root={tmp_path / 'imagenet'}",
         "data.image_size=32", "data.global_batch_size=8", "data.num_workers=0", "data.loader=torchvision",
         "method.proj_hidden=[64]", "method.proj_out=64", "trainer.max_steps=1", "trainer.precision=32-true",
         "trainer.enable_progress_bar=false", f"run_dir={run_dir}"],
        check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=600,
    )
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    output = tmp_path / "coco_run"
    result = run_script("train_coco.py", "--ckpt", run_dir / "checkpoints" / "last.ckpt", "--coco-root", coco_root,
                        "--config", "cpu_smoke", "--output", output, "--max-iter", 2)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert all(isinstance(metrics[key], float) and not math.isnan(metrics[key]) for key in METRIC_KEYS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the memory check is for machines without a GPU")
def test_papers_config_without_a_gpu_stops_in_one_line_before_training(workdir, coco_root, r50_checkpoint):
    """The default config (16 images of 800x1333 in one process) cannot fit a 24 GiB host: one line, no OOM kill."""
    output = workdir / "run_default_on_cpu"
    result = run_script("train_coco.py", "--ckpt", r50_checkpoint[0], "--coco-root", coco_root, "--output", output)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: --config coco_R_50_C4_2x needs about ") and "--config cpu_smoke" in lines[0]
    assert not output.exists(), "stopped before the run folder was made"


def test_cpu_memory_estimate_matches_a_measured_step():
    """The estimate against the peak RSS of one CPU training step of the real model (1 image, 256x384, 64 RoIs).

    The peak is the process's own (VmHWM, reset by exec): getrusage's ru_maxrss keeps the forking process's
    resident size across fork and exec, which a pytest worker that ran training in-process makes larger."""
    import dataclasses

    cfg = dataclasses.replace(get_config("coco_R_50_C4_2x"), min_sizes_train=(256,), max_size=384, roi_batch_size_per_image=64)
    script = """
import dataclasses, torch, torchvision
from downstream.detection.config import get_config
from downstream.detection.model import build_mask_rcnn_c4
cfg = dataclasses.replace(get_config("coco_R_50_C4_2x"), min_sizes_train=(256,), max_size=384, roi_batch_size_per_image=64)
weights = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
model = build_mask_rcnn_c4(weights, 80, cfg).train()
masks = torch.zeros(1, 256, 384, dtype=torch.uint8); masks[:, 20:200, 30:300] = 1
target = {"boxes": torch.tensor([[30.0, 20.0, 300.0, 200.0]]), "labels": torch.tensor([1]), "masks": masks}
sum(model([torch.rand(3, 256, 384)], [target]).values()).backward()
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 2**20)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True, timeout=300)
    measured = float(result.stdout.split()[-1])
    estimated = cpu_memory_needed_gib(cfg, 1)
    assert 0.6 < estimated / measured < 1.5, (estimated, measured)
