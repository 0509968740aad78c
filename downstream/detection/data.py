"""COCO 2017 instances for torchvision's Mask R-CNN, with detectron2's training input rules:
images without a non-crowd annotation are dropped, crowd regions are not targets, a random
horizontal flip, an endless shuffled stream batched by aspect ratio (landscape / portrait)."""

import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from pycocotools.coco import COCO
from torch.utils.data import Sampler
from torchvision.transforms.functional import pil_to_tensor

from zoo.errors import ZooError

LAYOUT = "COCO_ROOT/{train2017,val2017}/ and COCO_ROOT/annotations/instances_{train2017,val2017}.json"


@dataclass(frozen=True)
class CocoSplit:
    images: Path
    annotations: Path


def coco_splits(root):
    """{"train": CocoSplit, "val": CocoSplit} of a COCO 2017 folder; ZooError naming what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise ZooError(f"COCO root not found: {root} (expected {LAYOUT})")
    splits = {
        split: CocoSplit(root / f"{split}2017", root / "annotations" / f"instances_{split}2017.json")
        for split in ("train", "val")
    }
    for split in splits.values():
        if not split.annotations.is_file():
            raise ZooError(f"COCO annotation file not found: {split.annotations} (expected {LAYOUT})")
        if not split.images.is_dir():
            raise ZooError(f"COCO image folder not found: {split.images} (expected {LAYOUT})")
    return splits


@dataclass(frozen=True)
class UnreadableImage:
    """What the dataset returns for an image that fails to decode; the caller decides to skip or stop."""

    path: str
    reason: str


def warn_unreadable(image):
    print(f"warning: skipping {image.path}: cannot decode image ({image.reason})", file=sys.stderr)


class CocoInstances(torch.utils.data.Dataset):
    """One COCO split. Items: (uint8 image (3, H, W), target) where a training target has boxes
    (xyxy), labels (1..K, 0 is background) and masks (N, H, W); a test target has image_id."""

    def __init__(self, split, train):
        self.images = split.images
        self.train = train
        try:
            self.coco = COCO(str(split.annotations))
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as err:  # bad or non-COCO JSON
            raise ZooError(f"cannot read COCO annotations {split.annotations}: {type(err).__name__}: {err}") from err
        self.category_ids = sorted(self.coco.getCatIds())
        self.label_of_category = {category: label for label, category in enumerate(self.category_ids, start=1)}
        image_ids = sorted(self.coco.getImgIds())
        if train:
            image_ids = [i for i in image_ids if self.coco.getAnnIds(imgIds=i, iscrowd=False)]
            if not image_ids:
                raise ZooError(f"{split.annotations} has no image with a non-crowd annotation to train on")
        self.image_ids = image_ids

    def __len__(self):
        return len(self.image_ids)

    def is_landscape(self, index):
        info = self.coco.imgs[self.image_ids[index]]
        return info["width"] > info["height"]

    def __getitem__(self, index):
        image_id = self.image_ids[index]
        path = self.images / self.coco.imgs[image_id]["file_name"]
        try:
            with Image.open(path) as file:
                image = pil_to_tensor(file.convert("RGB"))
        except OSError as err:  # PIL raises OSError subclasses for missing, truncated and unknown files
            detail = "" if str(path) in str(err) else f": {err}"  # PIL's message often repeats the path
            return UnreadableImage(str(path), type(err).__name__ + detail)
        if not self.train:
            return image, {"image_id": image_id}
        target = self.training_target(image_id, image.shape[-2:])
        if torch.rand(()) < 0.5:
            image, target = horizontal_flip(image, target)
        return image, target

    def training_target(self, image_id, image_size):
        height, width = image_size
        annotations = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=False))
        boxes = torch.tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
        boxes[:, 0::2].clamp_(0, width)
        boxes[:, 1::2].clamp_(0, height)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # detectron2 drops empty boxes
        kept = [a for a, k in zip(annotations, keep.tolist()) if k]
        masks = [torch.from_numpy(self.coco.annToMask(a)) for a in kept]
        return {
            "boxes": boxes[keep],
            "labels": torch.tensor([self.label_of_category[a["category_id"]] for a in kept], dtype=torch.int64),
            "masks": torch.stack(masks) if masks else torch.zeros((0, height, width), dtype=torch.uint8),
        }


def horizontal_flip(image, target):
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {**target, "boxes": boxes, "masks": target["masks"].flip(-1)}


class AspectGroupedBatches(Sampler):
    """detectron2's TrainingSampler + AspectRatioGroupedDataset: every rank walks its share of one
    endless sequence of seeded permutations and emits a batch as soon as `batch_size` landscape
    (or portrait) images are collected, so images in a batch pad little."""

    def __init__(self, dataset, batch_size, seed, rank=0, world_size=1):
        if len(dataset) < world_size:
            raise ZooError(f"{len(dataset)} training images cannot feed {world_size} processes")
        self.is_landscape = [dataset.is_landscape(i) for i in range(len(dataset))]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        buckets = defaultdict(list)
        while True:
            permutation = torch.randperm(len(self.is_landscape), generator=generator)
            for index in permutation[self.rank :: self.world_size].tolist():
                bucket = buckets[self.is_landscape[index]]
                bucket.append(index)
                if len(bucket) == self.batch_size:
                    yield bucket.copy()
                    bucket.clear()


def to_model_input(image, device):
    """uint8 (3, H, W) -> float in [0, 1] on `device`; the model normalises it."""
    return image.to(device, non_blocking=True).float().div_(255)


def as_list(batch):
    """collate_fn: keep the samples as a list (images differ in size; the model batches them)."""
    return batch
