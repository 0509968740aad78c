"""The spectrum diagnostics every run logs: eigenvalues, effective rank, condition number."""

import torch

from zoo.metrics.spectrum import condition_number, covariance_eigenvalues, effective_rank


def test_fewer_samples_than_dimensions_keep_only_the_attainable_eigenvalues():
    features = torch.randn(10, 50, generator=torch.Generator().manual_seed(0))
    eigs = covariance_eigenvalues(features)
    assert len(eigs) == 9  # 10 centred samples span 9 dimensions
    # The structural zeros would make this ~1e12; Gaussian samples are well conditioned in their span.
    assert condition_number(eigs) < 100


def test_isotropic_features_have_full_rank_and_unit_condition():
    features = torch.randn(20_000, 8, generator=torch.Generator().manual_seed(0))
    eigs = covariance_eigenvalues(features)
    assert len(eigs) == 8 and torch.all(eigs[:-1] >= eigs[1:])
    assert abs(effective_rank(eigs) - 8) < 0.01
    assert condition_number(eigs) < 1.2


def test_collapsed_features_are_ill_conditioned_with_rank_near_one():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(200, 1, generator=g) * torch.randn(1, 32, generator=g) + 1e-4 * torch.randn(200, 32, generator=g)
    eigs = covariance_eigenvalues(features)
    assert effective_rank(eigs) < 1.01
    assert condition_number(eigs) > 1e4
