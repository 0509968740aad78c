"""Eigenvalue spectrum of embeddings: the covariance's eigenvalues and the effective rank."""

import torch


@torch.no_grad()
def covariance_eigenvalues(features):
    """`attainable_eigenvalues` of the covariance of `features` (N, D), in float64."""
    x = features.double()
    x = x - x.mean(dim=0, keepdim=True)
    return attainable_eigenvalues(x.T @ x / max(len(x) - 1, 1), observations=len(x))


@torch.no_grad()
def attainable_eigenvalues(cov, observations):
    """The min(k, observations - 1) largest eigenvalues (descending) of a k x k covariance of centred
    observations: the rest are zero by construction (m centred samples span m - 1 dimensions), not a collapse."""
    keep = max(min(len(cov), observations - 1), 1)
    return torch.linalg.eigvalsh(cov).flip(0).clamp_min(0)[:keep]


def effective_rank(eigenvalues, eps=1e-12):
    """exp(entropy of the normalised eigenvalues) (Roy & Vetterli 2007). Of covariance eigenvalues, this is not
    RankMe, which takes the singular values of the uncentred embedding (`zoo.metrics.health.rankme`)."""
    p = eigenvalues / eigenvalues.sum().clamp_min(eps)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def condition_number(eigenvalues, eps=1e-12):
    """Largest over smallest eigenvalue (pass the attainable ones, as `covariance_eigenvalues` returns)."""
    return float(eigenvalues[0] / eigenvalues[-1].clamp_min(eps))
