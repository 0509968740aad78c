"""Seconds per training step of solo-learn's Barlow Twins, VICReg, SimSiam and W-MSE, timed as
benchmarks/step_time.py times the zoo's, for a side-by-side comparison.

Runs in an environment with solo-learn installed (it is not a dependency of the zoo; keep it in a separate
virtual environment, with the same torch and torchvision as the zoo's):

    python -m venv solo-venv && solo-venv/bin/pip install torch==<zoo's> torchvision==<zoo's>
    solo-venv/bin/pip install "setuptools<81" einops "lightning==2.1.2" "torchmetrics<0.12" tqdm wandb scipy \\
        timm scikit-learn hydra-core && solo-venv/bin/pip install --no-deps --no-build-isolation <solo-learn checkout>

    solo-venv/bin/python benchmarks/step_time_solo_learn.py --methods barlow_twins vicreg simsiam wmse
    # the zoo's side, same setting:
    python benchmarks/step_time.py --as-solo-learn --methods barlow_twins vicreg simsiam wmse \\
        --steps 10 --warmup 3 --threads 1 --overhead-method none
    # both, alternating method by method on one core, with the ratios:
    taskset -c 1 solo-venv/bin/python benchmarks/step_time_solo_learn.py --zoo-python venv/bin/python --repeats 3
    # or both sides of each pair at once, one per core, swapping cores every repeat (a shared host whose speed
    # drifts between processes then moves both sides alike):
    solo-venv/bin/python benchmarks/step_time_solo_learn.py --zoo-python venv/bin/python --repeats 4 --concurrent 0 1

solo-learn's own code paths build and train each method: `solo.args.pretrain.parse_cfg` on its CIFAR recipe's
settings (method_kwargs, optimizer, scheduler), `METHODS[name](cfg)`, `make_contiguous` and the conversion of
the model to channels_last (its default, also on a CPU), and a Lightning `Trainer.fit` with the kwargs its
main_pretrain.py passes (default logger, no checkpoints, validation off, 32-bit on the CPU). The input is
`_common.synthetic_batches`: the very tensors that `step_time.py --as-solo-learn` feeds the zoo. Timed, as there,
is each step from one `on_train_batch_start` to the next (loader, forward, losses, probe, backward, optimiser,
logging, Lightning's loop); medians over `--steps` steps after `--warmup`. One `step_result {json}` line per
method on stdout (the same keys as step_time.py's); with --zoo-python, the table of both sides and their ratios.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SOLO_LEARN_MATCH, cores, cpu_model, markdown_table, median, step_result_line, synthetic_batches

METHODS = ["barlow_twins", "vicreg", "simsiam", "wmse"]
# The optimiser and schedule of solo-learn's CIFAR recipes (scripts/pretrain/cifar/<method>.yaml).
SOLO_LARS = {"name": "lars", "lr": 0.3, "classifier_lr": 0.1, "weight_decay": 1e-4,
             "kwargs": {"clip_lr": True, "eta": 0.02, "exclude_bias_n_norm": True}}
SOLO_OPTIMIZERS = {
    "barlow_twins": SOLO_LARS,
    "vicreg": SOLO_LARS,
    "simsiam": {"name": "sgd", "lr": 0.5, "classifier_lr": 0.1, "weight_decay": 1e-5},
    "wmse": {"name": "adam", "lr": 2e-3, "classifier_lr": 3e-3, "weight_decay": 1e-6},
}


def solo_config(method, batch, size, views, max_steps):
    """The run config solo-learn's main_pretrain.py would hold for its CIFAR recipe at this setting."""
    from omegaconf import OmegaConf
    from solo.args.pretrain import parse_cfg

    cfg = OmegaConf.create({
        "name": f"{method}-step-time",
        "method": method,
        "backbone": {"name": "resnet18"},
        "method_kwargs": SOLO_LEARN_MATCH[method]["solo"],
        "data": {"dataset": "cifar10", "train_path": ".", "val_path": None, "format": "image_folder", "num_workers": 0},
        "augmentations": [{"crop_size": size, "num_crops": views}],
        "optimizer": {"batch_size": batch, **SOLO_OPTIMIZERS[method]},
        "scheduler": {"name": "warmup_cosine"},
        "checkpoint": {"enabled": False},
        "auto_resume": {"enabled": False},
        "max_epochs": 1,
        "max_steps": max_steps,
        "devices": [0],
        "sync_batchnorm": False,
        "accelerator": "cpu",
        "strategy": "auto",
        "precision": "32",
    })
    OmegaConf.set_struct(cfg, False)
    return parse_cfg(cfg)


class SoloBatches:
    """The synthetic batches in solo-learn's format, [indexes, [crops], labels]; the wait for each timed as data."""

    def __init__(self, batches, clock):
        self.batches, self.clock = batches, clock

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for index, (crops, labels) in enumerate(self.batches):
            start = time.perf_counter()
            batch = [torch.arange(len(labels)) + index * len(labels), list(crops), labels]
            self.clock["data"] += time.perf_counter() - start
            yield batch


def solo_profile(method, args):
    """Trains solo-learn's `method` for warmup + steps (+1) steps; the medians of the timed steps."""
    import inspect

    import lightning.pytorch as pl
    from omegaconf import OmegaConf
    from solo.methods import METHODS as SOLO_METHODS
    from solo.utils.misc import make_contiguous

    total = args.warmup + args.steps + 1  # the last step's window never closes
    w_size = SOLO_LEARN_MATCH[method]["solo"].get("whitening_size", 0)
    if args.batch < w_size:
        raise SystemExit(f"error: solo-learn's {method} whitens sub-batches of {w_size}: give --batch {w_size} or more")
    cfg = solo_config(method, args.batch, args.size, args.views, total)
    torch.manual_seed(0)
    model = SOLO_METHODS[cfg.method](cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)

    clock = {"data": 0.0}
    windows = []

    class StepClock(pl.Callback):
        start = cpu = data = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            now, cpu = time.perf_counter(), time.process_time()
            if self.start is not None:
                windows.append((now - self.start, cpu - self.cpu, clock["data"] - self.data))
            self.start, self.cpu, self.data = now, cpu, clock["data"]

    # the Trainer kwargs main_pretrain.py takes from the run config, and the ones it sets itself
    valid = inspect.signature(pl.Trainer.__init__).parameters
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg).items() if k in valid}
    kwargs.update(devices=1, logger=None, callbacks=[StepClock()], enable_checkpointing=False,
                  limit_val_batches=0, num_sanity_val_steps=0)
    batches = synthetic_batches(args.batch, args.views, args.size, total)
    with tempfile.TemporaryDirectory(prefix="step_time_solo-") as run_dir:
        kwargs["default_root_dir"] = run_dir
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            trainer = pl.Trainer(**kwargs)
            trainer.fit(model, SoloBatches(batches, clock))
    timed = windows[args.warmup:]
    return {
        "step": median([w[0] for w in timed]),
        "compute": median([w[0] - w[2] for w in timed]),
        "cpu": median([w[1] for w in timed]),
        "timed_steps": len(timed),
    }


# ---------------------------------------------------------------- both sides, alternating


def results_of(text):
    return [json.loads(line.split(" ", 1)[1]) for line in text.splitlines() if line.startswith("step_result ")]


def start_side(command, files, core=None):
    """One side's process, pinned to `core` when given (from its first milliseconds, long before its first step);
    its output goes to temporary files that `files` (an ExitStack) closes, read when it ends."""
    out = files.enter_context(tempfile.TemporaryFile("w+"))  # noqa: SIM115 (files closes it)
    err = files.enter_context(tempfile.TemporaryFile("w+"))  # noqa: SIM115
    process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
    if core is not None:
        os.sched_setaffinity(process.pid, {core})
    process.output_files = out, err
    return process


def side_results(process, command):
    process.wait()
    out, err = process.output_files
    out.seek(0), err.seek(0)
    if process.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[:3])} ... failed:\n{err.read()[-3000:]}")
    return results_of(out.read())


def measure_pair(zoo, solo, repeat, concurrent=None):
    """{zoo: result, solo: result}: one after the other (the order alternating with `repeat`); with `concurrent`
    both at once, each on its own core, the cores swapped every repeat."""
    sides = [("zoo", zoo), ("solo", solo)] if repeat % 2 == 0 else [("solo", solo), ("zoo", zoo)]
    with contextlib.ExitStack() as files:
        if concurrent:
            running = [(side, command, start_side(command, files, core)) for core, (side, command) in zip(concurrent, sides)]
            return {side: side_results(process, command)[0] for side, command, process in running}
        return {side: side_results(start_side(command, files), command)[0] for side, command in sides}


def side_by_side(args):
    """Method by method, the zoo's driver and this one, each a fresh process (see measure_pair)."""
    here = Path(__file__).resolve().parent
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch),
              "--size", str(args.size), "--views", str(args.views), "--threads", str(args.threads)]
    rows, pairs = [], {method: [] for method in args.methods}
    for repeat in range(args.repeats):
        for method in args.methods:
            zoo = [args.zoo_python, str(here / "step_time.py"), "--as-solo-learn", "--methods", method,
                   "--overhead-method", "none", *common, *args.zoo_args.split()]
            solo = [sys.executable, str(Path(__file__).resolve()), "--methods", method, *common]
            measured = measure_pair(zoo, solo, repeat, args.concurrent)
            pairs[method].append(measured)
            zoo, solo = measured["zoo"], measured["solo"]
            print(f"  run {repeat + 1} {method}: zoo {zoo['s_per_step']:.3f} s ({zoo['cpu_s_per_step']:.3f} CPU s), "
                  f"solo-learn {solo['s_per_step']:.3f} s ({solo['cpu_s_per_step']:.3f} CPU s), ratio "
                  f"{zoo['s_per_step'] / solo['s_per_step']:.3f} (CPU {zoo['cpu_s_per_step'] / solo['cpu_s_per_step']:.3f})",
                  file=sys.stderr, flush=True)
            if args.json:  # after every pair: a run cut short keeps what it measured
                args.json.write_text(json.dumps({"cpu": cpu_model(), "settings": {k: str(v) for k, v in vars(args).items()},
                                                 "pairs": pairs}, indent=2) + "\n")
    for method, runs in pairs.items():
        zoo_s = median([r["zoo"]["s_per_step"] for r in runs])
        solo_s = median([r["solo"]["s_per_step"] for r in runs])
        ratios = [r["zoo"]["s_per_step"] / r["solo"]["s_per_step"] for r in runs]
        compute = [r["zoo"]["compute_s_per_step"] / r["solo"]["compute_s_per_step"] for r in runs]
        cpu = [r["zoo"]["cpu_s_per_step"] / r["solo"]["cpu_s_per_step"] for r in runs]
        rows.append([method, f"{zoo_s:.3f}", f"{solo_s:.3f}", f"{median(ratios):.3f}",
                     f"{min(ratios):.3f}-{max(ratios):.3f}", f"{median(compute):.3f}", f"{median(cpu):.3f}", len(runs)])
    # CPU seconds: what a busy shared core does not inflate as much as the wall time (the time the process waited)
    print(markdown_table(["method", "zoo s/step", "solo-learn s/step", "ratio zoo/solo (median of pairs)",
                          "ratio min-max", "compute ratio", "CPU-seconds ratio", "pairs"], rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, help="crop size in px")
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--zoo-python", help="the zoo environment's python: run both drivers, alternating, with ratios")
    parser.add_argument("--zoo-args", default="", help="with --zoo-python: more step_time.py arguments, e.g. "
                        "'--channels-last off'")
    parser.add_argument("--repeats", type=int, default=3, help="with --zoo-python: paired runs per method")
    parser.add_argument("--json", type=Path, help="with --zoo-python: every pair's numbers")
    parser.add_argument("--concurrent", nargs=2, type=int, metavar=("CORE", "CORE"),
                        help="with --zoo-python: run the two sides of a pair at once, one on each of these cores "
                             "(swapped every repeat), instead of one after the other")
    args = parser.parse_args(argv)
    if args.concurrent:
        usable = os.sched_getaffinity(0)
        if not args.zoo_python or len(set(args.concurrent)) != 2 or not set(args.concurrent) <= usable:
            parser.error(f"--concurrent takes --zoo-python and two different cores among {sorted(usable)}")
    if args.zoo_python:
        print(f"step_time_solo_learn: CPU {cpu_model()}, {cores()} cores, {args.threads} torch threads; ResNet-18 "
              f"(CIFAR stem), {args.size} px, batch {args.batch}, {args.views} views; median of {args.steps} steps after "
              f"{args.warmup} warm-up per process, {args.repeats} paired processes per method"
              + (f", the two of a pair at once on cores {args.concurrent[0]} and {args.concurrent[1]}" if args.concurrent else ""))
        side_by_side(args)
        return
    try:
        import solo  # noqa: F401
    except ImportError:
        raise SystemExit("error: solo-learn is not importable here: run this with the python of the environment "
                         "that has solo-learn installed (see the top of this file)") from None
    torch.set_num_threads(args.threads)
    for method in args.methods:
        profile = solo_profile(method, args)
        print(step_result_line("solo-learn", method, profile["step"], profile["compute"], profile["cpu"], args.batch,
                               profile["timed_steps"], args.warmup, args.threads), flush=True)


if __name__ == "__main__":
    main()
