"""The spectral-transformation study of the INTL paper, at CPU scale on digits.

Sweeps the power p of the spectral transformation g(lambda) = lambda^-p
(method `st`, p = 0.5 is whitening) and INTL's Newton iteration count, each
with and without the trace loss, and records for every run the k-NN top-1,
the effective rank of backbone features and projector outputs, and whether
training collapsed. `--trade-offs W ...` repeats the iters sweep with the trace
loss weighted W. Writes DIR/table.md and PNG plots.

    python benchmarks/spectral_study.py [--epochs 15] [--out runs/spectral-study] [--trade-offs 0.4]
"""

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POWERS = [0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0]
ITERS = [1, 2, 4, 8]
# A run counts as collapsed when its loss turned NaN/inf, or when the backbone
# features span fewer than this many effective dimensions (of 512).
COLLAPSE_RANK = 5.0
RUN_SUFFIX = {"yes": "trace", "no": "notrace"}
TRACE_LABELS = {"yes": "trace loss (default weight)", "no": "no trace loss"}
SUMMARY_KEYS = ("knn_top1", "effective_rank", "projector_effective_rank", "transformed_effective_rank",
                "transformed_condition_number", "transformed_identity_distance")


def runs_to_make(args):
    """(name, trace, knob, value, overrides); trace is "yes" (INTL's default weight), "no" (trade_off=0) or an
    explicit weight from --trade-offs (INTL iters runs only)."""
    for trace in ("yes", "no"):
        trade_off = [] if trace == "yes" else ["method.trade_off=0"]
        for p in args.powers:
            yield f"st p={p}", trace, "p", p, ["method=st", f"method.p={p}", *trade_off]
        for iters in args.iters:
            yield f"intl iters={iters}", trace, "iters", iters, ["method=intl", f"method.iters={iters}", *trade_off]
    for weight in args.trade_offs:
        for iters in args.iters:
            yield (f"intl iters={iters}", f"{weight:g}", "iters", iters,
                   ["method=intl", f"method.iters={iters}", f"method.trade_off={weight}"])


def train(name, overrides, run_dir, epochs, extra):
    """Trains one run, or reads it back when an earlier invocation finished it (re-running the study resumes)."""
    summary_path, diverged_path = run_dir / "summary.json", run_dir / "diverged.txt"
    if summary_path.exists():
        return json.loads(summary_path.read_text()), False
    if diverged_path.exists():
        return {}, True
    # batch 128 and the small stem's padding 1: the study's published setting (docs/spectral_study.md), not the
    # default run's 64 and 0
    cmd = [sys.executable, str(REPO / "main_pretrain.py"), *overrides, f"run_dir={run_dir}", f"trainer.max_epochs={epochs}",
           "data.batch_size=128", "backbone.small_stem_padding=1", "trainer.check_val_every_n_epoch=1",
           "trainer.enable_progress_bar=false", *extra]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "the loss became" not in result.stderr:
        raise SystemExit(f"{name} failed:\n{result.stderr[-2000:]}")
    if result.returncode != 0:
        diverged_path.write_text(result.stderr.strip().splitlines()[-1] + "\n")
        return {}, True
    return json.loads(summary_path.read_text()), False


def last_validation(run_dir):
    """(epoch, k-NN top-1, backbone effective rank) of the last validation before a run diverged."""
    knn, rank = per_epoch(run_dir, "val/knn_top1"), per_epoch(run_dir, "val/effective_rank")
    return (knn[-1][0], knn[-1][1], rank[-1][1]) if knn and rank else None


def per_epoch(run_dir, key):
    path = run_dir / "metrics.csv"
    if not path.exists():
        return []
    rows = [row for row in csv.DictReader(path.open()) if row.get(key)]
    return [(int(row["epoch"]), float(row[key])) for row in rows]


def fmt(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_large(value):
    return "-" if value is None else f"{value:.3g}"


def plot(rows, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc_ax, rank_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for trace, color in (("yes", "C0"), ("no", "C1")):
        label = TRACE_LABELS[trace]
        runs = [r for r in rows if r["knob"] == "p" and r["trace"] == trace]
        done = [r for r in runs if not r["diverged"]]
        p_done = [r["value"] for r in done]
        acc_ax.plot(p_done, [r["knn_top1"] for r in done], "o-", color=color, label=label)
        rank_ax.plot(p_done, [r["effective_rank"] for r in done], "o-", color=color, label=f"backbone, {label}")
        rank_ax.plot(p_done, [r["projector_effective_rank"] for r in done], "s--", color=color, label=f"projector, {label}")
        # Runs whose loss turned NaN have no final value: an x on the bottom edge marks their p.
        p_nan = [r["value"] for r in runs if r["diverged"]]
        for ax in (acc_ax, rank_ax):
            ax.plot(p_nan, [0.03 if trace == "yes" else 0.07] * len(p_nan), "x", color=color, markersize=9,
                    transform=ax.get_xaxis_transform(), label=f"loss NaN, {label}" if p_nan else None)
    acc_ax.set(xlabel="power p of g(lambda) = lambda^-p", ylabel="k-NN top-1", title="accuracy against p")
    rank_ax.set(xlabel="power p", ylabel="effective rank", title="effective rank against p", yscale="log")
    acc_ax.legend()
    rank_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_rank_vs_p.png", dpi=100)
    plt.close(fig)

    # One column per iteration count, its trace-loss settings as lines: condition number on top, effective rank below.
    iters_values = sorted({r["value"] for r in rows if r["knob"] == "iters"})
    traces = list(dict.fromkeys(r["trace"] for r in rows if r["knob"] == "iters"))
    fig, axes = plt.subplots(2, max(len(iters_values), 1), figsize=(3.6 * max(len(iters_values), 1), 6.5),
                             squeeze=False, sharey="row")
    for col, iters in enumerate(iters_values):
        for r in rows:
            if r["knob"] != "iters" or r["value"] != iters:
                continue
            label = TRACE_LABELS.get(r["trace"], f"trace loss weight {r['trace']}")
            colour = f"C{traces.index(r['trace'])}"
            for row, key in enumerate(("val/transformed_condition_number", "val/transformed_effective_rank")):
                curve = per_epoch(r["run_dir"], key)
                if curve:
                    axes[row, col].plot(*zip(*curve), "o-", markersize=3, color=colour, label=label)
        axes[0, col].set(title=f"iters={iters}", yscale="log")
        axes[1, col].set(xlabel="epoch", yscale="log")
    axes[0, 0].set_ylabel("condition number\n(largest / smallest eigenvalue)")
    axes[1, 0].set_ylabel("effective rank (of the batch)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("INTL: eigenvalue spread of the IterNorm output over epochs (condition number 1 = all eigenvalues equal)")
    fig.tight_layout()
    fig.savefig(out / "intl_spread.png", dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default="runs/spectral-study")
    parser.add_argument("--powers", type=float, nargs="*", default=POWERS)
    parser.add_argument("--iters", type=int, nargs="*", default=ITERS)
    parser.add_argument("--trade-offs", type=float, nargs="*", default=[],
                        help="extra trace-loss weights for the INTL iters sweep (default weight: 0.01 (log2 batch - 3))")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (e.g. data.batch_size=64)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, trace, knob, value, overrides in runs_to_make(args):
        run_dir = out / f"{knob}{value}-{RUN_SUFFIX.get(trace, f'trace{trace}')}"
        summary, diverged = train(name, overrides, run_dir, args.epochs, args.overrides)
        rank = summary.get("effective_rank")
        collapsed = diverged or rank is None or rank < COLLAPSE_RANK
        rows.append({"name": name, "trace": trace, "knob": knob, "value": value, "run_dir": run_dir, "diverged": diverged,
                     "collapsed": collapsed, **{k: summary.get(k) for k in SUMMARY_KEYS}})
        print(f"{name} (trace loss {trace}): knn {fmt(summary.get('knn_top1'))}, "
              f"rank {fmt(rank, 1)}{' COLLAPSED' if collapsed else ''}", file=sys.stderr)
    lines = [
        (f"Digits, ResNet-18, {args.epochs} epochs per run. Collapsed = the loss turned NaN/inf, or the backbone "
         f"effective rank fell below {COLLAPSE_RANK}."),
        "",
        ("| run | trace loss | k-NN top-1 | eff. rank backbone | eff. rank projector | eff. rank transformed "
         "| cond. transformed | transformed cov - I | collapsed |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        status = "yes" if r["collapsed"] else "no"
        if r["diverged"]:
            before = last_validation(r["run_dir"])
            status = "NaN" + (f" after epoch {before[0]} (k-NN {before[1]:.3f}, rank {before[2]:.1f})" if before else "")
        lines.append(f"| {r['name']} | {r['trace']} | {fmt(r['knn_top1'])} | {fmt(r['effective_rank'], 1)} | "
                     f"{fmt(r['projector_effective_rank'], 1)} | {fmt(r['transformed_effective_rank'], 1)} | "
                     f"{fmt_large(r['transformed_condition_number'])} | {fmt(r['transformed_identity_distance'])} | {status} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot(rows, out)
    print("\n".join(lines))
    print(f"\nwritten: {out / 'table.md'}, {out / 'accuracy_rank_vs_p.png'}, {out / 'intl_spread.png'}")


if __name__ == "__main__":
    main()
