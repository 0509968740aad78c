"""How a pretraining run fails: divergence and collapse, signals, the run-folder lock, full disks and
unwritable folders, corrupt checkpoints (README, When a run fails). Each end-to-end case is a tiny run."""

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pretrain_helpers import pretrain_here, pretrain_in_process

from zoo.errors import ZooError

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.batch_size=16", "data.num_workers=0", "data.image_size=16", "trainer.limit_val_batches=1", "data.eval_batch_size=32",
        "trainer.enable_progress_bar=false", "method.proj_hidden=[64]", "method.proj_out=32"]


def error_lines(stderr):
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def finite(state_dict):
    return all(torch.isfinite(v).all() for v in state_dict.values() if v.is_floating_point())


# ---- divergence --------------------------------------------------------------------------------------


def test_a_huge_lr_stops_at_the_first_nonfinite_gradient_and_the_capture_replays_it(tmp_path, monkeypatch, capsys):
    """SimCLR's loss is bounded, so lr 1e30 first shows as non-finite gradients (backbone outputs past float
    range); the run stops there, the checkpoint before it is finite, and the capture reproduces the step."""
    run_dir = tmp_path / "run"
    code, _, err = pretrain_in_process(monkeypatch, capsys, *TINY, "method=simclr", "optimizer.lr=1e30",
                                       "trainer.max_steps=6", "checkpoint_every_n_steps=1", f"run_dir={run_dir}")
    assert code == 2
    [line] = error_lines(err)
    assert "method simclr diverged at step" in line and "non-finite gradients in optimizer group" in line
    assert "first backbone." in line and "lower optimizer.lr" in line
    capture = torch.load(run_dir / "divergence.pt", map_location="cpu", weights_only=False)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == capture["global_step"] >= 1 and finite(ckpt["state_dict"])
    assert f"at step {capture['global_step']}:" in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["steps"] == capture["global_step"]

    from zoo.build import load_method

    method, _ = load_method(run_dir / "divergence.pt")
    crops, _ = capture["batch"]
    loss, _ = method.train().compute_loss(crops)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in method.backbone.parameters() if p.grad is not None])
    assert not torch.isfinite(grads).all() or not torch.isfinite(loss)


def nan_at(steps):
    """SimCLR's loss, made NaN at the given optimiser steps."""
    from zoo.methods.simclr import SimCLR

    original = SimCLR.compute_loss

    def compute_loss(self, crops, state=None):
        value, features = original(self, crops, state)
        return (value * float("nan") if state is not None and state.step in steps else value), features

    return compute_loss


def test_isolated_nonfinite_steps_are_skipped_and_counted_a_second_in_a_row_stops(tmp_path, monkeypatch, capsys):
    from zoo.methods.simclr import SimCLR

    monkeypatch.setattr(SimCLR, "compute_loss", nan_at({1, 3, 4}))
    run_dir = tmp_path / "run"
    code, _, err = pretrain_in_process(monkeypatch, capsys, *TINY, "method=simclr", "trainer.max_steps=8",
                                       "divergence.skip_nonfinite_steps=5", f"run_dir={run_dir}")
    assert code == 2
    warnings = [line for line in err.splitlines() if line.startswith("warning: step")]
    assert [w.split(":")[1] for w in warnings] == [" step 1", " step 3"]
    assert "non-finite loss (loss=nan)" in warnings[0] and "step skipped (1 of divergence.skip_nonfinite_steps=5)" in warnings[0]
    [line] = error_lines(err)
    assert "diverged at step 4: non-finite loss (loss=nan) and non-finite gradients in optimizer groups" in line
    assert "not skipped: the step before it was skipped" in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["skipped_nonfinite_steps"] == [1, 3] and summary["finished"] is False


def test_output_std_is_one_for_spread_outputs_and_zero_for_collapsed_ones():
    from zoo.metrics.health import collapse_indicator

    torch.manual_seed(0)
    assert collapse_indicator(torch.randn(4096, 128)).value == pytest.approx(1.0, abs=0.02)
    assert collapse_indicator(torch.randn(1, 128).expand(512, 128) + 1e-6 * torch.randn(512, 128)).value < 1e-3


# ---- one tiny run, then what the run folder refuses ---------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny INTL run (2 steps) in a folder holding a dead process's lock file, with collapse thresholds
    no run meets, so that it is flagged."""
    run_dir = tmp_path_factory.mktemp("failures") / "run"
    run_dir.mkdir()
    (run_dir / ".lock").write_text("process 999999999 on a-gone-host\n")
    args = [*TINY, "trainer.max_steps=2", "divergence.collapse_effective_rank=1000", f"run_dir={run_dir}"]
    code, _, err = pretrain_here(*args)
    assert code == 0, err[-3000:]
    return run_dir, args, err


def test_a_stale_lock_is_taken_over_and_a_collapse_is_flagged(finished_run):
    run_dir, _, stderr = finished_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is True and summary["stopped"] is None and summary["steps"] == 2
    assert summary["collapsed"].startswith("backbone effective rank") and "< 1000" in summary["collapsed"]
    assert 0 < summary["output_std"] < 2
    assert "warning: the run looks collapsed (backbone effective rank" in stderr
    assert (run_dir / ".lock").read_text().startswith("process ")


def test_a_second_process_on_the_run_folder_is_refused(finished_run, monkeypatch, capsys):
    from zoo.checkpoint import RunFolderLock

    run_dir, args, _ = finished_run
    with RunFolderLock(run_dir):  # this process holds it, as a running training would
        code, _, err = pretrain_in_process(monkeypatch, capsys, *args)
    assert code == 2
    [line] = error_lines(err)
    assert f"run folder {run_dir} is in use by process {os.getpid()} on " in line and "pass another run_dir" in line


def test_a_folder_of_another_methods_run_is_refused_before_anything_is_written(finished_run, monkeypatch, capsys):
    run_dir, args, _ = finished_run

    def run_files():  # Hydra's own record (.hydra/, pretrain.log) is written by Hydra before zoo starts
        return {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")
                if ".hydra" not in path.parts and path.name != "pretrain.log"}

    before = run_files()
    code, _, err = pretrain_in_process(monkeypatch, capsys, *args, "method=simclr")
    assert code == 2
    [line] = error_lines(err)
    assert f"run folder {run_dir} holds a intl run with backbone resnet18 (its config.yaml), not simclr" in line
    assert run_files() == before and len(before) > 5


def test_a_truncated_last_checkpoint_is_named_with_the_fix(finished_run, monkeypatch, capsys, tmp_path):
    import shutil

    run_dir, args, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    last = copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    code, _, err = pretrain_in_process(monkeypatch, capsys, *args[:-1], "trainer.max_steps=3", f"run_dir={copy}")
    assert code == 2
    assert error_lines(err) == [(f"error: cannot resume from {last}: the file is truncated or corrupt; delete it to start "
                                 "the run over (or restore it from a copy)")]


# ---- full disks and unwritable folders ---------------------------------------------------------------


def test_a_write_that_fails_removes_its_temporary_file(tmp_path, monkeypatch):
    from zoo.atomic import atomic_write_bytes

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ZooError, match=r"cannot write .*/last.ckpt: No space left on device: free space there"):
        atomic_write_bytes(tmp_path / "last.ckpt", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_temporary_file(tmp_path):
    """The process may write files of at most 8 MiB (ulimit -f: the kernel's EFBIG, as a full disk's ENOSPC):
    the run's small files fit, its checkpoint does not."""
    run_dir = tmp_path / "run"
    limit = 8 << 20
    result = subprocess.run(
        [sys.executable, str(REPO / "main_pretrain.py"), *TINY, "trainer.max_steps=2", f"run_dir={run_dir}"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    assert result.returncode == 2
    [line] = error_lines(result.stderr)
    assert line.startswith(f"error: cannot write {run_dir / 'checkpoints' / 'last.ckpt'}: File too large: free space")
    assert not [path for path in run_dir.rglob("*") if ".tmp" in path.name]


def test_a_run_folder_that_cannot_be_created_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    run_dir = tmp_path / "file" / "run"
    code, _, err = pretrain_in_process(monkeypatch, capsys, *TINY, f"run_dir={run_dir}")
    assert code == 2
    assert error_lines(err) == [f"error: cannot write {run_dir}: {tmp_path / 'file'} is a file, not a folder: pass another run_dir=..."]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_folder_is_one_line(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o555)
    code, _, err = pretrain_in_process(monkeypatch, capsys, *TINY, f"run_dir={run_dir}")
    assert code == 2
    assert error_lines(err) == [f"error: cannot write {run_dir}: {run_dir} is read-only: make it writable, or pass another run_dir=..."]


# ---- signals -----------------------------------------------------------------------------------------


def stopped_by(signum, args, run_dir):
    """main_pretrain.py ARGS (checkpointing every step), sent `signum` once it has checkpointed -> its result."""
    proc = subprocess.Popen([sys.executable, str(REPO / "main_pretrain.py"), *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    first = last.stat().st_mtime_ns if last.exists() else None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and (not last.exists() or last.stat().st_mtime_ns == first):
        time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def test_sigint_and_sigterm_checkpoint_mark_the_run_unfinished_and_exit_nonzero(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    args = [*TINY, "trainer.max_steps=20", "checkpoint_every_n_steps=1", f"run_dir={run_dir}"]
    for signum, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        code, _, err = stopped_by(signum, args, run_dir)
        assert code == 128 + signum, err[-3000:]
        assert not error_lines(err)
        notices = [line for line in err.splitlines() if line.startswith("zoo: stopped by")]
        summary = json.loads((run_dir / "summary.json").read_text())
        step = summary["steps"]
        assert notices == [(f"zoo: stopped by {name} at step {step}: {run_dir / 'checkpoints' / 'last.ckpt'} written, "
                            "summary.json marks the run unfinished; run the same command again to resume")]
        assert summary["finished"] is False and summary["stopped"] == f"stopped by {name}" and 0 < step < 20
        ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        assert ckpt["global_step"] == step  # the checkpoint of the step it stopped at
    code, out, err = pretrain_in_process(monkeypatch, capsys, *args)  # the same command resumes (here in this process)
    assert code == 0 and "Resuming from" in out, err[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is True and summary["steps"] == 20


# ---- corrupt images (the DALI loader's cases: tests/data/test_dali.py) -----------------------------------


def image_folder(root, corrupt=True):
    """train/ and val/ of two classes of 8 small JPEGs; with `corrupt`, one more in train/b that passes the
    up-front check (a JPEG's first and last bytes) but cannot be decoded (zeroed Huffman tables)."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for index in range(8):
                pixels = torch.randint(0, 256, (24, 24, 3), generator=generator, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / name / f"{index}.jpg", quality=90)
    if not corrupt:
        return None
    data = (root / "train" / "a" / "0.jpg").read_bytes()
    table = data.index(b"\xff\xc4")
    bad = root / "train" / "b" / "tables.jpg"
    bad.write_bytes(data[: table + 4] + bytes(200) + data[table + 204 :])
    from zoo.data.files import unreadable_reason

    assert unreadable_reason(bad) is None
    return bad


def test_a_corrupt_image_is_named_skipped_with_a_warning_or_stops(tmp_path):
    from zoo.data.folder import NamingImageFolder

    bad = image_folder(tmp_path)
    stop = NamingImageFolder(str(tmp_path / "train"), None, "stop")
    position = [path for path, _ in stop.samples].index(str(bad))
    with pytest.raises(ZooError, match=f"^cannot decode {bad}: broken data stream when reading image file "
                                       r"\(delete or replace the file, or set data.corrupt_images=skip"):
        stop[position]
    skip = NamingImageFolder(str(tmp_path / "train"), None, "skip")
    with pytest.warns(UserWarning, match=f"skipping {bad}: cannot decode it"):
        image, label = skip[position]
    assert image.size == (24, 24) and label == skip.samples[(position + 1) % len(skip)][1]  # the next image


def test_a_corrupt_image_in_a_worker_stops_pretraining_with_one_line_naming_it(tmp_path):
    """The worker's error reaches the user as the one line, not the worker's traceback."""
    bad = image_folder(tmp_path / "images")
    args = ["data.name=folder", f"data.root={tmp_path / 'images'}", "data.loader=torchvision", "data.corrupt_images=stop",
            "data.num_workers=1", *TINY[:1], *TINY[2:], "trainer.max_steps=4", f"run_dir={tmp_path / 'run'}"]
    result = subprocess.run([sys.executable, str(REPO / "main_pretrain.py"), *args], cwd=REPO, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [(f"error: cannot decode {bad}: broken data stream when reading image file (delete "
                                           "or replace the file, or set data.corrupt_images=skip to train without it)")]
