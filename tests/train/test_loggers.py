"""W&B (offline) and TensorBoard beside metrics.csv: a killed and resumed digits run writes both,
TensorBoard's events hold the loss parts, k-NN and spectra, and W&B keeps one run id."""

import os
import signal
import subprocess
import sys
import time

import pytest
from pretrain_helpers import REPO, TINY, pretrain_in_process, run

from zoo.config import chosen_trackers
from zoo.errors import ZooError


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    """Both trackers, killed after its first checkpoint, then resumed to the end (2 epochs of 3 steps)."""
    run_dir = tmp_path_factory.mktemp("trackers") / "run"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    args = [*TINY, "trainer.max_epochs=2", "checkpoint_every_n_steps=1", "logger=[wandb,tensorboard]", f"run_dir={run_dir}"]
    proc = subprocess.Popen([sys.executable, str(REPO / "main_pretrain.py"), *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "checkpoints" / "last.ckpt").exists():
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with pytest.MonkeyPatch.context() as patch:  # `run` passes this process's environment on
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_SILENT", "true")
        result = run("main_pretrain.py", *args)
    assert "Resuming from" in result.stdout
    return run_dir


def test_tensorboard_events_hold_loss_parts_knn_and_spectra(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tracked_run / "tensorboard"), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("train/loss/mse_step", "train/loss/trace_step", "train/loss_step", "train/probe_top1_step", "val/knn_top1",
                "val/effective_rank"):
        assert tag in tags["scalars"], tag
    assert {"spectrum/backbone", "spectrum/projector"} <= set(tags["histograms"]) and "spectrum" in tags["images"]
    knn = events.Scalars("val/knn_top1")
    assert len({point.step for point in knn}) == 2 and all(0 <= point.value <= 1 for point in knn)  # one per epoch
    assert {point.step for point in events.Scalars("train/loss/mse_step")} >= {2, 3, 4, 5}  # the steps after the resume


def test_a_resumed_wandb_run_keeps_its_run_id(tracked_run):
    run_id = (tracked_run / "wandb_id").read_text().strip()
    sessions = sorted((tracked_run / "wandb").glob("offline-run-*"))
    assert len(sessions) == 2, sessions  # the killed process and the resumed one
    assert all(session.name.endswith(f"-{run_id}") and (session / f"run-{run_id}.wandb").is_file() for session in sessions)
    # The offline log's reader lives in W&B's compiled core; the metric names are stored as plain strings.
    resumed_log = (sessions[-1] / f"run-{run_id}.wandb").read_bytes()
    for key in (b"train/loss/mse", b"train/loss/trace", b"val/knn_top1", b"spectrum/backbone"):
        assert key in resumed_log, key
    assert list((sessions[-1] / "files" / "media" / "images").glob("spectrum_*.png"))


def test_csv_stays_on_beside_the_trackers(tracked_run):
    metrics = (tracked_run / "metrics.csv").read_text()
    assert "train/loss/mse_step" in metrics and "val/knn_top1" in metrics


def test_unknown_logger_and_missing_extra_are_one_line_errors(monkeypatch):
    assert chosen_trackers("csv") == [] and chosen_trackers(["tensorboard", "wandb"]) == ["wandb", "tensorboard"]
    with pytest.raises(ZooError, match=r"^logger=mlflow is not one of: csv, wandb, tensorboard \(several: logger=\[wandb,tensorboard\]\)$"):
        chosen_trackers("mlflow")
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(ZooError, match=r"^logger=wandb needs the wandb extra: pip install 'zoo\[wandb\]'$"):
        chosen_trackers(["wandb"])


def test_an_unknown_logger_stops_the_command_in_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = pretrain_in_process(monkeypatch, capsys, "logger=mlflow", f"run_dir={tmp_path / 'run'}")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: logger=mlflow is not one of: csv, wandb, tensorboard"), err
