"""Label-free health metrics of embeddings: RankMe, alpha-ReQ, LiDAR and whitening residuals.

Pure functions of an embedding (N, D) (LiDAR: n samples x q views x D), computed in float64 (so never in TF32).
Each returns a `Measure`: the value, or None with the reason it cannot be computed (too few samples, a
non-finite embedding); they never raise on such input and never return NaN.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from zoo.metrics.spectrum import singular_values

RANKME_EPS = 1e-7  # Garrido et al. 2023
LIDAR_DELTA = 1e-4  # Thilak et al. 2024 (the regulariser of the within-sample covariance)
LIDAR_EPS = 1e-8  # Thilak et al. 2024 (the entropy's epsilon)
# alpha-ReQ fit range, 1-based ranks: the alpha-ReQ authors' code (reptrix/alpha.py, fit_range=np.arange(5, 100))
# leaves out the 5 largest eigenvalues (the head bends away from the power law) and stops at rank 100 (the tail
# falls under sampling noise); short spectra stop at their last attainable eigenvalue.
ALPHA_FIRST_RANK, ALPHA_LAST_RANK = 6, 100


class Measure(NamedTuple):
    value: float | None
    reason: str | None = None  # why `value` is None


def unusable(features, min_samples):
    """Why `features` cannot give a metric (fewer than `min_samples` rows, non-finite values), or None."""
    if features.dim() < 2 or features.shape[-1] < 1:
        return f"expected samples x features, got shape {tuple(features.shape)}"
    if len(features) < min_samples:
        return f"{len(features)} samples, at least {min_samples} needed"
    if not torch.isfinite(features).all():
        return "non-finite values in the embedding"
    return None


def exp_entropy(weights, eps):
    """exp(-sum_k p_k log p_k) with p_k = w_k / ||w||_1 + eps: the smooth rank shared by RankMe and LiDAR."""
    p = weights / weights.abs().sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def rankme(features, eps=RANKME_EPS):
    """RankMe = exp(-sum_k p_k log p_k), p_k = s_k / ||s||_1 + eps, s the singular values of the (N, D)
    embedding matrix as it is (not centred), eps = 1e-7.

    Source: Garrido, Balestriero, Najman, LeCun, "RankMe: Assessing the downstream performance of pretrained
    self-supervised representations by their rank", ICML 2023, Eq. 1 (no official code file was found; checked
    against the paper's formula in numpy, tests/fixtures/health_reference.json).

    Not `zoo.metrics.spectrum.effective_rank` (Roy & Vetterli 2007) of the covariance eigenvalues: those are the
    squared singular values of the *centred* embedding / (N - 1), so the entropy weights differ (s_k^2 vs s_k)
    and the mean direction counts here; both are kept."""
    if reason := unusable(features, 2):
        return Measure(None, reason)
    return rankme_of_singular_values(singular_values(features), eps)


def rankme_of_singular_values(singular, eps=RANKME_EPS):
    """`rankme` of an embedding given its singular values (e.g. `zoo.metrics.spectrum.Moments.singular_values`,
    from running sums of features that are not kept)."""
    if not torch.isfinite(singular).all():
        return Measure(None, "non-finite values in the embedding")
    if singular.sum() <= 0:
        return Measure(None, "all-zero embedding")
    return Measure(exp_entropy(singular.double(), eps))


@torch.no_grad()
def alpha_req(eigenvalues, first=ALPHA_FIRST_RANK, last=ALPHA_LAST_RANK):
    """alpha of the power law lambda_k ~ k^-alpha: minus the slope of the ordinary least-squares line through
    (log k, log lambda_k) for the ranks k = first..min(last, len(eigenvalues)) of the descending covariance
    eigenvalues (pass `zoo.metrics.spectrum.covariance_eigenvalues(features)`, the attainable ones).

    Source: Agrawal, Mondal, Ghosh, Richards, "alpha-ReQ: Assessing representation quality in self-supervised
    learning by measuring eigenspectrum decay", NeurIPS 2022; the range follows the authors' code
    (github.com/arnab39/reptrix, reptrix/alpha.py, fit_range np.arange(5, 100)), which weights the points by
    1/k where this fit does not."""
    eigenvalues = eigenvalues.double()
    if eigenvalues.dim() != 1 or not torch.isfinite(eigenvalues).all():
        return Measure(None, "non-finite eigenvalues")
    fitted = eigenvalues[first - 1:last]
    if len(fitted) < 3:  # a slope through two points has no residual to judge it by
        return Measure(None, f"{len(eigenvalues)} eigenvalues, at least {first + 2} needed for ranks {first}..{last}")
    if (fitted <= 0).any():
        return Measure(None, f"zero eigenvalues within ranks {first}..{first + len(fitted) - 1} (a collapsed spectrum)")
    log_k = torch.arange(first, first + len(fitted), dtype=torch.float64, device=fitted.device).log()
    log_k, log_lambda = log_k - log_k.mean(), fitted.log() - fitted.log().mean()
    return Measure(float(-(log_k * log_lambda).sum() / (log_k * log_k).sum()))


@torch.no_grad()
def lidar(views, delta=LIDAR_DELTA, eps=LIDAR_EPS):
    """LiDAR = exp(-sum_i p_i log p_i), p_i = lambda_i / ||lambda||_1 + eps, lambda the eigenvalues of the LDA
    matrix Sigma_w^-1/2 Sigma_b Sigma_w^-1/2 of `views` (n samples, q views, D):
    Sigma_b = 1/(n-1) sum_x (mu_x - mu)(mu_x - mu)^T over the per-sample means mu_x (mu their mean),
    Sigma_w = 1/(n(q-1)) sum_x sum_i (e_xi - mu_x)(e_xi - mu_x)^T + delta I, delta = 1e-4, eps = 1e-8.

    Source: Thilak, Huang, Littwin, Saremi, Susskind, Ramapuram, "LiDAR: Sensing linear probing performance in
    joint embedding SSL architectures", ICLR 2024 (no official code file was found; checked against the
    paper's formula in numpy, tests/fixtures/health_reference.json).

    With fewer views than dimensions (n q < D: a 2048-wide projector), the eigenvalues come from n x n and
    nq x nq matrices instead of D x D ones (`_lda_eigenvalues_in_sample_space`): the same numbers (the LDA
    matrix has rank n - 1 at most; its D - n zero eigenvalues enter the entropy as the eps terms they are), at a
    fraction of the cost."""
    if views.dim() != 3:
        return Measure(None, f"expected samples x views x features, got shape {tuple(views.shape)}")
    if views.shape[1] < 2:
        return Measure(None, f"{views.shape[1]} view per sample, at least 2 needed")
    if reason := unusable(views, 2):
        return Measure(None, reason)
    n, q, dim = views.shape
    x = views.double()
    means = x.mean(dim=1)
    between = (means - means.mean(dim=0)).T / math.sqrt(n - 1)  # D x n: Sigma_b = between @ between.T
    spread = (x - means[:, None]).reshape(n * q, -1).T / math.sqrt(n * (q - 1))  # D x nq: Sigma_w = spread @ spread.T + delta I
    if n * q < dim:
        eigenvalues = _lda_eigenvalues_in_sample_space(between, spread, delta)
    else:
        w, vectors = torch.linalg.eigh(spread @ spread.T + delta * torch.eye(dim, dtype=x.dtype, device=x.device))
        inv_sqrt = vectors @ torch.diag(w.rsqrt()) @ vectors.T
        lda = inv_sqrt @ between @ between.T @ inv_sqrt
        eigenvalues = torch.linalg.eigvalsh((lda + lda.T) / 2)  # symmetric up to rounding
    eigenvalues = eigenvalues.clamp_min(0)
    if eigenvalues.sum() <= 0:
        return Measure(None, "every sample has the same mean embedding")
    p = eigenvalues / eigenvalues.sum() + eps
    zeros = dim - len(eigenvalues)  # the LDA matrix's eigenvalues left out, exactly zero: p = eps each
    return Measure(float(torch.exp(-(p * p.log()).sum() - zeros * eps * math.log(eps))))


def _lda_eigenvalues_in_sample_space(between, spread, delta):
    """The n largest eigenvalues of Sigma_w^-1/2 B B^T Sigma_w^-1/2, Sigma_w = S S^T + delta I (B: D x n, S: D x m,
    m < D), without a D x D matrix: they are the eigenvalues of B^T Sigma_w^-1 B (n x n), and with the
    orthonormal basis U of S's column space (S^T S = V diag(s) V^T, U = S V diag(s)^-1/2),
    Sigma_w^-1 = U diag(1 / (s + delta)) U^T + (I - U U^T) / delta."""
    s, v = torch.linalg.eigh(spread.T @ spread)
    keep = s > s.max().clamp_min(0) * 1e-12  # the per-sample centring leaves n null directions (and rounding)
    basis = spread @ (v[:, keep] * s[keep].rsqrt())  # D x r, orthonormal columns
    inside = basis.T @ between  # r x n
    outside = between - basis @ inside  # D x n: B's part orthogonal to the views' spread
    reduced = inside.T @ (inside / (s[keep] + delta)[:, None]) + outside.T @ outside / delta
    return torch.linalg.eigvalsh((reduced + reduced.T) / 2)


LIDAR_KEYS = ("lidar", "projector_lidar")


@torch.no_grad()
def lidar_of_views(encode, chunks):
    """`lidar` of the backbone features and of the projector outputs of augmented views, by name (`LIDAR_KEYS`).
    `encode`: images (B, C, H, W) -> (features, projections); `chunks` yields views (n_b, q, C, H, W), q views of
    each of n_b images (`zoo.data.views.AugmentedViews.batches`)."""
    features, projections = [], []
    for chunk in chunks:
        n, q = chunk.shape[:2]
        h, z = encode(chunk.flatten(0, 1))
        features.append(h.detach().float().reshape(n, q, -1).cpu())
        projections.append(z.detach().float().reshape(n, q, -1).cpu())
    if not features:
        return dict.fromkeys(LIDAR_KEYS, Measure(None, "no images to draw views of"))
    return {"lidar": lidar(torch.cat(features)), "projector_lidar": lidar(torch.cat(projections))}


@torch.no_grad()
def off_diagonal_correlation(features):
    """Mean |corr(z_i, z_j)| over feature pairs i != j: 0 for a whitened embedding. Features with zero
    variance (dead units) have no correlation and are left out."""
    if reason := unusable(features, 2):
        return Measure(None, reason)
    x = features.double()
    x = x[:, x.std(dim=0) > 0]
    if x.shape[1] < 2:
        return Measure(None, f"{x.shape[1]} features with non-zero variance, at least 2 needed")
    corr = torch.corrcoef(x.T)
    d = len(corr)
    return Measure(float((corr.abs().sum() - corr.diagonal().abs().sum()) / (d * (d - 1))))


@torch.no_grad()
def feature_std(features):
    """(min, mean) over features of each feature's std over samples, as two Measures: a whitened embedding
    has every std 1, a dead or collapsed feature 0."""
    if reason := unusable(features, 2):
        return Measure(None, reason), Measure(None, reason)
    std = features.double().std(dim=0)
    return Measure(float(std.min())), Measure(float(std.mean()))


@torch.no_grad()
def collapse_indicator(outputs):
    """sqrt(D) * mean_j std_n(z_nj / ||z_n||): about 1 for outputs spread over the sphere, 0 when they collapse
    to one point. Source: Chen & He, "Exploring simple Siamese representation learning", CVPR 2021, Sec. 4.1."""
    if reason := unusable(outputs, 2):
        return Measure(None, reason)
    return Measure(float(F.normalize(outputs.double(), dim=1).std(dim=0).mean() * math.sqrt(outputs.shape[1])))


HEALTH_KEYS = ("rankme", "alpha_req", "projector_rankme", "projector_alpha_req", "projector_offdiag_correlation",
               "projector_min_std", "projector_mean_std")


def health(backbone, projections, backbone_eigs, projector_eigs):
    """The metrics logged at each validation, by name (`HEALTH_KEYS`): RankMe and alpha-ReQ of the backbone
    features and of the projector outputs (the eigenvalues: their `covariance_eigenvalues`, computed once by the
    caller), and the projector outputs' whitening residuals. LiDAR needs several views per image, which
    validation does not have: `lidar_of_views` computes it on augmented views (`zoo.data.views`)."""
    std_min, std_mean = feature_std(projections)
    return {
        "rankme": rankme(backbone),
        "alpha_req": alpha_req(backbone_eigs),
        "projector_rankme": rankme(projections),
        "projector_alpha_req": alpha_req(projector_eigs),
        "projector_offdiag_correlation": off_diagonal_correlation(projections),
        "projector_min_std": std_min,
        "projector_mean_std": std_mean,
    }
