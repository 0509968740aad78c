"""A Lightning DDP run (2 CPU processes, gloo) trains a whitening method through main_pretrain.py: the spectral
transform (whitening on the feature axis) and CW-RGP (sub-batches and channel groups on the batch axis). The
2-rank equality of every whitening loss and its gradient is in tests/losses/test_losses_ddp.py; this is the run around it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Per-device batch 16, global 32: whitening statistics cover both ranks' samples.
SETTINGS = {
    "st": ["method.proj_hidden=[64]", "method.proj_out=64"],
    "cwrgp": ["method.proj_hidden=[64]", "method.proj_out=64", "method.groups=2", "method.w_size=16"],
}


@pytest.mark.parametrize("method", sorted(SETTINGS))
def test_ddp_two_cpu_processes_train_and_validate(method, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        f"method={method}", *SETTINGS[method], "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp",
        "data.batch_size=16", "data.num_workers=0", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2", "data.eval_batch_size=32", "trainer.check_val_every_n_epoch=1",
        "trainer.enable_progress_bar=false", f"run_dir={run_dir}",
    ]
    result = subprocess.run([sys.executable, str(REPO / "main_pretrain.py"), *args], capture_output=True, text=True,
                            cwd=REPO, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 x cpu, global batch 32" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["global_batch_size"] == 32
    assert summary["knn_top1"] is not None  # validation features gathered from both ranks
    # the stages' running sums added over both ranks (2 batches of 32 images each, no padding): the last stage is the features
    assert summary["stage4/effective_rank"] == pytest.approx(summary["effective_rank"], rel=1e-6)


def test_four_processes_count_each_validation_image_once(tmp_path):
    """digits' 450 validation images on 4 processes: DistributedSampler pads them to 452 (2 twice); the k-NN and
    the spectra see the 450 (4 processes on a 2-core machine too: more processes than cores)."""
    run_dir = tmp_path / "run"
    args = ["data.name=digits", "augment=digits", "method=simclr", "method.proj_hidden=[32]", "method.proj_out=16",
            "backbone.name=test_resnet",
            "backbone.small_stem=false", "data.image_size=8", "data.eval_batch_size=128", "trainer.accelerator=cpu",
            "trainer.devices=4", "trainer.strategy=ddp", "data.batch_size=8", "data.num_workers=0", "trainer.max_steps=1",
            "trainer.enable_progress_bar=false", f"run_dir={run_dir}"]
    result = subprocess.run([sys.executable, str(REPO / "main_pretrain.py"), *args], capture_output=True, text=True,
                            cwd=REPO, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 x cpu, global batch 32" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["evaluated_images"] == 450 and summary["knn_top1"] is not None
    # the stages' sums leave the padding out too: the last stage's pooled output is the backbone's features
    last = max(key for key in summary if key.startswith("stage") and key.endswith("/effective_rank"))
    assert summary[last] == pytest.approx(summary["effective_rank"], rel=1e-6)
