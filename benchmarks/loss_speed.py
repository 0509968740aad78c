"""Forward + backward time of the batched zoo.losses against the loop oracles.

    python benchmarks/loss_speed.py [--repeats 15] [--threads N]

Settings are the official CIFAR ones: CW-RGP 4 (bs 256, 4 views, w_size 64,
4 groups, D 512), W-MSE 4 (bs 256, 4 views, w_size 128, D 64) and INTL
(bs 256, 2 views, D 2048, channel axis). The loop oracle
(tests/reference_losses.py) whitens one sub-batch of one view at a time, as
the official code does (and one group at a time, where the official code
batches the groups). Prints the median over repeats, wall-clock and process
CPU time: the machine may be shared, and with --threads 1 the CPU time is
immune to other load.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import reference_losses as reference

from zoo import losses

SETTINGS = [
    # name, loss, views, batch, dim, kwargs
    ("CW-RGP 4 (CIFAR)", "cwrgp", 4, 256, 512, {"groups": 4, "w_size": 64}),
    ("W-MSE 4 (CIFAR)", "wmse", 4, 256, 64, {"w_size": 128}),
    ("INTL (CIFAR)", "intl", 2, 256, 2048, {}),
]


def forward_backward_seconds(loss, views, kwargs):
    """(wall, CPU) seconds of one forward + backward."""
    for view in views:
        view.grad = None
    wall, cpu = time.perf_counter(), time.process_time()
    loss(*views, **kwargs).backward()
    return time.perf_counter() - wall, time.process_time() - cpu


def median_times(implementations, views, kwargs, repeats):
    """Median (wall, CPU) seconds per implementation; runs alternate so that load from elsewhere hits all alike."""
    times = [[] for _ in implementations]
    for step in range(repeats + 1):  # one warm-up round
        for loss, samples in zip(implementations, times):
            seconds = forward_backward_seconds(loss, views, kwargs)
            if step:
                samples.append(seconds)
    return [tuple(statistics.median(column) for column in zip(*samples)) for samples in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    header = (
        f"{'setting':<18} {'batch':>5} {'views':>5} {'dim':>5} | {'batched ms':>10} {'loop ms':>8} {'speed-up':>8}"
        f" | {'batched cpu':>11} {'loop cpu':>8} {'speed-up':>8}"
    )
    load = os.getloadavg()[0]
    print(f"forward+backward, float32, CPU, {args.threads} thread(s), median of {args.repeats}; load average {load:.1f}")
    print("wall-clock ms, then process CPU ms (with 1 thread the CPU time ignores other load on the machine)")
    print(header)
    print("-" * len(header))
    for name, loss_name, n_views, batch, dim, kwargs in SETTINGS:
        views = [torch.randn(batch, dim, requires_grad=True) for _ in range(n_views)]
        implementations = (getattr(losses, f"{loss_name}_loss"), reference.LOSSES[loss_name])
        (batched, batched_cpu), (looped, looped_cpu) = median_times(implementations, views, kwargs, args.repeats)
        print(
            f"{name:<18} {batch:>5} {n_views:>5} {dim:>5} | {batched * 1e3:>10.1f} {looped * 1e3:>8.1f} "
            f"{looped / batched:>7.2f}x | {batched_cpu * 1e3:>11.1f} {looped_cpu * 1e3:>8.1f} {looped_cpu / batched_cpu:>7.2f}x"
        )


if __name__ == "__main__":
    main()
