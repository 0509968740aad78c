"""I-VNE+: the loss and the von Neumann entropy against the official code's numbers (float64), their precision
under autocast, two gloo ranks, and the method.

tests/fixtures/ivne_reference.json holds what jaeill/CVPR23-VNE computed (the file names the commit and how it
was called): the I-VNE+ loss lines of examples/i-vne+/train_ivne_imagenet100.py on concatenated views with
vne/__init__.py's get_vne, its value and gradient per view, and get_vne of each view in both of its forms.
`reference_inputs.scaled_views` draws the same inputs again.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from gloo_ranks import run_on_gloo_ranks
from method_settings import TEST_RESNET, small_config
from reference_inputs import rel_err, scaled_views

from zoo.errors import ZooError
from zoo.losses.spectral_family import ivne_loss
from zoo.methods.ivne import IVNE
from zoo.registry import create_method
from zoo.spectral import von_neumann_entropy

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "ivne_reference.json").read_text())
CASES = OFFICIAL["cases"]
WORLD_SIZE = 2


# ---- the official numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['views']}views-{c['n']}x{c['d']}")
def test_the_loss_and_its_gradients_are_the_official_training_step(case):
    views = scaled_views(case["seed"], case["views"], case["n"], case["d"])
    total, parts = ivne_loss(*views, alpha_1=case["alpha_1"], alpha_2=case["alpha_2"], return_parts=True)
    total.backward()
    assert total.dtype == torch.float64
    assert total.item() == pytest.approx(case["loss"], rel=1e-12)
    assert parts["invariance"].item() == pytest.approx(-case["alpha_1"] * case["cossim"], rel=1e-12)
    assert parts["entropy"].item() == pytest.approx(-case["alpha_2"] * case["entropy"], rel=1e-12)
    for view, grad in zip(views, case["grads"]):
        assert rel_err(view.grad, torch.tensor(grad, dtype=torch.float64)) < 1e-10


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['views']}views-{c['n']}x{c['d']}")
def test_the_entropy_and_its_gradient_are_the_official_get_vne(case):
    views = torch.stack([v.detach() for v in scaled_views(case["seed"], case["views"], case["n"], case["d"])])
    entropies = von_neumann_entropy(views)  # batched over the views
    torch.testing.assert_close(entropies, torch.tensor(case["entropies"], dtype=torch.float64), rtol=1e-12, atol=0)
    torch.testing.assert_close(entropies, torch.tensor(case["entropies_eigh"], dtype=torch.float64), rtol=1e-12, atol=0)
    (single,) = scaled_views(case["seed"], 1, case["n"], case["d"])
    von_neumann_entropy(single).backward()
    assert rel_err(single.grad, torch.tensor(case["first_view_entropy_grad"], dtype=torch.float64)) < 1e-10


def test_the_entropy_spans_zero_to_log_rank():
    assert von_neumann_entropy(torch.eye(5, 8, dtype=torch.float64)).item() == pytest.approx(math.log(5), rel=1e-12)
    assert von_neumann_entropy(torch.eye(5, dtype=torch.float64).repeat(2, 1)).item() == pytest.approx(math.log(5), rel=1e-12)
    one_direction = torch.randn(1, 6, dtype=torch.float64).repeat(10, 1) * torch.rand(10, 1, dtype=torch.float64)
    assert von_neumann_entropy(one_direction).item() == pytest.approx(0.0, abs=1e-12)


def test_the_entropy_runs_in_float32_without_tf32_under_autocast(monkeypatch):
    """Under bf16 autocast, with the run's "high" matmul precision (TF32 on a GPU), the singular values are taken of
    a float32 matrix at "highest" precision, and the entropy equals the float32 one."""
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(0)).bfloat16()
    expected = von_neumann_entropy(x.float())
    seen = []
    svdvals = torch.linalg.svdvals
    monkeypatch.setattr(torch.linalg, "svdvals", lambda a: seen.append((a.dtype, torch.get_float32_matmul_precision())) or svdvals(a))
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            entropy = von_neumann_entropy(x)
            loss = ivne_loss(x, x.flip(0))
    finally:
        torch.set_float32_matmul_precision(before)
    assert entropy.dtype == torch.float32 and loss.dtype == torch.float32
    assert seen == [(torch.float32, "highest")] * 2
    torch.testing.assert_close(entropy, expected, rtol=1e-6, atol=0)


def test_the_loss_refuses_a_single_view():
    with pytest.raises(ZooError, match="ivne_loss needs at least 2 views"):
        ivne_loss(torch.randn(4, 3))


# ---- two gloo processes -----------------------------------------------------------------------------------
def _single_process():
    views = scaled_views(11, 4, 12, 5)
    total = ivne_loss(*views, alpha_1=3.0, alpha_2=0.7)
    total.backward()
    return [v.detach() for v in views], total.detach(), [v.grad for v in views]


def _worker(rank, single):
    views, expected, grads = single
    n = views[0].shape[0] // WORLD_SIZE
    rows = slice(rank * n, (rank + 1) * n)
    local = [v[rows].clone().requires_grad_() for v in views]
    total = ivne_loss(*local, alpha_1=3.0, alpha_2=0.7)
    total.backward()
    assert total.item() == pytest.approx(expected.item(), rel=1e-12), rank
    for view, grad in zip(local, grads):  # world_size x the single process's, which DDP's mean undoes
        assert rel_err(view.grad, WORLD_SIZE * grad[rows]) < 1e-10, rank


def test_two_gloo_ranks_give_the_loss_of_the_global_batch():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_single_process)


# ---- the method -------------------------------------------------------------------------------------------
def test_the_defaults_are_the_official_code():
    config = IVNE.Config()
    assert (config.proj_hidden, config.proj_out, config.alpha_1, config.alpha_2) == (None, 256, 4.16, 1.0)
    assert IVNE.optimizer_defaults == {"name": "sgd", "lr": 0.4, "scale_lr": True, "weight_decay": 1e-4, "momentum": 0.9,
                                       "exclude_bias_and_norm": True}
    model = create_method("ivne", {}, **TEST_RESNET)
    width = model.feature_dim
    layers = [(type(layer).__name__, getattr(layer, "out_features", None)) for layer in model.projector]
    assert layers == [("Linear", width), ("BatchNorm1d", None), ("ReLU", None), ("Linear", width), ("BatchNorm1d", None),
                      ("ReLU", None), ("Linear", 256), ("BatchNorm1d", None)]
    assert all(layer.bias is not None for layer in model.projector if isinstance(layer, torch.nn.Linear))
    assert model.projector[-1].affine


def test_a_step_is_the_loss_of_each_runs_projections():
    """Two large and two small crops: one backbone and one projector call per size, the loss of their outputs."""
    torch.manual_seed(0)
    config = small_config("ivne")
    model = create_method("ivne", config, **{**TEST_RESNET, "crop_sizes": (16, 16, 8, 8)}).double()
    reference = create_method("ivne", config, **{**TEST_RESNET, "crop_sizes": (16, 16, 8, 8)}).double()
    reference.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(1)
    crops = [torch.randn(8, 3, s, s, generator=gen, dtype=torch.float64) for s in (16, 16, 8, 8)]
    (total, parts), features = model.compute_loss(crops)
    projections = [p for run in (crops[:2], crops[2:]) for p in reference.projector(reference.backbone(torch.cat(run))).split(8)]
    assert total.item() == pytest.approx(ivne_loss(*projections).item(), rel=1e-12)
    assert set(parts) == {"invariance", "entropy"} and len(features) == 2
