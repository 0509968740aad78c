"""`python -m zoo.report RUNS_DIR`: every run under RUNS_DIR next to its paper target, as one markdown table.

A run is a folder with the `summary.json` and `config.yaml` of main_pretrain.py. Each of its
evaluations is a row: the online probe and k-NN of pretraining (protocol `online`), and every
`summary.json` of main_linear.py / main_knn.py found under RUNS_DIR (they name their checkpoint,
hence their run). A row's target is the first entry of zoo/targets.yaml with the row's protocol
and the run's method, dataset, planned epochs, views and global batch; Δ = run - target, in points.
"""

import argparse
import json
import re
import sys
from importlib import resources
from pathlib import Path

import yaml

from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.common import run_folder

COLUMNS = ["run", "method", "dataset", "epochs", "views", "batch", "protocol", "k-NN", "top-1", "top-5", "eff. rank",
           "target top-1", "Δ top-1", "target k-NN", "Δ k-NN", "target source"]


def load_targets():
    """Every recipe's targets (zoo/configs/experiment/*/*.yaml, recipe.targets), then the published
    numbers that have no recipe in the zoo (zoo/targets.yaml)."""
    experiments = resources.files("zoo").joinpath("configs", "experiment")
    recipe_targets = [target for folder in sorted(experiments.iterdir(), key=lambda f: f.name) if folder.is_dir()
                      for path in sorted(folder.iterdir(), key=lambda f: f.name) if path.name.endswith(".yaml")
                      for target in yaml.safe_load(path.read_text())["recipe"]["targets"]]
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
        self.evaluations = [self.online_evaluation()]

    def online_evaluation(self):
        k = config_value(self.config, "eval.knn_k")
        return {"protocol": "online", "label": f"online (probe, {k}-nn)", "top1": self.summary.get("linear_top1"),
                "top5": self.summary.get("linear_top5"), "knn": self.summary.get("knn_top1")}

    def add_evaluation(self, summary):
        knn_keys = [key for key in summary if re.fullmatch(r"knn\d+_top1", key)]
        if knn_keys:
            knn_key = knn_keys[0]
            label = f"{summary['protocol']} ({knn_key[3:-5]}-nn)"
        else:
            knn_key, label = "knn_top1", summary["protocol"]
        if summary.get("label_fraction"):
            label += f", {summary['label_fraction']}% labels"
        self.evaluations.append({"protocol": summary["protocol"], "label": label, "top1": summary.get("linear_top1"),
                                 "top5": summary.get("linear_top5"), "knn": summary.get(knn_key), "knn_key": knn_key})

    def target(self, targets, protocol):
        """The first target of this run's recipe (config.yaml's recipe.targets), or for another run
        of all `targets`, with the row's protocol that the run matches."""
        if (self.config.get("recipe") or {}).get("name"):
            targets = self.config["recipe"]["targets"]
        for target in targets:
            if target["protocol"] != protocol:
                continue
            if any(key in target and target[key] != self.key[key] for key in self.key):
                continue
            if all(config_value(self.config, key) == value for key, value in target.get("match", {}).items()):
                return target
        return None


def find_runs(root):
    """The runs under `root` with their evaluations (linked by the checkpoint each names)."""
    root = Path(root)
    if not root.is_dir():
        raise ZooError(f"runs folder not found: {root}")
    runs, evaluations = {}, []
    for path in sorted(root.rglob("summary.json")):
        summary = read_json(path)
        if "protocol" in summary:
            evaluations.append(summary)
        elif "method" in summary and (path.parent / "config.yaml").is_file():
            runs[path.parent.resolve()] = Run(path.parent)
    for summary in evaluations:
        folder = run_folder(summary["checkpoint"])
        if folder not in runs and (folder / "summary.json").is_file():
            runs[folder] = Run(folder)
        if folder in runs:
            runs[folder].add_evaluation(summary)
    if not runs:
        raise ZooError(f"no runs under {root} (a run is a folder with the summary.json and config.yaml of main_pretrain.py)")
    return sorted(runs.values(), key=lambda run: (run.key["dataset"], run.key["method"], str(run.folder)))


def percent(value):
    return "–" if value is None else f"{100 * value:.2f}"


def difference(value, target):
    return "–" if value is None or target is None else f"{100 * value - target:+.2f}"


def report_rows(runs, targets, root):
    rows = []
    for run in runs:
        done = run.summary.get("epochs")
        planned = run.key["epochs"]
        epochs = f"{planned}" if done == planned else f"{done}/{planned}"
        rank = run.summary.get("effective_rank")
        for evaluation in run.evaluations:
            target = run.target(targets, evaluation["protocol"]) or {}
            # A target's k-NN is the 5-nn: compared with a 5-nn only.
            target_knn = target.get("knn") if evaluation.get("knn_key") == "knn5_top1" else None
            rows.append([
                str(run.folder.relative_to(root) if run.folder.is_relative_to(root) else run.folder),
                run.key["method"], run.key["dataset"], epochs, str(run.key["views"]), str(run.key["batch"] or "–"),
                evaluation["label"], percent(evaluation["knn"]), percent(evaluation["top1"]), percent(evaluation["top5"]),
                "–" if rank is None else f"{rank:.1f}",
                "–" if "top1" not in target else f"{target['top1']:.2f}", difference(evaluation["top1"], target.get("top1")),
                "–" if target_knn is None else f"{target_knn:.2f}", difference(evaluation["knn"], target_knn),
                target.get("source", "–"),
            ])
    return rows


def markdown(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def report(root):
    root = Path(root).resolve()
    return markdown(report_rows(find_runs(root), load_targets(), root))


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", help="a folder of runs (searched recursively), e.g. runs/")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(report(args.runs_dir))


if __name__ == "__main__":
    main()
