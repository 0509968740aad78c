"""The data sets by name (`data.name`): everything the zoo needs to know of each, in one entry.

A new data set is one `register_dataset` call: its builder (split, transform -> a torch Dataset),
its class count, its normalisation statistics and its sizes; every loader, transform and evaluation
reads them from here. Kept apart from zoo.data, which imports torch, so that a command line naming
an unknown data set is refused before those imports (zoo.arguments): the built-in builders are named
as "module:function" and imported when a data set is built.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from zoo.errors import ZooError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    # (source, split, transform) -> a torch Dataset of (image, label); `source` is a zoo.data.datasets.Source
    # (root, download, ...), `split` train (pretraining images) | train_labeled (probe / k-NN bank) | val.
    # A callable, or "module:function" (imported when a data set is built).
    builder: Callable | str
    image_size: int  # default crop size
    mean: tuple
    std: tuple
    num_classes: int | None = None  # None = one class per folder (counted from the built data set)
    eval_resize_ratio: float = 1.0  # eval: resize to size*ratio, then centre-crop
    # torchvision's default bilinear, as the official evaluations; W-MSE's STL-10 resizes 64 -> 70 bicubic
    eval_interpolation: str = "bilinear"
    image_folder: bool = False  # root/train/<class>/* files: what DALI and data.labels=false read

    def build(self, source, split, transform):
        builder = self.builder
        if isinstance(builder, str):
            module, name = builder.split(":")
            builder = getattr(importlib.import_module(module), name)
        return builder(source, split, transform)


def _folder():
    return DatasetInfo("zoo.data.datasets:image_folder", 224, IMAGENET_MEAN, IMAGENET_STD, None, 256 / 224,
                       image_folder=True)


DATASETS = {
    "digits": DatasetInfo("zoo.data.datasets:digits", 16, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 10),
    # The pretraining digits' channel statistics (tests/data/test_digits_m.py computes them from the build).
    "digits_m": DatasetInfo("zoo.data.datasets:digits_m_images", 16, (0.399, 0.320, 0.303), (0.261, 0.211, 0.209), 10),
    "cifar10": DatasetInfo("zoo.data.datasets:cifar10", 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 10),
    "cifar100": DatasetInfo("zoo.data.datasets:cifar100", 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 100),
    "stl10": DatasetInfo("zoo.data.datasets:stl10", 64, (0.43, 0.42, 0.39), (0.27, 0.26, 0.27), 10, 70 / 64, "bicubic"),
    "imagenet": _folder(),
    "imagenet100": _folder(),
    "folder": _folder(),
}


def register_dataset(name, info):
    """Makes `data.name=<name>` build `info`'s data set (a name already taken is refused)."""
    if name in DATASETS:
        raise ZooError(f"data set '{name}' is already registered")
    DATASETS[name] = info
    return info


def dataset_info(name):
    if name not in DATASETS:
        raise ZooError(f"unknown dataset data.name={name} (choose one of {', '.join(DATASETS)})")
    return DATASETS[name]
