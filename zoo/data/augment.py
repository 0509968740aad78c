"""One augmentation spec for every view, every loader (torchvision and DALI).

A pretraining sample is a list of crops. Crops come in groups (`zoo.config.CropGroup`):
each group has its own size, scale and count, and its own probabilities, so
asymmetric views (INTL's blur 1.0/0.1, solarization 0.0/0.2) are two groups of
one crop, and multi-crop is a few groups with larger counts. Both loaders
build their pipelines from these fields only.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageFilter
from torchvision import tv_tensors
from torchvision.transforms import v2 as T

from zoo.config import DEFAULT_ORDER, CropGroup
from zoo.errors import ZooError
from zoo.names import Interpolation, not_one_of

KNOWN_OPS = set(DEFAULT_ORDER)


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


# ---------------------------------------------------------------- Gaussian blur: Pillow's, at every crop size
#
# The official pipelines (INTL, W-MSE, solo-learn, facebookresearch/{barlowtwins,vicreg,simsiam})
# blur the crop with PIL's ImageFilter.GaussianBlur(radius=sigma), sigma ~ U(0.1, 2.0), whatever the
# crop size. Pillow does not convolve with a sampled Gaussian: per axis it runs three "extended" box
# filters (libImaging/BoxBlur.c, after Gwosdek et al., SSVM 2011), 2r+1 full taps plus one fractional
# tap at each end, sized so that the three boxes' variance is exactly sigma^2; weights in 24-bit fixed
# point, uint8 rounding and clamped (edge-repeating) borders after every pass. Its support at sigma 2
# is 13 px (a 3 px SimCLR-style window at 32 px capped sigma near 0.8). The torchvision path calls
# Pillow itself (exact, and faster than a torch convolution); the DALI path runs the same six box
# passes with `box_blur_taps` (within 1-2 grey levels: float32 ties).

BLUR_PASSES = 3  # box passes per axis in Pillow's GaussianBlur
_FIXED_ONE = float(1 << 24)  # Pillow's box weights are 24-bit fixed point


def box_blur_radius(sigma, sqrt=math.sqrt, floor=math.floor):
    """Pillow's fractional box radius r + f for GaussianBlur(radius=sigma) (`_gaussian_blur_radius`).

    `sqrt` and `floor` let the DALI graph evaluate the same formula on its per-sample sigmas."""
    variance = sigma * sigma / BLUR_PASSES
    whole = floor((sqrt(12.0 * variance + 1.0) - 1.0) / 2.0)
    fraction = (2.0 * whole + 1.0) * (whole * (whole + 1.0) - 3.0 * variance)
    return whole + fraction / (6.0 * (variance - (whole + 1.0) * (whole + 1.0)))


def box_blur_taps(sigma, distances, sqrt=math.sqrt, floor=math.floor, clamp=np.clip):
    """The weights of one of Pillow's box passes at `distances` (|offset|, floats) from the centre.

    Pillow's fixed-point weights as fractions: 2r+1 taps of floor(2^24 / (2(r+f)+1)), the rest of 2^24
    split between the two taps at distance r+1, zero beyond. `sqrt`, `floor` and `clamp` as numpy's
    (the default) or `nvidia.dali.math`'s."""
    radius = box_blur_radius(sigma, sqrt, floor)
    whole = floor(radius)
    inner = floor(_FIXED_ONE / (2.0 * radius + 1.0))
    end = floor((_FIXED_ONE - (2.0 * whole + 1.0) * inner) / 2.0)
    is_inner = clamp(whole + 1.0 - distances, 0.0, 1.0)
    is_end = clamp(whole + 2.0 - distances, 0.0, 1.0) - is_inner
    return (is_inner * inner + is_end * end) / _FIXED_ONE


def box_blur_width(sigma_max):
    """Taps of one box pass wide enough for every sigma up to `sigma_max` (5 at sigma 2)."""
    return 2 * math.floor(box_blur_radius(sigma_max)) + 3


def blur_sigma_range(group):
    low, high = (float(s) for s in group.blur_sigma)
    if not 0 <= low <= high:
        raise ZooError(f"blur_sigma must be [low, high] with 0 <= low <= high, got {list(group.blur_sigma)}")
    return low, high


@dataclass(frozen=True)
class AppliedBlur:
    """The blur a crop of one group gets in training (both loaders)."""

    size: int  # the crop size it runs at
    p: float  # probability per crop
    sigma: tuple[float, float]  # the range each crop's sigma (Pillow's radius) is drawn from
    effective_sigma: tuple[float, float]  # std of the blur's response at the two ends of that range
    box_width: int  # taps of each box pass at the top of the range (DALI's fn.filter)
    window: int  # support of the whole response (three boxes) at the top of the range, px


def applied_blur(group):
    """What `group`'s blur does at its crop size: Pillow's GaussianBlur at every size, so the
    effective sigma is the requested one (a crop smaller than `window` clamps the tails at its
    borders, as Pillow does)."""
    if group.size is None:
        raise ZooError("applied_blur needs the group's crop size (see with_default_size)")
    low, high = blur_sigma_range(group)
    width = box_blur_width(high)
    distances = np.abs(np.arange(width) - width // 2).astype(np.float64)

    def response_std(sigma):
        box = box_blur_taps(sigma, distances, np.sqrt, np.floor, np.clip)
        response = np.convolve(np.convolve(box, box), box)
        offsets = np.arange(len(response)) - len(response) // 2
        return float(np.sqrt((response * offsets**2).sum() / response.sum()))

    return AppliedBlur(
        size=group.size,
        p=group.blur_p,
        sigma=(low, high),
        effective_sigma=(response_std(low), response_std(high)),
        box_width=width,
        window=BLUR_PASSES * (width - 1) + 1,
    )


class PILGaussianBlur(T.Transform):
    """Pillow's ImageFilter.GaussianBlur(radius=sigma), sigma ~ U(low, high) per call, on uint8 images."""

    def __init__(self, sigma):
        super().__init__()
        self.sigma = tuple(float(s) for s in sigma)

    def make_params(self, flat_inputs):
        return {"sigma": torch.empty(1).uniform_(*self.sigma).item()}

    def transform(self, inpt, params):
        blur = ImageFilter.GaussianBlur(radius=params["sigma"])
        if isinstance(inpt, Image.Image):
            return inpt.filter(blur)
        if isinstance(inpt, tv_tensors.TVTensor) and not isinstance(inpt, tv_tensors.Image):
            return inpt  # boxes, masks: not blurred
        if inpt.dtype != torch.uint8 or inpt.ndim != 3 or inpt.shape[0] not in (1, 3):
            raise ZooError(f"blur takes uint8 images of 1 or 3 channels (CHW), got {inpt.dtype} {tuple(inpt.shape)}")
        pixels = inpt.as_subclass(torch.Tensor).permute(1, 2, 0).squeeze(-1).contiguous().numpy()
        blurred = torch.from_numpy(np.array(Image.fromarray(pixels).filter(blur)))
        blurred = blurred.reshape(*inpt.shape[1:], inpt.shape[0]).permute(2, 0, 1)
        return tv_tensors.wrap(blurred, like=inpt) if isinstance(inpt, tv_tensors.Image) else blurred


_INTERPOLATION = {
    Interpolation.bicubic: T.InterpolationMode.BICUBIC,
    Interpolation.bilinear: T.InterpolationMode.BILINEAR,
    Interpolation.nearest: T.InterpolationMode.NEAREST,
}


def interpolation_mode(name):
    """torchvision's mode of a zoo.names.Interpolation (a config's crop groups hold one; a data set's catalog entry
    and a crop group built in code, its string)."""
    try:
        return _INTERPOLATION[name]
    except KeyError:
        raise ZooError(not_one_of("interpolation", name, Interpolation)) from None


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
        "blur": T.RandomApply([PILGaussianBlur(blur_sigma_range(group))], p=group.blur_p),
        "solarize": T.RandomSolarize(threshold=128, p=group.solarize_p),
        "flip": T.RandomHorizontalFlip(p=group.flip_p),
    }
    steps = [T.ToImage()] + [ops[name] for name in group.order]
    steps += [T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)]
    return T.Compose(steps)


def eval_transform(size, mean, std, resize_ratio=1.0, interpolation="bilinear"):
    """Resize the short side to size*resize_ratio, centre-crop `size` (256/224 on ImageNet).

    Bilinear, torchvision's default, as every official evaluation (INTL evaluate.py, CW-RGP
    lincls.py, the FB probes, solo-learn) resizes its validation images."""
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
