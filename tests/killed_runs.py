"""A pretraining run killed with SIGKILL after its first checkpoint, then resumed: the queue tests of the
methods with state beyond the weights (MoCo v2+'s keys, SwAV's queue)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def killed_after_first_checkpoint(args, run_dir, settle=0.5):
    """Starts main_pretrain.py ARGS (which must checkpoint every step), kills its process group `settle`
    seconds after last.ckpt appears (likely mid-write of the next one) and returns that checkpoint."""
    proc = subprocess.Popen([sys.executable, str(REPO / "main_pretrain.py"), *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and not last.exists() and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(settle)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return torch.load(last, map_location="cpu", weights_only=False)


def resumed(args, run_dir):
    """Runs the same command again to its end (its entry point, in this process: only the kill needs a process of
    its own); it must say it resumed. Returns the final checkpoint."""
    from pretrain_helpers import pretrain_here

    code, out, err = pretrain_here(*args)
    assert code == 0, err[-3000:]
    assert "Resuming from" in out
    return torch.load(Path(run_dir) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
