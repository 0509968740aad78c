"""Per-stage spectra: the covariance eigenvalues, effective rank and RankMe of each stage of a timm backbone,
read with forward hooks during a forward that runs anyway (the validation pass), so the backbone computes what
it computes.

A stage is a module that timm's feature API names in the model's `feature_info` (what `features_only` and
`forward_intermediates` return), the stem left out: a ResNet's layer1..layer4, a ViT's blocks.0..blocks.{depth-1}.
Its output is reduced to one vector per image as the model's head pools its last one: a convolutional map is
averaged over its positions (global average pooling), a ViT block's tokens give the class token (global_pool
"token") or the mean of the patch tokens (without one, or global_pool "avg"). The vectors are not kept: each
stage accumulates float64 running sums (`zoo.metrics.spectrum.Moments`), from which the covariance eigenvalues
and the singular values follow.
"""

import contextlib

import torch

from zoo.metrics.health import Measure, rankme_of_singular_values
from zoo.metrics.spectrum import Moments, effective_rank

STEM_MODULES = ("conv1", "bn1", "act1", "maxpool", "stem", "patch_embed")  # feature_info entries that are no stage
STAGE_KEYS = ("effective_rank", "rankme")  # logged per stage as stage<i>/<key>


def stage_modules(backbone):
    """[(name, module, channels)] of the backbone's stages, in forward order, from timm's `feature_info`
    ([] for a model without one)."""
    info = getattr(backbone, "feature_info", None)
    entries = info.get_dicts() if hasattr(info, "get_dicts") else (info or [])
    modules = dict(backbone.named_modules())
    found = []
    for entry in entries:
        name = entry.get("module") if isinstance(entry, dict) else None
        if name in modules and name.split(".")[0] not in STEM_MODULES:
            found.append((name, modules[name], entry.get("num_chs")))
    return found


def pool(output, backbone, channels):
    """One (N, C) vector per image of a stage's output, as the model's head pools its last stage; None for an
    output of another shape."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        return None
    if output.dim() == 4:  # NCHW maps (channels_last is a memory layout: the same shape), NHWC ones (Swin)
        return output.mean(dim=(2, 3) if output.shape[1] == channels else (1, 2))
    if output.dim() == 3:  # ViT tokens (N, tokens, D), the prefix (class, register) tokens first
        prefix = getattr(backbone, "num_prefix_tokens", 0)
        if prefix and getattr(backbone, "global_pool", "token") == "token":
            return output[:, 0]
        return output[:, prefix:].mean(dim=1)
    return output if output.dim() == 2 else None


class StageTaps:
    """Running moments of each stage's pooled output over the forwards run inside `recording()` (forward hooks
    exist only there, and only read the outputs).

    Under DDP pass this process's `rank`, the `world` size and the evaluated data set's `total` images: the
    DistributedSampler (no shuffling) deals image i to process i % world and pads the last round with the first
    images again, so this process's j-th image is image j * world + rank, and one at `total` or beyond is padding,
    left out (the gathered features drop it the same way: zoo.train.harness.in_dataset_order)."""

    def __init__(self, backbone, rank=0, world=1, total=None):
        self.backbone = backbone
        self.stages = stage_modules(backbone)
        self.names = [name for name, _, _ in self.stages]
        self.moments = [None] * len(self.stages)
        self.rank, self.world, self.total = rank, world, total
        self.seen = [0] * len(self.stages)  # images this process's forwards gave each stage, padding included

    @contextlib.contextmanager
    def recording(self):
        handles = [module.register_forward_hook(self._hook(index, channels))
                   for index, (_, module, channels) in enumerate(self.stages)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, index, channels):
        def hook(module, inputs, output):
            pooled = pool(output, self.backbone, channels)
            if pooled is None:
                return
            if self.moments[index] is None:
                self.moments[index] = Moments(pooled.shape[1], pooled.device)
            first, self.seen[index] = self.seen[index], self.seen[index] + len(pooled)
            if self.total is not None:
                images = torch.arange(first, first + len(pooled), device=pooled.device) * self.world + self.rank
                pooled = pooled[images < self.total]
            if len(pooled):
                self.moments[index].update(pooled)

        return hook

    def reduced(self, reduce_sum=None):
        """[(name, Moments)] of the stages that saw a forward; `reduce_sum` (a tensor -> its sum over the
        processes, a collective) adds every process's sums."""
        found = [(name, m) for name, m in zip(self.names, self.moments) if m is not None]
        if reduce_sum is not None:
            for _, m in found:
                m.count = int(reduce_sum(torch.tensor(float(m.count), dtype=torch.float64, device=m.total.device)))
                m.total, m.gram = reduce_sum(m.total), reduce_sum(m.gram)
        return found


def stage_measures(moments):
    """The spectra of [(name, Moments)] stages: ({"stage<i>/effective_rank": Measure, "stage<i>/rankme": Measure}
    with i from 1, [eigenvalues of each stage, descending, or None]). Effective rank of the covariance eigenvalues
    as `zoo.metrics.spectrum.effective_rank`, RankMe of the singular values as `zoo.metrics.health.rankme`."""
    measures, spectra = {}, []
    for index, (_, m) in enumerate(moments, start=1):
        eigenvalues, reason = None, None
        if m.count < 2:
            reason = f"{m.count} samples, at least 2 needed"
        elif not (torch.isfinite(m.total).all() and torch.isfinite(m.gram).all()):
            reason = "non-finite values in the embedding"
        if reason is None:
            eigenvalues = m.eigenvalues()
            rank = effective_rank(eigenvalues) if eigenvalues.sum() > 0 else None
            measures[f"stage{index}/effective_rank"] = Measure(rank, None if rank is not None else "all-zero covariance")
            measures[f"stage{index}/rankme"] = rankme_of_singular_values(m.singular_values())
        else:
            measures.update({f"stage{index}/{key}": Measure(None, reason) for key in STAGE_KEYS})
        spectra.append(eigenvalues.cpu() if eigenvalues is not None else None)
    return measures, spectra
