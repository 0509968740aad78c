"""Every method on the embedded digits_m data with its defaults, beside its controls, over seeds.

Rows, each run as a user would (`main_pretrain.py`, then `main_linear.py`, LP-SMALL) and summarised as
mean +- std over the seeds:
- `raw pixels`: the flattened evaluation images under the same k-NN and linear protocols;
- `untrained`: the default command with lr 1e-12 (backbone and probe) stopped after 3 steps, an untrained
  ResNet-18 whose BatchNorm statistics saw three batches (the control every trained row must beat);
- every registered method (or `--methods` / `--family`) with its defaults.
Columns: k-NN top-1 of pretraining's final evaluation (20-nn, cosine), main_linear.py's linear top-1,
the backbone's effective rank, the condition number of the transformed (whitened) output for methods that
have a transform, the pretraining wall time and the load average when it started (a time measured beside
other jobs is too long; the accuracies do not depend on load). After the table, the gap of `--gap-method`
(the default run's method) over the untrained control, in points of k-NN and of linear top-1, and with
`--reference-steps N` the seconds of a reference step (ResNet-18 as the default run builds it, forward,
backward and SGD on 256 crops of 16 px; the median of N after one warm-up) measured in the same process, and
each row's pretraining time in reference steps: the default run's budget is at most 80.

A run whose summaries exist is read, not run again: a cut benchmark resumes where it stopped.

    python benchmarks/digits_m_all_methods.py [--out runs/digits_m-bench] [--seeds 0 1 2]
        [--methods intl wmse | --family] [--data digits_m] [--json rows.json]
        [--linear-override linear.epochs=50] [--reference-steps 5] [-- extra pretraining overrides]
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import compose_config, cores, cpu_model, load_average, markdown_table

from zoo.registry import method_names

REPO = Path(__file__).resolve().parents[1]
# The whitening / spectral family (docs/spectral_family.md): methods whose objective acts on the second-order
# statistics or the spectrum of the embedding.
FAMILY = ["intl", "intl_m", "st", "wmse", "cwrgp", "zero_cl", "shuffled_dbn", "barlow_twins", "vicreg", "corinfomax",
          "mec", "mmcr", "frossl", "lejepa"]
PIXELS, UNTRAINED = "raw pixels", "untrained"
# The untrained control: the default command whose lr cannot move the weights, stopped once BatchNorm saw 3 batches.
UNTRAINED_OVERRIDES = ["optimizer.lr=1e-12", "optimizer.probe_lr=1e-12", "trainer.max_steps=3"]
HEADERS = ["method", "k-NN top-1", "linear top-1 (LP-SMALL)", "backbone effective rank",
           "transformed condition number", "pretrain seconds", "load at start", "seeds"]


def run(script, *args):
    """Run an entry point (a script of the repository, or `-m module`); its last `error:` line (or exit status) as
    the failure, None when it succeeds."""
    target = ["-m", script.removeprefix("-m ")] if script.startswith("-m ") else [str(REPO / script)]
    done = subprocess.run([sys.executable, *target, *args], cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode == 0:
        return None
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    return errors[-1] if errors else f"{script} exited with status {done.returncode}"


def pretrain_command(method, seed, run_dir, data, overrides):
    """The script and arguments of one row's pretraining: the default run (no recipe, so with the method's
    embedded settings, zoo/configs/embedded/) on `data`."""
    return ["main_pretrain.py", f"method={method}", f"data.name={data}", f"augment={data}", f"seed={seed}",
            f"run_dir={run_dir}", "trainer.enable_progress_bar=false", *overrides]


def measure(row, method, seed, run_dir, data, pretrain_overrides, linear_overrides):
    """One pretraining run and its linear evaluation; read from run_dir when done before (the wall time and
    load of the first measurement, or why it failed, are kept in run_dir/benchmark.json: delete the folder
    to run it again)."""
    timing = run_dir / "benchmark.json"
    if not timing.exists():
        load, start = load_average(), time.time()
        failed = run(*pretrain_command(method, seed, run_dir, data, pretrain_overrides))
        seconds = time.time() - start
        failed = failed or run("main_linear.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), *linear_overrides)
        run_dir.mkdir(parents=True, exist_ok=True)
        timing.write_text(json.dumps({"pretrain_seconds": seconds, "load_average": load, "failed": failed}))
    measured = json.loads(timing.read_text())
    result = {"row": row, "method": method, "seed": seed, "steps": None, "knn_top1": None, "linear_top1": None,
              "effective_rank": None, "transformed_condition_number": None, **measured}
    if measured["failed"]:
        return result
    pretrain = json.loads((run_dir / "summary.json").read_text())
    linear = json.loads((run_dir / "linear" / "summary.json").read_text())
    return {**result, "steps": pretrain["steps"], "knn_top1": pretrain["knn_top1"], "linear_top1": linear["linear_top1"],
            "effective_rank": pretrain["effective_rank"],
            "transformed_condition_number": pretrain.get("transformed_condition_number")}


def measure_pixels(data, seed, linear_overrides):
    """The raw-pixel control under main_linear.py's protocol (with its overrides) and pretraining's k-NN."""
    from zoo.eval.cli import build_config
    from zoo.eval.linear import pixel_control

    cfg = build_config(None, [f"seed={seed}", f"data.name={data}", *linear_overrides])
    result = pixel_control(cfg)
    return {"row": PIXELS, "method": None, "seed": seed, "knn_top1": result["knn_top1"],
            "linear_top1": result["linear_top1"], "effective_rank": None, "transformed_condition_number": None,
            "pretrain_seconds": None, "load_average": None, "failed": None}


def spread(values, digits):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f}"


def summarise(rows):
    """Seeds of one row pooled: {row: {"knn": [...], ...}} in the order rows first appear."""
    pooled = {}
    for r in rows:
        pooled.setdefault(r["row"], []).append(r)
    return pooled


def cells(name, runs):
    """A row's cells over its finished seeds; the seeds column names the failed ones too."""
    ok = [r for r in runs if not r["failed"]]
    condition = [r["transformed_condition_number"] for r in ok if r["transformed_condition_number"] is not None]
    return [name, spread([r["knn_top1"] for r in ok], 3), spread([r["linear_top1"] for r in ok], 3),
            spread([r["effective_rank"] for r in ok], 1), f"{statistics.median(condition):.3g}" if condition else "-",
            spread([r["pretrain_seconds"] for r in ok], 0), spread([r["load_average"] for r in ok], 1),
            ",".join(str(r["seed"]) + (" failed" if r["failed"] else "") for r in runs)]


def gap_lines(pooled, method):
    """The points by which `method` beats the untrained control, mean over seeds, k-NN and linear."""
    if method not in pooled or UNTRAINED not in pooled:
        return []
    lines = []
    for key, name in (("knn_top1", "k-NN"), ("linear_top1", "linear")):
        trained = [r[key] for r in pooled[method] if not r["failed"]]
        control = [r[key] for r in pooled[UNTRAINED] if not r["failed"]]
        if not trained or not control:
            return []
        trained, control = statistics.mean(trained), statistics.mean(control)
        lines.append(f"{method} over the untrained control, {name} top-1: {100 * (trained - control):+.1f} points "
                     f"({trained:.3f} against {control:.3f})")
    return lines


def reference_step_seconds(steps):
    """Median seconds of one reference step: the default run's ResNet-18 (its small stem) on 256 crops of 16 px."""
    import torch

    from zoo.backbones import create_backbone

    model = create_backbone(compose_config([]).backbone, 16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    crops = torch.randn(256, 3, 16, 16)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        model(crops).square().mean().backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/digits_m-bench")
    parser.add_argument("--data", default="digits_m", choices=["digits_m", "digits"],
                        help="the embedded data set (and its augmentation preset) of every run; digits: the plain digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument("--methods", nargs="+", help="default: every registered method")
    selection.add_argument("--family", action="store_true", help="the whitening / spectral family only")
    parser.add_argument("--no-controls", action="store_true", help="leave out the raw-pixel and untrained rows")
    parser.add_argument("--gap-method", default="intl", help="the method whose gap over the untrained control is printed")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--linear-override", action="append", default=[], help="a main_linear.py override (repeatable)")
    parser.add_argument("--reference-steps", type=int, default=0, help="time this many reference steps (0: none)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every pretraining run")
    args = parser.parse_args()
    methods = FAMILY if args.family else args.methods or method_names()
    unknown = sorted(set(methods) - set(method_names()))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; registered: {', '.join(method_names())}")
    print(f"digits_m_all_methods: {cpu_model()}, {cores()} cores, {time.strftime('%Y-%m-%d')}, data {args.data}, "
          f"seeds {' '.join(map(str, args.seeds))}")
    out = Path(args.out).resolve()
    jobs = [] if args.no_controls else [(PIXELS, None), (UNTRAINED, args.gap_method)]
    jobs += [(method, method) for method in methods]
    rows = []
    for seed in args.seeds:  # every row once before the next seed: a cut run still covers every method
        for row, method in jobs:
            if row == PIXELS:
                rows.append(measure_pixels(args.data, seed, args.linear_override))
            else:
                extra = UNTRAINED_OVERRIDES if row == UNTRAINED else []
                run_dir = out / f"{row}-seed{seed}"
                rows.append(measure(row, method, seed, run_dir, args.data, [*args.overrides, *extra], args.linear_override))
            done = rows[-1]
            print(f"{row} seed {seed}: " + (done["failed"] or f"k-NN {done['knn_top1']:.3f}, linear {done['linear_top1']:.3f}"),
                  file=sys.stderr)
            if args.json:  # after every run: a cut benchmark keeps what it measured
                args.json.write_text(json.dumps({"cpu": cpu_model(), "cores": cores(), "data": args.data, "rows": rows}, indent=1))
    pooled = summarise(rows)
    print(markdown_table(HEADERS, [cells(name, runs) for name, runs in pooled.items()]))
    for line in gap_lines(pooled, args.gap_method):
        print(line)
    for r in rows:
        if r["failed"]:
            print(f"{r['row']} seed {r['seed']} failed: {r['failed']}")
    if args.reference_steps:
        seconds = reference_step_seconds(args.reference_steps)
        print(f"reference step (ResNet-18, 256 crops of 16 px, forward + backward + SGD): {seconds:.3f} s, "
              f"median of {args.reference_steps}")
        for name, runs in pooled.items():
            times = [r["pretrain_seconds"] for r in runs if r["pretrain_seconds"] is not None and not r["failed"]]
            if times:
                print(f"{name}: pretraining {statistics.median(times):.0f} s = {statistics.median(times) / seconds:.0f} reference steps")


if __name__ == "__main__":
    main()
