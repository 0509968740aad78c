"""MoCo v2+: the key queue (before this step's keys go in, in the state dict, across kill -9 and resume) and
a method composing a queue of its own."""

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from killed_runs import killed_after_first_checkpoint, resumed
from method_settings import TINY, crops, small_config
from pretrain_helpers import SHORT_RUN

from zoo.errors import ZooError
from zoo.losses import info_nce_loss
from zoo.methods.base import Method, MethodConfig
from zoo.nn import FeatureQueue
from zoo.registry import create_method


def test_moco_contrasts_with_the_queue_before_this_steps_keys_go_in():
    torch.manual_seed(0)
    model = create_method("mocov2plus", small_config("mocov2plus"), **TINY)
    model.queue.ptr.fill_(32)  # 16 keys wrap around the 40-key queue: rows 32..39, then 0..7
    before = model.queue.keys.clone()
    batch = crops()
    loss, _ = model.compute_loss(batch)
    with torch.no_grad():
        q1, q2 = (F.normalize(model.projector(model.backbone(c)), dim=-1) for c in batch)
        k1, k2 = (F.normalize(model.target(c), dim=-1) for c in batch)
    expected = (info_nce_loss(q1, k2, before[1], 0.2) + info_nce_loss(q2, k1, before[0], 0.2)) / 2
    assert torch.allclose(loss, expected, rtol=1e-5)
    rows = torch.cat([torch.arange(32, 40), torch.arange(0, 8)])
    assert torch.allclose(model.queue.keys[0, rows], k1, atol=1e-6) and torch.allclose(model.queue.keys[1, rows], k2, atol=1e-6)
    assert torch.equal(model.queue.keys[:, 8:32], before[:, 8:32]) and model.queue.ptr.item() == 8
    assert torch.allclose(before.norm(dim=-1), torch.ones(2, 40))  # initially random unit keys


def test_the_queue_and_its_pointer_are_in_the_state_dict():
    model = create_method("mocov2plus", small_config("mocov2plus"), **TINY)
    model.compute_loss(crops())
    state = model.state_dict()
    assert state["queue.keys"].shape == (2, 40, 32) and state["queue.ptr"].item() == 16
    fresh = create_method("mocov2plus", small_config("mocov2plus"), **TINY)
    assert not torch.equal(fresh.queue.keys, model.queue.keys)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.queue.keys, model.queue.keys) and fresh.queue.ptr.item() == 16


def test_a_queue_smaller_than_the_global_batch_is_a_clear_error():
    with pytest.raises(ZooError, match=r"method.queue_size=8 is smaller than the global batch of 16"):
        create_method("mocov2plus", {**small_config("mocov2plus"), "queue_size": 8}, **TINY)


def test_a_method_composes_a_queue_with_its_own_config_field():
    """No Config-order rule: the method declares queue_size like any field and holds the component."""

    class WithQueue(Method):
        @dataclass
        class Config(MethodConfig):
            queue_size: int = 24

        def build_modules(self):
            super().build_modules()
            self.queue = FeatureQueue(count=1, size=self.mcfg.queue_size, dim=self.mcfg.proj_out)

    model = WithQueue({"proj_hidden": [16], "proj_out": 8}, **TINY)
    assert model.state_dict()["queue.keys"].shape == (1, 24, 8) and model.state_dict()["queue.ptr"].item() == 0


def test_the_queue_survives_kill_minus_nine_and_resume(tmp_path):
    """MoCo v2+ killed while it checkpoints every step: the resumed run goes on from the saved queue and
    pointer (rows written before the kill are still there at the end; the pointer counts every step)."""
    run_dir = tmp_path / "run"
    batch, steps, queue_size = 32, 9, 320  # the queue holds all 9 steps' keys: nothing written is overwritten
    args = ["method=mocov2plus", *SHORT_RUN, f"method.queue_size={queue_size}", "trainer.max_epochs=3",
            "checkpoint_every_n_steps=1", f"run_dir={run_dir}"]
    killed = killed_after_first_checkpoint(args, run_dir, settle=1.0)
    killed_steps = killed["global_step"]
    assert 0 < killed_steps < steps, "the run was not killed mid-training"
    written = batch * killed_steps
    assert killed["state_dict"]["method.queue.ptr"].item() == written
    final = resumed(args, run_dir)
    assert final["global_step"] == steps
    assert final["state_dict"]["method.queue.ptr"].item() == batch * steps
    assert torch.equal(final["state_dict"]["method.queue.keys"][:, :written],
                       killed["state_dict"]["method.queue.keys"][:, :written])
    assert not torch.equal(final["state_dict"]["method.queue.keys"][:, written:batch * steps],
                           killed["state_dict"]["method.queue.keys"][:, written:batch * steps])
