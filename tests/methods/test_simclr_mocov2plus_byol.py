"""SimCLR, MoCo v2+ and BYOL as methods (each one's own tests: tests/methods/test_<name>.py): a training step, the
default run's values, solo-learn's projectors, small crops, short digits runs through the entry point."""

import csv

import pytest
import torch
from default_run import default_run
from hydra import compose, initialize_config_module
from method_settings import TINY, crops, solo_learn_small
from pretrain_helpers import SHORT_RUN
from torch import nn

from zoo.config import register_configs
from zoo.registry import create_method, get_method, method_names


@pytest.mark.parametrize("name", ["byol", "mocov2plus", "simclr"])
def test_a_training_step_gives_a_finite_loss_and_backbone_gradients(name):
    assert name in method_names()
    torch.manual_seed(0)
    model = create_method(name, solo_learn_small(name), **TINY)
    loss, features = model.compute_loss(crops())
    assert loss.ndim == 0 and torch.isfinite(loss) and features[0].shape == (16, model.feature_dim)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.backbone.parameters())
    if hasattr(model, "target"):  # the EMA target's copies of backbone and projector
        assert all(p.grad is None for p in model.target.parameters())


def test_the_default_runs_values():
    """solo-learn's CIFAR values in the default run (`method=<name>`, zoo/configs/embedded/); the classes' own
    defaults are the official code's (tests/config/test_default_run.py)."""
    simclr, simclr_optimizer = default_run("simclr")
    assert (simclr.proj_hidden, simclr.proj_out, simclr.temperature) == ([2048], 256, 0.2)
    assert simclr_optimizer.name == "lars" and simclr_optimizer.lr == 0.4
    config, optimizer = default_run("mocov2plus")
    assert (config.temperature, config.momentum_base, config.momentum_final) == (0.2, 0.99, 0.999)
    assert get_method("mocov2plus").optimizer_defaults == {"name": "sgd", "lr": 0.3, "weight_decay": 1e-4, "probe_lr": 0.3}
    config, optimizer = default_run("byol")
    assert (config.proj_hidden, config.proj_out, config.pred_hidden, config.momentum_base) == ([4096], 256, 4096, 0.99)
    # solo-learn's CIFAR lr is 1.0; the digits default run learns better at 0.5 (a CIFAR recipe passes 1.0)
    assert optimizer.lr == 0.5 and optimizer.weight_decay == 1e-5


@pytest.mark.parametrize("name, hidden_bn", [("simclr", False), ("mocov2plus", False), ("byol", True)])
def test_projectors_are_solo_learns(name, hidden_bn):
    model = create_method(name, solo_learn_small(name), **TINY)
    layers = [type(layer) for layer in model.projector]
    assert layers == ([nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear] if hidden_bn else [nn.Linear, nn.ReLU, nn.Linear])
    if name == "simclr":
        with_bn = create_method(name, {**solo_learn_small(name), "proj_hidden_bn": True}, **TINY)
        assert any(isinstance(layer, nn.BatchNorm1d) for layer in with_bn.projector)


@pytest.mark.parametrize("name", ["simclr", "byol"])
def test_multi_crop_methods_take_small_crops_too(name):
    model = create_method(name, solo_learn_small(name), **{**TINY, "crop_sizes": (16, 16, 8, 8)})
    loss, features = model.compute_loss(crops(2) + crops(2, size=8, seed=1))
    assert torch.isfinite(loss) and len(features) == 2  # the probe sees the large crops


@pytest.mark.parametrize("name, extra", [("simclr", []), ("byol", ["method.pred_hidden=64"])])
def test_a_short_digits_run_trains_and_logs_the_loss(name, extra, tmp_path):
    from zoo.pretrain import pretrain

    register_configs()
    method_names()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        cfg = compose("pretrain", overrides=[f"method={name}", *SHORT_RUN, *extra, "trainer.max_steps=3", f"run_dir={tmp_path}"])
    pretrain(cfg)
    with open(tmp_path / "metrics.csv", newline="") as f:
        losses = [float(row["train/loss_step"]) for row in csv.DictReader(f) if row.get("train/loss_step")]
    assert len(losses) == 3 and all(map(torch.isfinite, torch.tensor(losses)))
    if name == "byol":
        with open(tmp_path / "metrics.csv", newline="") as f:
            assert any(row.get("train/momentum") for row in csv.DictReader(f))


