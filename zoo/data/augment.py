"""One augmentation spec for every view, every loader (torchvision and DALI).

A pretraining sample is a list of crops. Crops come in groups (`CropGroup`):
each group has its own size, scale and count, and its own probabilities, so
asymmetric views (INTL's blur 1.0/0.1, solarization 0.0/0.2) are two groups of
one crop, and multi-crop is a few groups with larger counts. Both loaders
build their pipelines from these fields only.
"""

from dataclasses import dataclass, field, replace

import torch
from omegaconf import OmegaConf
from torchvision.transforms import v2 as T

from zoo.errors import ZooError

# The order the ops run in when a group does not say otherwise (INTL, solo-learn).
DEFAULT_ORDER = ["crop", "jitter", "gray", "blur", "solarize", "flip"]
KNOWN_OPS = set(DEFAULT_ORDER)


@dataclass
class CropGroup:
    """`count` crops, each drawn independently with these settings."""

    count: int = 1
    size: int | None = None  # None = data.image_size
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    interpolation: str = "bicubic"
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])
    solarize_p: float = 0.0
    order: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER))


def expand_crops(groups):
    """The crop list of one sample: each group repeated `count` times, in order."""
    return [group for group in groups for _ in range(group.count)]


def as_crop_group(group):
    """A `CropGroup` from a config node (or a `CropGroup` itself)."""
    if isinstance(group, CropGroup):
        return group
    return CropGroup(**OmegaConf.to_container(group, resolve=True))


def with_default_size(groups, size):
    """`CropGroup` copies of `groups` whose missing crop size is `size`."""
    return [replace(as_crop_group(group), size=group.size or size) for group in groups]


def blur_kernel_size(size):
    """Odd kernel of about 10% of the crop, as SimCLR/BYOL (23 px at 224)."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


_INTERPOLATION = {
    "bicubic": T.InterpolationMode.BICUBIC,
    "bilinear": T.InterpolationMode.BILINEAR,
    "nearest": T.InterpolationMode.NEAREST,
}


def interpolation_mode(name):
    try:
        return _INTERPOLATION[name]
    except KeyError:
        raise ZooError(f"unknown interpolation '{name}' (choose one of {', '.join(_INTERPOLATION)})") from None


def check_known_ops(group):
    unknown = set(group.order) - KNOWN_OPS
    if unknown:
        raise ZooError(f"unknown augmentation op(s) {sorted(unknown)} in order (known: {', '.join(DEFAULT_ORDER)})")


def torchvision_view(group, mean, std):
    """A torchvision v2 pipeline for one crop of `group`: uint8 image in, normalised float tensor out."""
    check_known_ops(group)
    ops = {
        "crop": T.RandomResizedCrop(
            group.size,
            scale=tuple(group.scale),
            ratio=tuple(group.ratio),
            interpolation=interpolation_mode(group.interpolation),
            antialias=True,
        ),
        "jitter": T.RandomApply(
            [T.ColorJitter(group.brightness, group.contrast, group.saturation, group.hue)], p=group.jitter_p
        ),
        "gray": T.RandomGrayscale(p=group.gray_p),
        "blur": T.RandomApply([T.GaussianBlur(blur_kernel_size(group.size), sigma=tuple(group.blur_sigma))], p=group.blur_p),
        "solarize": T.RandomSolarize(threshold=128, p=group.solarize_p),
        "flip": T.RandomHorizontalFlip(p=group.flip_p),
    }
    steps = [T.ToImage()] + [ops[name] for name in group.order]
    steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    return T.Compose(steps)


def eval_transform(size, mean, std, resize_ratio=1.0, interpolation="bicubic"):
    """Resize the short side to size*resize_ratio, centre-crop `size` (256/224 on ImageNet)."""
    return T.Compose(
        [
            T.ToImage(),
            T.Resize(round(size * resize_ratio), interpolation=interpolation_mode(interpolation), antialias=True),
            T.CenterCrop(size),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(mean, std),
        ]
    )


class MultiViewTransform:
    """Applies every crop's pipeline to one image: returns a list of tensors in crop order."""

    def __init__(self, groups, mean, std):
        self.views = [torchvision_view(group, mean, std) for group in expand_crops(groups)]

    def __call__(self, image):
        return [view(image) for view in self.views]
