"""LeJEPA's loss: SIGReg (sketched isotropic Gaussian regularisation by the Epps-Pulley statistic of
random 1-D projections) and the prediction of the global views' centroid.

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
from zoo.spectral import float32_math, world_size

__all__ = ["epps_pulley", "lejepa_loss", "random_slices", "sigreg_loss"]


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
    check_views(views, "lejepa_loss")
    if not 1 <= global_views <= len(views) or not 0 <= lambd <= 1:
        raise ZooError(f"lejepa_loss needs 1 <= global_views <= {len(views)} and 0 <= lambd <= 1, "
                       f"got {global_views} and {lambd}")
    z = torch.stack(views)
    centroid = z[:global_views].mean(dim=0)
    prediction = (1 - lambd) * global_mean((centroid - z).square().mean(dim=(0, 2)))
    sigreg = lambd * sigreg_loss(z, directions, t_max=t_max, points=points)
    return total_or_parts((prediction + sigreg, {"prediction": prediction, "sigreg": sigreg}), return_parts)
