"""Pure loss functions: projector outputs of shape (N, D) in, a scalar out.

Each is the exact formula of the method's official code (cited per function).
Methods with more than two views take them as more positional arguments, in
crop order. All maths runs in float32, also inside autocast (float64 stays
float64). Losses made of several terms take ``return_parts=True`` to return
``(total, {part name: tensor})`` instead: the total is the same tensor as the
scalar form's, and the parts are its terms as weighted in it, from the same
computation (the formula is written once).

Under torch.distributed every rank passes its local batch and gets the loss
of the global batch (VICReg's invariance term excepted, which is per rank as
in the official code); the gradient of the local inputs is then world_size x
the single-process one, which DDP's gradient mean turns into exactly the
single-process parameter gradient (see `zoo.spectral.gather`).
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.errors import ZooError
from zoo.losses.clustering import dino_center, dino_loss, sinkhorn_knopp, swav_loss
from zoo.losses.contrastive import byol_loss, dcl_loss, info_nce_loss, nt_xent_loss
from zoo.losses.shared import check_views, feature_std, mean_over_ranks, total_or_parts
from zoo.spectral import (
    Axis,
    center,
    covariance,
    default_trade_off,
    float32_math,
    gather,
    is_distributed,
    standardize,
    variance,
    whiten,
)

__all__ = [
    "barlow_twins_loss",
    "byol_loss",
    "cwrgp_loss",
    "dcl_loss",
    "dino_center",
    "dino_loss",
    "info_nce_loss",
    "intl_loss",
    "mixed_barlow_twins_loss",
    "normalized_mse",
    "nt_xent_loss",
    "off_diagonal",
    "shuffled_dbn_loss",
    "simsiam_loss",
    "sinkhorn_knopp",
    "st_loss",
    "swav_loss",
    "trace_loss",
    "vicreg_loss",
    "view_cosines",
    "wmse_loss",
    "zero_cl_axis",
    "zero_cl_loss",
    "zero_cl_whiten",
]


def view_cosines(z: Tensor) -> Tensor:
    """Cosine similarity of every pair of views, per sample: (..., V, N, D) -> (..., N, V, V).

    One Gram matrix per sample instead of a normalised copy of every pair: the
    same numbers as ``F.normalize`` (norms clamped at 1e-12), at a fraction of
    the memory traffic.
    """
    per_sample = z.transpose(-3, -2)
    gram = per_sample @ per_sample.mT
    norms = gram.diagonal(dim1=-2, dim2=-1).sqrt().clamp_min(1e-12)
    return gram / (norms.unsqueeze(-1) * norms.unsqueeze(-2))


def normalized_mse(x0: Tensor, x1: Tensor) -> Tensor:
    """``2 - 2 mean_i cos(x0_i, x1_i)``: the MSE of the L2-normalised samples (..., N, D) -> (...).

    W-MSE / CW-RGP / INTL ``norm_mse_loss``.
    """
    return _pair_losses(torch.stack([x0, x1], dim=-3), *_view_pairs(2)).squeeze(-1)


def _pair_losses(z: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """nMSE of the view pairs (first[p], second[p]) of z (..., V, N, D) -> (..., P)."""
    cosines = view_cosines(z)[..., first, second]  # (..., N, P)
    return 2 - 2 * cosines.mean(dim=-2)


def trace_loss(z: Tensor, axis: Axis) -> Tensor:
    """INTL's trace loss ``sum_k (Sigma_kk - 1)^2`` of the whitened output, over the last two dims.

    Sigma is the covariance of the whitening axis (/(m - 1)): per sample over
    its channels ("channel"), per feature over the batch ("batch").
    winci-ai/INTL methods/intl.py ``TL``.
    """
    return (variance(z, axis) - 1).pow(2).sum(dim=-1)


def _view_pairs(n_views: int) -> tuple[Tensor, Tensor]:
    """Every pair i < j of views, as W-MSE's double loop enumerates them."""
    first, second = torch.triu_indices(n_views, n_views, offset=1)
    return first, second


@float32_math
def intl_loss(
    *views: Tensor,
    iters: int = 4,
    axis: Axis = "channel",
    trade_off: float | None = None,
    first_view_trace: bool = True,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """INTL (Weng et al., 2024): IterNorm + normalised MSE + trace loss.

    With Z_v = IterNorm(z_v) (``iters`` Newton steps, whitening ``axis``) and
    beta = trade_off (None: 0.01 (log2 N_global - 3) on the channel axis,
    0.01 (log2 D - 3) on the batch axis)::

        L = 1/(V-1) sum_{v>=1} [ nMSE(Z_v, Z_0) + beta (TL(Z_v) + TL(Z_0)) ]

    ``first_view_trace=False`` drops TL(Z_0), as the multi-crop INTL_M does
    with its momentum target as view 0 (a constant there, so only the logged
    value changes). ``return_parts=True``: also ``{"mse": mean_v nMSE,
    "trace": beta mean_v TL}`` (the trace term weighted by beta; they sum to
    L up to rounding). winci-ai/INTL methods/intl.py, methods/intl_m.py,
    methods/base.py, methods/whitening.py.
    """
    check_views(views, "intl_loss")
    white = whiten(torch.stack(views), "iternorm", axis, iters=iters)[0]
    return total_or_parts(_matched_to_first(white, axis, trade_off, first_view_trace), return_parts)


@float32_math
def st_loss(
    *views: Tensor,
    power: float = 0.5,
    axis: Axis = "channel",
    trade_off: float | None = None,
    eps: float = 0.0,
    first_view_trace: bool = True,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """INTL's loss with the spectral transformation g(lambda) = lambda^-power instead of IterNorm.

    Z_v = U diag(lambda^-power) U^T applied to z_v (power 0.5 is ZCA
    whitening, 0 leaves the centred data as it is), then exactly `intl_loss`'s
    nMSE to the first view plus trade_off x trace loss (trade_off=0 drops the
    trace loss), with `intl_loss`'s ``return_parts``. The spectral-transformation
    family of the INTL paper (Sec. 3).
    """
    check_views(views, "st_loss")
    white = whiten(torch.stack(views), "power", axis, power=power, eps=eps)[0]
    return total_or_parts(_matched_to_first(white, axis, trade_off, first_view_trace), return_parts)


def _matched_to_first(
    white: Tensor, axis: Axis, trade_off: float | None, first_view_trace: bool
) -> tuple[Tensor, dict[str, Tensor]]:
    """mean_{v>=1} [nMSE(Z_v, Z_0) + beta (TL(Z_v) [+ TL(Z_0)])] of transformed views (V, N, D),
    and its two terms {"mse", "trace"} (the latter x beta)."""
    n_global, dim = white.shape[-2], white.shape[-1]  # whiten returns the gathered (global) batch
    if trade_off is None:
        trade_off = default_trade_off(axis, n_global, dim)
    traces = trace_loss(white, axis)
    later = torch.arange(1, white.shape[0])
    traces = traces[1:] + traces[0] if first_view_trace else traces[1:]
    mse, trace = _pair_losses(white, torch.zeros_like(later), later), trade_off * traces
    return (mse + trace).mean(), {"mse": mse.mean(), "trace": trace.mean()}


@float32_math
def wmse_loss(*views: Tensor, w_size: int | None = None, w_iter: int = 1, eps: float = 0.0) -> Tensor:
    """W-MSE (Ermolov et al., 2021): Cholesky batch whitening, normalised MSE over all view pairs.

    The batch is split into random sub-batches of ``w_size`` samples (the same
    partition for every view; None = the whole batch), each whitened by
    Sigma^-1/2 = L^-1 (Sigma = L L^T, shrunk by ``eps``), ``w_iter`` times::

        L = 1/(w_iter P) sum_{iter} sum_{i<j} nMSE(Z_i, Z_j),  P = V(V-1)/2

    No stop-gradient. htdt/self-supervised methods/w_mse.py, methods/whitening.py.
    """
    check_views(views, "wmse_loss")
    white = whiten(torch.stack(views), "cholesky", "batch", eps=eps, w_size=w_size, w_iter=w_iter)
    return _pair_losses(white, *_view_pairs(len(views))).mean()


@float32_math
def cwrgp_loss(*views: Tensor, groups: int = 1, w_size: int | None = None, w_iter: int = 1, eps: float = 0.0) -> Tensor:
    """CW-RGP (Weng et al., 2022): ZCA channel whitening with random group partition.

    Like `wmse_loss`, but each sub-batch of w_size samples is whitened on the
    channel axis (w_size x w_size covariance over D/groups channels, each
    sample centred over all its channels), by ZCA Sigma^-1/2 = U diag(lambda^-1/2) U^T,
    with the channels split into ``groups`` by a fresh random permutation per
    (sub-batch, view)::

        L = 1/(w_iter P) sum_{iter} sum_{i<j} nMSE(Z_i, Z_j)

    winci-ai/CW-RGP base/methods/cwrgp.py, base/methods/whitening.py.
    """
    check_views(views, "cwrgp_loss")
    white = whiten(torch.stack(views), "zca", "channel", eps=eps, groups=groups, w_size=w_size, w_iter=w_iter)
    return _pair_losses(white, *_view_pairs(len(views))).mean()


@float32_math
def shuffled_dbn_loss(*views: Tensor, groups: int = 16, w_size: int | None = None, w_iter: int = 1, eps: float = 0.0) -> Tensor:
    """Shuffled-DBN (Hua et al., 2021) as CW-RGP's code runs it: ZCA batch whitening in random groups.

    Like `cwrgp_loss` on the other axis: each sub-batch of w_size samples (None = the whole
    batch) is whitened per group of D/groups features (their covariance over the sub-batch,
    /(m - 1)) by U diag(lambda^-1/2) U^T, the features split into ``groups`` by a fresh random
    permutation per (sub-batch, view); then the nMSE of every pair of views::

        L = 1/(w_iter P) sum_{iter} sum_{i<j} nMSE(Z_i, Z_j)

    winci-ai/CW-RGP base/methods/cwrgp.py and base/methods/whitening.py with axis=1 (batch).
    """
    check_views(views, "shuffled_dbn_loss")
    white = whiten(torch.stack(views), "zca", "batch", eps=eps, groups=groups, w_size=w_size, w_iter=w_iter)
    return _pair_losses(white, *_view_pairs(len(views))).mean()


def zero_cl_axis(mode: str) -> Axis:
    """The axis Zero-CL standardises and whitens along: the samples of each feature (fea) or the features of each
    sample (ins)."""
    if mode not in ("fea", "ins"):
        raise ZooError(f"mode={mode!r} is not a Zero-CL mode; use 'fea' or 'ins'")
    return "batch" if mode == "fea" else "channel"


def zero_cl_whiten(
    z: Tensor, *, mode: str, whitening: bool, std_ddof: int, std_eps: float, var_eps: float, cov_ddof: int, eps: float,
    ridge: float,
) -> Tensor:
    """`zero_cl_loss`'s standardisation and ZCA whitening of z (..., N, D) along `zero_cl_axis` (mode), on the samples
    given (no gather), the ZCA matrix a constant in the backward."""
    axis = zero_cl_axis(mode)
    z = standardize(z, axis, ddof=std_ddof, var_eps=var_eps, std_eps=std_eps)
    if whitening:
        z = whiten(z, "zca", axis, eps=eps, ridge=ridge, ddof=cov_ddof, detach_matrix=True, distributed=False)[0]
    return z


@float32_math
def zero_cl_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    mode: str = "fea",
    whitening: bool = True,
    std_ddof: int = 1,
    std_eps: float = 1e-4,
    var_eps: float = 0.0,
    cov_ddof: int = 0,
    eps: float = 0.0,
    ridge: float = 0.01,
    per_device_norm: bool = True,
) -> Tensor:
    """Zero-CL (Zhang et al., ICLR 2022): the diagonal of the two whitened views' cross-correlation driven to 1.

    ``mode="fea"`` (Zero-FCL) works on the D features, ``"ins"`` (Zero-ICL) on the N samples. Each view is
    standardised along that axis (per feature over the batch / per sample over its features)::

        z <- (z - mean) / (sqrt(var_{ddof=std_ddof} + var_eps) + std_eps)

    then, when ``whitening``, ZCA-whitened along it: Sigma = covariance / (m - cov_ddof) (D x D over the N samples,
    or N x N over the D features), shrunk to (1 - eps) Sigma + eps I, plus ridge I, and Z = z Sigma^-1/2 with the
    matrix a constant in the backward (the official code detaches it). With the cross-view agreement of each
    feature k or sample i::

        fea: C_kk = sum_i Z1_ik Z2_ik / N,    ins: C_ii = sum_k Z1_ik Z2_ik / D,    L = sum (C - 1)^2

    The defaults are Sherrylone/Zero-CL ImageNet-100/main.py ``fea_loss`` / ``ins_loss``, ``standardization`` (unbiased
    std + 1e-4) and ``WhitenTran.zca_forward`` (covariance / m, eigenvalues + 0.01). Its cifar/main.py
    ``whitened_barlow_twins_loss`` (feature-wise only) standardises with BatchNorm1d(affine=False) (std_ddof=0,
    var_eps=1e-5, std_eps=0) and, with ``--whiten true``, whitens with covariance / (N - 1), 0.9 Sigma + 0.1 I and
    eigenvalues + 1e-5 (cov_ddof=1, eps=0.1, ridge=1e-5); ``--whiten false`` (its default) is ``whitening=False``.
    winci-ai/CW-RGP base/methods/zero_icl.py (the CW-RGP table's "Zero-CL (ICL)") is mode="ins", std_eps=0,
    cov_ddof=1, eps=0.1, ridge=1e-5 on the global batch.

    ``per_device_norm=True`` is the official DDP form: each rank standardises and whitens its own batch of n and the
    agreements are averaged over the R ranks (its all_reduce of c / (n R) or c / (D R)): for ins the ranks' i-th
    samples share one term. ``False``: the global batch is standardised and whitened (gathered with gradients),
    one term per sample of it. On one process the two agree. The value is the official one either way; the
    gradient is the exact one of it (the all-reduce carries gradients), the official plain all_reduce gives each
    rank 1/R of it.
    """
    check_views((z1, z2), "zero_cl_loss")
    if not per_device_norm:
        z1, z2 = gather(z1), gather(z2)
    views = zero_cl_whiten(torch.stack([z1, z2]), mode=mode, whitening=whitening, std_ddof=std_ddof, std_eps=std_eps,
                           var_eps=var_eps, cov_ddof=cov_ddof, eps=eps, ridge=ridge)
    per_axis = (views[0] * views[1]).sum(dim=0 if mode == "fea" else 1) / views.shape[1 if mode == "fea" else 2]
    if per_device_norm:
        per_axis = mean_over_ranks(per_axis)
    return (per_axis - 1).pow(2).sum()


def off_diagonal(matrix: Tensor) -> Tensor:
    """The off-diagonal entries of a square matrix, flattened."""
    n = matrix.shape[-1]
    return matrix.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def _standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """BatchNorm1d(affine=False) in training mode: centred over the batch, / sqrt(biased variance + eps)."""
    z = center(z, "batch")
    return z / (variance(z, "batch", ddof=0, assume_centered=True) + eps).sqrt()


@float32_math
def barlow_twins_loss(
    z1: Tensor, z2: Tensor, lambd: float = 0.0051, *, per_device_norm: bool = False, return_parts: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Barlow Twins (Zbontar et al., 2021): cross-correlation to the identity.

    With BN the non-affine batch norm over the global batch (SyncBN) and N the
    global batch::

        C = BN(z1)^T BN(z2) / N,   L = sum_k (1 - C_kk)^2 + lambd sum_{k!=l} C_kl^2

    facebookresearch/barlowtwins main.py ``BarlowTwins.forward``.

    ``per_device_norm=True`` is solo-learn's form (solo/losses/barlow.py): each
    rank standardises its local batch of n samples and the cross-correlations
    are averaged over the R ranks, C = 1/R sum_r BN_r(z1_r)^T BN_r(z2_r) / n;
    the same as the default on one process. Its value is solo-learn's; its
    gradient is the exact one (the all-reduce carries gradients), whereas
    solo-learn's plain ``dist.all_reduce`` gives each rank 1/R of this
    gradient. ``return_parts=True``: also
    ``{"on_diag": sum_k (1 - C_kk)^2, "off_diag": lambd sum_{k!=l} C_kl^2}``
    (the off-diagonal term weighted by lambd; they sum to L).
    """
    check_views((z1, z2), "barlow_twins_loss")
    if per_device_norm:
        z1, z2 = _standardize(z1), _standardize(z2)
        corr = mean_over_ranks(z1.T @ z2 / z1.shape[0])
    else:
        z1, z2 = _standardize(gather(z1)), _standardize(gather(z2))
        corr = z1.T @ z2 / z1.shape[0]
    on_diag, off_diag = _identity_terms(corr, lambd)
    return total_or_parts((on_diag + off_diag, {"on_diag": on_diag, "off_diag": off_diag}), return_parts)


def _identity_terms(corr: Tensor, lambd: float) -> tuple[Tensor, Tensor]:
    """Barlow Twins' two terms of a cross-correlation: sum_k (1 - C_kk)^2 and lambd sum_{k!=l} C_kl^2."""
    return (torch.diagonal(corr) - 1).pow(2).sum(), lambd * off_diagonal(corr).pow(2).sum()


def _rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


@float32_math
def mixed_barlow_twins_loss(
    z1: Tensor,
    z2: Tensor,
    zm: Tensor,
    perm: Tensor,
    mix: float | Tensor,
    lambd: float = 0.0078125,
    mix_weight: float = 4.0,
    *,
    normalize: bool = True,
    imagenet_target: bool = False,
    per_device_norm: bool = False,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Mixed Barlow Twins (Bandara, De Melo and Patel, 2023): Barlow Twins plus the mixup regulariser.

    ``zm`` is the projection of the mixed crop ``mix x1 + (1 - mix) x2[perm]`` (``perm`` this process's
    permutation of its local batch, ``mix`` its coefficient). Each row is L2-normalised when ``normalize``
    (the small-data model returns F.normalize of the projector output), then each feature standardised over
    the global batch of N by the unbiased standard deviation without an epsilon (Z_1, Z_2, Z_m); with
    T = mix Z_1 + (1 - mix) Z_2[perm], the features the mixed crop would have if the network were linear::

        C = Z_1^T Z_2 / N,   L_BT = sum_k (1 - C_kk)^2 + lambd sum_{k!=l} C_kl^2
        L_mix = mix_weight lambd (||Z_m^T Z_1 / N - T^T Z_1 / N||_F^2 + ||Z_m^T Z_2 / N - T_2^T Z_2 / N||_F^2)
        L = L_BT + L_mix

    with T_2 = T (main.py, as the README's C^MB_gt) or, with ``imagenet_target``, mix Z_2 + (1 - mix) Z_2[perm]
    (main_imagenet.py's second target). ``per_device_norm=True`` is main_imagenet.py's form: each rank
    standardises its own batch (and mixes within it) and every cross-correlation is the mean over ranks of
    the local ones (its all_reduce of local / N_global); the gradient here is the exact one, the official
    plain all_reduce gives each rank 1/world_size of it. Under the default, the global batch is standardised
    (gathered with gradients) and ``perm`` and ``mix`` of each rank apply to its own rows. On one process the
    two agree. ``return_parts=True``: also ``{"on_diag", "off_diag", "mix"}`` (as weighted; they sum to L).
    wgcban/mix-bt main.py ``train`` (the regulariser weight ``mixup_loss_scale`` x lmbda) and main_imagenet.py
    ``BarlowTwins.forward`` (0.5 x lambd x the script's lambda_mixup, warmed up outside the loss).
    """
    check_views((z1, z2, zm), "mixed_barlow_twins_loss")
    views = torch.stack([z1, z2, zm])
    if normalize:
        views = F.normalize(views, dim=-1)
    mix = torch.as_tensor(mix, dtype=views.dtype, device=views.device).expand(views.shape[1])
    if not per_device_norm:  # the global batch: rank r's rows and its permutation of them, offset
        views = gather(views, dim=1)
        perm, mix = gather(perm + _rank() * z1.shape[0]), gather(mix)
    a, b, m = standardize(views, "batch")
    mix = mix.unsqueeze(-1)
    target = mix * a + (1 - mix) * b[perm]
    second_target = mix * b + (1 - mix) * b[perm] if imagenet_target else target
    correlations = torch.stack([a.T @ b, (m - target).T @ a, (m - second_target).T @ b]) / a.shape[0]
    if per_device_norm:
        correlations = mean_over_ranks(correlations)
    corr, gap_first, gap_second = correlations
    on_diag, off_diag = _identity_terms(corr, lambd)
    mix_term = mix_weight * lambd * (gap_first.pow(2).sum() + gap_second.pow(2).sum())
    parts = {"on_diag": on_diag, "off_diag": off_diag, "mix": mix_term}
    return total_or_parts((on_diag + off_diag + mix_term, parts), return_parts)


@float32_math
def vicreg_loss(
    z1: Tensor, z2: Tensor, sim: float = 25.0, var: float = 25.0, cov: float = 1.0, *, return_parts: bool = False
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """VICReg (Bardes et al., 2022): invariance + variance + covariance.

    ::

        L = sim MSE(z1, z2)                                   (local batch)
          + var 1/2 sum_{z in z1, z2} mean_k relu(1 - sqrt(Var z_k + 1e-4))
          + cov sum_{z in z1, z2} sum_{k!=l} Cov(z)_kl^2 / D  (global batch, /(N-1))

    ``return_parts=True``: also ``{"invariance", "variance", "covariance"}``,
    the three terms as weighted in L (sim x, var x, cov x; they sum to L).
    facebookresearch/vicreg main_vicreg.py ``VICReg.forward``.
    """
    check_views((z1, z2), "vicreg_loss")
    invariance = F.mse_loss(z1, z2)
    variance_term, covariance_term = 0.0, 0.0
    for z in (gather(z1), gather(z2)):
        variance_term = variance_term + F.relu(1 - feature_std(z)).mean() / 2
        covariance_term = covariance_term + off_diagonal(covariance(z, "batch")).pow(2).sum() / z.shape[1]
    parts = {"invariance": sim * invariance, "variance": var * variance_term, "covariance": cov * covariance_term}
    return total_or_parts((parts["invariance"] + parts["variance"] + parts["covariance"], parts), return_parts)


@float32_math
def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """SimSiam (Chen & He, 2021): ``-1/2 [cos(p1, sg z2) + cos(p2, sg z1)]``, averaged over the batch.

    facebookresearch/simsiam main_simsiam.py (criterion) and simsiam/builder.py.
    """
    check_views((p1, p2, z1, z2), "simsiam_loss")
    # Gathering the per-sample cosines makes the value global; the gradient is the official per-rank one.
    cos1 = gather(F.cosine_similarity(p1, z2.detach(), dim=1))
    cos2 = gather(F.cosine_similarity(p2, z1.detach(), dim=1))
    return -0.5 * (cos1.mean() + cos2.mean())

