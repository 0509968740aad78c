"""Every whitening / spectral transform of the zoo, written once.

Conventions
-----------
Data is a batch of embeddings ``x`` of shape ``(..., N, D)``: N samples of D
features; leading dimensions (views, sub-batches, groups) are batched over.

``axis`` names what gets whitened, as in the papers:

* ``"batch"``: the D features are decorrelated over the samples
  (D x D covariance, each feature centred over the batch); W-MSE.
* ``"channel"``: the N samples are decorrelated over the features
  (N x N covariance, each sample centred over its features); INTL and CW-RGP
  (their official code calls this ``axis=0``, and ``axis=1`` the batch axis).

With ``obs`` the centred data laid out as observations x variables (``x`` for
the batch axis, ``x^T`` for the channel axis) and ``m`` observations, every
transform computes ``Sigma = (1 - eps) obs^T obs / (m - 1) + eps I`` and
returns ``obs @ W(Sigma)`` laid back out as ``(N, D)``:

========== ================================================ =================
kind       W(Sigma)                                         official source
========== ================================================ =================
iternorm   Newton-Schulz on Sigma_N = Sigma / tr(Sigma):    winci-ai/INTL
           P_0 = I, P_k+1 = 1.5 P_k - 0.5 P_k^3 Sigma_N,    methods/whitening.py
           W = P_T / sqrt(tr(Sigma))
cholesky   L^-T where Sigma = L L^T                          htdt/self-supervised
                                                            methods/whitening.py
zca        U diag(lambda^-1/2) U^T                           winci-ai/CW-RGP
pca        U diag(lambda^-1/2), eigenvalues descending       base/methods/whitening.py
power      U diag(lambda^-p) U^T  (p = 1/2 is ZCA)           INTL paper (spectral
                                                            transformation)
========== ================================================ =================

Under ``torch.distributed`` the statistics cover the global batch: `whiten`
all-gathers the views (with gradients) and returns the whitened global batch.
All maths runs in float32 (float64 stays float64), also inside autocast.
"""

import contextlib
import functools
import math
import warnings
from typing import Literal

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

from zoo.errors import ZooError
from zoo.names import WhiteningAxis

Axis = Literal["batch", "channel"]
Kind = Literal["iternorm", "cholesky", "zca", "pca", "power"]

AXES = tuple(axis.value for axis in WhiteningAxis)
KINDS = ("iternorm", "cholesky", "zca", "pca", "power")
# Kinds that invert the covariance and so need it to be full rank.
INVERTING_KINDS = ("cholesky", "zca", "pca", "power")


# ---------------------------------------------------------------------------
# Precision and distribution
# ---------------------------------------------------------------------------


def upcast(x: Tensor) -> Tensor:
    """Half-precision floats to float32; float32 and float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def float32_math(fn):
    """Run ``fn`` in true float32: autocast disabled, half-precision tensor arguments upcast,
    and TF32 matmuls off (the run sets matmul precision "high" for the backbone's speed).

    Matrix square roots, inverses and Newton iterations are not accurate in
    16 bits (INTL runs IterNorm under fp16 autocast; the zoo does not), nor in
    TF32's 10-bit mantissa.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device_type = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        precision = torch.get_float32_matmul_precision()
        # set only when it differs: on the CPU every change makes oneDNN rebuild the backbone's kernels
        # (a W-MSE step 2-4% slower when the run flipped it around each whitening)
        if precision != "highest":
            torch.set_float32_matmul_precision("highest")
        # the meta device (shapes only: the recipe tests build and trace methods there) has no autocast to disable
        no_autocast = torch.autocast(device_type, enabled=False) if device_type != "meta" else contextlib.nullcontext()
        try:
            with no_autocast:
                args = [upcast(a) if isinstance(a, Tensor) else a for a in args]
                return fn(*args, **kwargs)
        finally:
            if precision != "highest":
                torch.set_float32_matmul_precision(precision)

    return wrapper


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def gather(x: Tensor, dim: int = 0) -> Tensor:
    """Concatenate ``x`` from every rank along ``dim``, with gradients; identity when not distributed.

    The backward sums the gradients of every rank's loss (reduce-scatter), so
    when each rank computes the same global loss the local gradient is
    world_size x the single-process one, which DDP's gradient mean turns into
    exactly the single-process parameter gradient. Every rank must hold the
    same shape.
    """
    if not is_distributed():
        return x
    with warnings.catch_warnings():
        # deprecated in favour of a private API; it is the public autograd-aware gather
        warnings.filterwarnings("ignore", "torch.distributed.nn.functional.all_gather", FutureWarning)
        pieces = dist_nn.all_gather(x.contiguous())
    return torch.cat([_ContiguousGrad.apply(piece) for piece in pieces], dim=dim)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the gradient contiguous. all_gather's backward receives each
    piece's gradient into `empty_like(gradient)` and the collective fills it as if contiguous, so a
    gradient laid out in another dimension order (dense but permuted, e.g. when the gathered batch
    is transposed and made contiguous downstream) came back scrambled, silently (torch 2.x,
    torch.distributed.nn.functional._AllGather / _AlltoAll; test_spectral covers it on gloo)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()


def _same_on_every_rank(t: Tensor, device: torch.device) -> Tensor:
    """Rank 0's copy of ``t`` on every rank (random draws must agree for a global loss)."""
    t = t.to(device)
    if is_distributed():
        dist.broadcast(t, src=0)
    return t


# ---------------------------------------------------------------------------
# Centring, covariance and the whitening matrices
# ---------------------------------------------------------------------------


def _check_axis(axis: str) -> None:
    if axis not in AXES:
        raise ZooError(f"axis={axis!r} is not a whitening axis; use one of {AXES}")


def center(x: Tensor, axis: Axis) -> Tensor:
    """Remove the mean: per feature over the samples ("batch") or per sample over its features ("channel")."""
    _check_axis(axis)
    return x - x.mean(dim=-2 if axis == "batch" else -1, keepdim=True)


def _observations(x: Tensor, axis: Axis) -> Tensor:
    """``x`` (..., N, D) as observations x variables: the variables are the whitened axis."""
    return x if axis == "batch" else x.mT


def covariance(x: Tensor, axis: Axis, *, ddof: int = 1, assume_centered: bool = False) -> Tensor:
    """Covariance of the whitening axis of x (..., N, D): (..., D, D) for "batch", (..., N, N) for "channel".

    ``obs^T obs / (m - ddof)`` with obs = `center` (x) as observations x variables.
    """
    obs = _observations(x if assume_centered else center(x, axis), axis)
    return obs.mT @ obs / (obs.shape[-2] - ddof)


def variance(x: Tensor, axis: Axis, *, ddof: int = 1, assume_centered: bool = False) -> Tensor:
    """The diagonal of `covariance` without forming the matrix: (..., D) or (..., N)."""
    obs = _observations(x if assume_centered else center(x, axis), axis)
    return obs.pow(2).sum(dim=-2) / (obs.shape[-2] - ddof)


def standardize(x: Tensor, axis: Axis, *, ddof: int = 1, var_eps: float = 0.0, std_eps: float = 0.0) -> Tensor:
    """`center` (x) divided by its standard deviation (/(m - ddof)) on the same axis: per feature over
    the samples ("batch") or per sample over its features ("channel", Zero-CL's standardisation).

    ``var_eps`` is added to the variance under the root (BatchNorm's eps: BatchNorm1d(affine=False) in training
    mode is ddof=0, var_eps=1e-5), ``std_eps`` to the standard deviation (Zero-CL's ``sigma + 1e-4``)."""
    x = center(x, axis)
    var = variance(x, axis, ddof=ddof, assume_centered=True)
    std = (var + var_eps).sqrt() if var_eps else var.sqrt()
    if std_eps:
        std = std + std_eps
    return x / (std.unsqueeze(-2) if axis == "batch" else std.unsqueeze(-1))


def iternorm_matrix(sigma: Tensor, iters: int) -> Tensor:
    """IterNorm's approximation of Sigma^-1/2 by ``iters`` Newton-Schulz steps (INTL).

    Normalising by the trace puts the spectrum in (0, 1], where the iteration
    converges; it works on rank-deficient Sigma too (it never inverts).
    """
    k = sigma.shape[-1]
    flat = sigma.reshape(-1, k, k)
    trace = flat.diagonal(dim1=-2, dim2=-1).sum(-1).reshape(-1, 1, 1)
    sigma_n = flat / trace
    projection = torch.eye(k, dtype=sigma.dtype, device=sigma.device).expand_as(flat)
    for _ in range(iters):
        cube = projection @ projection @ projection
        projection = torch.baddbmm(projection, cube, sigma_n, beta=1.5, alpha=-0.5)
    return (projection / trace.sqrt()).reshape(sigma.shape)


def cholesky_matrix(sigma: Tensor) -> Tensor:
    """``L^-T`` with Sigma = L L^T, so that ``obs @ L^-T`` (rows ``L^-1 x_i``) is white (W-MSE)."""
    lower, info = torch.linalg.cholesky_ex(sigma)
    if info.any():  # not positive definite: e.g. a batch of identical (or constant) samples, whose covariance is 0
        raise ZooError(
            "cholesky whitening failed: a (sub-)batch's covariance is singular (identical or constant samples, or "
            "fewer independent samples than features); check the data, or shrink it with method.eps > 0"
        )
    eye = torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device)
    return torch.linalg.solve_triangular(lower, eye, upper=False).mT


def power_matrix(sigma: Tensor, power: float = 0.5, rotate_back: bool = True) -> Tensor:
    """``U diag(lambda^-power) U^T`` (``rotate_back=False``: ``U diag(lambda^-power)``, PCA).

    power = 1/2 is ZCA whitening (CW-RGP); other powers are INTL's spectral
    transformation family. ``eigh`` replaces the official SVD (the same result
    on a symmetric positive-definite Sigma, at a fraction of the cost).
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    scaled = eigenvectors * eigenvalues.pow(-power).unsqueeze(-2)
    if rotate_back:
        return scaled @ eigenvectors.mT
    return scaled.flip(-1)  # PCA components largest first, in the SVD's order


def whitening_matrix(sigma: Tensor, kind: Kind, *, iters: int = 4, power: float = 0.5) -> Tensor:
    """W(Sigma) for every kind, batched over leading dimensions; apply as ``obs @ W``."""
    if kind == "iternorm":
        return iternorm_matrix(sigma, iters)
    if kind == "cholesky":
        return cholesky_matrix(sigma)
    if kind == "zca":
        return power_matrix(sigma, 0.5)
    if kind == "pca":
        return power_matrix(sigma, 0.5, rotate_back=False)
    if kind == "power":
        if power == 0:
            # g(lambda) = 1 is the identity; eigh's backward is NaN on repeated eigenvalues even here.
            return torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device).expand_as(sigma)
        return power_matrix(sigma, power)
    raise ZooError(f"kind={kind!r} is not a whitening; use one of {KINDS}")


# ---------------------------------------------------------------------------
# Spectral objectives: running covariance, log-determinant and its series, nuclear and Frobenius norms,
# the matrix logarithm's series and von Neumann entropy (CorInfoMax, MEC, MMCR, FroSSL, Matrix-SSL, SSOLE,
# I-VNE+). Each is batched over leading dimensions (views).
# ---------------------------------------------------------------------------


@float32_math
def running_covariance(
    x: Tensor, mean: Tensor, cov: Tensor, *, mean_forgetting: float, cov_forgetting: float
) -> tuple[Tensor, Tensor]:
    """Exponentially weighted mean and covariance of the D features of x (..., N, D), with gradients to x.

    With the forgetting factors (the weight of the past estimate)::

        mu <- mean_forgetting mu + (1 - mean_forgetting) mean_n x_n
        R  <- cov_forgetting R + (1 - cov_forgetting) 1/N sum_n (x_n - mu)(x_n - mu)^T   (the new mu)

    Returns the new (mean (..., D), cov (..., D, D)), in the dtype of the state when that is wider;
    detach them to carry them to the next step. CorInfoMax's estimates
    (serdarozsoy/corinfomax-ssl cifars-tiny/loss.py ``CovarianceLoss``).
    """
    new_mean = mean_forgetting * mean + (1 - mean_forgetting) * x.mean(dim=-2)
    batch_cov = covariance(x - new_mean.unsqueeze(-2), "batch", ddof=0, assume_centered=True)
    return new_mean, cov_forgetting * cov + (1 - cov_forgetting) * batch_cov


@float32_math
def log_det(matrix: Tensor, eps: float = 0.0) -> Tensor:
    """``log det(matrix + eps I)`` of symmetric positive-definite matrices (..., K, K) -> (...); NaN when not."""
    if eps:
        matrix = matrix + eps * torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    return torch.logdet(matrix)


@float32_math
def nuclear_norm(x: Tensor) -> Tensor:
    """The sum of the singular values of each matrix of x (..., M, K) -> (...)."""
    return torch.linalg.svdvals(x).sum(dim=-1)


@float32_math
def trace_normalized_gram(x: Tensor) -> Tensor:
    """``x^T x`` (D x D) when N > D, else ``x x^T`` (N x N), divided by its trace, for x (..., N, D).

    Both have the same non-zero eigenvalues, so the same trace and every spectral norm; the
    smaller is cheaper (FroSSL's choice). Centre x first for a covariance.
    """
    gram = x.mT @ x if x.shape[-2] > x.shape[-1] else x @ x.mT
    trace = gram.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
    return gram / trace[..., None, None]


@float32_math
def log_squared_frobenius(matrix: Tensor) -> Tensor:
    """``log ||matrix||_F^2`` of each matrix (..., M, K) -> (...); of a trace-normalised covariance it is
    minus its order-2 Renyi entropy."""
    return matrix.pow(2).sum(dim=(-2, -1)).log()


@float32_math
def von_neumann_entropy(x: Tensor) -> Tensor:
    """The von Neumann entropy of the autocorrelation of the L2-normalised rows of x (..., N, D) -> (...).

    With Z the rows of x scaled to unit norm, rho = Z^T Z / N (D x D, trace 1) and lambda_j its eigenvalues::

        S(rho) = - sum_j lambda_j log lambda_j

    The eigenvalues are the squared singular values of Z / sqrt(N), the min(N, D) of them the smaller of
    Z^T Z and Z Z^T has; an eigenvalue that is exactly 0 adds nothing (the official nansum), though its gradient
    is NaN there, as the official code's. S ranges from 0 (every row on one direction) to log min(N, D) (the
    eigenvalues all equal). jaeill/CVPR23-VNE vne/__init__.py ``get_vne``: its SVD form, which its commented
    eigh form equals.
    """
    z = F.normalize(x, dim=-1)
    eigenvalues = torch.linalg.svdvals(z / math.sqrt(z.shape[-2])).pow(2)
    return -(eigenvalues * eigenvalues.log()).nansum(dim=-1)


@float32_math
def log_det_series(a: Tensor, b: Tensor, order: int = 4) -> Tensor:
    """``tr sum_{k=1}^{order} (-1)^(k+1) (a b^T)^k / k`` for a, b (..., N, D) -> (...): the order-``order``
    Taylor series of ``log det(I + a b^T)``, which converges when the spectral radius of a b^T is below 1.

    tr((a b^T)^k) = tr((b^T a)^k), so the powers are taken of the smaller of the N x N and D x D products
    (MEC's official code forms the N x N one; the traces are the same).
    """
    if order < 1:
        raise ZooError(f"log_det_series needs order >= 1, got {order}; MEC's official order is 4")
    product = a @ b.mT if a.shape[-2] <= a.shape[-1] else b.mT @ a
    power, total = product, product.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
    for k in range(2, order + 1):
        power = power @ product
        total = total + (-1) ** (k + 1) * power.diagonal(dim1=-2, dim2=-1).sum(dim=-1) / k
    return total



@float32_math
def matrix_log_series(matrix: Tensor, order: int = 4) -> Tensor:
    """``sum_{k=1}^{order} (-1)^(k+1) (Q - I)^k / k`` for square matrices Q (..., K, K): the order-``order``
    Taylor series of the matrix logarithm log Q around the identity, which converges when the spectral radius
    of Q - I is below 1 (any Q, symmetric or not; no eigen-decomposition).

    Matrix-SSL's matrix logarithm (yifanzhang-pro/Matrix-SSL main_pretrain.py ``matrix_log``), which its loss
    applies to covariances shifted by mu I.
    """
    if order < 1:
        raise ZooError(f"matrix_log_series needs order >= 1, got {order}; Matrix-SSL's official order is 4")
    shifted = matrix - torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
    power, total = shifted, shifted
    for k in range(2, order + 1):
        power = power @ shifted
        total = total + ((-1) ** (k + 1) / k) * power
    return total


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def check_whitening(
    kind: str, axis: str, batch_size: int, dim: int, groups: int = 1, w_size: int | None = None, shrinkage: float = 0.0
) -> None:
    """Raise a one-line `ZooError` (a ValueError) for a whitening that cannot work.

    ``batch_size`` is the global batch (what gets whitened). An inverting
    whitening (cholesky, zca, pca, power) needs a full-rank covariance: on the
    batch axis a sub-batch of w_size centred samples spans at most w_size - 1
    dimensions, so it needs w_size > D/groups; on the channel axis a sample
    centred over its D/groups channels spans at most D/groups - 1, so it needs
    w_size <= D/groups - 1. IterNorm never inverts and is exempt, and so is a covariance
    shrunk towards the identity (``shrinkage`` = eps + ridge of `whiten` > 0), full rank at any shape.
    """
    if kind not in KINDS:
        raise ZooError(f"kind={kind!r} is not a whitening; use one of {KINDS}")
    _check_axis(axis)
    if groups < 1 or dim % groups:
        divisors = [g for g in range(1, dim + 1) if dim % g == 0][:6]
        raise ZooError(f"groups={groups} does not divide the embedding dim {dim}; use a divisor of {dim} such as {divisors}")
    w_size = batch_size if w_size is None else w_size
    if w_size < 2:
        raise ZooError(f"whitening needs at least 2 samples per (sub-)batch, got w_size={w_size}; use a larger one")
    if batch_size % w_size:
        divisors = [w for w in range(batch_size, 1, -1) if batch_size % w == 0][:4]
        raise ZooError(
            f"w_size={w_size} does not divide the (global) batch of {batch_size} samples; "
            f"use a divisor of {batch_size} such as {divisors}"
        )
    if kind not in INVERTING_KINDS or shrinkage > 0:
        return
    per_group = dim // groups
    if axis == "batch" and w_size <= per_group:
        raise ZooError(
            f"{kind} whitening on axis='batch' is rank-deficient: sub-batches of w_size={w_size} samples "
            f"cannot whiten {per_group} features per group; use w_size > {per_group}, more groups, or kind='iternorm'"
        )
    if axis == "channel" and per_group - 1 < w_size:
        raise ZooError(
            f"{kind} whitening on axis='channel' is rank-deficient: {per_group} channels per group "
            f"cannot whiten w_size={w_size} samples; use w_size <= {per_group - 1}, fewer groups, or kind='iternorm'"
        )


# ---------------------------------------------------------------------------
# The batched transform
# ---------------------------------------------------------------------------


def _draw_permutations(
    w_iter: int,
    n_samples: int,
    n_sub: int,
    n_views: int,
    dim: int,
    shuffle_channels: bool,
    generator: torch.Generator | None,
    device: torch.device,
    distributed: bool = True,
) -> tuple[Tensor | None, Tensor | None]:
    """Random sub-batch and channel-group partitions, drawn in the official order.

    As in W-MSE / CW-RGP's loops: per whitening iteration one sample
    permutation shared by all views, then one channel permutation per
    (sub-batch, view). A permutation that cannot change the result (a single
    sub-batch, a single group) is not drawn. Returns (w_iter, N) and
    (w_iter, n_sub, n_views, D) index tensors, identical on every rank.
    """
    sample_perms, channel_perms = [], []
    for _ in range(w_iter):
        if n_sub > 1:
            sample_perms.append(torch.randperm(n_samples, generator=generator))
        if shuffle_channels:
            draws = [torch.randperm(dim, generator=generator) for _ in range(n_sub * n_views)]
            channel_perms.append(rearrange(torch.stack(draws), "(s v) d -> s v d", s=n_sub))
    share = functools.partial(_same_on_every_rank, device=device) if distributed else (lambda t: t.to(device))
    sample_perm = share(torch.stack(sample_perms)) if sample_perms else None
    channel_perm = share(torch.stack(channel_perms)) if channel_perms else None
    return sample_perm, channel_perm


def _take_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[..., index[...], :]``: the rows of every matrix of x (..., R, C) reordered by its own index (..., R).

    One ``index_select`` on the flattened rows, whose backward is an
    ``index_add``: much cheaper than advanced indexing or gather on CPU.
    """
    rows, cols = x.shape[-2:]
    offsets = torch.arange(0, index.numel(), rows, device=index.device).view(*index.shape[:-1], 1)
    return x.reshape(-1, cols).index_select(0, (index + offsets).flatten()).view(*index.shape, cols)


@float32_math
def whiten(
    x: Tensor,
    kind: Kind,
    axis: Axis = "batch",
    *,
    iters: int = 4,
    power: float = 0.5,
    eps: float = 0.0,
    groups: int = 1,
    w_size: int | None = None,
    w_iter: int = 1,
    shuffle_groups: bool = True,
    generator: torch.Generator | None = None,
    distributed: bool = True,
    ridge: float = 0.0,
    detach_matrix: bool = False,
    ddof: int = 1,
    return_statistics: bool = False,
) -> Tensor | tuple[Tensor, Tensor, Tensor]:
    """Whiten ``x`` of shape (..., N, D) (leading dims: views); returns (w_iter, ..., N_global, D).

    * ``groups``: the D features are split into groups whitened independently;
      with ``shuffle_groups`` the partition is a fresh random permutation per
      (sub-batch, view), as CW-RGP's random group partition.
    * ``w_size``: the global batch is split into random sub-batches of w_size
      samples (shared by all views, as W-MSE), whitened independently;
      None = the whole batch. ``w_iter`` repeats this with fresh permutations.
    * ``eps``: shrinkage Sigma <- (1 - eps) Sigma + eps I; ``ridge``: then Sigma <- Sigma + ridge I
      (every eigenvalue raised by ridge, as Zero-CL's official ``1 / sqrt(S + 0.01)``, its CIFAR script's + 1e-5).
    * ``detach_matrix``: W(Sigma) is a constant in the backward, the gradient flows through
      ``obs @ W`` only (Zero-CL's official code detaches its ZCA matrix).
    * ``ddof``: the covariance is ``obs^T obs / (m - ddof)`` over the m observations of a (sub-)batch
      (1: the unbiased estimate, W-MSE / CW-RGP; 0: Zero-CL's ImageNet-100 code, / m, and IterNorm as a layer,
      huangleiBuaa/IterNorm, the whitening layer).
    * ``iters``: Newton steps of IterNorm; ``power``: p of the power transform.
    * ``return_statistics``: also return the batch's mean (w_iter, ..., D) and whitening matrix
      (w_iter, ..., groups, D/groups, D/groups), with gradients, such that the output is
      `apply_whitening` (x, mean, matrix): what a layer keeps running averages of. Only on the batch axis,
      without random sub-batches or group partitions (a single partition has statistics to keep).

    Each sample keeps its position in the output. Under torch.distributed the
    input is the local batch and the output the whitened global batch (rank r's
    rows at r*N_local...). Random draws use ``generator`` (default: torch's
    global one) and are broadcast from rank 0. ``distributed=False`` treats
    ``x`` as the whole batch on every rank (no collective). No Python loop runs over
    sub-batches, groups or views: they are batch dimensions of one linalg call.
    """
    # Axes: i whitening iteration (w_iter), v view (the leading dims, flattened), s sub-batch,
    # m sample within a sub-batch (w_size), n = (s m) sample, d = (g c) feature, g group, c feature in a group.
    lead_shape = x.shape[:-2]
    # Checked before the collective so that every rank fails alike instead of hanging.
    ranks = world_size() if distributed else 1
    check_whitening(kind, axis, x.shape[-2] * ranks, x.shape[-1], groups, w_size, shrinkage=eps + ridge)
    if return_statistics and (axis != "batch" or (w_size or x.shape[-2] * ranks) != x.shape[-2] * ranks
                              or (groups > 1 and shuffle_groups)):
        raise ZooError("whiten(return_statistics=True) keeps one mean and matrix per view: use axis='batch', "
                       "no sub-batches (w_size=None) and fixed groups (shuffle_groups=False)")
    if distributed:
        x = gather(x, dim=-2)
    n_samples, dim = x.shape[-2:]
    w_size = n_samples if w_size is None else w_size
    n_sub = n_samples // w_size
    x = rearrange(x, "... n d -> (...) n d")
    n_views = x.shape[0]

    sample_perm, channel_perm = _draw_permutations(
        w_iter, n_samples, n_sub, n_views, dim, groups > 1 and shuffle_groups, generator, x.device, distributed
    )
    # (i v n d); torch's expand, not einops' repeat (unsqueeze + expand): one autograd node, as before,
    # so that the backward runs (and a parameter's gradient accumulates over crops) in the same order
    x = x.expand(w_iter, -1, -1, -1)
    if sample_perm is not None:  # the samples in sub-batch order, the same order for every view
        x = _take_rows(x, repeat(sample_perm, "i n -> i v n", v=n_views))
    # the channel perms are indexed by (sub-batch, view)
    x = rearrange(x, "i v (s m) d -> i s v m d", s=n_sub)
    mean = x.mean(dim=-2) if return_statistics else None  # (i s v d): what `center` removes on the batch axis
    x = center(x, axis)
    # features as rows, in the random group order; then split into the groups
    features = rearrange(x, "i s v m d -> i s v d m")
    if channel_perm is not None:
        features = _take_rows(features, channel_perm)
    features = rearrange(features, "i s v (g c) m -> i s v g c m", g=groups)

    # no re-centring per group: on the channel axis each sample is centred over all D channels, as officially
    sigma = covariance(rearrange(features, "... c m -> ... m c"), axis, ddof=ddof, assume_centered=True)
    if eps:
        eye = torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device)
        sigma = (1 - eps) * sigma + eps * eye
    if ridge:
        sigma = sigma + ridge * torch.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device)
    matrix = whitening_matrix(sigma, kind, iters=iters, power=power)
    if detach_matrix:
        matrix = matrix.detach()
    # obs @ W with obs = features^T (batch axis) or features (channel axis), kept as features x samples
    white = matrix.mT @ features if axis == "batch" else features @ matrix
    white = rearrange(white, "i s v g c m -> i s v (g c) m")
    if channel_perm is not None:
        white = _take_rows(white, channel_perm.argsort(dim=-1))
    white = rearrange(white, "i s v d m -> i v (s m) d")
    if sample_perm is not None:
        white = _take_rows(white, repeat(sample_perm.argsort(dim=-1), "i n -> i v n", v=n_views))
    white = white.reshape(w_iter, *lead_shape, n_samples, dim)  # the views' own leading dims back
    if not return_statistics:
        return white
    # one sub-batch (s = 1); rows of the output are (x - mean) @ matrix, group by group (`apply_whitening`)
    return (white, mean.reshape(w_iter, *lead_shape, dim),
            matrix.reshape(w_iter, *lead_shape, groups, dim // groups, dim // groups))


@float32_math
def apply_whitening(x: Tensor, mean: Tensor, matrix: Tensor) -> Tensor:
    """``(x - mean) @ W`` with W block-diagonal: x (..., N, D), mean (D,), matrix (groups, D/groups, D/groups),
    the i-th group of D/groups consecutive features multiplied by matrix[i]. With the statistics `whiten`
    returns (``return_statistics=True``) it is `whiten`'s output; with running averages of them, the whitening
    of a layer in eval mode."""
    groups, size, _ = matrix.shape
    centred = (x - mean).unflatten(-1, (groups, size))
    return torch.einsum("...gc,gcd->...gd", centred, matrix).flatten(-2)


def default_trade_off(axis: Axis, batch_size: int, dim: int) -> float:
    """INTL's trace-loss weight: 0.01 (log2 N - 3) on the channel axis, 0.01 (log2 D - 3) on the batch axis.

    ``batch_size`` is the global batch (INTL's cfg.bs). winci-ai/INTL methods/base.py.
    """
    _check_axis(axis)
    return (math.log2(batch_size if axis == "channel" else dim) - 3) * 0.01

