"""How each whitening loss's forward + backward time grows with the batch and with the embedding dimension.

    python benchmarks/loss_scaling.py [--png runs/loss_scaling.png] [--json runs/loss_scaling.json] [--threads 1]
    python benchmarks/loss_scaling.py --tiny          # seconds (CI)

Times `zoo.losses.<name>_loss(z1, z2, **settings)` then `.backward()` on random float32 views, for the
batch N = 64 ... 4096 at a fixed dimension D, and for D = 256 ... 8192 at a fixed N, on this CPU, and
fits the exponent k of t ~ x^k (least-squares slope of log t on log x, over all measured points and
over the largest three). The whitening losses run as the recipes whiten:

  intl          IterNorm, 4 Newton steps, channel axis: an N x N covariance (INTL)
  st            the power transform lambda^-1/2 (eigh), channel axis: N x N (INTL's spectral transformation)
  wmse          Cholesky of the whole batch, batch axis: D x D (W-MSE with w_size = the batch)
  cwrgp         ZCA over sub-batches of 128 samples, 2 channel groups: 128 x 128 per group (CW-RGP ImageNet)
  barlow_twins  the D x D cross-correlation (no whitening; for comparison)
  vicreg        two D x D covariances (no whitening; for comparison)

A point the whitening cannot serve (a rank-deficient covariance: wmse needs N > D, st N < D, cwrgp
D/2 > 128) is not measured ("rank-def."), so each loss sweeps the batch at a D, and the dimension at an
N, of its own (the table says which). Once one forward + backward takes longer than --max-seconds, the
larger points of that sweep are skipped ("> cap"). Timing: 1 intra-op thread by default and process
CPU time (which other jobs on a shared machine hardly change; --clock wall for wall-clock), the median
of --repeats after a warm-up. Markdown to stdout; --png draws the curves, --json keeps the numbers.
"""

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from _common import cores, cpu_model, load_average, markdown_table

from zoo import losses
from zoo.errors import ZooError, exit_on_user_error

BATCHES = [64, 128, 256, 512, 1024, 2048, 4096]
DIMS = [256, 512, 1024, 2048, 4096, 8192]
# name: (loss settings, D of the batch sweep, N of the dimension sweep)
LOSSES = {
    "intl": ({"iters": 4, "axis": "channel"}, 512, 256),
    "st": ({"power": 0.5, "axis": "channel"}, 8192, 256),
    "wmse": ({}, 64, 4096),
    "cwrgp": ({"groups": 2, "w_size": 128}, 1024, 1024),
    "barlow_twins": ({}, 1024, 1024),
    "vicreg": ({}, 1024, 1024),
}
TINY_BATCHES, TINY_DIMS = [16, 32, 64], [16, 32, 64]
TINY_LOSSES = {
    "intl": ({"iters": 4, "axis": "channel"}, 32, 32),
    "st": ({"power": 0.5, "axis": "channel"}, 128, 16),
    "wmse": ({}, 8, 128),
    "cwrgp": ({"groups": 2, "w_size": 8}, 64, 64),
    "barlow_twins": ({}, 32, 32),
    "vicreg": ({}, 32, 32),
}
RANK_DEFICIENT, CAPPED = "rank-def.", "> cap"


def one_run(loss, views, kwargs, clock):
    for view in views:
        view.grad = None
    start = clock()
    loss(*views, **kwargs).backward()
    return clock() - start


def time_point(name, kwargs, n, d, repeats, clock, max_seconds):
    """Median seconds of forward + backward at (N, D), or RANK_DEFICIENT."""
    loss = getattr(losses, f"{name}_loss")
    generator = torch.Generator().manual_seed(n * 100_003 + d)
    views = [torch.randn(n, d, generator=generator).requires_grad_() for _ in range(2)]
    try:
        first = one_run(loss, views, kwargs, clock)  # warm-up (allocations), and the check of the whitening
    except ZooError:
        return RANK_DEFICIENT
    if first > max_seconds:
        return first  # one run is all a slow point gets
    runs = repeats if first < max_seconds / 4 else 1
    return statistics.median(one_run(loss, views, kwargs, clock) for _ in range(runs))


def sweep(name, kwargs, points, fixed, axis, repeats, clock, max_seconds):
    """{x: seconds | RANK_DEFICIENT | CAPPED} along `axis` ("batch": x = N at D = fixed; "dim": x = D at N = fixed)."""
    results, capped = {}, False
    for x in points:
        if capped:
            results[x] = CAPPED
            continue
        n, d = (x, fixed) if axis == "batch" else (fixed, x)
        results[x] = time_point(name, kwargs, n, d, repeats, clock, max_seconds)
        if isinstance(results[x], float) and results[x] > max_seconds:
            capped = True
    return results


def slope(results, last=None):
    """Least-squares slope of log t on log x over the measured points (the largest `last` of them)."""
    points = [(x, t) for x, t in results.items() if isinstance(t, float) and t > 0]
    points = points[-last:] if last else points
    if len(points) < 2:
        return None
    xs, ys = [math.log(x) for x, _ in points], [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def cell(value):
    if isinstance(value, str):
        return value
    return f"{1000 * value:.3g}"


def fmt_slope(value):
    return "-" if value is None else f"{value:.2f}"


def plot(data, png, batches, dims):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, axis, points, label in ((axes[0], "batch", batches, "batch N"), (axes[1], "dim", dims, "dimension D")):
        for index, (name, entry) in enumerate(data.items()):
            measured = [(x, t) for x, t in entry[axis]["seconds"].items() if isinstance(t, float)]
            if not measured:
                continue
            xs, ts = zip(*measured)
            k = entry[axis]["slope"]
            fixed = f"{'D' if axis == 'batch' else 'N'}={entry[axis]['fixed']}"
            ax.loglog(xs, [1000 * t for t in ts], "o-", color=f"C{index}",
                      label=f"{name} ({fixed}), k={fmt_slope(k)}")
        ax.set(xlabel=label, ylabel="forward + backward (ms)", title=f"loss time against the {label}")
        ax.set_xticks(points, [str(p) for p in points])
        ax.minorticks_off()
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--tiny", action="store_true", help="N, D in 16 ... 64, one repeat (CI)")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per point (default 3; --tiny 1)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="a sweep stops after a point slower than this (default 4; --tiny 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=["cpu", "wall"], default=None,
                        help="process CPU time or wall-clock (default: cpu with 1 thread, else wall)")
    parser.add_argument("--png", type=Path, help="draw the curves here")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.repeats = args.repeats or (1 if args.tiny else 3)
    args.max_seconds = args.max_seconds or (1.0 if args.tiny else 4.0)
    args.clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    settings = TINY_LOSSES if args.tiny else LOSSES
    batches, dims = (TINY_BATCHES, TINY_DIMS) if args.tiny else (BATCHES, DIMS)

    print(f"loss_scaling: CPU {cpu_model()}, {cores()} cores, {args.threads} torch thread(s), {args.clock} time, "
          f"float32, 2 views, median of {args.repeats}, cap {args.max_seconds} s per forward+backward; "
          f"load average {load_average():.1f}")
    started = time.perf_counter()
    data = {}
    for name in args.losses:
        kwargs, dim_of_batch_sweep, batch_of_dim_sweep = settings[name]
        by_batch = sweep(name, kwargs, batches, dim_of_batch_sweep, "batch", args.repeats, clock, args.max_seconds)
        by_dim = sweep(name, kwargs, dims, batch_of_dim_sweep, "dim", args.repeats, clock, args.max_seconds)
        data[name] = {
            "settings": kwargs,
            "batch": {"fixed": dim_of_batch_sweep, "seconds": by_batch, "slope": slope(by_batch), "slope_last3": slope(by_batch, 3)},
            "dim": {"fixed": batch_of_dim_sweep, "seconds": by_dim, "slope": slope(by_dim), "slope_last3": slope(by_dim, 3)},
        }
        print(f"  {name}: k_N {fmt_slope(data[name]['batch']['slope'])}, k_D {fmt_slope(data[name]['dim']['slope'])}",
              file=sys.stderr)

    for axis, points, symbol, other in (("batch", batches, "N", "D"), ("dim", dims, "D", "N")):
        title = "batch N" if axis == "batch" else "dimension D"
        print(f"\nForward + backward (ms) against the {title}; k = fitted exponent of t ~ {symbol}^k")
        rows = [[name, f"{other}={entry[axis]['fixed']}", *[cell(entry[axis]["seconds"][x]) for x in points],
                 fmt_slope(entry[axis]["slope"]), fmt_slope(entry[axis]["slope_last3"])]
                for name, entry in data.items()]
        print(markdown_table(["loss", "at", *[f"{symbol}={x}" for x in points], "k (all)", "k (largest 3)"], rows))
    print(f"\n{RANK_DEFICIENT}: the whitening cannot serve that shape; {CAPPED}: skipped after a point over "
          f"{args.max_seconds} s. {time.perf_counter() - started:.0f} s in all.")
    if args.png:
        plot(data, args.png, batches, dims)
        print(f"written: {args.png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        serial = {name: {**entry, **{axis: {**entry[axis], "seconds": {str(k): v for k, v in entry[axis]["seconds"].items()}}
                                     for axis in ("batch", "dim")}} for name, entry in data.items()}
        args.json.write_text(json.dumps({"cpu": cpu_model(), "threads": args.threads, "clock": args.clock,
                                         "losses": serial}, indent=2) + "\n")


if __name__ == "__main__":
    exit_on_user_error(main)()
