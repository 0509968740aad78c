"""The spectral-objective family's losses: CorInfoMax (log-determinant), MMCR (nuclear norm), FroSSL
(Frobenius norm), Matrix-SSL (matrix cross-entropy), SSOLE (nuclear norms of views and of the batch), I-VNE+
(von Neumann entropy), TiCo (covariance contrast against a running second moment).

Projector outputs of shape (N, D) in, a scalar out, with `zoo.losses`' conventions: float32 maths also
inside autocast (float64 stays float64), and under torch.distributed every rank passes its local batch
and gets the loss of the global batch, its input gradient world_size x the single-process one, which
DDP's gradient mean turns into exactly the single-process parameter gradient (see `zoo.spectral.gather`).
The spectral maths itself is `zoo.spectral`'s; these functions compose it into the papers' formulas.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ZooError
from zoo.losses.shared import check_views, mean_over_ranks, total_or_parts
from zoo.spectral import (
    center,
    float32_math,
    gather,
    log_det,
    log_squared_frobenius,
    matrix_log_series,
    nuclear_norm,
    running_covariance,
    trace_normalized_gram,
    von_neumann_entropy,
)

__all__ = ["corinfomax_loss", "frossl_loss", "ivne_loss", "matrix_ssl_loss", "mmcr_loss", "ssole_loss", "tico_loss"]


@float32_math
def corinfomax_loss(
    z1: Tensor,
    z2: Tensor,
    mean: Tensor,
    cov: Tensor,
    *,
    mean_forgetting: float = 0.01,
    cov_forgetting: float = 0.01,
    eps: float = 1e-8,
    sim_weight: float = 250.0,
    cov_weight: float = 1.0,
    return_parts: bool = False,
) -> tuple[Tensor | tuple[Tensor, dict[str, Tensor]], tuple[Tensor, Tensor]]:
    """CorInfoMax (Ozsoy et al., NeurIPS 2022): log-determinant of running covariances + alignment.

    ``mean`` (2, D) and ``cov`` (2, D, D) are each view's running estimates before this step. With
    mu_v, R_v their update by the global batch (`zoo.spectral.running_covariance`: forgetting factors
    ``mean_forgetting``, ``cov_forgetting``; the covariance around the updated mean, /N)::

        L = sim_weight MSE(z1, z2) - cov_weight [log det(R_1 + eps I) + log det(R_2 + eps I)] / D

    Returns ``(L, (mu, R))`` with the new estimates detached (the caller keeps them for the next step;
    the gradient flows through this step's batch only, as the official code detaches its state).
    ``return_parts=True``: L is ``(total, {"invariance", "log_det"})``, the two terms as weighted in L.
    serdarozsoy/corinfomax-ssl cifars-tiny/loss.py ``CovarianceLoss`` (one estimate per view, as its
    ImageNet code's ``CovarianceLossv2``), ``invariance_loss``, pretrain_base.py.
    """
    check_views((z1, z2), "corinfomax_loss")
    dim = z1.shape[-1]
    if mean.shape != (2, dim) or cov.shape != (2, dim, dim):
        raise ZooError(
            f"corinfomax_loss needs the running state of 2 views of {dim} features, mean (2, {dim}) and cov "
            f"(2, {dim}, {dim}), got {tuple(mean.shape)} and {tuple(cov.shape)}"
        )
    z = gather(torch.stack([z1, z2]), dim=1)  # (views, N_global, D)
    new_mean, new_cov = running_covariance(z, mean, cov, mean_forgetting=mean_forgetting, cov_forgetting=cov_forgetting)
    invariance = sim_weight * F.mse_loss(z[0], z[1])
    spread = -cov_weight * log_det(new_cov, eps).sum() / dim
    loss = total_or_parts((invariance + spread, {"invariance": invariance, "log_det": spread}), return_parts)
    return loss, (new_mean.detach(), new_cov.detach())


@float32_math
def tico_loss(
    z1: Tensor,
    z2: Tensor,
    cov: Tensor,
    *,
    beta: float = 0.9,
    rho: float = 8.0,
    batch_cov_grad: bool = False,
    return_parts: bool = False,
) -> tuple[Tensor | tuple[Tensor, dict[str, Tensor]], Tensor]:
    """TiCo (Zhu et al., 2022): transformation invariance + covariance contrast against a running matrix.

    ``cov`` (D, D) is the running matrix C before this step. With z the L2-normalised views of the global
    batch (N samples) and B = z1^T z1 / N this batch's (uncentred) covariance of the first view::

        C' = beta C + (1 - beta) B
        L  = 1 - mean_i z1_i . z2_i  +  rho mean_i z1_i^T C' z1_i

    Returns ``(L, C')`` with C' detached (the caller keeps it for the next step). B is a constant in the
    backward, as lightly-ai/lightly lightly/loss/tico_loss.py ``TiCoLoss`` (the numeric reference; the
    authors published no code) computes it; ``batch_cov_grad=True`` lets the gradient flow through B too, as
    the paper's formula and sayannag/TiCo-pytorch TiCo/main.py ``TiCo_Loss`` (whose value has no leading 1).
    ``return_parts=True``: L is ``(total, {"invariance", "covariance"})``, the two terms as in L. Under
    torch.distributed C' is the global batch's on every rank (lightly gathers z1, z2 the same way).
    """
    check_views((z1, z2), "tico_loss")
    dim = z1.shape[-1]
    if cov.shape != (dim, dim):
        raise ZooError(f"tico_loss needs the running matrix of {dim} features, cov ({dim}, {dim}), got {tuple(cov.shape)}")
    z1, z2 = F.normalize(gather(z1), dim=-1), F.normalize(gather(z2), dim=-1)
    batch = z1.T @ z1 / z1.shape[0]
    new_cov = beta * cov + (1 - beta) * (batch if batch_cov_grad else batch.detach())
    invariance = 1 - (z1 * z2).sum(dim=-1).mean()
    contrast = rho * ((z1 @ new_cov) * z1).sum(dim=-1).mean()
    loss = total_or_parts((invariance + contrast, {"invariance": invariance, "covariance": contrast}), return_parts)
    return loss, new_cov.detach()


@float32_math
def mmcr_loss(
    *views: Tensor, lambd: float = 0.0, return_parts: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """MMCR (Yerxa et al., NeurIPS 2023): minus the nuclear norm of the matrix of view centroids.

    With z the L2-normalised views and c_i = mean_v z_{v,i} the centroid of image i (N_global x D)::

        L = -||C||_* + lambd / N sum_i ||[z_{1,i} ... z_{V,i}]||_*

    (the second, local term only when lambd != 0; the official default is 0). ``return_parts=True``:
    also ``{"centroid_nuclear": -||C||_*, "view_nuclear": the lambd term}`` (they sum to L).
    ThomasYerxa/mmcr mmcr/cifar_stl/loss_mmcr.py ``MMCR_Loss``.
    """
    check_views(views, "mmcr_loss")
    z = gather(F.normalize(torch.stack(views), dim=-1), dim=1)  # (views, N_global, D)
    per_image = z.permute(1, 2, 0)  # (N, D, views): each image's views as columns
    centroid_term = -nuclear_norm(per_image.mean(dim=-1))
    view_term = lambd * nuclear_norm(per_image).sum() / per_image.shape[0] if lambd else centroid_term.new_zeros(())
    parts = {"centroid_nuclear": centroid_term, "view_nuclear": view_term}
    return total_or_parts((centroid_term + view_term, parts), return_parts)


@float32_math
def frossl_loss(
    *views: Tensor, invariance_weight: float = 1.0, return_parts: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """FroSSL (Skean et al., ECCV 2024): multi-view alignment + log squared Frobenius norm per view.

    Each feature of each view is L2-normalised over the global batch (Z_v, N x D, unit columns), Zbar is
    the mean of the V views and C_v = Z_v^T Z_v / tr(Z_v^T Z_v) (or the N x N Gram matrix, which has the
    same Frobenius norm)::

        L = sum_v [ log ||C_v||_F^2 + V D invariance_weight MSE(Z_v, Zbar) ]

    The sign is the official code's (where the paper's text and the code disagree, the zoo follows the
    code): log ||C_v||_F^2, minus the order-2 Renyi entropy of C_v, is minimised, i.e. the entropy is
    maximised and the spectrum spread; the other sign would collapse it. ``return_parts=True``: also
    ``{"invariance", "log_frobenius"}`` (summed over views; they sum to L). OFSkean/FroSSL
    solo/losses/frossl.py ``multiview_frossl_loss_func`` (the trace is the constant D there, the columns
    being unit-norm, so its ``.item()`` changes nothing). Under DDP the official loss sees each GPU's
    own batch; the zoo's the global batch (on one process the two agree).
    """
    check_views(views, "frossl_loss")
    z = F.normalize(gather(torch.stack(views), dim=1), dim=-2)  # (views, N_global, D), unit columns
    n_views, _, dim = z.shape
    invariance = n_views * dim * invariance_weight * (z - z.mean(dim=0)).pow(2).mean(dim=(-2, -1))
    regularizer = log_squared_frobenius(trace_normalized_gram(z))
    parts = {"invariance": invariance.sum(), "log_frobenius": regularizer.sum()}
    return total_or_parts((parts["invariance"] + parts["log_frobenius"], parts), return_parts)


@float32_math
def matrix_ssl_loss(
    target: Tensor,
    prediction: Tensor,
    *,
    lambd: float = 0.5,
    mu: float = 0.5,
    gamma: float = 1.0,
    order: int = 4,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Matrix-SSL (Zhang et al., ICML 2024): matrix uniformity + gamma x matrix alignment, for one pair of a
    target branch and a prediction branch.

    With t, z the L2-normalised rows of the global batch (N x D), J = I - 11^T / N the centring matrix, the
    matrix cross-entropy MCE(P, Q) = tr(-P log Q) and C_tz = t^T J z / N (cross-covariance), C_t, C_z the
    covariances likewise::

        U = MCE(lambd I, C_tz + mu I)          (matrix uniformity)
        A = MCE(C_t + mu I, C_z + mu I)        (matrix alignment)
        L = U + gamma A

    log is the order-``order`` Taylor series around I (`zoo.spectral.matrix_log_series`), as the official
    code's ``matrix_log``; its training step averages L over the two (target, prediction) pairs of its two
    crops. ``return_parts=True``: also ``{"uniformity": U, "alignment": gamma A}`` (they sum to L).
    yifanzhang-pro/Matrix-SSL main_pretrain.py ``mce_loss_func`` (``correlation=True``: U, ``False``: A);
    its ``align_gamma`` and ``logE`` arguments change nothing there. Nothing is detached: the caller passes
    the target branch without gradients, as the official teacher's outputs.
    """
    check_views((target, prediction), "matrix_ssl_loss")
    t, z = center(F.normalize(gather(torch.stack([target, prediction]), dim=1), dim=-1), "batch")
    n, dim = z.shape
    shift = mu * torch.eye(dim, dtype=z.dtype, device=z.device)
    uniformity = -lambd * matrix_log_series(t.mT @ z / n + shift, order).diagonal().sum()
    target_cov = t.mT @ t / n + shift
    alignment = -(target_cov * matrix_log_series(z.mT @ z / n + shift, order).mT).sum()  # -tr(P log Q)
    parts = {"uniformity": uniformity, "alignment": gamma * alignment}
    return total_or_parts((uniformity + gamma * alignment, parts), return_parts)


@float32_math
def ssole_loss(
    *views: Tensor, lambd: float = 0.6, gamma: float = 0.5, return_parts: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """SSOLE (Huang, Qiu and Sapiro, ICLR 2025): a low-rank term on each image's views, a high-rank term on
    each view's batch.

    With z the L2-normalised views, m of them, and B the global batch:

    * low rank: for each image, the m x D matrix of its views minus their mean (the mean held constant in
      the backward), D_i; ``low = mean_i ||D_i||_*^2 / (m - 1)^2`` over the images;
    * high rank: for each view v, the B x D matrix Z_v of the batch, r_v = ||Z_v||_* (between sqrt(B) and B
      for unit rows), beta_v = asin(r_v / B) - asin(1 / sqrt(B)), and
      ``c_v = gamma (B^2 / r_v^2 - 1) / (B - 1) + (1 - gamma) (B cos^2 beta_v - 1) / (B - 1)``,
      ``high = mean_v c_v``;

    ``L = low + lambd high``. ``return_parts=True``: also ``{"low_rank": low, "high_rank": lambd high}`` (they
    sum to L). husthuaan/ssole loss/ssole_loss.py ``ssole_loss`` (``lambda_``; its ``gamma`` is the module's
    constant 0.5), on models/ssole_encoder.py's normalised outputs. The high-rank term sees the global batch
    (the official FullGatherLayer); the low-rank term is each rank's mean over its images, averaged over the
    ranks here for the value (the official loss logs its own rank's): the gradient is the official one.
    """
    check_views(views, "ssole_loss")
    z = F.normalize(torch.stack(views, dim=1), dim=-1)  # (N_local, views, D): each image's views as rows
    n_views = z.shape[1]
    deviation = z - z.mean(dim=1, keepdim=True).detach()
    low = mean_over_ranks(nuclear_norm(deviation).pow(2).mean() / (n_views - 1) ** 2)
    batch = gather(z).transpose(0, 1)  # (views, B, D): each view's global batch
    size = batch.shape[1]
    rank = nuclear_norm(batch)
    beta = torch.asin(rank / size) - math.asin(1 / math.sqrt(size))
    from_rank = (size**2 / rank.pow(2) - 1) / (size - 1)
    from_angle = (beta.cos().pow(2) * size - 1) / (size - 1)
    high = (gamma * from_rank + (1 - gamma) * from_angle).mean()
    parts = {"low_rank": low, "high_rank": lambd * high}
    return total_or_parts((low + lambd * high, parts), return_parts)
def ivne_loss(
    *views: Tensor, alpha_1: float = 4.16, alpha_2: float = 1.0, return_parts: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """I-VNE+ (Kim et al., CVPR 2023): invariance plus the von Neumann entropy of each view.

    With cos_ij the mean over the global batch of the cosine similarity of views i and j, P the pairs of each of
    the first two views (the large crops) with every later view, and S(z_v) the von Neumann entropy of the
    autocorrelation of view v's L2-normalised rows (`zoo.spectral.von_neumann_entropy`)::

        L = -alpha_1 mean_{(i, j) in P} cos_ij - alpha_2 mean_v S(z_v)

    (two views: the one pair). ``return_parts=True``: also ``{"invariance": -alpha_1 mean cos,
    "entropy": -alpha_2 mean S}`` (they sum to L). jaeill/CVPR23-VNE examples/i-vne+/train_ivne_imagenet100.py
    ``train_I_VNE`` (the loss lines; alpha_1 = 4.16 = log 64, its batch, alpha_2 = 1) and vne/__init__.py
    ``get_vne``; its DataParallel loss sees the whole batch, as the gathered global batch here.
    """
    check_views(views, "ivne_loss")
    z = gather(torch.stack(views), dim=1)  # (views, N_global, D)
    pairs = [(i, j) for i in range(2) for j in range(i + 1, len(views))]
    first, second = (list(index) for index in zip(*pairs))
    cosine = F.cosine_similarity(z[first], z[second], dim=-1).mean()
    entropy = von_neumann_entropy(z).mean()
    parts = {"invariance": -alpha_1 * cosine, "entropy": -alpha_2 * entropy}
    return total_or_parts((parts["invariance"] + parts["entropy"], parts), return_parts)
