"""End-to-end runs of main_pretrain.py and main_linear.py as a user runs them, on tiny configs."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from zoo.metrics.health import HEALTH_KEYS

REPO = Path(__file__).resolve().parents[1]
# Small enough for a few seconds per epoch on 2 CPU cores, but the real stack:
# resnet18, digits, two views, online probe, k-NN, spectrum, checkpoints. The plain digits (not the
# default digits_m): a few steps already separate them, which the evaluation tests below rely on.
TINY = [
    "data.name=digits",
    "augment=digits",
    "data.batch_size=32",
    "data.num_workers=0",
    "data.image_size=16",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "data.eval_batch_size=32",  # validation, k-NN bank and embedding on 64 images: seconds less per run
    "trainer.check_val_every_n_epoch=1",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "method.proj_hidden=[256]",
    "method.proj_out=128",
]


def run(script, *args, timeout=600, check=True, one_cpu=False):
    """`one_cpu`: the process may run on one CPU only (as under `taskset -c 0`)."""
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_cpu else None
    result = subprocess.run(
        [sys.executable, str(REPO / script), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False,
        preexec_fn=pin,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pretrain") / "run"
    result = run("main_pretrain.py", *TINY, "trainer.max_epochs=2", f"run_dir={run_dir}")
    return run_dir, result


def test_pretraining_writes_every_run_output(pretrained):
    run_dir, _ = pretrained
    for name in ("config.yaml", "metrics.csv", "summary.json", "spectrum.png", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["method"] == "intl" and summary["dataset"] == "digits" and summary["epochs"] == 2
    assert summary["loader"] == "torchvision"
    assert 0.0 <= summary["knn_top1"] <= 1.0 and 0.0 <= summary["linear_top1"] <= 1.0
    assert summary["effective_rank"] > 1.0
    assert Path(summary["checkpoint"]) == run_dir / "checkpoints" / "last.ckpt"
    metrics = (run_dir / "metrics.csv").read_text()
    assert "train/loss_step" in metrics and "train/loss_epoch" in metrics and "val/knn_top1" in metrics
    assert all(isinstance(summary[key], float) for key in HEALTH_KEYS), {key: summary[key] for key in HEALTH_KEYS}
    assert summary["rankme"] > 1.0 and summary["alpha_req"] > 0
    assert all(f"val/{key}" in metrics for key in HEALTH_KEYS)


def test_config_records_the_scaled_lr(pretrained):
    run_dir, _ = pretrained
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.optimizer.lr_scaled == pytest.approx(cfg.optimizer.lr * 32 / 256)
    assert cfg.method.name == "intl"


def test_checkpoint_is_a_loadable_lightning_checkpoint(pretrained):
    run_dir, _ = pretrained
    from zoo.checkpoint import read_checkpoint

    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["config"]["method"]["name"] == "intl"
    assert "conv1.weight" in ckpt["backbone"] and ckpt["backbone"]["conv1.weight"].shape[-1] == 3  # small stem


def test_linear_evaluation_from_checkpoint(pretrained, tmp_path):
    run_dir, _ = pretrained
    out = tmp_path / "linear"
    run("main_linear.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "linear.epochs=30", "data.num_workers=0", f"run_dir={out}")
    summary = json.loads((out / "summary.json").read_text())
    # Even briefly pretrained features separate digits far above chance (0.1).
    assert summary["linear_top1"] > 0.5 and summary["linear_top5"] >= summary["linear_top1"]
    assert summary["knn5_top1"] > 0.5


def test_same_run_dir_resumes_to_the_requested_epochs(pretrained):
    run_dir, _ = pretrained
    result = run("main_pretrain.py", *TINY, "trainer.max_epochs=3", f"run_dir={run_dir}")
    assert "Resuming from" in result.stdout
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 3
    import csv

    epochs = {row["epoch"] for row in csv.DictReader((run_dir / "metrics.csv").open()) if row.get("val/knn_top1")}
    assert epochs == {"0", "1", "2"}  # the history before the resume is kept


def test_kill_minus_nine_then_resume(tmp_path):
    """A run killed while it writes checkpoints every step resumes from an intact last.ckpt."""
    run_dir = tmp_path / "run"
    args = [*TINY, "trainer.max_epochs=3", "checkpoint_every_n_steps=1", f"run_dir={run_dir}"]
    proc = subprocess.Popen([sys.executable, str(REPO / "main_pretrain.py"), *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and not last.exists():
        time.sleep(0.2)
    time.sleep(1.0)  # let it get into the next steps, likely mid-write
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last.exists(), "no checkpoint was written before the kill"
    torch.load(last, map_location="cpu", weights_only=False)  # never half-written
    result = run("main_pretrain.py", *args)
    assert "Resuming from" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["steps"] == 9


BAD_INPUTS = [
    (["method=nosuch"], "unknown method 'nosuch' (registered: "),
    (["data.name=cifar10", "data.root=/nonexistent/cifar"], "cifar10 not found under data.root=/nonexistent/cifar"),
    (["data.name=folder", "data.root=/nonexistent/images"], "data root not found: /nonexistent/images"),
    (["data.batch_size=5000"], "fewer than data.batch_size=5000"),
    (["data.views=[{size: 16}]"], "takes at least 2 views"),
    (["backbone.name=nosuchnet"], "unknown timm backbone 'nosuchnet'"),
    (["data.batch_size=0"], "data.batch_size=0 must be at least 1"),
    (["optimizer.lr=-1"], "optimizer.lr=-1.0 must be positive"),
    (["trainer.limit_train_batches=1.5"], "trainer.limit_train_batches=1.5 must be a number of batches"),
    (["optimizer.name=lamb"], "optimizer.name=lamb is not one of: sgd, lars, lars_fb, lars_google, adam, adamw"),
    (["optimizer.lr=abc"], "optimizer.lr=abc: Value 'abc' of type 'str' could not be converted to Float"),  # Hydra's, one line
    pytest.param(["trainer.accelerator=gpu"], "trainer.accelerator=gpu but this machine has no CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
]


def assert_one_error_line(stderr, expected):
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], stderr


def pretrain_in_process(monkeypatch, capsys, *args):
    """main_pretrain.py's own entry point called in this process (a new process per call would spend most
    of its seconds importing torch) -> (exit status, stdout, stderr)."""
    from zoo.pretrain import main

    monkeypatch.setattr(sys, "argv", ["main_pretrain.py", *args])
    try:
        main()
        code = 0
    except SystemExit as stopped:
        code = stopped.code
    out, err = capsys.readouterr()
    return code, out, err


def pretrain_here(*args):
    """pretrain_in_process for a module's fixture (which has no monkeypatch or capsys) -> (exit status, stdout,
    stderr); the process's deterministic-algorithms switch (trainer.deterministic) and its SIGINT / SIGTERM
    handlers (the run's StopOnSignal sets them) are put back as they were."""
    from zoo.pretrain import main

    deterministic = torch.are_deterministic_algorithms_enabled()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.setattr(sys, "argv", ["main_pretrain.py", *args])
        try:
            main()
            code = 0
        except SystemExit as stopped:
            code = stopped.code
        finally:
            torch.use_deterministic_algorithms(deterministic)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("args, expected", BAD_INPUTS)
def test_bad_input_is_one_clear_line(args, expected, tmp_path, monkeypatch, capsys):
    """The one `error:` line on stderr and exit status 2."""
    code, _, err = pretrain_in_process(monkeypatch, capsys, *args, f"run_dir={tmp_path / 'run'}")
    assert code == 2
    assert_one_error_line(err, expected)


@pytest.mark.parametrize("args, expected", [
    (["method=vicreg", "data.batch_size=1"], "method vicreg needs a global batch of at least 2 samples"),  # NaN loss
    (["method=barlow_twins", "data.batch_size=1"], "method barlow_twins needs a global batch of at least 2"),  # no gradient
    (["method=wmse", "data.batch_size=32", "method.w_size=32"], "rank-deficient"),  # 32 samples cannot whiten 32 features
    (["method=mocov2", "data.batch_size=64", "method.queue_size=32"], "method.queue_size=32 is smaller than the global batch"),
])
def test_the_methods_batch_limits_stop_the_run_before_data_or_model(args, expected, tmp_path, monkeypatch, capsys):
    """Checked on the composed config with the devices known, before any loader or model is built."""
    import zoo.pretrain

    def built(*_, **__):
        raise AssertionError("data or model built before the batch was checked")

    monkeypatch.setattr(zoo.pretrain, "build_loaders", built)
    monkeypatch.setattr(zoo.pretrain, "build_method", built)
    code, _, err = pretrain_in_process(monkeypatch, capsys, *args, f"run_dir={tmp_path / 'run'}")
    assert code == 2
    assert_one_error_line(err, expected)


@pytest.mark.parametrize("args, expected", [BAD_INPUTS[3], BAD_INPUTS[6]])
def test_bad_input_stops_a_real_process_on_one_cpu(args, expected, tmp_path):
    """As a user runs it, with the default data.num_workers on one CPU: the config is checked before any
    loader (and its workers) exists."""
    result = run("main_pretrain.py", *args, f"run_dir={tmp_path / 'run'}", check=False, timeout=120, one_cpu=True)
    assert result.returncode != 0
    assert_one_error_line(result.stderr, expected)


def test_misspelled_key_fails_with_hydras_message(tmp_path):
    result = run("main_pretrain.py", "data.batchsize=8", f"run_dir={tmp_path}", check=False, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Could not override 'data.batchsize'" in result.stderr and "Key 'batchsize' not in 'DataConfig'" in result.stderr


def test_wrong_folder_layout_names_the_missing_split(tmp_path):
    (tmp_path / "images" / "cat").mkdir(parents=True)  # class folders directly under the root
    result = run("main_pretrain.py", "data.name=folder", f"data.root={tmp_path / 'images'}", f"run_dir={tmp_path / 'r'}",
                 check=False, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "wrong folder layout" in result.stderr and "train/<class>" in result.stderr


@pytest.mark.parametrize("make", ["missing", "foreign"])
def test_bad_checkpoint_is_one_clear_line(make, tmp_path):
    path = tmp_path / "model.ckpt"
    if make == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    result = run("main_linear.py", "--ckpt", str(path), check=False, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert ("checkpoint not found" if make == "missing" else "not a zoo pretraining checkpoint") in lines[0]


def test_spectral_transform_method_trains_and_reports_its_whitened_spectrum(tmp_path):
    """Fewer epochs (2) than the validation interval (5): the run still evaluates its final weights."""
    run_dir = tmp_path / "st"
    run("main_pretrain.py", *TINY, "method=st", "method.p=0.5", "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=5",
        f"run_dir={run_dir}")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["method"] == "st" and summary["knn_top1"] is not None and summary["effective_rank"] is not None
    # p = 0.5 is ZCA whitening: the transformed output's covariance is the identity.
    assert summary["transformed_identity_distance"] < 1e-3
    assert summary["transformed_condition_number"] < 1.01
    assert (run_dir / "spectrum.png").stat().st_size > 10_000
    assert "val/transformed_identity_distance" in (run_dir / "metrics.csv").read_text()
