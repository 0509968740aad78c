"""Datasets by name: scikit-learn's digits and digits_m (embedded), torchvision's CIFAR / STL,
and the ImageFolder layout (ImageNet, ImageNet-100, any `folder`)."""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo.catalog import dataset_info
from zoo.data.files import readable_folder_samples
from zoo.errors import ZooError


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
    except OSError as err:  # the download: no network (URLError), a refused or broken connection, a full disk
        if not download:
            raise
        reason = getattr(err, "reason", None) or err.strerror or err
        raise ZooError(f"data.download=true could not fetch {name} into {root} ({reason}): download it where there is "
                       "network and copy it there, then run without data.download") from None


def _folder_dataset(root, split, transform, corrupt_images="skip"):
    from zoo.data.folder import NamingImageFolder

    if root is None:
        raise ZooError("data.root is not set: pass data.root=PATH to a folder with train/<class>/* and val/<class>/*")
    split_dir = Path(root) / split
    if not Path(root).is_dir():
        raise ZooError(f"data root not found: {root} (set data.root=PATH to a folder with train/<class>/* and val/<class>/*)")
    if not split_dir.is_dir():
        raise ZooError(f"wrong folder layout: {split_dir} is missing (expected {root}/train/<class>/* and {root}/val/<class>/*; "
                       "data.labels=false for a folder of unlabelled images)")
    try:
        dataset = NamingImageFolder(str(split_dir), transform, corrupt_images)
    except FileNotFoundError as err:
        raise ZooError(f"wrong folder layout under {split_dir}: {err} (expected {split_dir}/<class>/<image>)") from None
    dataset.samples = dataset.imgs = list(readable_folder_samples(tuple(dataset.samples)))
    dataset.targets = [label for _, label in dataset.samples]
    if not dataset.samples:
        raise ZooError(f"no readable image under {split_dir} (expected {split_dir}/<class>/<image>)")
    return dataset


class UnlabelledImages(Dataset):
    """Every image file under `root` (any layout, sorted paths), each labelled -1, transformed on access."""

    def __init__(self, root, transform):
        from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader

        if not Path(root).is_dir():
            raise ZooError(f"data root not found: {root} (set data.root=PATH to a folder of images)")
        files = sorted(str(p) for p in Path(root).rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
        self.paths = [path for path, _ in readable_folder_samples(tuple((path, -1) for path in files))]
        if not self.paths:
            raise ZooError(f"no readable image under {root} (data.labels=false reads every image file below data.root)")
        self.transform, self.loader = transform, default_loader

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.transform(self.loader(self.paths[index])), -1


def build_dataset(data_cfg, split, transform):
    """`split` is train (pretraining images), train_labeled (probe / k-NN bank) or val."""
    info = dataset_info(data_cfg.name)
    if not data_cfg.get("labels", True):
        if info.kind != "folder":
            raise ZooError(f"data.labels=false is for a folder of images (data.name=folder), not {data_cfg.name}")
        if split != "train":
            raise ZooError(f"data.labels=false: {data_cfg.root} holds no labels to evaluate with; pass "
                           "data.labels=true data.root=PATH (a labelled folder: train/<class>/*, val/<class>/*)")
        return UnlabelledImages(data_cfg.root, transform)
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
