"""Checkpoints written before the EMA target and the feature queue became components, and before the method was
apart from its harness, still load and resume.

tests/fixtures/old_layout/{byol,mocov2plus}.ckpt were written by the mixin layout's code (the commit before
`zoo.nn`), a 2-step fit of the embedded digits set:

    python main_pretrain.py method=<byol|mocov2plus> backbone.name=test_efficientnet backbone.small_stem=false \
        data.image_size=16 data.batch_size=16 data.num_workers=0 data.eval_batch_size=64 trainer.max_steps=2 \
        trainer.limit_val_batches=1 trainer.enable_progress_bar=false method.proj_hidden=[16] method.proj_out=8 \
        optimizer.momentum=0 <method.pred_hidden=16 | method.queue_size=64> run_dir=...

then checkpoints/last.ckpt copied (timm's smallest test network and no momentum buffers keep each under 1 MB).
Their state dicts name the EMA target target_backbone.* / target_projector.* and the queue queue / queue_ptr;
today's are target.backbone.*, target.projector.*, queue.keys, queue.ptr (`zoo.nn.legacy`).

tests/data/old_layout/intl_m_7a3b856.ckpt was written by main at commit 7a3b856 (components, the method still the
Lightning module), the same command with method=intl_m (and no method-specific option).
Its keys have no "method." prefix. In today's harness (`zoo.train.harness.Pretrainer`) every key of the method is
under "method." and the probe's under "classifier.".
"""

import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

from zoo.build import load_method
from zoo.checkpoint import read_checkpoint
from zoo.config import register_configs
from zoo.methods.byol import BYOL
from zoo.nn.ramps import cosine_ramp
from zoo.registry import method_names
from zoo.train.harness import Pretrainer

OLD = Path(__file__).parents[1] / "fixtures" / "old_layout"
RUN = ["backbone.name=test_efficientnet", "backbone.small_stem=false", "data.image_size=16", "data.batch_size=16",
       "data.num_workers=0", "data.eval_batch_size=64", "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
       "method.proj_hidden=[16]", "method.proj_out=8", "optimizer.momentum=0"]
EXTRA = {"byol": ["method.pred_hidden=16"], "mocov2plus": ["method.queue_size=64"]}
RENAMES = {"target_backbone.": "target.backbone.", "target_projector.": "target.projector."}


def old_state(name):
    return torch.load(OLD / f"{name}.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def today(key):
    """The old key's name in today's harness layout, written out here (not read from the key maps under test)."""
    return key if key.startswith("classifier.") else "method." + in_method(key)


def in_method(key):
    """The old key's name in today's method (the harness's "method." prefix left out)."""
    if key in ("queue", "queue_ptr"):
        return {"queue": "queue.keys", "queue_ptr": "queue.ptr"}[key]
    for old, new in RENAMES.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


@pytest.mark.parametrize("name", ["byol", "mocov2plus", "intl_m_7a3b856"])
def test_an_old_checkpoint_loads_with_equal_tensors_under_the_new_names(name):
    old = old_state(name)
    if name == "intl_m_7a3b856":  # components already; no harness prefix
        assert any(k.startswith("target.backbone.") for k in old) and not any(k.startswith("method.") for k in old)
    else:
        assert any(k.startswith("target_backbone.") for k in old) and ("queue" in old) == (name == "mocov2plus")
    method, _ = load_method(OLD / f"{name}.ckpt")  # the evaluation loaders' path (read_checkpoint + load_state_dict)
    new = method.state_dict()
    old_method = {key: value for key, value in old.items() if not key.startswith("classifier.")}
    assert {in_method(k) for k in old_method} == set(new)
    for key, value in old_method.items():
        assert torch.equal(new[in_method(key)], value), key
    assert set(read_checkpoint(OLD / f"{name}.ckpt")["state_dict"]) == set(new)
    if name != "mocov2plus":  # Lightning's load_from_checkpoint (its on_load_checkpoint, then load_state_dict)
        loaded = Pretrainer.load_from_checkpoint(OLD / f"{name}.ckpt", map_location="cpu")
        assert type(loaded.method) is (BYOL if name == "byol" else type(method))
        assert {today(k) for k in old} == set(loaded.state_dict())
        assert all(torch.equal(loaded.state_dict()[today(k)], v) for k, v in old.items())


def test_the_harness_key_map():
    """The keys of the layout before the harness move under "method." (the probe's stay), then the layout before
    components is renamed inside the method; today's keys are left as they are."""
    from zoo.nn.legacy import harness_key, method_state

    assert harness_key("backbone.conv1.weight") == "method.backbone.conv1.weight"
    assert harness_key("classifier.bias") == "classifier.bias"
    assert harness_key("method.queue.keys") == "method.queue.keys"
    assert harness_key("model.backbone.x", prefix="model.") == "model.method.backbone.x"
    state = {"backbone.w": 1, "target_backbone.w": 2, "queue": 3, "classifier.weight": 4, "method.projector.b": 5}
    assert method_state(state) == {"backbone.w": 1, "target.backbone.w": 2, "queue.keys": 3, "projector.b": 5}


@pytest.mark.parametrize("name", ["byol", "mocov2plus"])
def test_a_run_resumes_from_an_old_checkpoint(name, tmp_path, capsys):
    """The old last.ckpt in a run folder: the same command with one more step resumes from it (weights, EMA target,
    queue, optimiser, step counter) and takes that step."""
    from zoo.pretrain import pretrain

    (tmp_path / "checkpoints").mkdir()
    shutil.copy(OLD / f"{name}.ckpt", tmp_path / "checkpoints" / "last.ckpt")
    register_configs()
    method_names()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        cfg = compose("pretrain", overrides=[f"method={name}", *RUN, *EXTRA[name], "trainer.max_steps=3",
                                             f"run_dir={tmp_path}"])
    pretrain(cfg)
    assert "Resuming from" in capsys.readouterr().out
    final = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert final["global_step"] == 3
    old, new = old_state(name), final["state_dict"]
    if name == "byol":  # the third step's EMA update moved the old target towards the new online weights
        tau = cosine_ramp(cfg.method.momentum_base, cfg.method.momentum_final, 2 / 3)
        for key in [k for k in old if k.startswith("target_backbone.") and old[k].is_floating_point()]:
            online = new["method.backbone." + key[len("target_backbone."):]]
            if "running_" in key:
                continue  # BatchNorm statistics are the copy's own, not averaged
            assert torch.allclose(new[today(key)], tau * old[key] + (1 - tau) * online, atol=1e-6), key
    else:  # the queue went on from the old pointer: the old rows kept, the third step's 16 keys after them
        assert old["queue_ptr"].item() == 32 and new["method.queue.ptr"].item() == 48
        assert torch.equal(new["method.queue.keys"][:, :32], old["queue"][:, :32])
        assert not torch.equal(new["method.queue.keys"][:, 32:48], old["queue"][:, 32:48])


def test_a_run_resumes_from_a_checkpoint_of_the_layout_before_the_harness(tmp_path, capsys):
    """main's last.ckpt at 7a3b856 (keys without "method."): the same command with one more step resumes from it."""
    from zoo.pretrain import pretrain

    (tmp_path / "checkpoints").mkdir()
    shutil.copy(OLD / "intl_m_7a3b856.ckpt", tmp_path / "checkpoints" / "last.ckpt")
    register_configs()
    method_names()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        cfg = compose("pretrain", overrides=["method=intl_m", *RUN, "trainer.max_steps=3", f"run_dir={tmp_path}"])
    pretrain(cfg)
    assert "Resuming from" in capsys.readouterr().out
    final = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    old = old_state("intl_m_7a3b856")
    assert final["global_step"] == 3 and {today(k) for k in old} == set(final["state_dict"])
    assert not torch.equal(final["state_dict"]["method.backbone.conv_stem.weight"], old["backbone.conv_stem.weight"])
