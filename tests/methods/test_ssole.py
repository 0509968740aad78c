"""SSOLE (zoo/methods/ssole.py): its loss against the numbers the official code computed, the method's step (every
crop through backbone and projector as one batch), its defaults, float32 maths under autocast, and the global
batch on two gloo processes.

tests/fixtures/ssole_reference.json holds float64 inputs (the projector's outputs, images x views x features) with
what husthuaan/ssole's ssole_loss gave for them after the encoder's L2 normalisation (the file's "source" says how)."""

import json
from pathlib import Path

import pytest
import torch
from gloo_ranks import run_on_gloo_ranks
from method_settings import TEST_RESNET, narrow_config

from zoo.errors import ZooError
from zoo.losses.spectral_family import ssole_loss
from zoo.methods.ssole import SSOLE
from zoo.registry import create_method
from zoo.train.harness import Pretrainer

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "ssole_reference.json").read_text())["cases"]
WORLD_SIZE = 2


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("case", OFFICIAL, ids=lambda c: f"b{c['batch']}v{c['views']}d{c['d']}")
def test_the_loss_its_terms_and_the_gradient_are_the_official_codes(case):
    raw = tensor(case["raw"]).requires_grad_()  # (images, views, d), as the official encoder stacks them
    total, parts = ssole_loss(*raw.unbind(dim=1), lambd=case["lambd"], gamma=case["gamma"], return_parts=True)
    total.backward()
    assert total.dtype == torch.float64 and abs(total.item() - case["loss"]) < 1e-10
    assert abs(parts["low_rank"].item() - case["loss_low"]) < 1e-10
    assert abs(parts["high_rank"].item() - case["lambd"] * case["loss_high"]) < 1e-10
    assert torch.allclose(raw.grad, tensor(case["grad"]), rtol=0, atol=1e-10)


def test_the_mean_of_the_views_is_constant_in_the_backward():
    """The official code detaches each image's mean view: with it differentiated the gradient differs."""
    case = OFFICIAL[0]
    raw = tensor(case["raw"]).requires_grad_()
    z = torch.nn.functional.normalize(raw, dim=-1)
    m = z.shape[1]
    low = torch.linalg.matrix_norm(z - z.mean(dim=1, keepdim=True), ord="nuc").pow(2).mean() / (m - 1) ** 2
    (grad,) = torch.autograd.grad(low, raw)
    assert abs(low.item() - case["loss_low"]) < 1e-10
    _, parts = ssole_loss(*raw.unbind(dim=1), lambd=case["lambd"], gamma=case["gamma"], return_parts=True)
    (official,) = torch.autograd.grad(parts["low_rank"], raw)
    assert not torch.allclose(grad, official, atol=1e-6)


def test_float32_maths_under_autocast_and_bad_input_is_one_error():
    views = [torch.randn(16, 8, dtype=torch.bfloat16) for _ in range(3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ssole_loss(*views).dtype == torch.float32
    with pytest.raises(ZooError, match="ssole_loss needs at least 2 views"):
        ssole_loss(views[0])


def test_a_step_batches_every_crop_and_takes_the_loss_of_the_projections():
    torch.manual_seed(0)
    model = create_method("ssole", narrow_config("ssole"), **{**TEST_RESNET, "crop_sizes": (16,) * 4}).double()
    crops = [torch.randn(8, 3, 16, 16, dtype=torch.float64) for _ in range(4)]
    (total, parts), features = model.compute_loss(crops)
    with torch.no_grad():  # BN in train mode: the four crops' statistics together, as the official (B x crops) batch
        reference = model.projector(model.backbone(torch.cat(crops))).split(8)
    m = model.mcfg
    assert torch.allclose(total, ssole_loss(*reference, lambd=m.lambd, gamma=m.gamma), rtol=1e-10)
    assert torch.allclose(total, sum(parts.values()), rtol=1e-12) and set(parts) == {"low_rank", "high_rank"}
    total.backward()
    assert all(p.grad is not None for p in model.projector.parameters())
    assert len(features) == 4 and features[0].shape == (8, model.feature_dim)


def test_its_defaults_are_the_official_codes():
    """configs/ssole_imagenet100_m4.yaml and train.py: projector 3 Linear layers of 4096 with biases, ReLU, no BN;
    lambda_ 0.6, gamma 0.5; SGD lr 2.0 unscaled, weight decay 1e-5 off the 1-D parameters."""
    config = SSOLE.Config()
    assert (config.proj_hidden, config.proj_out, config.proj_hidden_bn) == ([4096, 4096], 4096, False)
    assert (config.proj_hidden_bias, config.proj_last_bias, config.proj_last_bn) == (True, True, False)
    assert (config.lambd, config.gamma) == (0.6, 0.5)
    assert SSOLE.optimizer_defaults == {"name": "sgd", "lr": 2.0, "scale_lr": False, "weight_decay": 1e-5,
                                        "exclude_bias_and_norm": True}
    assert (SSOLE.num_views, SSOLE.joint_backbone, SSOLE.joint_projector) == (None, True, True)
    model = create_method("ssole", narrow_config("ssole"), **TEST_RESNET)
    assert [type(layer).__name__ for layer in model.projector] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert all(layer.bias is not None for layer in model.projector if isinstance(layer, torch.nn.Linear))
    groups = Pretrainer(model, num_classes=10).param_groups()  # the method's optimizer_defaults
    undecayed = {id(p) for g in groups if g.get("weight_decay") == 0.0 for p in g["params"]}
    assert all((id(p) in undecayed) == (p.ndim == 1) for p in model.projector.parameters())


# ---- two gloo processes: the loss of the global batch, the local gradient world_size x the single-process one ----
def _single_process():
    case = OFFICIAL[0]
    raw = tensor(case["raw"]).requires_grad_()
    value = ssole_loss(*raw.unbind(dim=1), lambd=case["lambd"], gamma=case["gamma"])
    value.backward()
    return raw, value.detach(), raw.grad


def _worker(rank, single):
    full, expected_value, expected_grad = single
    case = OFFICIAL[0]
    rows = slice(rank * 8, (rank + 1) * 8)
    local = full.detach()[rows].clone().requires_grad_()
    value = ssole_loss(*local.unbind(dim=1), lambd=case["lambd"], gamma=case["gamma"])
    value.backward()
    assert abs(value.item() - expected_value.item()) < 1e-10, rank
    assert torch.allclose(local.grad, WORLD_SIZE * expected_grad[rows], rtol=0, atol=1e-10), rank


def test_two_gloo_ranks_reproduce_the_single_process_loss_and_gradient():
    assert OFFICIAL[0]["batch"] == 8 * WORLD_SIZE
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_single_process)
