"""The data sets by name (`data.name`) and what the zoo needs to know of each: kept apart from
zoo.data, which imports torch, so that a command line naming an unknown data set is refused
before those imports (zoo.arguments)."""

from dataclasses import dataclass

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
