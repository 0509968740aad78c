"""Every method on the embedded digits data with its defaults: k-NN, linear top-1 and the spectrum.

Runs `main_pretrain.py method=<name>` and `main_linear.py` as a user would and prints one markdown row per
method (random-init ResNet-18 features give k-NN about 0.66 on digits): the k-NN top-1 of pretraining's final
evaluation, main_linear.py's top-1 (LP-SMALL), the backbone's effective rank, the condition number of the transformed (whitened) output
for the methods that have a transform, and the pretraining wall time with the load average when it started
(a time measured beside other jobs is too long; the accuracies do not depend on load).

    python benchmarks/digits_all_methods.py [--out runs/digits-bench] [--methods intl wmse | --family]
        [--json rows.json] [--linear-override linear.epochs=50] [-- extra pretraining overrides]
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cores, cpu_model, load_average, markdown_table

from zoo.registry import method_names

REPO = Path(__file__).resolve().parents[1]
# The whitening / spectral family (docs/spectral_family.md): methods whose objective acts on the second-order
# statistics or the spectrum of the embedding.
FAMILY = ["intl", "intl_m", "st", "wmse", "cwrgp", "zero_cl", "shuffled_dbn", "barlow_twins", "vicreg", "corinfomax",
          "mec", "mmcr", "frossl", "lejepa"]
HEADERS = ["method", "k-NN top-1", "linear top-1 (LP-SMALL)", "backbone effective rank",
           "transformed condition number", "pretrain seconds", "load at start"]


def run(script, *args):
    subprocess.run([sys.executable, str(REPO / script), *args], check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def measure(method, out, pretrain_overrides, linear_overrides):
    run_dir = Path(out).resolve() / method
    load, start = load_average(), time.time()
    run("main_pretrain.py", f"method={method}", f"run_dir={run_dir}", "trainer.enable_progress_bar=false", *pretrain_overrides)
    seconds = time.time() - start
    run("main_linear.py", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), *linear_overrides)
    pretrain = json.loads((run_dir / "summary.json").read_text())
    linear = json.loads((run_dir / "linear" / "summary.json").read_text())
    return {"method": method, "epochs": pretrain["epochs"], "steps": pretrain["steps"], "knn_top1": pretrain["knn_top1"],
            "linear_top1": linear["linear_top1"], "effective_rank": pretrain["effective_rank"],
            "transformed_condition_number": pretrain.get("transformed_condition_number"),
            "pretrain_seconds": seconds, "load_average": load}


def cells(row):
    condition = row["transformed_condition_number"]
    return [row["method"], f"{row['knn_top1']:.3f}", f"{row['linear_top1']:.3f}", f"{row['effective_rank']:.1f}",
            "-" if condition is None or not math.isfinite(condition) else f"{condition:.3g}",
            f"{row['pretrain_seconds']:.0f}", f"{row['load_average']:.1f}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/digits-bench")
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument("--methods", nargs="+", help="default: every registered method")
    selection.add_argument("--family", action="store_true", help="the whitening / spectral family only")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--linear-override", action="append", default=[], help="a main_linear.py override (repeatable)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every pretraining run")
    args = parser.parse_args()
    methods = FAMILY if args.family else args.methods or method_names()
    unknown = sorted(set(methods) - set(method_names()))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; registered: {', '.join(method_names())}")
    print(f"digits_all_methods: {cpu_model()}, {cores()} cores, {time.strftime('%Y-%m-%d')}")
    rows = []
    for method in methods:
        rows.append(measure(method, args.out, args.overrides, args.linear_override))
        print(f"{method}: done in {rows[-1]['pretrain_seconds']:.0f} s", file=sys.stderr)
        if args.json:  # after every method: a cut run keeps what it measured
            args.json.write_text(json.dumps({"cpu": cpu_model(), "cores": cores(), "rows": rows}, indent=1))
    print(markdown_table(HEADERS, [cells(row) for row in rows]))


if __name__ == "__main__":
    main()
