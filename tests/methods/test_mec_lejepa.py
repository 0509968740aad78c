"""MEC and LeJEPA as methods: a multi-crop training step."""

import functools

import pytest
import torch
from method_settings import TINY_8, narrow_config
from method_settings import crops as crops_of_16

from zoo.registry import create_method

crops = functools.partial(crops_of_16, batch=TINY_8["global_batch_size"])


@pytest.mark.parametrize("name, parts", [("mec", set()), ("lejepa", {"prediction", "sigreg"})])
def test_a_training_step_gives_a_finite_loss_and_gradients(name, parts):
    torch.manual_seed(0)
    model = create_method(name, narrow_config(name), **{**TINY_8, "crop_sizes": (16, 16, 8)})  # multi-crop
    loss, features = model.compute_loss(crops(2) + crops(1, size=8, seed=1))
    loss, named = model.split_loss(loss)
    assert loss.ndim == 0 and torch.isfinite(loss) and set(named) == parts
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert len(features) == 2 and features[0].shape == (8, model.feature_dim)  # the probe sees the 16 px crops
