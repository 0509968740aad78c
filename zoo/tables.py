"""A paper's table in one command: `python -m zoo.tables <paper>/<table> [--plan] [overrides]`
(`bash scripts/tables/<paper>/<table>.sh` runs the same).

A table (zoo/configs/tables/<paper>/<table>.yaml, or any such file given by path) lists its rows:
each a pretraining recipe (zoo/configs/experiment/<dataset>/<recipe>.yaml), the evaluation
protocols run on its final checkpoint (zoo/configs/linear/experiment/...) and, where the table has
one, the COCO detection transfer (downstream/detection). The paper's numbers are not in the table:
they stay with the recipes (`recipe.targets`) and zoo/targets.yaml, where zoo.report finds them.

Every (row, seed) is a chain of steps: pretraining, then each protocol, then detection. A step
whose result file exists is skipped, so the same command continues a chain where it stopped (also
after kill -9: pretraining itself resumes from its last.ckpt). At the end the table is printed by
zoo.report: each result beside the paper's number, mean ± std over the seeds.

Overrides: `seed=0,1,2` runs every row once per seed; `KEY=VALUE` goes to pretraining,
`linear:KEY=VALUE` to every protocol, `detection:--FLAG=VALUE` to train_coco.py;
`hydra/launcher=submitit_slurm` (or `submitit_local`) with `hydra.launcher.KEY=VALUE` submits the
steps through Hydra's submitit launcher config, each chain's steps as dependent jobs.
"""

import argparse
import dataclasses
import functools
import json
import os
import shlex
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from zoo.backbones import wants_small_stem
from zoo.config import one_line_config_errors, overrides_hash, plain_values, register_configs
from zoo.data import resolved_views
from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.cli import build_config
from zoo.registry import method_names
from zoo.report import report
from zoo.slurm import submit_chains

REPO = Path(__file__).resolve().parents[1]
TABLES = resources.files("zoo").joinpath("configs", "tables")
STEP_PREFIXES = ("linear:", "detection:")
LAUNCHERS = ("basic", "submitit_local", "submitit_slurm")
DETECTION_GPUS = 8  # MoCo's COCO protocol: a total batch of 16 on 8 GPUs (downstream/detection/run.sh)

# Training images of each data set (its published size; STL-10 pretrains on train + unlabeled).
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "stl10": 105_000, "tiny-imagenet": 100_000,
                "imagenet-100": 126_689, "imagenet": 1_281_167}
# The stated estimate where no earlier run measured a recipe: images/s per GPU of a ResNet-50
# training step on one 224 px crop under mixed precision (an A100-class GPU), other backbones
# relative to it; a crop costs in proportion to its pixels, 16x more with the small-image stem
# (no stride-2 convolution and no max-pool), and no GPU gets more images than its loader's
# augmentation delivers. Evaluation steps: forward only, a third of a training step.
ASSUMED_CROPS_PER_SECOND = 2400
ASSUMED_LOADER_IMAGES_PER_SECOND = 1500
BACKBONE_SPEED = {"resnet18": 2.5, "resnet34": 1.4, "resnet50": 1.0, "vit_small_patch16_224": 1.0}
ASSUMED_DETECTION_IMAGES_PER_SECOND = 10  # per GPU, Mask R-CNN R50-C4 at 800 px


@dataclasses.dataclass
class Step:
    kind: str  # pretrain | linear | detection
    name: str  # "pretrain", "linear imagenet/intl", "detection coco_R_50_C4_2x"
    argv: list
    done: Path  # the file the step leaves once finished
    gpus: int  # per node
    nodes: int
    tasks_per_node: int  # processes SLURM starts per node (Lightning: one per GPU; torchrun: one)
    gpu_hours: float
    estimate: str  # where gpu_hours comes from

    def is_done(self):
        return self.done.is_file()

    def command(self):
        return shlex.join(str(arg) for arg in self.argv)


@dataclasses.dataclass
class Chain:
    recipe: str
    seed: int
    run_dir: Path
    steps: list


# ---- the table -----------------------------------------------------------------------------------
def table_path(name):
    """`<paper>/<table>` under zoo/configs/tables, or a path to a table file."""
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ZooError(f"table file not found: {name}")
        return path
    path = TABLES.joinpath(*f"{name}.yaml".split("/"))
    if not path.is_file():
        raise ZooError(f"unknown table '{name}' (tables: {', '.join(table_names())})")
    return Path(str(path))


def table_names():
    root = Path(str(TABLES))
    return sorted(str(p.relative_to(root))[:-5] for p in root.rglob("*.yaml") if p.parent != root)


def experiment_exists(folder, recipe):
    return resources.files("zoo").joinpath("configs", *folder, *f"{recipe}.yaml".split("/")).is_file()


def load_table(name):
    """The table's title, source and rows, every recipe, protocol and detection config checked to exist."""
    path = table_path(name)
    table = yaml.safe_load(path.read_text()) or {}
    if not table.get("rows"):
        raise ZooError(f"{path}: a table lists its rows under `rows:` (each with a `recipe:`)")
    configs = detection_configs()
    for row in table["rows"]:
        row.setdefault("protocols", [])
        if not experiment_exists(["experiment"], str(row.get("recipe"))):
            raise ZooError(f"{path}: recipe '{row.get('recipe')}' is not in zoo/configs/experiment (<dataset>/<recipe>)")
        for protocol in row["protocols"]:
            if not experiment_exists(["linear", "experiment"], protocol):
                raise ZooError(f"{path}: protocol '{protocol}' (row {row['recipe']}) is not in zoo/configs/linear/experiment")
        if row.get("detection") and row["detection"] not in configs:
            raise ZooError(f"{path}: detection config '{row['detection']}' (row {row['recipe']}) is not one of {', '.join(configs)}")
    table["name"] = name if not name.endswith((".yaml", ".yml")) else path.stem
    return table


# ---- the overrides -------------------------------------------------------------------------------
@dataclasses.dataclass
class Overrides:
    seeds: list
    pretrain: list
    linear: list
    detection: list
    launcher: list  # hydra/launcher=... and hydra.launcher.*

    @property
    def launcher_name(self):
        chosen = [o.split("=", 1)[1] for o in self.launcher if o.startswith("hydra/launcher=")]
        return chosen[-1] if chosen else "basic"


def split_overrides(args):
    seeds, pretrain, linear, detection, launcher = [0], [], [], [], []
    for arg in args:
        if arg.startswith("seed="):
            try:
                seeds = [int(seed) for seed in arg[len("seed="):].split(",")]
            except ValueError:
                raise ZooError(f"{arg}: seeds are integers, e.g. seed=0 or seed=0,1,2") from None
        elif arg.startswith("linear:"):
            linear.append(arg[len("linear:"):])
        elif arg.startswith("detection:"):
            detection.append(arg[len("detection:"):])
        elif arg.startswith(("hydra/launcher=", "hydra.launcher.")):
            launcher.append(arg)
        elif "=" not in arg:
            raise ZooError(f"'{arg}' is not an override: KEY=VALUE (pretraining), linear:KEY=VALUE, detection:--FLAG=VALUE, "
                           "seed=0,1,2 or hydra/launcher=submitit_slurm")
        else:
            pretrain.append(arg)
    overrides = Overrides(seeds, pretrain, linear, detection, launcher)
    if overrides.launcher_name not in LAUNCHERS:
        raise ZooError(f"hydra/launcher={overrides.launcher_name}: the table runs with {', '.join(LAUNCHERS)}")
    if overrides.launcher_name == "basic" and launcher:
        raise ZooError(f"{launcher[0]} needs a submitit launcher: add hydra/launcher=submitit_slurm (or submitit_local)")
    return overrides


# ---- resolving the commands ----------------------------------------------------------------------
def compose_pretrain(overrides):
    """The resolved pretraining config of `overrides` (what `main_pretrain.py ... --cfg job` prints);
    one `error:` line when it does not resolve."""
    from hydra import compose, initialize_config_module

    register_configs()
    method_names()
    with one_line_config_errors(prefix=f"{' '.join(overrides)}: "), initialize_config_module("zoo.configs", version_base="1.3"):
        cfg = compose("pretrain", overrides=overrides)
        return OmegaConf.create(plain_values(cfg))


def compose_linear(overrides):
    """The protocol's config as main_linear.py resolves it without a checkpoint (its `--cfg job`)."""
    return build_config(None, overrides)


def crop_cost(cfg):
    """One training image's cost in 224 px ResNet-50 crops (see ASSUMED_CROPS_PER_SECOND)."""
    groups = resolved_views(cfg.data)
    largest = max(group.size for group in groups)
    stem = 16 if wants_small_stem(cfg.backbone.small_stem, largest) else 1
    pixels = sum(group.count * (group.size / 224) ** 2 for group in groups)
    return pixels * stem / BACKBONE_SPEED.get(cfg.backbone.name.split(".")[0], 1.0)


def measured_rate(recipe, search):
    """Images/s per GPU of an earlier run of `recipe` on GPUs (its provenance), and that run's folder."""
    for root in search:
        if recipe in measured_rates(str(root)):
            return measured_rates(str(root))[recipe]
    return None, None


@functools.cache
def measured_rates(root):
    """recipe name -> (images/s per GPU, run folder) of the first run under `root` that trained it on GPUs."""
    rates = {}
    for summary_path in sorted(Path(root).rglob("summary.json")) if Path(root).is_dir() else []:
        config_path = summary_path.parent / "config.yaml"
        if not config_path.is_file():
            continue
        try:
            summary = json.loads(summary_path.read_text())
            config = yaml.safe_load(config_path.read_text())
        except (OSError, ValueError, yaml.YAMLError):
            continue
        record = summary.get("provenance") or {}
        rate = (record.get("training") or {}).get("images_per_second")
        recipe = (config.get("recipe") or {}).get("name")
        if recipe and rate and record.get("peak_cuda_mib"):
            rates.setdefault(recipe, (rate / (record.get("devices", 1) * record.get("nodes", 1)), summary_path.parent))
    return rates


def pretrain_step(recipe, seed, overrides, root, search, row_overrides=()):
    argv_overrides = [f"experiment={recipe}", *row_overrides, *overrides.pretrain, f"seed={seed}"]
    run_dir = Path(root) / f"{recipe}-{overrides_hash(argv_overrides)}"
    cfg = compose_pretrain([*argv_overrides, f"run_dir={run_dir}"])
    gpus, nodes = cfg.recipe.paper_gpus or 1, cfg.recipe.paper_nodes or 1
    images = TRAIN_IMAGES[recipe.split("/")[0]] * cfg.trainer.max_epochs
    rate, measured_in = measured_rate(recipe, search)
    if rate:
        hours, estimate = images / rate / 3600, f"measured: {rate:.0f} images/s per GPU in {measured_in}"
    else:
        rate = min(ASSUMED_CROPS_PER_SECOND / crop_cost(cfg), ASSUMED_LOADER_IMAGES_PER_SECOND)
        hours, estimate = images / rate / 3600, "assumed rate"
    argv = [sys.executable, str(REPO / "main_pretrain.py"), *argv_overrides, f"run_dir={run_dir}"]
    step = Step("pretrain", "pretrain", argv, run_dir / "summary.json", gpus, nodes, gpus, hours, estimate)
    return step, cfg


def linear_step(protocol, seed, overrides, run_dir, pretrain_cfg):
    out = run_dir / "eval" / protocol.replace("/", "-")
    argv_overrides = [f"experiment={protocol}", *overrides.linear, f"seed={seed}", f"run_dir={out}"]
    cfg = compose_linear(argv_overrides)
    dataset = pretrain_cfg.recipe.name.split("/")[0]
    if cfg.linear.protocol == "precomputed":  # one forward pass over the train and validation images
        gpus, images = 1, TRAIN_IMAGES[dataset]
    else:
        gpus = pretrain_cfg.recipe.paper_gpus or 1
        images = TRAIN_IMAGES[dataset] * cfg.linear.epochs * (cfg.linear.label_fraction or 100) / 100
    size = cfg.data.image_size or pretrain_cfg.data.image_size or 224
    cost = (size / 224) ** 2 / BACKBONE_SPEED.get(pretrain_cfg.backbone.name.split(".")[0], 1.0)
    forward_only = 1 / 3 if cfg.linear.protocol != "finetune" else 1
    hours = images * cost * forward_only / ASSUMED_CROPS_PER_SECOND / 3600
    argv = [sys.executable, str(REPO / "main_linear.py"), "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), *argv_overrides]
    tasks = 1 if cfg.linear.protocol == "precomputed" else gpus
    return Step("linear", f"linear {protocol}", argv, out / "summary.json", gpus, 1, tasks, hours, "assumed rate")


def detection_configs():
    """downstream/detection's training configs (that folder sits beside the package, in the checkout)."""
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    from downstream.detection.config import CONFIGS

    return CONFIGS


def detection_step(config, overrides, run_dir, coco_root):
    detection = detection_configs()[config]
    out = run_dir / f"detection-{config}"
    argv = ["bash", str(REPO / "downstream" / "detection" / "run.sh"), str(run_dir / "checkpoints" / "last.ckpt"),
            str(coco_root), "--config", config, "--output", str(out), *overrides.detection]
    hours = detection.max_iter * detection.ims_per_batch / ASSUMED_DETECTION_IMAGES_PER_SECOND / 3600
    return Step("detection", f"detection {config}", argv, out / "metrics.json", DETECTION_GPUS, 1, 1, hours, "assumed rate")


def chains(table, overrides, root, coco_root, search=()):
    """Every (row, seed) chain of the table, every command resolved (a bad one is one `error:` line)."""
    result = []
    for row in table["rows"]:
        for seed in overrides.seeds:
            pretrain, cfg = pretrain_step(row["recipe"], seed, overrides, root, [root, *search], row.get("overrides", []))
            run_dir = Path(cfg.run_dir)
            steps = [pretrain, *(linear_step(p, seed, overrides, run_dir, cfg) for p in row["protocols"])]
            if row.get("detection"):
                steps.append(detection_step(row["detection"], overrides, run_dir, coco_root))
            result.append(Chain(" ".join([row["recipe"], *row.get("overrides", [])]), seed, run_dir, steps))
    return result


# ---- plan, run, report ---------------------------------------------------------------------------
def print_plan(table, all_chains, overrides, root):
    print(f"table {table['name']}: {table.get('title', '')}")
    print(f"runs under {root}; seeds {','.join(map(str, overrides.seeds))}; launcher {overrides.launcher_name}")
    total, assumed = 0.0, 0.0
    for chain in all_chains:
        print(f"\nrow {chain.recipe}, seed {chain.seed}: {chain.run_dir}")
        for step in chain.steps:
            state = "done" if step.is_done() else "to run"
            print(f"  {step.name} [{state}]: {step.gpus} GPU(s) x {step.nodes} node(s), "
                  f"~{step.gpu_hours:.1f} GPU-hours ({step.estimate})")
            print(f"    {step.command()}")
            total += step.gpu_hours
            assumed += step.gpu_hours if step.estimate == "assumed rate" else 0.0
    steps = sum(len(chain.steps) for chain in all_chains)
    print(f"\n{len(all_chains)} chains, {steps} steps, ~{total:.0f} GPU-hours in all ({assumed:.0f} of them from the "
          f"assumed rates: {ASSUMED_CROPS_PER_SECOND} ResNet-50 224 px crops/s per GPU in training, "
          f"at most {ASSUMED_LOADER_IMAGES_PER_SECOND} images/s per GPU from the loader, "
          f"{ASSUMED_DETECTION_IMAGES_PER_SECOND} images/s per GPU in detection)")


def run_locally(all_chains):
    """Every step in sequence in this process's machine; finished steps are skipped."""
    for chain in all_chains:
        for step in chain.steps:
            if step.is_done():
                print(f"[{chain.recipe} seed {chain.seed}] {step.name}: done ({step.done}), skipped", flush=True)
                continue
            print(f"[{chain.recipe} seed {chain.seed}] {step.name}: {step.command()}", flush=True)
            code = subprocess.run(step.argv, cwd=REPO, check=False).returncode
            if code != 0 or not step.is_done():
                raise ZooError(f"{step.name} of {chain.recipe} (seed {chain.seed}) failed with exit code {code}; "
                               "fix it and run the same command again: finished steps are skipped")


def print_table(table, root):
    print(f"\n{table['name']}: {table.get('title', '')}")
    print(report(root))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m zoo.tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", help="<paper>/<table> (zoo/configs/tables) or a table file")
    parser.add_argument("--plan", action="store_true", help="print rows, commands, GPUs and GPU-hours; run nothing")
    parser.add_argument("--runs", help="where the table's runs go (default runs/tables/<paper>/<table>)")
    parser.add_argument("--coco", help="COCO 2017 root for detection (default $DATA_DIR/coco, else data/coco)")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE (pretraining), linear:KEY=VALUE, detection:--FLAG=VALUE, "
                        "seed=0,1,2, hydra/launcher=submitit_slurm hydra.launcher.partition=NAME")
    return parser.parse_intermixed_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    table = load_table(args.table)
    overrides = split_overrides(args.overrides)
    root = Path(args.runs or Path("runs") / "tables" / table["name"]).resolve()
    coco_root = Path(args.coco or Path(os.environ.get("DATA_DIR", "data")) / "coco").resolve()
    all_chains = chains(table, overrides, root, coco_root, search=[Path("runs").resolve()])
    if args.plan:
        print_plan(table, all_chains, overrides, root)
        return
    if overrides.launcher_name == "basic":
        run_locally(all_chains)
    else:
        if not submit_chains(all_chains, overrides, root, REPO):
            return  # submitted to SLURM: the same command prints the table once the jobs are done
    print_table(table, root)


if __name__ == "__main__":
    main()
