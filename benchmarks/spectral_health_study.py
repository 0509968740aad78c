"""Which label-free health metric predicts linear accuracy? Every method's default and hyper-parameter
variants on the embedded digits_m data, each scored by LP-SMALL and k-NN, against the metrics pretraining logs.

Runs: every registered method at its default (the embedded benchmark's runs: point `--out` at the folder of
`digits_m_all_methods.py` to share them) and at variants that span good, poor and collapsed training: the lr
at 0.1x and 3x its default for every method, and the family's own knobs (IterNorm iterations, the trace
trade-off, loss weights, projector width, temperatures, power), over `--seeds`. Each run is `main_pretrain.py`
then `main_linear.py` as the embedded benchmark runs them; a run whose summaries exist is read, not run again,
so a cut study resumes where it stopped (`--max-runs N` runs at most N new ones, then analyses).

Analysis over the finished runs (the untrained and raw-pixel controls are not runs of a method and are left out):
- every metric's Spearman and Kendall correlation with linear top-1 over all runs, and over the collapsed ones
  (summary.json's `collapsed`: backbone effective rank under 2 or output std x sqrt(D) under 0.1);
- selection of hyper-parameters: within each group of runs of one method and one seed that differ only in
  hyper-parameters, the points of linear top-1 lost by keeping the run the metric ranks first instead of the
  best run by labels, the mean over groups, beside the control of a uniformly random pick (its expected loss)
  and k-NN's pick (which uses labels);
- one scatter plot a metric (metric against linear top-1, collapsed runs marked);
- each group's picks: the variant the labels pick beside the variant each main metric picks, with accuracies.
LiDAR is measured twice: online (pretraining's validation, 16 images x 2 views, cheap) and, with
`--offline-lidar N`, offline as the paper measures it (`python -m zoo.health`: 1000 images x 50 views, written to
<run>/health/health.json; several CPU-minutes a run, so at most N runs that lack it are measured per call).
alpha-ReQ is scored by its closeness to 1 (Agrawal et al. 2022: accuracy peaks near alpha = 1 and falls on both
sides); every other metric by its value (higher predicts better), except the projector's mean absolute
off-diagonal correlation (lower).

    python benchmarks/spectral_health_study.py --out /path/to/digits_m-bench [--seeds 0 1] [--max-runs 10]
        [--plan] [--analyse-only] [--offline-lidar 8] [--report docs/spectral_health] [-- extra pretraining overrides]
"""

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import compose_config, cores, cpu_model, markdown_table
from digits_m_all_methods import measure, run

from zoo.registry import method_names

# (summary.json key, label, sign): sign +1 when a higher value should mean a better run, -1 lower; "alpha" scores
# by -|alpha - 1|.
METRICS = [
    ("rankme", "RankMe, backbone", 1),
    ("projector_rankme", "RankMe, projector", 1),
    ("effective_rank", "effective rank, backbone", 1),
    ("projector_effective_rank", "effective rank, projector", 1),
    ("lidar", "LiDAR, backbone", 1),
    ("projector_lidar", "LiDAR, projector", 1),
    ("offline_lidar", "LiDAR 1000x50 offline, backbone", 1),
    ("offline_projector_lidar", "LiDAR 1000x50 offline, projector", 1),
    ("alpha_req", "alpha-ReQ, backbone (closeness to 1)", "alpha"),
    ("projector_alpha_req", "alpha-ReQ, projector (closeness to 1)", "alpha"),
    ("projector_offdiag_correlation", "mean abs off-diagonal correlation, projector", -1),
    ("projector_min_std", "min feature std, projector", 1),
    ("output_std", "output std x sqrt(D) (SimSiam's indicator)", 1),
    ("stage3/rankme", "RankMe, stage 3", 1),
    ("knn_top1", "k-NN top-1 (uses labels)", 1),
]
# python -m zoo.health's names of the offline LiDAR (health.json's "metrics") -> the study's
OFFLINE = {"lidar": "offline_lidar", "projector_lidar": "offline_projector_lidar"}
# The metrics whose pick each method's row of the picks table shows.
PICKED = ["projector_rankme", "projector_effective_rank", "alpha_req", "projector_min_std", "offline_lidar", "knn_top1"]
LR_FACTORS = (0.1, 3.0)
# The family's own knobs, each a variant of that method's default run (names are the methods' config fields).
VARIANTS = {
    "intl": [["method.iters=1"], ["method.iters=8"], ["method.trade_off=0.0"], ["method.proj_out=256"]],
    "intl_m": [["method.iters=1"]],
    "st": [["method.p=0.25"], ["method.p=0.75"]],
    "wmse": [["method.w_size=64"], ["method.proj_out=32"]],
    "cwrgp": [["method.groups=1"], ["method.proj_out=1024"]],  # 4 groups of 64 channels cannot whiten its 64 samples
    "vicreg": [["method.var=0.0"], ["method.cov=0.0"], ["method.sim=5.0"]],
    "barlow_twins": [["method.lambd=0.05"], ["method.proj_out=512", "method.proj_hidden=[512,512]"]],
    "simclr": [["method.temperature=0.5"], ["method.temperature=0.05"]],
    "lejepa": [["method.lambd=0.2"], ["method.lambd=0.005"]],
    "corinfomax": [["method.cov_weight=0.0"], ["method.sim_weight=25.0"]],
    "mmcr": [["method.proj_out=32"]],
    "frossl": [["method.invariance_weight=10.0"]],
    "zero_cl": [["method.mode=ins"]],
    "byol": [["method.momentum_base=0.99"]],
}


def slug(overrides):
    """A folder-name form of a variant's overrides: method.iters=8 -> iters8, optimizer.lr=0.3 -> lr0.3."""
    parts = []
    for override in overrides:
        key, value = override.split("=", 1)
        parts.append(key.rsplit(".", 1)[-1] + value.replace("[", "").replace("]", "").replace(",", "-"))
    return "_".join(parts)


def plan(methods, seeds, base_overrides=()):
    """[(method, variant label, overrides, seed)]: every method's default, its lr variants and its own knobs,
    seed by seed (a study cut short has whole hyper-parameter groups of every method before a second seed)."""
    variants = {}
    for method in methods:
        lr = compose_config([f"method={method}", *base_overrides]).optimizer.lr
        variants[method] = [[]] + [[f"optimizer.lr={lr * factor:.6g}"] for factor in LR_FACTORS] + VARIANTS.get(method, [])
    return [(method, slug(v) or "default", v, seed) for seed in seeds for method in methods for v in variants[method]]


def run_dir(out, method, variant, seed):
    """The default's folder is the embedded benchmark's (`<method>-seed<k>`), so the two share their runs."""
    return out / (f"{method}-seed{seed}" if variant == "default" else f"{method}@{variant}-seed{seed}")


def offline_health(folder, data_overrides):
    """python -m zoo.health on a finished run's last checkpoint at the paper's LiDAR setting (its defaults), into
    <run>/health: None, or the `error:` line it stopped with."""
    return run("-m zoo.health", "--ckpt", str(folder / "checkpoints" / "last.ckpt"), "--out", str(folder / "health"),
               *data_overrides)


def collect(out, runs, base_overrides, max_new, max_offline=0):
    """Every planned run's row: summaries read where they exist, at most `max_new` runs trained and at most
    `max_offline` finished runs measured offline (`offline_health`)."""
    rows, new, offline = [], 0, 0
    for method, variant, overrides, seed in runs:
        folder = run_dir(out, method, variant, seed)
        if not (folder / "benchmark.json").exists():
            if new >= max_new:
                continue
            new += 1
        result = measure(f"{method} {variant}", method, seed, folder, "digits_m", [*base_overrides, *overrides], [])
        print(f"{method} {variant} seed {seed}: " + (result["failed"] or f"linear {result['linear_top1']:.3f}"),
              file=sys.stderr)
        row = {"method": method, "variant": variant, "seed": seed, "failed": result["failed"],
               "linear_top1": result["linear_top1"]}
        if not result["failed"]:
            summary = json.loads((folder / "summary.json").read_text())
            row.update({key: summary.get(key) for key, _, _ in METRICS})
            row["collapsed"] = bool(summary.get("collapsed"))
            health = folder / "health" / "health.json"
            if not health.exists() and offline < max_offline:
                offline += 1
                failed = offline_health(folder, [o for o in base_overrides if o.startswith("data.")])
                print(f"{method} {variant} seed {seed}: offline LiDAR " + (failed or "measured"), file=sys.stderr)
            if health.exists():
                measured = json.loads(health.read_text())["metrics"]
                row.update({ours: measured.get(theirs) for theirs, ours in OFFLINE.items()})
        rows.append(row)
    return rows


def score(row, key, sign):
    """The metric as a selection score (higher = predicted better), or None when it is missing or not finite."""
    value = row.get(key)
    if value is None or not math.isfinite(value):
        return None
    if sign == "alpha":
        return -abs(value - 1.0)
    return sign * value


def rank_correlations(pairs):
    """Spearman's rho and Kendall's tau-b of (score, accuracy) pairs; None when fewer than 3 pairs or constant."""
    from scipy.stats import kendalltau, spearmanr

    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return None, None
    x, y = zip(*pairs)
    return float(spearmanr(x, y).statistic), float(kendalltau(x, y).statistic)


def finished_runs(rows):
    """The runs that trained and were evaluated (a failed run has no linear top-1)."""
    return [r for r in rows if not r["failed"] and r["linear_top1"] is not None]


def hyper_parameter_groups(rows):
    """{(method, seed): its finished runs} for the groups of 2+ runs: the hyper-parameter variants one seed of a
    method trained, among which a metric should pick the best (between seeds of one setting a pick is luck)."""
    groups = {}
    for r in finished_runs(rows):
        groups.setdefault((r["method"], r["seed"]), []).append(r)
    return {key: group for key, group in sorted(groups.items()) if len(group) >= 2}


def metric_pick(group, key, sign):
    """(the run the metric ranks first, the runs it scores) in a group; None when it scores fewer than 2."""
    scored = [r for r in group if score(r, key, sign) is not None]
    if len(scored) < 2:
        return None
    return max(scored, key=lambda r: score(r, key, sign)), scored


def selection_loss(rows, key, sign):
    """Mean over hyper-parameter groups (`hyper_parameter_groups`) of the linear top-1 points lost by keeping the
    run the metric ranks first instead of the best run it scores: (metric's loss, a uniformly random pick's
    expected loss, groups)."""
    lost, random_lost = [], []
    for group in hyper_parameter_groups(rows).values():
        chosen = metric_pick(group, key, sign)
        if chosen is None:
            continue
        picked, scored = chosen
        best = max(r["linear_top1"] for r in scored)
        lost.append(100 * (best - picked["linear_top1"]))
        random_lost.append(100 * (best - statistics.mean(r["linear_top1"] for r in scored)))
    if not lost:
        return None, None, 0
    return statistics.mean(lost), statistics.mean(random_lost), len(lost)


def analyse(rows):
    """One table row a metric: n, Spearman and Kendall over all runs and over the collapsed ones, the selection
    loss within methods beside a random pick's."""
    finished = finished_runs(rows)
    table = []
    for key, label, sign in METRICS:
        pairs = [(score(r, key, sign), r["linear_top1"]) for r in finished]
        missing = sum(s is None for s, _ in pairs)
        pairs = [p for p in pairs if p[0] is not None]
        collapsed = [(score(r, key, sign), r["linear_top1"]) for r in finished if r.get("collapsed")]
        collapsed = [p for p in collapsed if p[0] is not None]
        rho, tau = rank_correlations(pairs)
        rho_c, tau_c = rank_correlations(collapsed)
        lost, random_lost, groups = selection_loss(finished, key, sign)
        table.append({"metric": label, "key": key, "runs": len(pairs), "missing": missing, "spearman": rho,
                      "kendall": tau, "collapsed_runs": len(collapsed), "spearman_collapsed": rho_c,
                      "kendall_collapsed": tau_c, "selection_loss": lost, "random_pick_loss": random_lost,
                      "groups": groups})
    return table


def picks(rows):
    """Per hyper-parameter group (`hyper_parameter_groups`): the variant the labels pick and the variant each of
    PICKED picks, as {"method", "seed", "runs", "best": (variant, top-1), key: (variant, top-1) or None}."""
    signs = {key: sign for key, _, sign in METRICS}
    table = []
    for (method, seed), group in hyper_parameter_groups(rows).items():
        entry = {"method": method, "seed": seed, "runs": len(group)}
        for name, key in [("best", "linear_top1"), *((k, k) for k in PICKED)]:
            chosen = metric_pick(group, key, signs.get(key, 1))
            entry[name] = (chosen[0]["variant"], chosen[0]["linear_top1"]) if chosen else None
        table.append(entry)
    return table


def picks_markdown(table):
    labels = {key: label for key, label, _ in METRICS}

    def pick(value):
        return "-" if value is None else f"{value[0]}: {value[1]:.3f}"

    return markdown_table(["method", "seed", "runs", "best by labels", *(f"{labels[k]} picks" for k in PICKED)],
                          [[t["method"], t["seed"], t["runs"], pick(t["best"]), *(pick(t[k]) for k in PICKED)]
                           for t in table])


def cell(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(table):
    headers = ["metric", "runs", "Spearman", "Kendall", "collapsed runs", "Spearman (collapsed)",
               "points lost picking by it", "points lost, random pick", "groups"]
    return markdown_table(headers, [
        [t["metric"], t["runs"] if not t["missing"] else f"{t['runs']} ({t['missing']} missing)", cell(t["spearman"]),
         cell(t["kendall"]), t["collapsed_runs"], cell(t["spearman_collapsed"]), cell(t["selection_loss"], 1),
         cell(t["random_pick_loss"], 1), t["groups"]]
        for t in table])


def scatter(rows, path):
    """One panel a metric: its selection score against linear top-1, collapsed runs as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finished = finished_runs(rows)
    columns = 4
    lines = math.ceil(len(METRICS) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.2 * lines), squeeze=False)
    for axis, (key, label, sign) in zip(axes.flat, METRICS):
        for collapsed, marker in ((False, "o"), (True, "x")):
            points = [(score(r, key, sign), r["linear_top1"]) for r in finished if r.get("collapsed") == collapsed]
            points = [p for p in points if p[0] is not None]
            if points:
                axis.scatter(*zip(*points), marker=marker, s=14, label="collapsed" if collapsed else "trained")
        axis.set_title(label, fontsize=8)
        axis.set_ylabel("linear top-1", fontsize=7)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(METRICS):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/digits_m-bench"), help="the runs' folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--methods", nargs="+", help="default: every registered method")
    parser.add_argument("--max-runs", type=int, default=10**9, help="train at most this many new runs, then analyse")
    parser.add_argument("--plan", action="store_true", help="print the planned runs and stop")
    parser.add_argument("--analyse-only", action="store_true", help="train nothing: analyse the finished runs")
    parser.add_argument("--offline-lidar", type=int, default=0, metavar="N",
                        help="measure LiDAR offline at the paper's 1000 x 50 (python -m zoo.health) for at most N "
                        "finished runs that lack it")
    parser.add_argument("--report", type=Path, help="write table.md, picks.md, rows.json and scatter.png into this folder")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every pretraining run")
    args = parser.parse_args()
    methods = args.methods or method_names()
    unknown = sorted(set(methods) - set(method_names()))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; registered: {', '.join(method_names())}")
    runs = plan(methods, args.seeds, args.overrides)
    if args.plan:
        for method, variant, overrides, seed in runs:
            print(f"{method} {variant} seed {seed}: {' '.join(overrides) or '(default)'}")
        print(f"{len(runs)} runs")
        return
    out = args.out.resolve()
    rows = collect(out, runs, args.overrides, 0 if args.analyse_only else args.max_runs, args.offline_lidar)
    finished = [r for r in rows if not r["failed"]]
    print(f"spectral_health_study: {cpu_model()}, {cores()} cores; {len(finished)} finished runs of {len(runs)} planned "
          f"({len(rows) - len(finished)} failed), {len({r['method'] for r in finished})} methods, "
          f"{sum(bool(r.get('collapsed')) for r in finished)} collapsed")
    table, chosen = analyse(rows), picks(rows)
    print(markdown(table))
    print(f"\nEach hyper-parameter group's picks (variant: linear top-1):\n{picks_markdown(chosen)}")
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "table.md").write_text(markdown(table) + "\n")
        (args.report / "picks.md").write_text(picks_markdown(chosen) + "\n")
        (args.report / "rows.json").write_text(json.dumps({"cpu": cpu_model(), "rows": rows, "table": table,
                                                           "picks": chosen}, indent=1))
        scatter(rows, args.report / "scatter.png")


if __name__ == "__main__":
    main()
