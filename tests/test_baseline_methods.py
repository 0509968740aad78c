"""SimCLR, MoCo v2+ and BYOL as methods: their modules, the EMA target and the key queue, its state
in checkpoints (also across kill -9 and resume), and short digits runs through the entry point."""

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from killed_runs import killed_after_first_checkpoint, resumed
from torch import nn

from zoo.config import register_configs
from zoo.errors import ZooError
from zoo.losses import byol_loss, info_nce_loss
from zoo.methods.base import BaseMethod, MethodConfig
from zoo.methods.queue import FeatureQueueMixin
from zoo.registry import create_method, get_method, method_names

REPO = Path(__file__).resolve().parents[1]
TINY = {"num_classes": 10, "crop_sizes": (16, 16), "global_batch_size": 16, "backbone": "resnet18"}
SMALL = {
    "simclr": {"proj_hidden": [64], "proj_out": 32},
    "mocov2plus": {"proj_hidden": [64], "proj_out": 32, "queue_size": 40},
    "byol": {"proj_hidden": [64], "proj_out": 32, "pred_hidden": 48},
}


def crops(count=2, size=16, batch=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, size, size, generator=gen) for _ in range(count)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_training_step_gives_a_finite_loss_and_backbone_gradients(name):
    assert name in method_names()
    torch.manual_seed(0)
    model = create_method(name, SMALL[name], **TINY)
    loss, features = model.compute_loss(crops())
    assert loss.ndim == 0 and torch.isfinite(loss) and features[0].shape == (16, model.feature_dim)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.backbone.parameters())
    for module in ("target_backbone", "target_projector"):
        if hasattr(model, module):
            assert all(p.grad is None for p in getattr(model, module).parameters())


def test_the_papers_defaults():
    simclr, moco, byol = (get_method(name) for name in ("simclr", "mocov2plus", "byol"))
    assert (simclr.Config().proj_hidden, simclr.Config().proj_out, simclr.Config().temperature) == ([2048], 256, 0.2)
    assert simclr.optimizer_defaults["name"] == "lars" and simclr.optimizer_defaults["lr"] == 0.4
    config = moco.Config()
    assert (config.temperature, config.momentum_base, config.momentum_final) == (0.2, 0.99, 0.999)
    assert moco.optimizer_defaults == {"name": "sgd", "lr": 0.3, "weight_decay": 1e-4, "probe_lr": 0.3}
    config = byol.Config()
    assert (config.proj_hidden, config.proj_out, config.pred_hidden, config.momentum_base) == ([4096], 256, 4096, 0.99)
    # solo-learn's CIFAR lr is 1.0; the digits default run learns better at 0.5 (a CIFAR recipe passes 1.0)
    assert byol.optimizer_defaults["lr"] == 0.5 and byol.optimizer_defaults["weight_decay"] == 1e-5


@pytest.mark.parametrize("name, hidden_bn", [("simclr", False), ("mocov2plus", False), ("byol", True)])
def test_projectors_are_solo_learns(name, hidden_bn):
    model = create_method(name, SMALL[name], **TINY)
    layers = [type(layer) for layer in model.projector]
    assert layers == ([nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear] if hidden_bn else [nn.Linear, nn.ReLU, nn.Linear])
    if name == "simclr":
        with_bn = create_method(name, {**SMALL[name], "proj_hidden_bn": True}, **TINY)
        assert any(isinstance(layer, nn.BatchNorm1d) for layer in with_bn.projector)


@pytest.mark.parametrize("name", ["simclr", "byol"])
def test_multi_crop_methods_take_small_crops_too(name):
    model = create_method(name, SMALL[name], **{**TINY, "crop_sizes": (16, 16, 8, 8)})
    loss, features = model.compute_loss(crops(2) + crops(2, size=8, seed=1))
    assert torch.isfinite(loss) and len(features) == 2  # the probe sees the large crops


def test_byol_sums_the_loss_over_every_target_and_other_crop():
    torch.manual_seed(0)
    model = create_method("byol", SMALL["byol"], **{**TINY, "crop_sizes": (16, 16, 8)})
    batch = crops(2) + crops(1, size=8, seed=1)
    torch.manual_seed(1)
    loss, _ = model.compute_loss(batch)
    with torch.no_grad():
        torch.manual_seed(1)
        predictions = [model.predictor(model.projector(model.backbone(c))) for c in batch]
        targets = [model.target_projector(model.target_backbone(c)) for c in batch[:2]]
    expected = sum(byol_loss(predictions[v], targets[t]) for t, v in [(0, 1), (0, 2), (1, 0), (1, 2)])
    assert torch.allclose(loss, expected, rtol=1e-5)
    groups = model.param_groups()
    assert any(p is next(model.predictor.parameters()) for g in groups for p in g["params"])  # trained, at the method lr


def test_moco_contrasts_with_the_queue_before_this_steps_keys_go_in():
    torch.manual_seed(0)
    model = create_method("mocov2plus", SMALL["mocov2plus"], **TINY)
    model.queue_ptr.fill_(32)  # 16 keys wrap around the 40-key queue: rows 32..39, then 0..7
    before = model.queue.clone()
    batch = crops()
    loss, _ = model.compute_loss(batch)
    with torch.no_grad():
        q1, q2 = (F.normalize(model.projector(model.backbone(c)), dim=-1) for c in batch)
        k1, k2 = (F.normalize(model.target_forward(c), dim=-1) for c in batch)
    expected = (info_nce_loss(q1, k2, before[1], 0.2) + info_nce_loss(q2, k1, before[0], 0.2)) / 2
    assert torch.allclose(loss, expected, rtol=1e-5)
    rows = torch.cat([torch.arange(32, 40), torch.arange(0, 8)])
    assert torch.allclose(model.queue[0, rows], k1, atol=1e-6) and torch.allclose(model.queue[1, rows], k2, atol=1e-6)
    assert torch.equal(model.queue[:, 8:32], before[:, 8:32]) and model.queue_ptr.item() == 8
    assert torch.allclose(before.norm(dim=-1), torch.ones(2, 40))  # initially random unit keys


def test_the_queue_and_its_pointer_are_in_the_state_dict():
    model = create_method("mocov2plus", SMALL["mocov2plus"], **TINY)
    model.compute_loss(crops())
    state = model.state_dict()
    assert state["queue"].shape == (2, 40, 32) and state["queue_ptr"].item() == 16
    fresh = create_method("mocov2plus", SMALL["mocov2plus"], **TINY)
    assert not torch.equal(fresh.queue, model.queue)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.queue, model.queue) and fresh.queue_ptr.item() == 16


def test_a_queue_smaller_than_the_global_batch_is_a_clear_error():
    with pytest.raises(ZooError, match=r"method.queue_size=8 is smaller than the global batch of 16"):
        create_method("mocov2plus", {**SMALL["mocov2plus"], "queue_size": 8}, **TINY)


def test_the_queue_mixin_declares_its_field_in_the_methods_config():
    with pytest.raises(TypeError, match=r"FeatureQueueMixin.Config .* so that queue_size are declared"):
        class NoQueueField(FeatureQueueMixin, BaseMethod):
            pass

    class WithQueue(FeatureQueueMixin, BaseMethod):
        @dataclass
        class Config(FeatureQueueMixin.Config, MethodConfig):
            pass

    assert WithQueue.Config().queue_size == 65536


# ---- digits runs through the entry point -------------------------------------------------------
RUN = ["data.batch_size=32", "data.num_workers=0", "data.image_size=16", "trainer.limit_train_batches=3",
       "trainer.limit_val_batches=2", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
       "method.proj_hidden=[128]", "method.proj_out=64"]


@pytest.mark.parametrize("name, extra", [("simclr", []), ("byol", ["method.pred_hidden=64"])])
def test_a_short_digits_run_trains_and_logs_the_loss(name, extra, tmp_path):
    from zoo.pretrain import pretrain

    register_configs()
    method_names()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        cfg = compose("pretrain", overrides=[f"method={name}", *RUN, *extra, "trainer.max_steps=3", f"run_dir={tmp_path}"])
    pretrain(cfg)
    with open(tmp_path / "metrics.csv", newline="") as f:
        losses = [float(row["train/loss_step"]) for row in csv.DictReader(f) if row.get("train/loss_step")]
    assert len(losses) == 3 and all(map(torch.isfinite, torch.tensor(losses)))
    if name == "byol":
        with open(tmp_path / "metrics.csv", newline="") as f:
            assert any(row.get("train/momentum") for row in csv.DictReader(f))


def test_the_queue_survives_kill_minus_nine_and_resume(tmp_path):
    """MoCo v2+ killed while it checkpoints every step: the resumed run goes on from the saved queue and
    pointer (rows written before the kill are still there at the end; the pointer counts every step)."""
    run_dir = tmp_path / "run"
    batch, steps, queue_size = 32, 9, 320  # the queue holds all 9 steps' keys: nothing written is overwritten
    args = ["method=mocov2plus", *RUN, f"method.queue_size={queue_size}", "trainer.max_epochs=3",
            "checkpoint_every_n_steps=1", f"run_dir={run_dir}"]
    killed = killed_after_first_checkpoint(args, run_dir, settle=1.0)
    killed_steps = killed["global_step"]
    assert 0 < killed_steps < steps, "the run was not killed mid-training"
    written = batch * killed_steps
    assert killed["state_dict"]["queue_ptr"].item() == written
    final = resumed(args, run_dir)
    assert final["global_step"] == steps
    assert final["state_dict"]["queue_ptr"].item() == batch * steps
    assert torch.equal(final["state_dict"]["queue"][:, :written], killed["state_dict"]["queue"][:, :written])
    assert not torch.equal(final["state_dict"]["queue"][:, written:batch * steps],
                           killed["state_dict"]["queue"][:, written:batch * steps])
