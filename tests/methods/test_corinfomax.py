"""CorInfoMax: its running covariances across a checkpoint and resume."""

import lightning as L
import torch
from method_settings import TINY, small_config
from torch.utils.data import DataLoader

from zoo.registry import create_method
from zoo.train.harness import Pretrainer


def _crops(count, batches):
    gen = torch.Generator().manual_seed(3)
    return [([torch.randn(3, 16, 16, generator=gen) for _ in range(2)], i % 10) for i in range(count * batches)]


def _fit(max_steps, ckpt_path=None):
    """CorInfoMax on 2 fixed batches of 8 per epoch, constant lr (the same steps whatever max_steps)."""
    torch.manual_seed(0)
    model = create_method("corinfomax", small_config("corinfomax"), **{**TINY, "global_batch_size": 8})
    harness = Pretrainer(model, num_classes=10, scheduler={"name": "constant", "warmup_epochs": 0})
    trainer = L.Trainer(max_steps=max_steps, limit_val_batches=0, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(harness, DataLoader(_crops(8, 2), batch_size=8, shuffle=False), ckpt_path=ckpt_path)
    return model, trainer


def test_corinfomax_keeps_its_running_covariances_in_the_checkpoint_and_resumes_with_them(tmp_path):
    fresh = create_method("corinfomax", small_config("corinfomax"), **TINY)
    assert torch.equal(fresh.running_cov, torch.eye(16, dtype=torch.float64).expand(2, 16, 16))
    assert not fresh.running_mean.any() and fresh.running_cov.dtype == torch.float64
    stopped, trainer = _fit(2)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    saved = torch.load(tmp_path / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(saved["method.running_cov"], stopped.running_cov)
    assert torch.equal(saved["method.running_mean"], stopped.running_mean)
    assert not torch.allclose(saved["method.running_cov"], fresh.running_cov)  # two steps moved R off its start
    resumed, _ = _fit(3, ckpt_path=tmp_path / "last.ckpt")
    uninterrupted, _ = _fit(3)
    assert not torch.allclose(resumed.running_cov, stopped.running_cov)  # the third step updated R
    assert torch.allclose(resumed.running_cov, uninterrupted.running_cov, rtol=1e-6, atol=1e-9)
    assert torch.allclose(resumed.running_mean, uninterrupted.running_mean, rtol=1e-6, atol=1e-9)
    reloaded = create_method("corinfomax", small_config("corinfomax"), **TINY)
    Pretrainer(reloaded, num_classes=10).load_state_dict(saved)
    assert torch.equal(reloaded.running_cov, stopped.running_cov)
