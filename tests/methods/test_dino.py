"""DINO: the official head (the teacher averages its last layer too) and the centre of the teacher's outputs."""

import functools

import torch
from method_settings import TINY_8, solo_learn_narrow
from method_settings import crops as crops_of_16
from torch import nn

from zoo.registry import create_method
from zoo.train.harness import Pretrainer

crops = functools.partial(crops_of_16, batch=TINY_8["global_batch_size"])


def test_dino_head_is_the_officials_and_the_teacher_averages_its_last_layer_too():
    model = create_method("dino", solo_learn_narrow("dino"), **TINY_8)
    head = model.projector
    assert [type(layer) for layer in head.mlp] == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    linears = [layer for layer in head.mlp if isinstance(layer, nn.Linear)]
    assert all(not layer.bias.any() and abs(layer.weight.std() - 0.02) < 0.002 for layer in linears)  # trunc. normal
    assert torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(24))
    norm, direction = head.last_layer.parametrizations.weight.original0, head.last_layer.parametrizations.weight.original1
    assert not norm.requires_grad and direction.requires_grad
    assert all(norm is not p for g in Pretrainer(model, num_classes=10).param_groups() for p in g["params"])
    learnt = create_method("dino", {**solo_learn_narrow("dino"), "norm_last_layer": False, "proj_hidden_bn": True}, **TINY_8)
    assert learnt.projector.last_layer.parametrizations.weight.original0.requires_grad
    assert nn.BatchNorm1d in [type(layer) for layer in learnt.projector.mlp]
    with torch.no_grad():
        direction.add_(1.0)
    model.target.update(0.5)  # the teacher's last layer is half-way to the student's
    target = model.target.projector.last_layer.parametrizations.weight.original1
    assert torch.allclose(target, direction - 0.5)
    assert head(torch.randn(4, model.feature_dim)).shape == (4, 16)  # the projector's output: the bottleneck


def test_dino_centres_the_teacher_and_keeps_the_centre_in_the_state_dict():
    torch.manual_seed(0)
    model = create_method("dino", {**solo_learn_narrow("dino"), "center_momentum": 0.7}, **{**TINY_8, "crop_sizes": (16, 8, 16)})
    assert model.center.shape == (1, 24) and not model.center.any()
    batch = [crops(1)[0], crops(1, size=8, seed=1)[0], crops(1, seed=2)[0]]
    loss, features = model.compute_loss(batch)
    assert torch.isfinite(loss) and len(features) == 2  # the probe sees the two 16 px crops
    with torch.no_grad():
        teacher = [model.target.projector.logits(model.target(batch[t])) for t in (0, 2)]
    # teacher BN in training mode: the same batches give the same logits, so the centre is 0.3 x their mean
    assert torch.allclose(model.center, 0.3 * torch.cat(teacher).mean(dim=0, keepdim=True), atol=1e-6)
    fresh = create_method("dino", {**solo_learn_narrow("dino"), "center_momentum": 0.7}, **{**TINY_8, "crop_sizes": (16, 8, 16)})
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.center, model.center) and fresh.center.any()
