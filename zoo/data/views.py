"""Augmented views of a fixed subset of the evaluated images: what LiDAR (`zoo.metrics.health.lidar`) needs, n
images x q views of each, which validation (one view per image) does not have.

The views are the training augmentation's (`zoo.data.augment.torchvision_view`) of the largest crop groups (the
global crops; asymmetric groups, e.g. BYOL's blur 1.0 / 0.1, take turns), drawn on the evaluated images as they
are stored, before the evaluation transform. digits_m's training set also puts each view on a fresh background:
its validation images keep their fixed composite, so their views differ by the crop and colour augmentations only.

The same seed gives the same images and the same views at every call: LiDAR of one validation compares with the
next. torchvision's transforms draw from torch's global generator and take no generator of their own, so the views
are drawn under `torch.random.fork_rng` (the global CPU generator saved, seeded, and put back): training's random
stream is the one it would be without them.
"""

import torch

from zoo.data.augment import expand_crops, torchvision_view
from zoo.data.loaders import evaluated_images

# Thilak et al., ICLR 2024 compute LiDAR on n = 1000 images x q = 50 augmentations of each.
PAPER_SAMPLES, PAPER_VIEWS = 1000, 50
CACHE_BYTES = 256 * 2**20  # views up to this size are drawn once and kept (the default run's 16 x 2 at 16 px: 96 kB)


class ManyViews:
    """`views` training views of one image, cycling through the crop groups `groups`: a (views, C, H, W) tensor."""

    def __init__(self, groups, views, mean, std):
        pipelines = [torchvision_view(group, mean, std) for group in groups]
        self.pipelines = [pipelines[index % len(pipelines)] for index in range(views)]

    def __call__(self, image):
        return torch.stack([pipeline(image) for pipeline in self.pipelines])


def global_groups(data):
    """The crop groups of the largest crop size (expanded: one per crop), in crop order."""
    crops = expand_crops(data.views)
    largest = max(crop.size for crop in crops)
    return [crop for crop in crops if crop.size == largest]


class AugmentedViews:
    """`views` training views of each of `samples` evaluated images of `data` (a `zoo.data.DataSpec`), the images
    a seeded random subset (all of them when there are fewer); `batches(size)` yields the views, and `shape` is
    (n, q)."""

    def __init__(self, data, samples, views, seed=0):
        self.data, self.samples, self.views, self.seed = data, int(samples), int(views), int(seed)
        self._dataset = None
        self._cached = None  # the chunks of the first call, when small

    def dataset(self):
        if self._dataset is None:
            self._dataset = evaluated_images(self.data, ManyViews(global_groups(self.data), self.views, self.data.mean,
                                                                  self.data.std), self.seed)
        return self._dataset

    def indices(self):
        count = len(self.dataset())
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(count, generator=generator)[: min(self.samples, count)].sort().values.tolist()

    @property
    def shape(self):
        return len(self.indices()), self.views

    def _draw(self, indices):
        """The views of the images `indices`, (len, q, C, H, W): each image's drawn from its own seed (the run's
        seed and the image's index), so a chunk is the same whichever chunks are drawn before it."""
        with torch.random.fork_rng(devices=[]):
            drawn = []
            for index in indices:
                torch.manual_seed(self.seed * 1_000_003 + index)
                drawn.append(self.dataset()[index][0])
        return torch.stack(drawn)

    def batches(self, size):
        """The (n x q) views in chunks (n_b, q, C, H, W) of about `size` views (at least one image), in order; kept
        after the first call when they take at most `CACHE_BYTES`."""
        if self._cached is not None:
            yield from self._cached
            return
        indices, per_chunk = self.indices(), max(size // self.views, 1)
        kept, kept_bytes = [], 0
        for start in range(0, len(indices), per_chunk):
            chunk = self._draw(indices[start:start + per_chunk])
            kept_bytes += chunk.numel() * chunk.element_size()
            kept = kept + [chunk] if kept is not None and kept_bytes <= CACHE_BYTES else None
            yield chunk
        self._cached = kept
