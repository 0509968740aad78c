"""`python -m zoo.report RUNS_DIR`: every run under RUNS_DIR next to its paper target, as one markdown table.

A run is a folder with the `summary.json` and `config.yaml` of main_pretrain.py. Each of its
evaluations is a row: the online probe and k-NN of pretraining (protocol `online`), and every
`summary.json` of main_linear.py / main_knn.py found under RUNS_DIR (they name their checkpoint,
hence their run), and one row per suite and data set of main_transfer.py's (transfer-linear/<data
set>, few-shot/<data set>/<k>-shot, shift/<data set>). A row's target is the first entry of zoo/targets.yaml with the row's protocol
and the run's method, dataset, planned epochs, views and global batch; Δ = run - target, in points.

Runs whose resolved configs differ only in `seed` (and where they wrote and logged: run_dir,
logger, wandb) are one recipe: each of their evaluations is one row with mean ± std (sample
standard deviation) over its n seeds (runs of one seed, which differ only in where they logged,
count once: their mean). main_knn.py's sweep is not a k-NN result: its best setting is picked on
the split it is scored on, so it has a column of its own. Folders that look like runs or
evaluations but cannot be reported (no summary.json: failed, stopped or still running; an
unreadable file; an evaluation whose run is gone) are listed under the table with the reason. Beside the accuracies: minutes (mean wall
time of the runs that produced the row's result) and peak memory (the largest over those runs:
CUDA when they ran on GPUs, else host RSS), from each summary's provenance.
"""

import argparse
import json
import re
import statistics
import sys
from importlib import resources
from pathlib import Path

import yaml

from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.common import run_folder

SWEEP_BEST = "k-NN sweep best (picked on the eval split)"
COLUMNS = ["run", "method", "dataset", "epochs", "views", "batch", "protocol", "n", "k-NN", "top-1", "top-5", SWEEP_BEST, "eff. rank",
           "RankMe", "α-ReQ", "LiDAR", "flags", "target top-1", "Δ top-1", "target k-NN", "Δ k-NN", "minutes", "peak memory", "seeds", "target source"]
# Config keys that do not change what a run computes: runs differing only in them are one recipe.
NOT_THE_RECIPE = ("seed", "run_dir", "logger", "wandb")


def load_targets():
    """Every recipe's targets (zoo/configs/experiment/*/*.yaml, recipe.targets), then the published
    numbers that have no recipe in the zoo (zoo/targets.yaml)."""
    experiments = resources.files("zoo").joinpath("configs", "experiment")
    recipe_targets = [target for folder in sorted(experiments.iterdir(), key=lambda f: f.name) if folder.is_dir()
                      for path in sorted(folder.iterdir(), key=lambda f: f.name) if path.name.endswith(".yaml")
                      for target in yaml.safe_load(path.read_text())["recipe"].get("targets", [])]
    return recipe_targets + yaml.safe_load(resources.files("zoo").joinpath("targets.yaml").read_text())["targets"]


def read_json(path):
    return json.loads(Path(path).read_text())


def config_value(config, dotted):
    for key in dotted.split("."):
        config = config.get(key) if isinstance(config, dict) else None
    return config


def dataset_name(data):
    """The data set of a run; a `folder` run holding Tiny-ImageNet (by its root's name) is `tiny-imagenet`."""
    if data["name"] == "folder" and "tiny" in Path(str(data.get("root") or "")).name.lower():
        return "tiny-imagenet"
    return data["name"]


class Run:
    """One pretraining run: what identifies its recipe, and its evaluations."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.summary = read_json(self.folder / "summary.json")
        self.config = yaml.safe_load((self.folder / "config.yaml").read_text())
        self.key = {
            "method": self.summary["method"],
            "dataset": dataset_name(self.config["data"]),
            "epochs": self.config["trainer"]["max_epochs"],
            "views": sum(group.get("count", 1) for group in self.config["data"]["views"]),
            "batch": self.summary.get("global_batch_size"),
        }
        self.seed = self.config.get("seed")
        recipe = {key: value for key, value in self.config.items() if key not in NOT_THE_RECIPE}
        self.recipe = json.dumps([recipe, self.summary.get("epochs")], sort_keys=True, default=str)
        self.evaluations = [self.online_evaluation()]

    def online_evaluation(self):
        k = config_value(self.config, "eval.knn_k")
        return {"protocol": "online", "label": f"online (probe, {k}-nn)", "top1": self.summary.get("linear_top1"),
                "top5": self.summary.get("linear_top5"), "knn": self.summary.get("knn_top1"),
                "provenance": self.summary.get("provenance") or {"wall_seconds": self.summary.get("seconds")}}

    def add_evaluation(self, summary):
        if "suites" in summary:  # main_transfer.py: a row per suite and data set (few_shot: per k)
            for suite, result in summary["suites"].items():
                for row in result["datasets"]:
                    if suite == "few_shot":
                        scores = {f"few-shot/{row['dataset']}/{k}-shot": shot["mean"] for k, shot in row["shots"].items()}
                    else:
                        scores = {f"{'transfer-linear' if suite == 'many_shot' else 'shift'}/{row['dataset']}": row["score"]}
                    for protocol, score in scores.items():
                        self.evaluations.append({"protocol": protocol, "label": f"{protocol} ({row['metric']})", "top1": score,
                                                 "top5": None, "knn": None, "provenance": result.get("provenance")})
            return
        if summary["protocol"] == "kNN-sweep":  # older sweeps wrote their best as knn_top1
            best = summary.get("best_top1", summary.get("knn_top1"))
            settings = summary.get("settings") or len(summary.get("results", []))
            self.evaluations.append({"protocol": "kNN-sweep", "label": "kNN-sweep", "top1": None, "top5": None, "knn": None,
                                     "sweep_best": best, "settings": settings, "provenance": summary.get("provenance")})
            return
        knn_keys = [key for key in summary if re.fullmatch(r"knn\d+_top1", key)]
        if knn_keys:
            knn_key = knn_keys[0]
            label = f"{summary['protocol']} ({knn_key[3:-5]}-nn)"
        else:
            knn_key, label = "knn_top1", summary["protocol"]
        if summary.get("label_fraction"):
            label += f", {summary['label_fraction']}% labels"
        self.evaluations.append({"protocol": summary["protocol"], "label": label, "top1": summary.get("linear_top1"),
                                 "top5": summary.get("linear_top5"), "knn": summary.get(knn_key), "knn_key": knn_key,
                                 "provenance": summary.get("provenance")})

    def add_detection(self, metrics):
        """A COCO transfer (downstream/detection's metrics.json, in percent): a box AP and a mask AP row."""
        for metric, key, name in (("box_ap", "bbox_AP", "box AP"), ("mask_ap", "segm_AP", "mask AP")):
            self.evaluations.append({"protocol": metrics["config"], "label": f"{metrics['config']} ({name})",
                                     "top1": metrics[key] / 100, "top5": None, "knn": None, "metric": metric,
                                     "provenance": metrics.get("provenance")})

    def target(self, targets, protocol):
        """The first target, with the row's protocol, that the run matches: of its recipe (config.yaml's
        recipe.targets) first, then (a recipe run with other epochs or batch, or any other run) of all `targets`."""
        own = (self.config.get("recipe") or {}).get("targets") or [] if (self.config.get("recipe") or {}).get("name") else []
        for target in [*own, *targets]:
            if target["protocol"] != protocol:
                continue
            if any(key in target and target[key] != self.key[key] for key in self.key):
                continue
            if all(config_value(self.config, key) == value for key, value in target.get("match", {}).items()):
                return target
        return None


def find_runs(root):
    """The runs under `root` with their evaluations (linked by the checkpoint each names), and
    [(folder or file, why it is not in the table)]."""
    root = Path(root)
    if not root.is_dir():
        raise ZooError(f"runs folder not found: {root}")
    runs, evaluations, skipped = {}, [], []
    for path in sorted(root.rglob("summary.json")):
        try:
            summary = read_json(path)
        except (OSError, ValueError) as err:
            skipped.append((path, f"unreadable summary.json ({type(err).__name__})"))
            continue
        if not isinstance(summary, dict) or not ({"protocol", "method"} & set(summary)):
            skipped.append((path, "not a summary of main_pretrain.py, main_linear.py or main_knn.py"))
        elif "protocol" in summary:
            evaluations.append((path, summary))
        elif (path.parent / "config.yaml").is_file():
            runs[path.parent.resolve()] = Run(path.parent)
        else:
            skipped.append((path.parent, "summary.json without the run's config.yaml"))
    for path in sorted(root.rglob("config.yaml")):
        started = (path.parent / "checkpoints").is_dir() or (path.parent / "metrics.csv").is_file()
        if started and not (path.parent / "summary.json").exists():
            skipped.append((path.parent, "no summary.json: the run failed, was stopped or is still running"))
    detections = [(path, metrics) for path in sorted(root.rglob("metrics.json"))
                  if "bbox_AP" in (metrics := read_json(path)) and "ckpt" in metrics]
    for path, summary in [*evaluations, *detections]:
        folder = run_folder(summary.get("checkpoint") or summary["ckpt"])
        if folder not in runs and (folder / "summary.json").is_file() and (folder / "config.yaml").is_file():
            runs[folder] = Run(folder)
        if folder in runs:
            (runs[folder].add_evaluation if "protocol" in summary else runs[folder].add_detection)(summary)
        else:
            what = summary.get("protocol") or f"COCO {summary.get('config')}"
            skipped.append((path.parent, f"{what} of {summary.get('checkpoint') or summary['ckpt']}, whose run is not found"))
    if not runs:
        raise ZooError(f"no runs under {root} (a run is a folder with the summary.json and config.yaml of main_pretrain.py)")
    return sorted(runs.values(), key=lambda run: (run.key["dataset"], run.key["method"], str(run.folder))), skipped


def mean(values):
    values = [value for value in values if value is not None]
    return statistics.fmean(values) if values else None


def percent(values):
    """Fractions of the runs as a percentage: one value, or mean ± std over several."""
    values = [100 * value for value in values if value is not None]
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "–"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def difference(value, target):
    return "–" if value is None or target is None else f"{100 * value - target:+.2f}"


def minutes(records):
    seconds = mean(record.get("wall_seconds") for record in records)
    if seconds is None:
        return "–"
    # a run of seconds (a smoke test, a quick probe) keeps two significant digits instead of showing 0.0
    return f"{seconds / 60:.1f}" if seconds >= 6 else f"{seconds / 60:.2g}"


def peak_memory(records):
    """The largest peak of the runs: CUDA if they ran on GPUs, else host RSS."""
    cuda = [record["peak_cuda_mib"] for record in records if record.get("peak_cuda_mib")]
    host = [record["peak_host_rss_mib"] for record in records if record.get("peak_host_rss_mib")]
    if cuda:
        return f"{max(cuda) / 1024:.2f} GiB GPU"
    return f"{max(host) / 1024:.2f} GiB host" if host else "–"


def flags(runs):
    """What the runs' summaries say went wrong: collapsed, stopped early (a signal, a divergence), skipped steps."""
    found = []
    for run in runs:
        if run.summary.get("collapsed"):
            found.append("collapsed")
        if run.summary.get("finished") is False:
            stopped = run.summary.get("stopped") or ""
            found.append("diverged" if " diverged " in stopped else f"unfinished ({stopped})" if stopped else "unfinished")
        if run.summary.get("skipped_nonfinite_steps"):
            found.append(f"{len(run.summary['skipped_nonfinite_steps'])} non-finite steps skipped")
    return ", ".join(dict.fromkeys(found)) or "–"


def sweep_best(values, evaluation):
    """A k-NN sweep's best (picked on the split it is scored on), with the number of settings it was picked from."""
    if evaluation.get("sweep_best") is None:
        return "–"
    return f"{percent(values)} (best of {evaluation['settings']})"


def seeds(by_seed):
    """The seeds of a row; a seed of several runs says how many."""
    return ",".join(("–" if seed is None else str(seed)) + (f" ({len(found)} runs)" if len(found) > 1 else "")
                    for seed, found in by_seed.items())


def recipes(runs):
    """The runs grouped by recipe (what `Run.recipe` says), in the order of their first run."""
    groups = {}
    for run in runs:
        groups.setdefault(run.recipe, []).append(run)
    return list(groups.values())


def report_rows(runs, targets, root):
    rows = []
    for group in recipes(runs):
        first = group[0]
        done = first.summary.get("epochs")
        planned = first.key["epochs"]
        epochs = f"{planned}" if done == planned else f"{done}/{planned}"
        folder = str(first.folder.relative_to(root) if first.folder.is_relative_to(root) else first.folder)
        rank, rankme, alpha, lidar = (mean(run.summary.get(key) for run in group)
                                      for key in ("effective_rank", "rankme", "alpha_req", "lidar"))
        labels = list(dict.fromkeys(evaluation["label"] for run in group for evaluation in run.evaluations))
        for label in labels:
            # this evaluation of every run of the recipe that has it, by seed: runs of one seed count once
            by_seed = {}
            for run in group:
                by_seed.setdefault(run.seed, []).extend(e for e in run.evaluations if e["label"] == label)
            by_seed = {seed: found for seed, found in by_seed.items() if found}
            evaluations = [evaluation for found in by_seed.values() for evaluation in found]
            evaluation = evaluations[0]
            per_seed = {key: [mean(e.get(key) for e in found) for found in by_seed.values()]
                        for key in ("top1", "top5", "knn", "sweep_best")}
            top1, knn = mean(per_seed["top1"]), mean(per_seed["knn"])
            records = [e["provenance"] or {} for e in evaluations]
            target = first.target(targets, evaluation["protocol"]) or {}
            metric = evaluation.get("metric", "top1")  # what the target states for this row (a detection: its AP)
            # A target's k-NN is the 5-nn: compared with a 5-nn only.
            target_knn = target.get("knn") if evaluation.get("knn_key") == "knn5_top1" else None
            rows.append([
                folder + (f" (+{len(group) - 1})" if len(group) > 1 else ""),
                first.key["method"], first.key["dataset"], epochs, str(first.key["views"]), str(first.key["batch"] or "–"),
                label, str(len(by_seed)), percent(per_seed["knn"]), percent(per_seed["top1"]), percent(per_seed["top5"]),
                sweep_best(per_seed["sweep_best"], evaluation), "–" if rank is None else f"{rank:.1f}",
                "–" if rankme is None else f"{rankme:.1f}", "–" if alpha is None else f"{alpha:.2f}",
                "–" if lidar is None else f"{lidar:.1f}", flags(group),
                "–" if metric not in target else f"{target[metric]:.2f}", difference(top1, target.get(metric)),
                "–" if target_knn is None else f"{target_knn:.2f}", difference(knn, target_knn),
                minutes(records), peak_memory(records), seeds(by_seed),
                target.get("source", "–"),
            ])
    return rows


def markdown(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(root):
    """The table, then the folders left out of it and why."""
    root = Path(root).resolve()
    runs, skipped = find_runs(root)
    table = markdown(report_rows(runs, load_targets(), root))
    if not skipped:
        return table
    notes = [f"- {path.relative_to(root) if path.is_relative_to(root) else path}: {why}" for path, why in skipped]
    return table + f"\n\nNot in the table ({len(skipped)}):\n" + "\n".join(notes)


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", help="a folder of runs (searched recursively), e.g. runs/")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(report(args.runs_dir))


if __name__ == "__main__":
    main()
