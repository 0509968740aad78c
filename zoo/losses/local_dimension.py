"""LDReg's term (Huang et al., ICLR 2024, "LDReg: Local Dimensionality Regularized Self-Supervised Learning"): the
local intrinsic dimension (LID) of each representation, estimated from its k nearest neighbours in the batch, pushed
away from 1 (up, in practice) through minus the mean of |log LID|.

The official code: HanxunH/LDReg lid.py `lid_mom_est` (the estimator), losses/ntxent_lid_reg.py `NTXentLIDReg` (SimCLR:
the two views' representations as one batch) and losses/byol_loss.py `BYOLLIDReg` (BYOL: each view on its own, its
neighbours among every view's online and momentum-encoder representations).
"""

import torch
from torch import Tensor

from zoo.names import LIDReduction
from zoo.spectral import float32_math, gather


def lid_mom(data: Tensor, reference: Tensor, k: int) -> Tensor:
    """The method-of-moments LID of each row of `data` (b, D) among the rows of `reference` (R, D), (b,):

        LID_i = m_i / (w_i - m_i),   w_i = the distance of data_i's k-th neighbour, m_i = the mean distance of its
                                     neighbours 1 .. k-1 (the 0-th, data_i itself in `reference`, left out),

    with k = min(k, b - 2) (b: the rows of `data`), the distances torch.cdist's (its default compute mode). As
    lid.py lid_mom_est (HanxunH/LDReg), which the paper's Algorithm 1 gives; `reference` is expected to hold `data`."""
    k = min(k, data.shape[0] - 2)
    distances = torch.cdist(data.flatten(1), reference.flatten(1), p=2).sort(dim=1).values
    mean = distances[:, 1:k].mean(dim=1)
    return mean / (distances[:, k] - mean)


@float32_math
def ldreg_loss(*views: Tensor, k: int, reduction: LIDReduction | str = LIDReduction.joint,
               references: tuple[Tensor, ...] = ()) -> Tensor:
    """LDReg's term: minus the mean |log LID| of the `views`' rows (one (N, D) tensor per crop, with gradients), each
    LID estimated by `lid_mom` among detached reference rows (the code's `reference.detach()`), over the global batch:

      joint (NTXentLIDReg): the views concatenated are the data and the reference; the mean over all their rows;
      per_view (BYOLLIDReg): each view's rows are the data, every view's rows and `references` (e.g. the momentum
        encoder's representations of the same crops, without gradient) the reference; the sum over views of the
        mean over each view's rows.

    k is clamped to the local data rows - 2, as the code does on each GPU. Under torch.distributed the reference is
    every rank's (the code's gather) and the mean runs over every rank's rows: each rank gets the global value, and
    DDP's gradient mean gives each rank's rows the gradient of the official per-GPU mean."""
    reduction = LIDReduction(reduction)
    if reduction == LIDReduction.joint:
        data = torch.cat(views)
        return _mean_log_lid(data, gather(data).detach(), k)
    reference = gather(torch.cat([*views, *references])).detach()
    return sum(_mean_log_lid(view, reference, k) for view in views)


def _mean_log_lid(data, reference, k):
    per_row = -lid_mom(data, reference, k).log().abs()  # reg_type l1 (the code's l2, sqrt(square(.)), is the same)
    return gather(per_row).mean()
