"""MEC's loss: the coding length of the global batch through its Taylor series.

Projector outputs of shape (N, D) in, a scalar out, with `zoo.losses`' conventions: float32 maths also
inside autocast (float64 stays float64), and under torch.distributed every rank passes its local batch
and gets the loss of the global batch, its input gradient world_size x the single-process one (see
`zoo.spectral.gather`). The series itself is `zoo.spectral.log_det_series`.
"""

import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ZooError
from zoo.spectral import float32_math, gather, log_det_series

__all__ = ["mec_lambda", "mec_loss"]


def mec_lambda(dim: int, batch_size: int, eps: float = 64.0) -> float:
    """MEC's lambda = d / (m eps^2) of D-dimensional embeddings and a global batch of m, where ``eps`` is
    the official ``--eps`` (the square of the bound on the expected decoding error, 64)."""
    if dim < 1 or batch_size < 1 or eps <= 0:
        raise ZooError(f"mec_lambda needs dim, batch_size >= 1 and eps > 0, got {dim}, {batch_size}, {eps}")
    return dim / (batch_size * eps)


@float32_math
def mec_loss(target: Tensor, online: Tensor, *, lambda_inverse: float, order: int = 4) -> Tensor:
    """MEC (Liu et al., NeurIPS 2022): minus the coding length of one (target, online) pair of views.

    With P the target's and Z the online branch's L2-normalised embeddings of the global batch of m
    samples, and lambda_inverse = 1 / lambda (the scheduled value, see `mec_lambda`)::

        L = -lambda_inverse / m  tr sum_{k=1}^{order} (-1)^(k+1) (P Z^T / lambda_inverse)^k / k

    the order-``order`` series of -lambda_inverse / m log det(I + lambda P Z^T). The official loss is the
    mean of L over the two (target view, other view) pairs. xinliu20/MEC main_pretrain.py ``loss_func``
    and its call in ``train``.
    """
    if target.ndim != 2 or target.shape != online.shape:
        raise ZooError(f"mec_loss needs target and online embeddings of one shape (N, D), got "
                       f"{tuple(target.shape)} and {tuple(online.shape)}")
    if lambda_inverse <= 0:
        raise ZooError(f"mec_loss needs lambda_inverse > 0, got {lambda_inverse}; see mec_lambda")
    target, online = F.normalize(gather(target), dim=-1), F.normalize(gather(online), dim=-1)
    coding_length = log_det_series(target / lambda_inverse, online, order)
    return -lambda_inverse * coding_length / target.shape[0]
