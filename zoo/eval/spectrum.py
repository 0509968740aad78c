"""Eigenvalue spectrum of embeddings: the covariance's eigenvalues and the effective rank."""

import torch


@torch.no_grad()
def covariance_eigenvalues(features):
    """The min(D, N - 1) eigenvalues (descending, float64) that the covariance of `features` (N, D) can have
    non-zero: the rest are zero by construction (centred N samples span N - 1 dimensions), not a collapse."""
    x = features.double()
    x = x - x.mean(dim=0, keepdim=True)
    cov = x.T @ x / max(len(x) - 1, 1)
    return torch.linalg.eigvalsh(cov).flip(0).clamp_min(0)[: max(min(x.shape[1], len(x) - 1), 1)]


def effective_rank(eigenvalues, eps=1e-12):
    """exp(entropy of the normalised eigenvalues) (Roy & Vetterli 2007; RankMe)."""
    p = eigenvalues / eigenvalues.sum().clamp_min(eps)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def condition_number(eigenvalues, eps=1e-12):
    """Largest over smallest eigenvalue (pass the attainable ones, as `covariance_eigenvalues` returns)."""
    return float(eigenvalues[0] / eigenvalues[-1].clamp_min(eps))
