"""The data sets' builders (registered in zoo.catalog): scikit-learn's digits and digits_m
(embedded), torchvision's CIFAR / STL, and the ImageFolder layout (ImageNet,
ImageNet-100, any `folder`); and `build_dataset`, which every loader builds its images with."""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from zoo.catalog import dataset_info
from zoo.data import digits_m
from zoo.data.digits_m import digits_split
from zoo.data.files import readable_folder_samples
from zoo.data.folder import NamingImageFolder
from zoo.errors import ZooError


@dataclass(frozen=True)
class Source:
    """Which images a data set reads and how: what a builder gets besides the split and the transform."""

    name: str  # its catalog name
    root: str | None = None
    download: bool = False  # torchvision data sets: fetch into root when missing
    corrupt_images: str = "skip"  # an image that cannot be decoded: skip (with a warning) | stop
    test_fraction: float = 0.25  # digits, digits_m: the fixed seeded split
    labels: bool = True  # false: every image under root, unlabelled (image-folder data sets only)


class ImageTensors(Dataset):
    """In-memory uint8 images (N, 3, H, W) with labels, transformed on access."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(self.images[index]), int(self.labels[index])


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


def digits(source, split, transform):
    train, test = load_digits_split(32, source.test_fraction)
    images, labels = test if split == "val" else train
    return ImageTensors(images, labels, transform)


def digits_m_images(source, split, transform):
    """digits_m (zoo.data.digits_m): fresh backgrounds for pretraining, the fixed composites otherwise."""
    arrays = digits_m.load(source.root, test_fraction=source.test_fraction)
    if split == "train":
        return digits_m.FreshBackgrounds(arrays, transform)
    images, labels = digits_m.evaluation_images(arrays, "val" if split == "val" else "train")
    return ImageTensors(torch.from_numpy(images), torch.from_numpy(labels), transform)


def cifar10(source, split, transform):
    return _torchvision_dataset("cifar10", source.root, "test" if split == "val" else "train", transform, source.download)


def cifar100(source, split, transform):
    return _torchvision_dataset("cifar100", source.root, "test" if split == "val" else "train", transform, source.download)


def stl10(source, split, transform):
    stl_split = {"train": "train+unlabeled", "train_labeled": "train", "val": "test"}[split]
    return _torchvision_dataset("stl10", source.root, stl_split, transform, source.download)


def image_folder(source, split, transform):
    return _folder_dataset(source.root, "val" if split == "val" else "train", transform, source.corrupt_images)


def build_dataset(source, split, transform):
    """The images of `source` (a `Source`) for `split`: train (pretraining images), train_labeled (probe /
    k-NN bank) or val, each item transformed by `transform`."""
    info = dataset_info(source.name)
    if not source.labels:
        if not info.image_folder:
            raise ZooError(f"data.labels=false is for a folder of images (data.name=folder), not {source.name}")
        if split != "train":
            raise ZooError(f"data.labels=false: {source.root} holds no labels to evaluate with; pass "
                           "data.labels=true data.root=PATH (a labelled folder: train/<class>/*, val/<class>/*)")
        return UnlabelledImages(source.root, transform)
    return info.build(source, split, transform)


def class_count(source, dataset):
    """The catalog's class count of `source`, else (one class per folder) the classes of `dataset`."""
    known = dataset_info(source.name).num_classes
    if known is not None:
        return known
    classes = getattr(dataset, "classes", None)
    if classes is not None:
        return len(classes)
    return int(torch.as_tensor(dataset.labels).max()) + 1


def training_files(source):
    """(paths, labels) of an image-folder data set's train split: torchvision's class order, unreadable
    files left out (what the DALI loader reads)."""
    paths, labels = zip(*build_dataset(source, "train", transform=None).samples)  # never empty: _folder_dataset checks
    return list(paths), list(labels)
