"""Datasets by name: scikit-learn's digits and digits_m (embedded), torchvision's CIFAR / STL,
and the ImageFolder layout (ImageNet, ImageNet-100, any `folder`)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.data.files import readable_folder_samples
from zoo.errors import ZooError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    kind: str  # digits | digits_m | cifar10 | cifar100 | stl10 | folder
    image_size: int  # default crop size
    mean: tuple
    std: tuple
    num_classes: int | None = None  # None = one class per folder
    eval_resize_ratio: float = 1.0  # eval: resize to size*ratio, then centre-crop
    # torchvision's default bilinear, as the official evaluations; W-MSE's STL-10 resizes 64 -> 70 bicubic
    eval_interpolation: str = "bilinear"


DATASETS = {
    "digits": DatasetInfo("digits", 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 10),
    # The training images' channel statistics (tests/test_digits_m.py computes them from the build).
    "digits_m": DatasetInfo("digits_m", 16, (0.399, 0.320, 0.303), (0.261, 0.211, 0.209), 10),
    "cifar10": DatasetInfo("cifar10", 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 10),
    "cifar100": DatasetInfo("cifar100", 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 100),
    "stl10": DatasetInfo("stl10", 64, (0.43, 0.42, 0.39), (0.27, 0.26, 0.27), 10, 70 / 64, "bicubic"),
    "imagenet": DatasetInfo("folder", 224, IMAGENET_MEAN, IMAGENET_STD, None, 256 / 224),
    "imagenet100": DatasetInfo("folder", 224, IMAGENET_MEAN, IMAGENET_STD, None, 256 / 224),
    "folder": DatasetInfo("folder", 224, IMAGENET_MEAN, IMAGENET_STD, None, 256 / 224),
}


def dataset_info(name):
    if name not in DATASETS:
        raise ZooError(f"unknown dataset data.name={name} (choose one of {', '.join(DATASETS)})")
    return DATASETS[name]


class ImageTensors(Dataset):
    """In-memory uint8 images (N, 3, H, W) with labels, transformed on access."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(self.images[index]), int(self.labels[index])


def digits_split(test_fraction, seed=0):
    """scikit-learn's digits and their fixed stratified split: (the digits, train indices, test indices)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    train_idx, test_idx = train_test_split(np.arange(len(digits.target)), test_size=test_fraction, random_state=seed,
                                           stratify=digits.target)
    return digits, train_idx, test_idx


def load_digits_split(image_size, test_fraction, seed=0):
    """scikit-learn's 8x8 digits as RGB uint8 images of `image_size`, split with a fixed seed."""
    digits, train_idx, test_idx = digits_split(test_fraction, seed)
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # values are 0..16
    images = torch.nn.functional.interpolate(images, size=image_size, mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(digits.target)
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])


def _torchvision_dataset(name, root, split, transform, download):
    from torchvision import datasets

    if root is None:
        raise ZooError(f"data.root is not set: pass data.root=PATH for {name} (add data.download=true to fetch it there)")
    try:
        if name == "stl10":
            return datasets.STL10(root, split=split, transform=transform, download=download)
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        return cls(root, train=split == "train", transform=transform, download=download)
    except RuntimeError as err:
        if "not found" in str(err).lower() or "corrupted" in str(err).lower():
            raise ZooError(f"{name} not found under data.root={root} (add data.download=true to fetch it there)") from None
        raise


def _folder_dataset(root, split, transform, corrupt_images="skip"):
    from zoo.data.files import CORRUPT_IMAGES
    from zoo.data.folder import NamingImageFolder

    if corrupt_images not in CORRUPT_IMAGES:
        raise ZooError(f"data.corrupt_images must be {' or '.join(CORRUPT_IMAGES)}, not '{corrupt_images}'")
    if root is None:
        raise ZooError("data.root is not set: pass data.root=PATH to a folder with train/<class>/* and val/<class>/*")
    split_dir = Path(root) / split
    if not Path(root).is_dir():
        raise ZooError(f"data root not found: {root} (set data.root=PATH to a folder with train/<class>/* and val/<class>/*)")
    if not split_dir.is_dir():
        raise ZooError(f"wrong folder layout: {split_dir} is missing (expected {root}/train/<class>/* and {root}/val/<class>/*)")
    try:
        dataset = NamingImageFolder(str(split_dir), transform, corrupt_images)
    except FileNotFoundError as err:
        raise ZooError(f"wrong folder layout under {split_dir}: {err} (expected {split_dir}/<class>/<image>)") from None
    dataset.samples = dataset.imgs = list(readable_folder_samples(tuple(dataset.samples)))
    dataset.targets = [label for _, label in dataset.samples]
    if not dataset.samples:
        raise ZooError(f"no readable image under {split_dir} (expected {split_dir}/<class>/<image>)")
    return dataset


def build_dataset(data_cfg, split, transform):
    """`split` is train (pretraining images), train_labeled (probe / k-NN bank) or val."""
    info = dataset_info(data_cfg.name)
    if info.kind == "digits":
        train, test = load_digits_split(32, data_cfg.digits_test_fraction)
        images, labels = test if split == "val" else train
        return ImageTensors(images, labels, transform)
    if info.kind == "digits_m":
        from zoo.data import digits_m

        arrays = digits_m.load(data_cfg.root, test_fraction=data_cfg.digits_test_fraction)
        if split == "train":
            return digits_m.FreshBackgrounds(arrays, transform)
        prefix = "val" if split == "val" else "train"
        return ImageTensors(torch.from_numpy(arrays[f"{prefix}_images"]), torch.from_numpy(arrays[f"{prefix}_labels"]), transform)
    if info.kind == "folder":
        return _folder_dataset(data_cfg.root, "val" if split == "val" else "train", transform, data_cfg.corrupt_images)
    if info.kind == "stl10":
        stl_split = {"train": "train+unlabeled", "train_labeled": "train", "val": "test"}[split]
        return _torchvision_dataset("stl10", data_cfg.root, stl_split, transform, data_cfg.download)
    return _torchvision_dataset(info.kind, data_cfg.root, "test" if split == "val" else "train", transform, data_cfg.download)


def num_classes(dataset):
    classes = getattr(dataset, "classes", None)
    if classes is not None:
        return len(classes)
    return int(torch.as_tensor(dataset.labels).max()) + 1
