"""Shuffled-DBN: its transform whitens the first group, a rank-deficient group is refused."""

import pytest
import torch
from method_settings import TINY

from zoo.errors import ZooError
from zoo.registry import create_method
from zoo.spectral import covariance


def test_shuffled_dbn_transform_whitens_its_first_group():
    model = create_method("shuffled_dbn", {"proj_hidden": [64], "proj_out": 32, "groups": 4}, **TINY)
    white, axis = model.transform(torch.randn(16, 32, dtype=torch.float64))
    assert axis == "batch" and white.shape == (16, 8)
    assert torch.allclose(covariance(white, "batch"), torch.eye(8, dtype=torch.float64), atol=1e-8)
    with pytest.raises(ZooError, match="rank-deficient"):  # 16 samples cannot whiten groups of 16 features
        create_method("shuffled_dbn", {"proj_hidden": [64], "proj_out": 32, "groups": 2}, **TINY)
