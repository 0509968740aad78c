"""What the loss modules share: the check of the views, the `(total, parts)` form of `return_parts=True`,
and means over every rank of the global batch."""

import warnings

import torch.distributed.nn.functional as dist_nn
from torch import Tensor

from zoo.errors import ZooError
from zoo.spectral import gather, is_distributed, variance, world_size


def check_views(views: tuple[Tensor, ...], loss: str) -> None:
    if len(views) < 2:
        raise ZooError(f"{loss} needs at least 2 views, got {len(views)}; pass one (N, D) tensor per crop")
    if any(v.ndim != 2 or v.shape != views[0].shape for v in views):
        shapes = [tuple(v.shape) for v in views]
        raise ZooError(f"{loss} needs views of one shape (N, D), got {shapes}; flatten or align the crops")


def total_or_parts(total_and_parts: tuple[Tensor, dict[str, Tensor]], return_parts: bool):
    return total_and_parts if return_parts else total_and_parts[0]


def mean_over_ranks(x: Tensor) -> Tensor:
    """The mean of ``x`` over every rank, with gradients (the backward sums every rank's
    gradient, as `gather`'s does); identity when not distributed."""
    if not is_distributed():
        return x
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.distributed.nn.functional", FutureWarning)
        return dist_nn.all_reduce(x) / world_size()


def global_mean(per_sample: Tensor) -> Tensor:
    """The mean over the global batch of per-sample losses (N_local,), with gradients for every rank."""
    return gather(per_sample).mean()


def feature_std(z: Tensor, eps: float = 1e-4) -> Tensor:
    """VICReg's standard deviation of each feature of z (..., N, D) over the samples: sqrt(Var + eps),
    the variance /(N - 1) (facebookresearch/vicreg main_vicreg.py ``torch.sqrt(x.var(dim=0) + 0.0001)``)."""
    return (variance(z, "batch") + eps).sqrt()
