"""Running the entry points as a user runs them: a tiny digits pretraining config, a script in a new process, and
main_pretrain.py's entry point in this process."""

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


def call_pretrain(*args):
    """main_pretrain.py's entry point called in this process with `args` -> its exit status."""
    from zoo.pretrain import main

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["main_pretrain.py", *args])
        try:
            main()
        except SystemExit as stopped:
            return stopped.code
    return 0


def pretrain_in_process(monkeypatch, capsys, *args):
    """main_pretrain.py's own entry point called in this process (a new process per call would spend most
    of its seconds importing torch) -> (exit status, stdout, stderr)."""
    code = call_pretrain(*args)
    out, err = capsys.readouterr()
    return code, out, err


def pretrain_here(*args):
    """pretrain_in_process for a module's fixture (which has no monkeypatch or capsys) -> (exit status, stdout,
    stderr); the process's deterministic-algorithms switch (trainer.deterministic) and its SIGINT / SIGTERM
    handlers (the run's StopOnSignal sets them) are put back as they were."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = call_pretrain(*args)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return code, out.getvalue(), err.getvalue()


# The plain digits (not the default digits_m): a few steps already separate them, which the checks rely on.
PROBE_TINY = ["data.name=digits", "augment=digits", "data.batch_size=32", "data.num_workers=0", "data.image_size=16", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2", "trainer.check_val_every_n_epoch=1", "trainer.enable_progress_bar=false",
        "method.proj_hidden=[64]", "method.proj_out=32"]


def pretrain_tiny(run_dir):
    """A tiny pretraining run (PROBE_TINY) into `run_dir`, through the entry point (called in this process)."""
    code, _, err = pretrain_here(*PROBE_TINY, f"run_dir={run_dir}")
    assert code == 0, err[-3000:]
    return run_dir


# A short digits run of a baseline method (SimCLR, MoCo v2+, BYOL) at 16 px.
SHORT_RUN = ["data.batch_size=32", "data.num_workers=0", "data.image_size=16", "trainer.limit_train_batches=3",
       "trainer.limit_val_batches=2", "data.eval_batch_size=32", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
       "method.proj_hidden=[128]", "method.proj_out=64"]
