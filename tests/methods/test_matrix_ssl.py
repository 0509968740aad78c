"""Matrix-SSL (zoo/methods/matrix_ssl.py): its loss against the numbers the official code computed, the method's
step (the two crossed pairs, the teacher without gradients), its defaults, float32 maths under autocast, the
teacher's state through a checkpoint, and the global batch on two gloo processes.

tests/fixtures/matrix_ssl_reference.json holds float64 inputs with what yifanzhang-pro/Matrix-SSL's mce_loss_func
and its training step's loss gave for them (the file's "source" says how they were called)."""

import json
from pathlib import Path

import pytest
import torch
from gloo_ranks import run_on_gloo_ranks
from method_settings import TEST_RESNET, narrow_config

from zoo.errors import ZooError
from zoo.losses.spectral_family import matrix_ssl_loss
from zoo.methods.matrix_ssl import MatrixSSL
from zoo.nn import EMA, components
from zoo.registry import create_method
from zoo.spectral import matrix_log_series
from zoo.train.harness import Pretrainer

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "matrix_ssl_reference.json").read_text())["cases"]
WORLD_SIZE = 2


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


def settings(case):
    return {k: case[k] for k in ("lambd", "mu", "gamma", "order")}


@pytest.mark.parametrize("case", OFFICIAL, ids=lambda c: f"n{c['n']}d{c['d']}o{c['order']}")
def test_each_term_and_its_gradients_are_the_official_codes(case):
    """mce_loss_func(p, z, correlation=True) is the uniformity, correlation=False the alignment (gamma-weighted
    here), each with the gradients to both branches."""
    for name in ("uniformity", "alignment"):
        target, prediction = tensor(case["p2"]).requires_grad_(), tensor(case["z1"]).requires_grad_()
        _, parts = matrix_ssl_loss(target, prediction, **settings(case), return_parts=True)
        value = parts[name] / (case["gamma"] if name == "alignment" else 1.0)
        value.backward()
        expected = case["pair"][name]
        assert value.dtype == torch.float64 and abs(value.item() - expected["value"]) < 1e-10, name
        assert torch.allclose(target.grad, tensor(expected["target_grad"]), rtol=0, atol=1e-10), name
        assert torch.allclose(prediction.grad, tensor(expected["prediction_grad"]), rtol=0, atol=1e-10), name


@pytest.mark.parametrize("case", OFFICIAL, ids=lambda c: f"n{c['n']}d{c['d']}o{c['order']}")
def test_the_training_steps_loss_and_gradients_are_the_official_codes(case):
    """train(): 0.5 (U(p2, z1) + U(p1, z2) + gamma (A(p2, z1) + A(p1, z2))), the teacher's projections detached."""
    z1, z2 = tensor(case["z1"]).requires_grad_(), tensor(case["z2"]).requires_grad_()
    loss = (matrix_ssl_loss(tensor(case["p2"]), z1, **settings(case))
            + matrix_ssl_loss(tensor(case["p1"]), z2, **settings(case))) / 2
    loss.backward()
    assert abs(loss.item() - case["loss"]) < 1e-10
    assert torch.allclose(z1.grad, tensor(case["z1_grad"]), rtol=0, atol=1e-10)
    assert torch.allclose(z2.grad, tensor(case["z2_grad"]), rtol=0, atol=1e-10)


def test_the_logarithms_series_converges_to_the_logarithm_and_runs_in_float32():
    gen = torch.Generator().manual_seed(0)
    half = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    q = torch.eye(6, dtype=torch.float64) + 0.3 * (half @ half.mT) / (half @ half.mT).norm(2)  # spectrum in [1, 1.3]
    values, vectors = torch.linalg.eigh(q)
    exact = vectors @ torch.diag(values.log()) @ vectors.mT
    errors = [(matrix_log_series(q, order) - exact).norm().item() for order in (1, 2, 4, 8)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert matrix_log_series(q.float().bfloat16(), 4).dtype == torch.float32
        views = [torch.randn(16, 8, dtype=torch.bfloat16) for _ in range(2)]
        assert matrix_ssl_loss(*views).dtype == torch.float32
    with pytest.raises(ZooError, match="matrix_log_series needs order >= 1"):
        matrix_log_series(q, 0)


def test_a_step_crosses_the_crops_and_the_teacher_gets_no_gradient():
    torch.manual_seed(0)
    model = create_method("matrix_ssl", narrow_config("matrix_ssl"), **TEST_RESNET).double()
    crops = [torch.randn(8, 3, 16, 16, dtype=torch.float64) for _ in range(2)]
    (total, parts), features = model.compute_loss(crops)
    predictions = [model.predictor(model.projector(model.backbone(c))) for c in crops]  # train mode: per-crop BN
    with torch.no_grad():
        targets = [model.target(c) for c in crops]
    m = model.mcfg
    expected = (matrix_ssl_loss(targets[1], predictions[0], lambd=m.lambd, mu=m.mu, gamma=m.gamma, order=m.order)
                + matrix_ssl_loss(targets[0], predictions[1], lambd=m.lambd, mu=m.mu, gamma=m.gamma, order=m.order)) / 2
    assert torch.allclose(total, expected, rtol=1e-10) and torch.allclose(total, sum(parts.values()), rtol=1e-12)
    total.backward()
    assert all(p.grad is None for p in model.target.parameters())
    assert all(p.grad is not None for p in model.predictor.parameters())
    assert len(features) == 2 and features[0].shape == (8, model.feature_dim)


def test_its_defaults_and_architecture_are_the_official_codes():
    """main_pretrain.py's argument defaults and builder.py's MEC model: projector 2048-2048-2048 (no hidden bias, BN
    everywhere, the last without affine, its bias frozen), predictor 512; teacher 0.996 -> 1 after each step."""
    config = MatrixSSL.Config()
    assert (config.proj_hidden, config.proj_out, config.pred_hidden) == ([2048, 2048], 2048, 512)
    assert (config.lambd, config.mu, config.gamma, config.order) == (0.5, 0.5, 1.0, 4)
    assert (config.momentum_base, config.momentum_final) == (0.996, 1.0)
    assert MatrixSSL.optimizer_defaults == {"name": "sgd", "lr": 0.5, "weight_decay": 1e-5}
    assert (MatrixSSL.num_views, MatrixSSL.joint_backbone, MatrixSSL.joint_projector) == (2, False, False)
    model = create_method("matrix_ssl", narrow_config("matrix_ssl"), **TEST_RESNET)
    layers = [type(layer).__name__ for layer in model.projector]
    assert layers == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert model.projector[0].bias is None and not model.projector[-1].affine and not model.projector[-2].bias.requires_grad
    (target,) = [c for c in components(model) if isinstance(c, EMA)]
    assert (target.timing, target.base, target.final) == ("after_step", 0.996, 1.0)
    optimised = {id(p) for group in Pretrainer(model, num_classes=10).param_groups() for p in group["params"]}
    assert all(id(p) in optimised for p in model.predictor.parameters())
    assert not any(id(p) in optimised for p in model.target.parameters())
    with pytest.raises(ZooError, match="matrix_ssl needs order >= 1"):
        create_method("matrix_ssl", {**narrow_config("matrix_ssl"), "order": 0}, **TEST_RESNET)


def test_the_teacher_is_restored_from_a_checkpoint():
    """The teacher's weights (moved away from the online ones) are buffers of the state dict: a model loaded
    from it gives the same loss, and a fresh one (teacher = online) does not."""
    torch.manual_seed(0)
    model = create_method("matrix_ssl", narrow_config("matrix_ssl"), **TEST_RESNET).double()
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.target.update(0.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert any(k.startswith("target.") for k in state)
    crops = [torch.randn(8, 3, 16, 16, dtype=torch.float64) for _ in range(2)]
    model.eval()
    reference = model.compute_loss(crops)[0][0]
    restored = create_method("matrix_ssl", narrow_config("matrix_ssl"), **TEST_RESNET).double()
    restored.load_state_dict(state)
    restored.eval()
    assert torch.allclose(restored.compute_loss(crops)[0][0], reference, rtol=1e-12)
    fresh = create_method("matrix_ssl", narrow_config("matrix_ssl"), **TEST_RESNET).double()
    fresh.load_state_dict({k: v for k, v in state.items() if not k.startswith("target.")}, strict=False)
    fresh.eval()
    assert not torch.allclose(fresh.compute_loss(crops)[0][0], reference, rtol=1e-6)


# ---- two gloo processes: the loss of the global batch, the local gradient world_size x the single-process one ----
def _single_process():
    case = OFFICIAL[0]
    inputs = [tensor(case[k]).requires_grad_() for k in ("p2", "z1")]
    value = matrix_ssl_loss(*inputs, **settings(case))
    value.backward()
    return inputs, value.detach(), [t.grad for t in inputs]


def _worker(rank, single):
    full, expected_value, expected_grads = single
    rows = slice(rank * 8, (rank + 1) * 8)
    local = [t.detach()[rows].clone().requires_grad_() for t in full]
    value = matrix_ssl_loss(*local, **settings(OFFICIAL[0]))
    value.backward()
    assert abs(value.item() - expected_value.item()) < 1e-10, rank
    for part, whole in zip(local, expected_grads):
        assert torch.allclose(part.grad, WORLD_SIZE * whole[rows], rtol=0, atol=1e-10), rank


def test_two_gloo_ranks_reproduce_the_single_process_loss_and_gradients():
    assert OFFICIAL[0]["n"] == 8 * WORLD_SIZE
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_single_process)
