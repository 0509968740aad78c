"""DCL and DCLW (zoo/methods/dcl.py, dclw.py): the loss against the numbers third-party code computed (the authors
published none), the methods' loss on their projections, and their defaults.

tests/fixtures/dcl_reference.json holds float64 inputs with what lightly-ai/lightly's DCLLoss / DCLWLoss computed
from them (loss, both inputs' gradients), and what raminnakhli/Decoupled-Contrastive-Learning's DCL / DCLW computed as
its training script calls them; its "source" field names the commits."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from method_settings import TINY, small_config

from zoo.losses import dcl_loss, nt_xent_loss
from zoo.methods.simclr import SimCLR
from zoo.registry import create_method
from zoo.train.harness import Pretrainer

REPO = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((REPO / "tests" / "fixtures" / "dcl_reference.json").read_text())


def tensor(values, grad=False):
    return torch.tensor(values, dtype=torch.float64).requires_grad_(grad)


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: f"tau{c['temperature']}-sigma{c['sigma']}")
def test_the_loss_and_its_gradients_are_lightlys(case):
    z1, z2 = tensor(case["z1"], True), tensor(case["z2"], True)
    loss = dcl_loss(z1, z2, temperature=case["temperature"], sigma=case["sigma"])
    loss.backward()
    assert abs(loss.item() - case["loss"]) < 1e-12
    assert torch.allclose(z1.grad, tensor(case["z1_grad"]), rtol=0, atol=1e-12)
    assert torch.allclose(z2.grad, tensor(case["z2_grad"]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: f"tau{c['temperature']}-sigma{c['sigma']}")
def test_raminnakhlis_loss_is_twice_the_zoos_and_lets_the_weight_carry_gradient(case):
    """Its training script sums the two directions: twice the value, and for DCL twice the gradient (its masked
    entries add e^-103.6 terms, far below float64's resolution here). Its DCLW weight is not detached, so the
    gradients differ from the zoo's (lightly's) by the weight's own derivative."""
    z1, z2 = tensor(case["z1"], True), tensor(case["z2"], True)
    loss = dcl_loss(z1, z2, temperature=case["temperature"], sigma=case["sigma"])
    loss.backward()
    assert abs(2 * loss.item() - case["raminnakhli_loss"]) < 1e-12
    theirs = tensor(case["raminnakhli_z1_grad"])
    if case["sigma"] is None:
        assert torch.allclose(2 * z1.grad, theirs, rtol=0, atol=1e-12)
    else:
        assert (2 * z1.grad - theirs).abs().max() > 1e-3


def test_the_positive_pair_is_out_of_the_denominator():
    """DCL is NT-Xent less the positive's term in the log-sum-exp: for a batch whose positives are far apart (each
    e^s(z, z') is tiny) the two agree; pulled together, DCL's loss falls below NT-Xent's by log(1 + e^s / sum)."""
    gen = torch.Generator().manual_seed(0)
    z1 = F.normalize(torch.randn(6, 4, generator=gen, dtype=torch.float64), dim=1)
    for z2, close in ((-z1, True), (z1, False)):
        dcl, nt_xent = dcl_loss(z1, z2, temperature=0.1), nt_xent_loss(z1, z2, temperature=0.1)
        assert (abs(dcl.item() - nt_xent.item()) < 1e-6) == close
        assert dcl.item() <= nt_xent.item()


def test_dclw_weights_the_pairs_that_agree_less():
    """w_i = 2 - N softmax(z_i . z'_i / sigma): equal agreement gives w = 1 (DCL's loss); sigma -> infinity too."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    assert torch.allclose(dcl_loss(z, 2 * z, sigma=0.5), dcl_loss(z, z))
    z2 = torch.randn(8, 5, generator=gen, dtype=torch.float64)
    assert torch.allclose(dcl_loss(z, z2, sigma=1e9), dcl_loss(z, z2))
    assert not torch.allclose(dcl_loss(z, z2, sigma=0.5), dcl_loss(z, z2))


@pytest.mark.parametrize("name", ["dcl", "dclw"])
def test_the_method_takes_the_loss_of_its_projections(name):
    torch.manual_seed(0)
    model = create_method(name, small_config(name), **TINY).double()
    crops = [torch.randn(16, 3, 16, 16, dtype=torch.float64) for _ in range(2)]
    torch.manual_seed(1)
    out = model.forward_loss(crops)
    torch.manual_seed(1)
    sigma = {"dcl": None, "dclw": 0.5}[name]
    expected = dcl_loss(*model.project(model.encode(crops)), temperature=0.1, sigma=sigma)
    assert torch.allclose(out.total, expected, rtol=1e-12)
    assert len(out.features) == 2


def test_the_defaults_are_simclrs_with_the_papers_temperature_and_sigma():
    for name in ("dcl", "dclw"):
        model = create_method(name, crop_sizes=(32, 32), global_batch_size=256, backbone="resnet18")
        assert isinstance(model, SimCLR) and model.num_views == 2
        linears = [tuple(layer.weight.shape) for layer in model.projector if isinstance(layer, torch.nn.Linear)]
        assert linears == [(2048, 512), (2048, 2048), (128, 2048)]
        assert model.joint_backbone and model.joint_projector and model.mcfg.temperature == 0.1
        optimizer = Pretrainer(model, num_classes=0).optimizer_cfg
        assert (optimizer.name, optimizer.lr, optimizer.weight_decay) == ("lars_google", 0.3, 1e-4)
    assert model.mcfg.sigma == 0.5
