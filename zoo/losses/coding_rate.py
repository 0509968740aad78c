"""The coding-rate losses: MEC's coding length of the global batch through its Taylor series, and EMP-SSL's
total coding rate of each patch's embeddings, exact.

Projector outputs of shape (N, D) in, a scalar out, with `zoo.losses`' conventions: float32 maths also
inside autocast (float64 stays float64), and under torch.distributed every rank passes its local batch
and gets the loss of the global batch, its input gradient world_size x the single-process one (see
`zoo.spectral.gather`). MEC's series is `zoo.spectral.log_det_series`, the total coding rate's
log-determinant `zoo.spectral.log_det`.

The two are not one formula. MEC's is -lambda^-1 / m log det(I + lambda P Z^T) of two views, lambda =
d / (m eps) with eps = 64, through its order-4 series; EMP-SSL's is -1/2 log det(I + d / (m eps) Z^T Z) of
one view, eps = 0.2, exact, without the 1 / m scaling and with the factor 1/2 (MCR2's R(Z)).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ZooError
from zoo.losses.shared import check_views, total_or_parts
from zoo.spectral import float32_math, gather, log_det, log_det_series

__all__ = ["emp_ssl_loss", "mec_lambda", "mec_loss", "total_coding_rate"]


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


@float32_math
def total_coding_rate(z: Tensor, eps: float = 0.2) -> Tensor:
    """The total coding rate of each batch of embeddings z (..., N, D) -> (...) (Ma et al., MCR2; Tong et al., EMP-SSL)::

        R(Z) = 1/2 log det(I_D + D / (N eps) Z^T Z)

    ``eps`` is the official ``--eps``, the square of the paper's epsilon (the allowed distortion). Computed on
    the smaller Gram matrix, Z Z^T (N x N) when N < D (Sylvester's determinant identity: the same number; the
    official code always takes the D x D one). No gather: `emp_ssl_loss` passes the global batch.
    tsb0601/EMP-SSL loss.py ``TotalCodingRate.compute_discrimn_loss`` (its forward returns -R).
    """
    if z.ndim < 2 or eps <= 0:
        raise ZooError(f"total_coding_rate needs embeddings (..., N, D) and eps > 0, got {tuple(z.shape)}, {eps}")
    n, d = z.shape[-2:]
    gram = z @ z.mT if n < d else z.mT @ z
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    return log_det(eye + (d / (n * eps)) * gram) / 2


@float32_math
def emp_ssl_loss(
    *patches: Tensor, patch_sim: float = 200.0, tcr: float = 1.0, eps: float = 0.2, return_parts: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """EMP-SSL (Tong, Chen, Ma and LeCun, 2023): each patch's invariance to its image's mean embedding, and the
    total coding rate of each patch's embeddings.

    With z_{v,i} the L2-normalised projection of patch v of image i (n patches, the global batch of N images),
    zbar_i = 1/n sum_v z_{v,i} (not normalised; the cosine normalises it) and R the total coding rate
    (`total_coding_rate`, ``eps``)::

        L = -patch_sim 1/n sum_v mean_i cos(z_{v,i}, zbar_i) - tcr 1/n sum_v R(Z_v)

    The gradient flows through zbar too (no stop-gradient). ``return_parts=True``: also ``{"invariance": -patch_sim
    x mean cosine, "tcr": -tcr x mean R}`` (they sum to L). tsb0601/EMP-SSL main.py ``main`` (the loss lines),
    ``Similarity_Loss``, ``cal_TCR``, ``chunk_avg``; loss.py ``TotalCodingRate``; model/model.py (the normalised
    output). Its DataParallel loss sees the whole batch, as the gathered global batch here.
    """
    check_views(patches, "emp_ssl_loss")
    z = F.normalize(gather(torch.stack(patches), dim=1), dim=-1)  # (patches, N_global, D)
    mean = z.mean(dim=0, keepdim=True).expand_as(z)
    cosine = F.cosine_similarity(z, mean, dim=-1).mean()
    rate = total_coding_rate(z, eps).mean()
    parts = {"invariance": -patch_sim * cosine, "tcr": -tcr * rate}
    return total_or_parts((parts["invariance"] + parts["tcr"], parts), return_parts)
