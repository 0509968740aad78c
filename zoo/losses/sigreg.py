"""The sketching losses: LeJEPA's SIGReg (sketched isotropic Gaussian regularisation by the Epps-Pulley
statistic of random 1-D projections) and VISReg's variance + sliced-Wasserstein sketching, each with the
prediction of the global views' centroid.

Projector outputs of shape (N, D) in, a scalar out, with `zoo.losses`' conventions: float32 maths also
inside autocast (float64 stays float64), and under torch.distributed every rank passes its local batch
and gets the loss of the global batch, its input gradient world_size x the single-process one. SIGReg's
empirical characteristic function is averaged over the ranks by an all-reduce that carries gradients
(its backward sums every rank's gradient), so each rank's samples get the gradient of the global
statistic, as the official code's ``torch.distributed.nn.all_reduce``.
"""

import torch
from torch import Tensor

from zoo.errors import ZooError
from zoo.losses.shared import check_views, global_mean, mean_over_ranks, total_or_parts
from zoo.spectral import float32_math, gather, world_size

__all__ = ["epps_pulley", "gaussian_quantiles", "lejepa_loss", "random_slices", "sigreg_loss", "visreg_loss",
           "visreg_terms"]


def random_slices(dim: int, num_slices: int, seed: int, *, device=None, dtype=torch.float32) -> Tensor:
    """(dim, num_slices) random unit directions, one per column: standard Gaussian draws of a generator
    seeded with ``seed`` (the official code seeds with its step counter, so every rank draws the same
    directions and every step new ones), each column divided by its norm. The draw is float32, then cast.
    rbalestr-lab/lejepa lejepa/multivariate/slicing.py ``SlicingUnivariateTest.forward``."""
    if dim < 1 or num_slices < 1:
        raise ZooError(f"random_slices needs dim >= 1 and num_slices >= 1, got {dim} and {num_slices}")
    generator = torch.Generator(device=device or "cpu").manual_seed(int(seed))
    directions = torch.randn(dim, num_slices, generator=generator, device=device)
    return (directions / directions.norm(dim=0)).to(dtype)


def _quadrature(t_max: float, points: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(t, exp(-t^2/2), trapezoid weights x exp(-t^2/2)) on [0, t_max]: the integral over [-t_max, t_max]
    of an even integrand is twice that over [0, t_max], so the inner weights are 2 dt and the ends dt."""
    if t_max <= 0 or points < 3 or points % 2 == 0:
        raise ZooError(f"epps_pulley needs t_max > 0 and an odd number of points >= 3, got {t_max} and {points}; "
                       "the official 3 and 17")
    t = torch.linspace(0, t_max, points, dtype=like.dtype, device=like.device)
    step = t_max / (points - 1)
    weights = torch.full_like(t, 2 * step)
    weights[[0, -1]] = step
    gaussian_cf = (-t.square() / 2).exp()
    return t, gaussian_cf, weights * gaussian_cf


@float32_math
def epps_pulley(x: Tensor, *, t_max: float = 3.0, points: int = 17) -> Tensor:
    """The Epps-Pulley statistic of each column of x (..., N, K) against a standard Gaussian -> (..., K)::

        T = N int_{-t_max}^{t_max} |phi_N(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt,   phi_N(t) = mean_n exp(i t x_n)

    by the trapezoid rule on ``points`` points, N the global batch: under torch.distributed the means
    of cos(t x) and sin(t x) (the real and imaginary parts of phi_N) are averaged over the ranks.
    rbalestr-lab/lejepa lejepa/univariate/epps_pulley.py ``EppsPulley`` (t_max 3, 17 points, trapezoid).
    """
    t, gaussian_cf, weights = _quadrature(t_max, points, x)
    x_t = x.unsqueeze(-1) * t  # (..., N, K, points)
    # one collective for both parts; every rank must hold the same N
    ecf = mean_over_ranks(torch.stack([x_t.cos().mean(dim=-3), x_t.sin().mean(dim=-3)]))
    error = (ecf[0] - gaussian_cf).square() + ecf[1].square()
    return error @ weights * (x.shape[-2] * world_size())


@float32_math
def sigreg_loss(x: Tensor, directions: Tensor, *, t_max: float = 3.0, points: int = 17) -> Tensor:
    """SIGReg (Balestriero & LeCun, 2025): the Epps-Pulley statistic (`epps_pulley`) of the projections of
    x (..., N, D) on each unit direction of ``directions`` (D, K) (`random_slices`), averaged over the
    directions and the leading dimensions (views: each view's batch tested on its own).
    rbalestr-lab/lejepa lejepa/multivariate/slicing.py ``SlicingUnivariateTest`` (reduction "mean")."""
    if x.ndim < 2 or directions.ndim != 2 or directions.shape[0] != x.shape[-1]:
        raise ZooError(f"sigreg_loss needs x (..., N, D) and directions (D, K), got {tuple(x.shape)} "
                       f"and {tuple(directions.shape)}")
    return epps_pulley(x @ directions.to(x.dtype), t_max=t_max, points=points).mean()


def _centroid_prediction(views: tuple[Tensor, ...], global_views: int, lambd: float, name: str) -> tuple[Tensor, Tensor]:
    """The JEPA views checked and stacked, z (V, n, D), and the prediction term of loss ``name``:
    (1 - lambd) x the mean over the views v, the global batch i and the features d of (c_id - z_vid)^2, with c
    the mean of the first ``global_views`` views (gradients flow through it)."""
    check_views(views, name)
    if not 1 <= global_views <= len(views) or not 0 <= lambd <= 1:
        raise ZooError(f"{name} needs 1 <= global_views <= {len(views)} and 0 <= lambd <= 1, "
                       f"got {global_views} and {lambd}")
    z = torch.stack(views)
    centroid = z[:global_views].mean(dim=0)
    return z, (1 - lambd) * global_mean((centroid - z).square().mean(dim=(0, 2)))


@float32_math
def lejepa_loss(
    *views: Tensor,
    global_views: int,
    directions: Tensor,
    lambd: float = 0.02,
    t_max: float = 3.0,
    points: int = 17,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """LeJEPA (Balestriero & LeCun, 2025): every view's embedding predicts the centroid of the global
    views' embeddings, and SIGReg keeps each view's embeddings an isotropic Gaussian.

    ``views``, one (n, D) tensor per crop, the ``global_views`` global (largest) crops first; with
    c_i = mean over the global views g of z_gi (gradients flow through it, as officially) and V views::

        L = (1 - lambd) mean_{v, i, d} (c_id - z_vid)^2 + lambd mean_v SIGReg(z_v)

    (the first mean over the global batch). ``return_parts=True``: also ``{"prediction", "sigreg"}``, the
    two terms as weighted in L. rbalestr-lab/lejepa MINIMAL.md (``inv_loss``, ``sigreg_loss``, their
    weighting by ``lamb``); the centroid of the global views only is the paper's multi-crop form.
    """
    z, prediction = _centroid_prediction(views, global_views, lambd, "lejepa_loss")
    sigreg = lambd * sigreg_loss(z, directions, t_max=t_max, points=points)
    return total_or_parts((prediction + sigreg, {"prediction": prediction, "sigreg": sigreg}), return_parts)


def gaussian_quantiles(n: int, *, device=None, dtype=torch.float64) -> Tensor:
    """(n,) standard-normal quantiles Phi^-1(i / (n + 1)), i = 1..n: the sorted sample a batch of n would
    have if it were exactly N(0, 1) (computed in float64, then cast)."""
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    return torch.special.ndtri(ranks / (n + 1)).to(dtype)


@float32_math
def visreg_terms(
    x: Tensor, directions: Tensor, *, eps: float = 1e-4, detach_std: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """VISReg's regulariser of x (..., n, D), over the global batch of N rows (gathered under
    torch.distributed), as (scale, shape, centre), each averaged over the leading dimensions (views)::

        mu_j    = 1/N sum_i x_ij,   sigma_j = sqrt(1/N sum_i (x_ij - mu_j)^2)     (the batch's standard deviation)
        scale   = 1/D sum_j (1 - sigma_j)^2
        centre  = 1/D sum_j mu_j^2
        shape   = 1/(K N) sum_k sum_i (sort(y_k)_i - Phi^-1(i / (N + 1)))^2,   y_k = ((x - mu) / (sg(sigma) + eps)) w_k

    (Wu, Balestriero & Levine, 2026, Algorithm 1: the scale, shape and centring terms, Eqs. 1, 5 and 6, the
    shape term on the batch standardised by its standard deviation under a stop-gradient plus ``eps``,
    Eq. 2. The shape term is the squared sliced 2-Wasserstein distance to N(0, I) along the K unit
    directions w_k of ``directions`` (D, K), `random_slices`, each 1-D distance in closed form by sorting
    against fixed standard-normal quantiles.) ``detach_std=False`` lets the shape term's gradient through
    sigma as well. The variance is floored at the dtype's smallest normal number before its square root,
    so an exactly collapsed feature has a zero, not a NaN, gradient through sigma."""
    if x.ndim < 2 or directions.ndim != 2 or directions.shape[0] != x.shape[-1]:
        raise ZooError(f"visreg_terms needs x (..., n, D) and directions (D, K), got {tuple(x.shape)} "
                       f"and {tuple(directions.shape)}")
    x = gather(x, dim=-2)
    mean = x.mean(dim=-2, keepdim=True)
    centred = x - mean
    std = centred.square().mean(dim=-2, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny).sqrt()  # (..., 1, D)
    scale = (1 - std).square().mean(dim=(-2, -1))
    centre = mean.square().mean(dim=(-2, -1))
    standardised = centred / ((std.detach() if detach_std else std) + eps)
    projections = (standardised @ directions.to(x.dtype)).sort(dim=-2).values  # (..., N, K)
    quantiles = gaussian_quantiles(x.shape[-2], device=x.device, dtype=x.dtype).unsqueeze(-1)
    shape = (projections - quantiles).square().mean(dim=(-2, -1))
    return scale.mean(), shape.mean(), centre.mean()


@float32_math
def visreg_loss(
    *views: Tensor,
    global_views: int,
    directions: Tensor,
    lambd: float = 0.9,
    scale: float = 1.0,
    shape: float = 1.0,
    centre: float = 1.0,
    eps: float = 1e-4,
    detach_std: bool = True,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """VISReg (Wu, Balestriero & Levine, 2026) in LeJEPA's JEPA form: every view's embedding predicts the
    centroid of the global views' embeddings (`lejepa_loss`'s invariance term), and VISReg's regulariser
    (`visreg_terms`) replaces SIGReg on each view's global batch::

        L = (1 - lambd) mean_{v, i, d} (c_id - z_vid)^2
          + lambd mean_v (scale L_scale(z_v) + shape L_shape(z_v) + centre L_centre(z_v))

    (the paper's Algorithm 1 and Eq. 8, whose lambd is 0.9 on ImageNet-1K). ``views``: one (n, D) tensor per
    crop, the ``global_views`` global crops first. ``return_parts=True``: also ``{"prediction", "scale",
    "shape", "centre"}``, the terms as weighted in L (they sum to it)."""
    z, prediction = _centroid_prediction(views, global_views, lambd, "visreg_loss")
    scale_term, shape_term, centre_term = visreg_terms(z, directions, eps=eps, detach_std=detach_std)
    parts = {"prediction": prediction, "scale": lambd * scale * scale_term,
             "shape": lambd * shape * shape_term, "centre": lambd * centre * centre_term}
    total = parts["prediction"] + parts["scale"] + parts["shape"] + parts["centre"]
    return total_or_parts((total, parts), return_parts)
