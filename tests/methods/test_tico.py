"""TiCo (zoo/methods/tico.py): the loss and its running matrix against the numbers third-party code computed (the
authors published none), the step's order (the target moved first, only the first crop online), the running matrix
across a checkpoint and resume, and the defaults.

tests/fixtures/tico_reference.json holds float64 inputs with what lightly-ai/lightly's TiCoLoss computed from them over
two steps from a given C (loss, both inputs' gradients, C after each step), and what sayannag/TiCo-pytorch's TiCo_Loss
computed on the same steps; its "source" field names the commits."""

import copy
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from method_settings import TINY, small_config
from torch.utils.data import DataLoader

from zoo.losses.spectral_family import tico_loss
from zoo.nn import EMA, StepState, components
from zoo.registry import create_method
from zoo.train.harness import Pretrainer
from zoo.train.step import train_step

REPO = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((REPO / "tests" / "fixtures" / "tico_reference.json").read_text())


def tensor(values, grad=False):
    return torch.tensor(values, dtype=torch.float64).requires_grad_(grad)


@pytest.mark.parametrize("third_party", ["lightly", "sayannag"])
@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: f"beta{c['beta']}-rho{c['rho']}")
def test_two_steps_of_the_loss_and_running_matrix_are_the_third_party_codes(case, third_party):
    """lightly's TiCoLoss (the default: this batch's covariance a constant in the backward), and sayannag's TiCo_Loss
    (batch_cov_grad: the gradient through it too; its value has no leading 1)."""
    prefix, offset = ("", 0.0) if third_party == "lightly" else ("sayannag_", 1.0)
    cov = tensor(case["cov_before"])
    for step in case["steps"]:
        z1, z2 = tensor(step["z1"], True), tensor(step["z2"], True)
        loss, cov = tico_loss(z1, z2, cov, beta=case["beta"], rho=case["rho"], batch_cov_grad=third_party == "sayannag")
        loss.backward()
        assert abs(loss.item() - offset - step[prefix + "loss"]) < 1e-12
        assert torch.allclose(z1.grad, tensor(step[prefix + "z1_grad"]), rtol=0, atol=1e-12)
        assert torch.allclose(z2.grad, tensor(step[prefix + "z2_grad"]), rtol=0, atol=1e-12)
        assert torch.allclose(cov, tensor(step[prefix + "cov_after"]), rtol=0, atol=1e-14)
        assert not cov.requires_grad


def test_the_parts_sum_to_the_loss_and_the_matrix_shape_is_checked():
    z1, z2 = (torch.randn(6, 4, dtype=torch.float64) for _ in range(2))
    (total, parts), _ = tico_loss(z1, z2, torch.zeros(4, 4, dtype=torch.float64), return_parts=True)
    assert set(parts) == {"invariance", "covariance"}
    assert torch.allclose(parts["invariance"] + parts["covariance"], total)
    with pytest.raises(Exception, match="cov"):
        tico_loss(z1, z2, torch.zeros(3, 3, dtype=torch.float64))


def test_a_step_moves_the_target_first_and_updates_the_running_matrix():
    """Only the first crop goes through the online branch (its features feed the probe); the target of backbone and
    projector moves at the start of each step; the loss is tico_loss against the buffer, which then holds C'."""
    torch.manual_seed(0)
    model = create_method("tico", small_config("tico"), **TINY)
    (target,) = [c for c in components(model) if isinstance(c, EMA)]
    assert (target.timing, target.base, target.final) == ("before_forward", 0.99, 1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    gen = torch.Generator().manual_seed(0)
    for step in range(2):
        crops = [torch.randn(16, 3, 16, 16, generator=gen) for _ in range(2)]
        expected = copy.deepcopy(model)  # the step by hand: move the target, then the loss
        expected.target.update(target.momentum(step, 2))
        with torch.no_grad():
            loss, cov = tico_loss(expected.projector(expected.backbone(crops[0])), expected.target(crops[1]),
                                  expected.running_cov, beta=0.9, rho=8.0)
        out = train_step(model, (crops, torch.zeros(16, dtype=torch.long)), optimizer, None, StepState(step, 2))
        assert torch.allclose(out.loss, loss, atol=1e-6)
        assert torch.allclose(model.running_cov, cov, atol=1e-7) and model.running_cov.abs().sum() > 0
        assert len(out.features) == 1 and out.features[0].shape == (16, model.feature_dim)


# a constant momentum: the cosine's steps depend on the run's length, so max_steps would change them
CONSTANT_MOMENTUM = {**small_config("tico"), "momentum_base": 0.99, "momentum_final": 0.99}


def _fit(max_steps, ckpt_path=None):
    """TiCo on 2 fixed batches of 8 per epoch, constant lr and momentum (the same steps whatever max_steps)."""
    torch.manual_seed(0)
    model = create_method("tico", CONSTANT_MOMENTUM, **{**TINY, "global_batch_size": 8})
    harness = Pretrainer(model, num_classes=10, scheduler={"name": "constant", "warmup_epochs": 0})
    gen = torch.Generator().manual_seed(3)
    data = [([torch.randn(3, 16, 16, generator=gen) for _ in range(2)], i % 10) for i in range(16)]
    trainer = L.Trainer(max_steps=max_steps, limit_val_batches=0, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(harness, DataLoader(data, batch_size=8, shuffle=False), ckpt_path=ckpt_path)
    return model, trainer


def test_the_running_matrix_is_in_the_checkpoint_and_a_resume_gives_the_same_next_loss(tmp_path):
    fresh = create_method("tico", small_config("tico"), **TINY)
    assert torch.equal(fresh.running_cov, torch.zeros(32, 32))
    stopped, trainer = _fit(2)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(saved["method.running_cov"], stopped.running_cov) and stopped.running_cov.abs().sum() > 0
    # the next loss from the reloaded checkpoint is the uninterrupted run's; from a zero matrix it is not
    batch = [torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    reloaded = create_method("tico", CONSTANT_MOMENTUM, **{**TINY, "global_batch_size": 8})
    Pretrainer(reloaded, num_classes=10).load_state_dict(saved)
    assert torch.equal(reloaded.running_cov, stopped.running_cov)
    losses = []
    for model in (stopped, reloaded):
        model.eval()  # BatchNorm on its running statistics: the same forward for both
        with torch.no_grad():
            losses.append(model.forward_loss(batch).total)
    assert torch.equal(losses[0], losses[1])
    reloaded.running_cov.zero_()
    with torch.no_grad():
        assert not torch.allclose(reloaded.forward_loss(batch).total, losses[0])
    # and training on from the checkpoint continues as the uninterrupted run
    resumed, _ = _fit(3, ckpt_path=tmp_path / "last.ckpt")
    uninterrupted, _ = _fit(3)
    assert not torch.allclose(resumed.running_cov, stopped.running_cov)
    assert torch.allclose(resumed.running_cov, uninterrupted.running_cov, rtol=1e-6, atol=1e-8)


def test_its_defaults_are_lightlys_benchmark():
    model = create_method("tico", crop_sizes=(32, 32), global_batch_size=256, backbone="resnet18")
    layers = [type(layer).__name__ for layer in model.projector]
    assert layers == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert model.projector[0].weight.shape == (4096, 512) and model.projector[0].bias is None
    assert model.projector[3].weight.shape == (256, 4096) and model.projector[3].bias is not None
    assert model.running_cov.shape == (256, 256)
    m = model.mcfg
    assert (m.beta, m.rho, m.batch_cov_grad, m.momentum_base, m.momentum_final) == (0.9, 8.0, False, 0.99, 1.0)
    optimizer = Pretrainer(model, num_classes=0).optimizer_cfg
    assert (optimizer.name, optimizer.lr, optimizer.weight_decay, optimizer.lars_eta, optimizer.lars_clip,
            optimizer.exclude_bias_and_norm) == ("lars", 0.2, 1.5e-6, 0.001, False, True)
