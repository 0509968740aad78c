"""Test-session settings shared by every test file."""

import logging
import os
import shutil

import pytest
import torch
from detection_helpers import CORRUPT_TRAIN_IMAGE, write_tiny_coco, write_zoo_checkpoint

# Under pytest-xdist (pyproject's addopts: two workers) each worker, and every process it starts, computes
# with one intra-op thread: two workers on two cores, rather than four threads taking turns on them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


# The root logger's handlers before any test ran.
ROOT_HANDLERS, ROOT_LEVEL = list(logging.getLogger().handlers), logging.getLogger().level


@pytest.fixture(autouse=True)
def root_logging_restored():
    """Hydra's job logging (a pretraining run called in-process, also from a module's fixture) adds root handlers
    that write to that test's captured stream, closed once it ends: after each test the root logger is as it was
    before any test, so a later test's log records never reach a closed stream."""
    yield
    logging.getLogger().handlers[:] = ROOT_HANDLERS
    logging.getLogger().setLevel(ROOT_LEVEL)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("detection")
    yield root
    shutil.rmtree(root, ignore_errors=True)  # about 0.6 GB of checkpoints, kept only while the module runs


@pytest.fixture(scope="module")
def coco_root(workdir):
    """Four landscape training images, the last one corrupt, so two iterations of two images
    (plus one PreciseBN batch) are sure to meet it; one landscape and one portrait test image."""
    root = workdir / "coco"
    write_tiny_coco(root, "train", [(96, 64)] * 4, first_image_id=1)
    write_tiny_coco(root, "val", [(96, 72), (64, 96)], first_image_id=101)
    (root / "train2017" / CORRUPT_TRAIN_IMAGE).write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def r50_checkpoint(workdir):
    path = workdir / "r50.ckpt"
    backbone = write_zoo_checkpoint(path, "resnet50")
    return path, backbone.state_dict()
