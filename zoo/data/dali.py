"""The pretraining loader on NVIDIA DALI, built from the same `CropGroup` spec as
the torchvision path (`zoo.data.augment`).

JPEGs are decoded on the GPU (nvJPEG, DALI's "mixed" backend) when CUDA is
available and by DALI's own CPU threads otherwise, once per image; each crop
is cut from the decoded image and the ops after the crop run at crop size.
Each op's probability is drawn per sample and per crop with DALI conditionals,
so the samples that skip an op skip its work too.

Where DALI differs from torchvision (same augmentation family, not bit-identical):
- colour jitter runs brightness, contrast, saturation, hue in that fixed order
  (torchvision shuffles the four), and hue rotates colours about the grey axis
  instead of shifting the HSV hue;
- the flip always happens in the final normalisation: a horizontal mirror
  commutes with the colour ops and the symmetric blur, and the random crop
  window is mirror-symmetric in distribution, so its place in `order` does not
  change what the model sees.
"""

import re
from functools import partial

import numpy as np
import torch
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali import math as dali_math
from nvidia.dali.plugin.pytorch import DALIGenericIterator
from torchvision.transforms import InterpolationMode

from zoo.data.augment import blur_sigma_range, box_blur_taps, box_blur_width, check_known_ops, expand_crops, interpolation_mode
from zoo.data.files import corrupt_image, undecodable
from zoo.errors import ZooError

_DALI_INTERPOLATION = {
    InterpolationMode.BICUBIC: types.INTERP_CUBIC,
    InterpolationMode.BILINEAR: types.INTERP_LINEAR,
    InterpolationMode.NEAREST: types.INTERP_NN,
}
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, as torchvision's rgb_to_grayscale
_SOLARIZED = [value if value < 128 else 255 - value for value in range(256)]  # torchvision: threshold 128 on uint8

# ---------------------------------------------------------------- augmentation ops (inside the DALI graph)


def _uniform(low, high):
    """A per-sample draw from [low, high]; DALI rejects an empty range, so a point is drawn from {low}."""
    return fn.random.uniform(range=[low, high]) if high > low else fn.random.uniform(values=[float(low)])


def _factor(strength):
    """A factor drawn from [max(0, 1 - s), 1 + s], torchvision's ColorJitter range."""
    return _uniform(max(0.0, 1.0 - strength), 1.0 + strength)


def _mean_luma(images):
    """Per-sample mean grey level: the point torchvision's contrast scales about."""
    channel_mean = fn.reductions.mean(images, axes=[0, 1])
    return sum(weight * channel_mean[channel] for channel, weight in enumerate(_LUMA_WEIGHTS))


def _color_jitter(images, group):
    if group.brightness or group.contrast:
        # DALI computes brightness * (centre + contrast * (x - centre)), which equals
        # torchvision's brightness-then-contrast when the centre is the input's mean grey.
        images = fn.brightness_contrast(
            images,
            brightness=_factor(group.brightness),
            contrast=_factor(group.contrast),
            contrast_center=_mean_luma(images).cpu(),  # argument inputs live on the CPU
        )
    if group.saturation or group.hue:
        hue_degrees = 360.0 * group.hue  # torchvision's hue is a fraction of the colour circle
        images = fn.hsv(images, saturation=_factor(group.saturation), hue=_uniform(-hue_degrees, hue_degrees))
    return images


def _grayscale(images, _group):
    # ITU-R 601 luma in all three channels, as torchvision's RandomGrayscale.
    luma = fn.color_space_conversion(images, image_type=types.RGB, output_type=types.GRAY)
    return fn.cat(luma, luma, luma, axis=2)


def _gaussian_blur(images, group):
    """Pillow's GaussianBlur(radius=sigma), sigma drawn per sample, as the torchvision path (`zoo.data.augment`).

    Pillow's three box passes per axis, rows first, each a 1-D `fn.filter` of `box_blur_width` taps
    with Pillow's fixed-point weights, clamped borders and uint8 rounding after every pass: within
    1-2 grey levels of Pillow (float32 ties), its effective sigma at every crop size.
    """
    width = box_blur_width(blur_sigma_range(group)[1])
    distances = types.Constant(np.abs(np.arange(width, dtype=np.float32) - width // 2))
    sigma = _uniform(*group.blur_sigma)
    taps = box_blur_taps(sigma, distances, sqrt=dali_math.sqrt, floor=dali_math.floor, clamp=dali_math.clamp)
    row, column = fn.reshape(taps, shape=[1, width]), fn.reshape(taps, shape=[width, 1])
    if images.device == "gpu":  # a GPU operator takes its regular inputs from the GPU
        row, column = row.gpu(), column.gpu()
    for kernel in (row, row, row, column, column, column):
        images = fn.filter(images, kernel, border="clamp")
    return images


def _solarize(images, _group):
    return fn.lookup_table(images, keys=list(range(256)), values=_SOLARIZED, dtype=types.UINT8)


# op name -> (function of the images and the group, the group field that holds its probability)
_RANDOM_OPS = {
    "jitter": (_color_jitter, "jitter_p"),
    "gray": (_grayscale, "gray_p"),
    "blur": (_gaussian_blur, "blur_p"),
    "solarize": (_solarize, "solarize_p"),
}


def _random_op(name, images, group):
    """Op `name` of `group` on a random fraction of the samples (its probability); the others skip its work."""
    op, probability_field = _RANDOM_OPS[name]
    p = getattr(group, probability_field)
    if p <= 0:
        return images
    if p >= 1:
        return op(images, group)
    if fn.random.coin_flip(probability=p, dtype=types.BOOL):  # a DALI conditional: splits the batch
        images = op(images, group)
    return images


def check_order(group):
    """One-line error for orders DALI cannot run: unknown ops or no crop (DALI batches fixed sizes)."""
    check_known_ops(group)
    if group.order.count("crop") != 1:
        raise ZooError(f"data.loader=dali needs exactly one 'crop' in every group's order, got {list(group.order)}")


def _view(decoded, group, mean, std):
    """One crop of `group`: augmented in the group's order, flipped and normalised (float CHW)."""
    interpolation = _DALI_INTERPOLATION[interpolation_mode(group.interpolation)]
    images = decoded
    for name in group.order:
        if name == "crop":
            images = fn.random_resized_crop(
                images,
                size=[group.size, group.size],
                random_area=list(group.scale),
                random_aspect_ratio=list(group.ratio),
                interp_type=interpolation,
            )
        elif name != "flip":  # the flip happens in crop_mirror_normalize below
            images = _random_op(name, images, group)
    mirror = fn.random.coin_flip(probability=group.flip_p) if group.flip_p > 0 else 0
    return fn.crop_mirror_normalize(
        images,
        dtype=types.FLOAT,
        output_layout="CHW",
        mean=[255.0 * m for m in mean],
        std=[255.0 * s for s in std],
        mirror=mirror,
    )


@pipeline_def(enable_conditionals=True)
def _training_pipeline(paths, labels, crops, mean, std, shard_id, num_shards, shuffle_seed, decoder):
    encoded, label = fn.readers.file(
        files=paths,
        labels=labels,
        shard_id=shard_id,
        num_shards=num_shards,
        # A fresh global permutation every epoch, the same on every rank, so shards stay disjoint;
        # padding keeps every rank's reader epoch the same length, so the ranks stay in step.
        shuffle_after_epoch=True,
        shuffle_after_epoch_seed=shuffle_seed,
        pad_last_batch=True,
        name="Reader",
    )
    # One decode per image, shared by its crops: with two or more crops this beats decoding
    # each crop's window separately (image_random_crop), and any op may come before the crop.
    decoded = fn.decoders.image(encoded, device=decoder, output_type=types.RGB)
    views = [_view(decoded, group, mean, std) for group in crops]
    return (*views, label)


# ---------------------------------------------------------------- the loader


def _decode_error(err, root):
    """A one-line `ZooError` for a decode failure inside DALI whose file no search found, else None."""
    text = str(err)
    if "fn.decoders." not in text:
        return None
    reason = re.search(r"encountered:\s*(.+)", text)
    detail = f" ({reason.group(1).strip()})" if reason else ""
    return ZooError(f"DALI cannot decode an image under {root}/train{detail}, and PIL decodes every file there: "
                    "check the images DALI's decoder rejects (or use data.loader=torchvision)")


def _built_pipeline(paths, labels, crops, mean, std, seed, shard_id, num_shards, batch_size, num_threads):
    """The training pipeline on this process's current GPU (DALI's CPU backend without CUDA), built."""
    gpu = torch.cuda.is_available()
    pipeline = _training_pipeline(
        paths,
        labels,
        crops,
        mean,
        std,
        shard_id,
        num_shards,
        shuffle_seed=seed,
        decoder="mixed" if gpu else "cpu",
        batch_size=batch_size,
        num_threads=num_threads,
        device_id=torch.cuda.current_device() if gpu else None,
        seed=seed * num_shards + shard_id,  # augmentations differ across ranks
    )
    pipeline.build()
    return pipeline


class DaliTrainLoader:
    """Yields `(crops, labels)` for `len(self)` batches per `iter()`, from an endless DALI stream.

    Every `iter()` is a fresh epoch of the same length on every rank. The reader
    never restarts: the rest of an epoch that Lightning abandons (max_steps,
    limit_train_batches, a resumed run) is simply where the next one starts.
    The pipeline is built on the first `iter()`, once Lightning has picked this
    process's GPU (until then the loader is plain data, so it also pickles).

    DALI's decode failures do not say which file failed: on one, every file of the list is decoded
    (PIL) to find the ones that fail, each named (data.corrupt_images: stop at the first, or skip them
    all with a warning each and go on with a pipeline built without them). Under DDP a process rebuilds its
    pipeline when its own shard meets the file, so until every process has, the shards may overlap a little.
    """

    def __init__(self, make_pipeline, paths, labels, num_crops, batches_per_epoch, root, corrupt_images="stop"):
        self.make_pipeline = make_pipeline  # (paths, labels) -> a built pipeline
        self.paths, self.labels = paths, labels
        self.num_crops = num_crops
        self.batches_per_epoch = batches_per_epoch
        self.root = root
        self.corrupt_images = corrupt_images
        self._stream = None

    def __len__(self):
        return self.batches_per_epoch

    def _start(self):
        outputs = [f"crop{index}" for index in range(self.num_crops)] + ["label"]
        self._stream = DALIGenericIterator(self.make_pipeline(self.paths, self.labels), output_map=outputs,
                                           prepare_first_batch=False)

    def __iter__(self):
        if self._stream is None:
            self._start()
        for _ in range(self.batches_per_epoch):
            batch = self._next_batch()
            crops = [batch[f"crop{index}"] for index in range(self.num_crops)]
            yield crops, batch["label"].squeeze(-1).long().to(crops[0].device)

    def _next_batch(self):
        try:
            return next(self._stream)[0]
        except RuntimeError as err:
            user_error = _decode_error(err, self.root)
            if not user_error:
                raise
            bad = undecodable(self.paths)
            if not bad:
                raise user_error from None
            for path, reason in bad.items():
                corrupt_image(path, reason, self.corrupt_images)  # stop: raises at the first
            kept = [index for index, path in enumerate(self.paths) if path not in bad]
            self.paths, self.labels = [self.paths[i] for i in kept], [self.labels[i] for i in kept]
            self._start()
            return self._next_batch()


def build_dali_train_loader(paths, labels, views, mean, std, *, batch_size, num_threads, root, corrupt_images="stop",
                            seed=0, shard_id=0, num_shards=1):
    """The pretraining loader on DALI (see the module docstring) of the image files `paths` with their
    `labels` (under `root`, named in messages): each image cut into the crops of `views` (CropGroups),
    normalised by `mean` / `std` (0-1 units); `batch_size` per process, `num_threads` DALI threads,
    this process's shard `shard_id` of `num_shards`; `corrupt_images`: skip | stop at an image DALI
    cannot decode."""
    for group in views:
        check_order(group)
        interpolation_mode(group.interpolation)  # a one-line error now, not inside the graph later
    batches_per_epoch = len(paths) // num_shards // batch_size  # the smallest shard, remainder dropped
    if batches_per_epoch == 0:
        raise ZooError(
            f"{len(paths)} training images over {num_shards} device(s) make less than one batch of "
            f"data.batch_size={batch_size} per device: lower data.batch_size"
        )
    crops = expand_crops(views)
    make_pipeline = partial(
        _built_pipeline,
        crops=crops,
        mean=list(mean),
        std=list(std),
        seed=seed,
        shard_id=shard_id,
        num_shards=num_shards,
        batch_size=batch_size,
        num_threads=num_threads,
    )
    return DaliTrainLoader(make_pipeline, list(paths), list(labels), len(crops), batches_per_epoch, root, corrupt_images)
