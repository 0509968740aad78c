"""Seconds per training step of every method as the zoo trains it, with a per-step profile and its overheads.

    python benchmarks/step_time.py                 # every method: ResNet-18 (CIFAR stem), 32 px, batch 64, 2 views
    python benchmarks/step_time.py --tiny          # a few steps at 16 px, batch 8 (CI: seconds)
    python benchmarks/step_time.py --methods intl wmse --steps 10 --batch 128 --size 32 \\
        --channels-last off --threads 2 --json runs/step_time.json

Each method is built as training builds it (`zoo.build.build_method` on the composed run config)
and trained by a real `trainer.fit` with the zoo's own trainer (`zoo.pretrain.pretraining_trainer`: CSV
logger, checkpoint callbacks, progress bar) and its own training loader (`zoo.data.build_loaders`
on scikit-learn's digits at the crop size, workers as configured; validation off). Timed are the
steps after `--warmup` ones; every number is the median over those steps. Per step:

  data       waiting for the next batch from the loader (workers run alongside the step)
  forward    backbone + projector (+ SimSiam's predictor, INTL-M's EMA target): their forward calls
  loss       the rest of `compute_loss`: the loss with its whitening (and concatenations)
  probe      `probe_step`: the online linear probe's forward, cross-entropy and top-1 (torchmetrics)
  backward   loss.backward() (the probe's backward included)
  optimiser  optimizer.step() after the backward, with the EMA target update of the methods that have one
  logging    `self.log` calls (`log_train_metrics`: step values + epoch means), Lightning's per-step
             metric update / CSV rows, the progress bar
  other      the rest: Lightning's loop, zero_grad, the lr scheduler, the finite-loss check, callbacks

Then, for `--overhead-method` (default intl), the same step without Lightning (the bare loop:
loader, compute_loss, backward, optimizer/scheduler step; no probe, no logging), with the memory
format switched, and separate measurements of what the zoo does per step beyond the bare step
(the probe, the accuracy metric, logging, the finite-loss check, checkpoints, and under DDP the
averaging of the step's metrics over the ranks: the zoo's one all-reduce of them all vs `sync_dist=True`'s
one per metric, with gloo on 2 CPU processes). Markdown to stdout, and one `step_result {json}` line per
method (the format of step_time_solo_learn.py); `--json PATH` writes every number.

`--as-solo-learn`: the setting of the side-by-side comparison with solo-learn (step_time_solo_learn.py):
its CIFAR stem and projector shapes (`_common.SOLO_LEARN_MATCH`) and the same synthetic input tensors.
"""

import argparse
import contextlib
import copy
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from _common import (
    SOLO_LEARN_MATCH,
    SOLO_LEARN_STEM,
    SYNTHETIC_CLASSES,
    compose_config,
    cores,
    cpu_model,
    endless,
    fit_whitening,
    load_average,
    markdown_table,
    median,
    ms,
    step_result_line,
    synthetic_batches,
)

from zoo.nn import EMA, StepState, components
from zoo.train.step import train_step

METHODS = ["intl", "intl_m", "st", "barlow_twins", "vicreg", "wmse", "cwrgp", "simsiam"]
PAPER_VIEWS = {"wmse": 4, "cwrgp": 4}  # the official small-data recipes' crop count
PHASES = ["data", "forward", "loss", "probe", "backward", "optimiser", "logging", "other"]
LOGGING = ("log", "metrics", "progress_bar")  # sub-phases that the table sums as "logging"
FORWARD_MODULES = ("backbone", "projector", "predictor", "target")


# ---------------------------------------------------------------- an exclusive-time phase clock


class Phases:
    """Exclusive wall time per named phase: entering a phase pauses the enclosing one."""

    def __init__(self, sync=None):
        self.sync = sync or (lambda: None)
        self.stack = []
        self.totals = defaultdict(float)

    def now(self):
        self.sync()
        return time.perf_counter()

    def enter(self, name):
        now = self.now()
        if self.stack:
            self.totals[self.stack[-1][0]] += now - self.stack[-1][1]
        self.stack.append([name, now])

    def exit(self):
        now = self.now()
        name, start = self.stack.pop()
        self.totals[name] += now - start
        if self.stack:
            self.stack[-1][1] = now

    @contextlib.contextmanager
    def phase(self, name):
        self.enter(name)
        try:
            yield
        finally:
            self.exit()

    def take(self):
        """The totals since the last take (phases still open keep running)."""
        totals, self.totals = dict(self.totals), defaultdict(float)
        return totals


def timed(phases, name, fn):
    def wrapper(*args, **kwargs):
        with phases.phase(name):
            return fn(*args, **kwargs)

    return wrapper


def instrument(model, phases):
    """Time the harness's and its method's pieces in place (instance attributes and hooks; the classes stay as
    they are)."""
    method = model.method
    for attr in FORWARD_MODULES:
        module = getattr(method, attr, None)
        if isinstance(module, torch.nn.Module):
            module.register_forward_pre_hook(lambda *_: phases.enter("forward"))
            module.register_forward_hook(lambda *_: phases.exit())
    method.compute_loss = timed(phases, "loss", method.compute_loss)
    model.probe_step = timed(phases, "probe", model.probe_step)
    for ema in (c for c in components(method) if isinstance(c, EMA)):  # the EMA update counts as the optimiser's
        ema.before_forward = timed(phases, "optimiser", ema.before_forward)
        ema.after_optimizer_step = timed(phases, "optimiser", ema.after_optimizer_step)


def step_rows(windows, warmup):
    """Per-phase medians (seconds) over the timed windows; `windows` are (wall seconds, CPU seconds, phase totals)."""
    timed_windows = windows[warmup:]
    rows = []
    for seconds, cpu, totals in timed_windows:
        row = {phase: totals.get(phase, 0.0) for phase in PHASES}
        row["cpu"] = cpu
        row["logging"] = sum(totals.get(sub, 0.0) for sub in LOGGING)
        row["other"] = seconds - sum(row[phase] for phase in PHASES if phase != "other")
        row["step"] = seconds
        row.update({f"logging/{sub}": totals.get(sub, 0.0) for sub in LOGGING})
        rows.append(row)
    keys = rows[0].keys() if rows else []
    return {key: median([row[key] for row in rows]) for key in keys} | {"timed_steps": len(rows)}


# ---------------------------------------------------------------- building a run as training does


def run_config(args, method, views):
    cfg = compose_config([
        f"method={method}",
        "data.name=digits",
        f"data.batch_size={args.batch}",
        f"data.views=[{{size: {args.size}, count: {views}}}]",
        *([f"data.num_workers={args.workers}"] if args.workers is not None else []),
        "backbone.name=resnet18",
        "trainer.devices=1",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        f"trainer.max_steps={args.warmup + args.steps + 1}",  # the last step's window never closes
        "trainer.max_epochs=-1",
        *(SOLO_LEARN_STEM + SOLO_LEARN_MATCH[method]["zoo"] if args.as_solo_learn else []),
    ])
    changed = fit_whitening(cfg, args.batch)
    return cfg, changed


def build(cfg, num_classes):
    from zoo.build import build_method

    torch.manual_seed(0)
    return build_method(copy.deepcopy(cfg), num_classes, world_size=1)


def train_loader(cfg, args=None):
    """The zoo's training loader of `cfg`, or with --as-solo-learn the synthetic batches the solo-learn driver
    feeds solo-learn (as many as the fit takes)."""
    from zoo.data import build_loaders, data_spec

    if args is not None and args.as_solo_learn:
        views = sum(view.count for view in cfg.data.views)
        return synthetic_batches(args.batch, views, args.size, args.warmup + args.steps + 1), SYNTHETIC_CLASSES
    loaders = build_loaders(data_spec(cfg.data), seed=cfg.seed)
    return loaders.train, loaders.num_classes


class TimedLoader:
    """The training loader with its `next()` timed as the "data" phase (Lightning takes any sized iterable)."""

    def __init__(self, loader, phases):
        self.loader, self.phases = loader, phases

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            self.phases.enter("data")
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                self.phases.exit()
            yield batch


def zoo_trainer(cfg, run_dir):
    """The trainer pretraining builds (CSV logger, checkpoint callbacks, spectrum plot, progress bar)."""
    from zoo.pretrain import pretraining_trainer

    return pretraining_trainer(cfg, run_dir)


def channels_last_prepare(crop):
    return crop.contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------- the bare step: no Lightning, no probe, no logging


class BareSteps:
    """The step without Lightning (`zoo.train.step.train_step`, the one training uses, without the probe): loader,
    compute_loss, backward, optimizer + scheduler step (the zoo's own optimiser and schedule, `build_optimizer`),
    the components' hooks (the EMA update where the method has one); no probe, no logging. The phases are timed
    by wrapping the optimiser's zero_grad and step and the scheduler's step, not by a copy of the step."""

    def __init__(self, cfg, num_classes, channels_last, total_steps, threads=None):
        self.threads = threads  # torch intra-op threads during this loop's steps (None: as set)
        self.phases = Phases(torch.cuda.synchronize if torch.cuda.is_available() else None)
        self.model = build(cfg, num_classes)
        instrument(self.model, self.phases)
        self.channels_last = channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        loader, _ = train_loader(cfg)  # its own loader: a second iterator would reset a persistent-worker one
        self.steps_per_epoch = max(len(loader), 1)
        configured = self.model.build_optimizer(steps_per_epoch=self.steps_per_epoch, total_steps=total_steps)
        self.optimizer, self.scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
        phases = self.phases
        zero_grad = self.optimizer.zero_grad

        def zero_grad_then_backward(*args, **kwargs):  # the step runs zero_grad right before the backward
            with phases.phase("other"):
                zero_grad(*args, **kwargs)
            phases.enter("backward")

        def backward_done(*_):  # the optimiser's step pre-hook (a hook returning a value would replace the arguments)
            phases.exit()
            phases.enter("optimiser")

        self.optimizer.zero_grad = zero_grad_then_backward
        self.optimizer.register_step_pre_hook(backward_done)
        self.optimizer.register_step_post_hook(lambda *_: phases.exit())
        self.scheduler.step = timed(phases, "other", self.scheduler.step)
        self.model.train()
        self.stream = iter(TimedLoader(endless(loader), self.phases))
        self.total, self.done, self.windows = total_steps, 0, []

    def step(self):
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or threads)
        try:
            self._step()
        finally:
            torch.set_num_threads(threads)

    def _step(self):
        phases, model = self.phases, self.model
        start, cpu = phases.now(), time.process_time()
        crops, labels = next(self.stream)
        if self.channels_last:
            crops = [channels_last_prepare(crop) for crop in crops]
        state = StepState(step=self.done, total_steps=self.total, epoch=self.done // self.steps_per_epoch,
                          steps_per_epoch=self.steps_per_epoch)
        train_step(model.method, (crops, labels), self.optimizer, self.scheduler, state)
        self.done += 1
        self.windows.append((phases.now() - start, time.process_time() - cpu, phases.take()))


# ---------------------------------------------------------------- the zoo's step: a real trainer.fit


def fit_profile(args, cfg, loader, num_classes, channels_last, companions=()):
    """Trains `cfg`'s method with the zoo's trainer; returns the per-step profile and extras.

    `companions` (BareSteps) each take one step between two steps of the fit, outside its step
    windows: the fit and the bare steps then see the same load on a shared machine."""
    import lightning as L

    phases = Phases(torch.cuda.synchronize if torch.cuda.is_available() else None)
    model = build(cfg, num_classes)
    instrument(model, phases)
    step_logs = []  # per log call: does it log a step value (None: a step boundary)

    def log(*a, _log=model.log, **kw):
        step_logs.append(kw.get("on_step") is not False)
        with phases.phase("log"):
            return _log(*a, **kw)

    model.log = log
    model.channels_last = channels_last  # the model converts itself in setup("fit")

    windows = []

    class Profiler(L.Callback):
        start = cpu = None

        def on_train_start(self, trainer, pl_module):
            trainer.optimizers[0].register_step_post_hook(lambda *_: phases.exit())
            connector = trainer._logger_connector
            connector.update_train_step_metrics = timed(phases, "metrics", connector.update_train_step_metrics)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            now, cpu = phases.now(), time.process_time()
            totals = phases.take()  # before the first step: the start-up, not a step
            if self.start is not None:
                windows.append((now - self.start, cpu - self.cpu, totals))
            step_logs.append(None)  # a step boundary in the log-call record
            turn = len(windows) % max(len(companions), 1)  # rotate who steps first: no loop always follows the fit
            for companion in companions[turn:] + companions[:turn]:
                companion.step()
            self.start, self.cpu = phases.now(), time.process_time()

        def on_before_backward(self, trainer, pl_module, loss):
            phases.enter("backward")

        def on_after_backward(self, trainer, pl_module):
            phases.exit()
            phases.enter("optimiser")  # left by the optimizer's step post-hook

    run_dir = Path(tempfile.mkdtemp(prefix="step_time-"))
    try:
        trainer = zoo_trainer(cfg, run_dir)
        from lightning.pytorch.callbacks import ProgressBar

        for callback in trainer.callbacks:
            if isinstance(callback, ProgressBar):
                for hook in ("on_train_batch_start", "on_train_batch_end"):
                    setattr(callback, hook, timed(phases, "progress_bar", getattr(callback, hook)))
        trainer.callbacks.insert(0, Profiler())
        # the progress bar (Lightning's TQDM writes to stdout) goes to stderr, so stdout keeps only the tables
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")  # "few batches", "no val loop": expected here
            trainer.fit(model, train_dataloaders=TimedLoader(loader, phases))
        start = time.perf_counter()
        trainer.save_checkpoint(run_dir / "timed.ckpt")  # the zoo's AtomicCheckpointIO: what every_n_steps costs
        checkpoint_seconds = time.perf_counter() - start
        checkpoint_mb = (run_dir / "timed.ckpt").stat().st_size / 2**20
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    profile = step_rows(windows, args.warmup)
    per_step = [0]
    for entry in step_logs:
        if entry is None:
            per_step.append(0)
        elif entry:
            per_step[-1] += 1
    profile["step_metrics_per_step"] = max(per_step)
    profile["checkpoint_seconds"] = checkpoint_seconds
    profile["checkpoint_mb"] = checkpoint_mb
    return profile


# ---------------------------------------------------------------- separate measurements of per-step extras


def median_call(fn, repeats=50):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def probe_costs(cfg, num_classes, batch, views):
    """The probe's pieces at this batch: forward + CE + accuracy, its backward, the accuracy alone vs a plain one."""
    from zoo.train.harness import top_k_accuracy

    model = build(cfg, num_classes)
    features = [torch.randn(batch, model.method.feature_dim) for _ in range(views)]
    labels = torch.randint(0, num_classes, (batch,))
    logits = torch.randn(batch * views, num_classes)
    targets = labels.repeat(views)

    def forward():
        return model.probe_step(features, labels)

    def forward_backward():
        model.classifier.zero_grad(set_to_none=True)
        forward()[0].backward()

    loss = torch.tensor(1.0)
    return {
        "probe_forward": median_call(forward),
        "probe_forward_backward": median_call(forward_backward),
        "accuracy_torchmetrics": median_call(lambda: top_k_accuracy(logits, targets, num_classes)),
        "accuracy_plain": median_call(lambda: (logits.argmax(1) == targets).float().mean()),
        "isfinite_check": median_call(lambda: bool(torch.isfinite(loss)), repeats=1000),
    }


def _ddp_worker(rank, world, port, metrics, steps, out):
    import torch.distributed as dist
    from lightning.fabric.utilities.distributed import _sync_ddp_if_available

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    values = [torch.rand(()) for _ in range(metrics)]
    times = {"sync_dist": [], "one_all_reduce": []}
    for _ in range(steps + 3):
        dist.barrier()
        start = time.perf_counter()
        for value in values:  # what log_dict(..., sync_dist=True, on_step=True) does per metric per step
            _sync_ddp_if_available(value.clone(), reduce_op="mean")
        times["sync_dist"].append(time.perf_counter() - start)
        dist.barrier()
        start = time.perf_counter()
        _sync_ddp_if_available(torch.stack(values), reduce_op="mean")  # the zoo's log_train_metrics: one for all
        times["one_all_reduce"].append(time.perf_counter() - start)
    if rank == 0:
        Path(out).write_text(json.dumps({k: median(v[3:]) for k, v in times.items()}))
    dist.destroy_process_group()


def ddp_sync_cost(metrics, steps=200):
    """Per-step seconds of averaging `metrics` logged values over the ranks under DDP, Lightning's sync_dist (one
    all-reduce each) vs the zoo's one all-reduce of them stacked: 2 gloo processes on this CPU."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        mp.spawn(_ddp_worker, args=(2, port, metrics, steps, str(out)), nprocs=2, join=True)
        return json.loads(out.read_text())


# ---------------------------------------------------------------- the tables


def fmt_row(name, views, profile, batch):
    step = profile["step"]
    cells = [name, views]
    cells += [f"{ms(profile[phase])} ({100 * profile[phase] / step:.0f}%)" for phase in PHASES]
    cells += [f"{step:.3f}", f"{batch / step:.1f}", f"{profile['cpu']:.2f}"]
    return cells


HEADERS = ["run / method", "views", *[f"{p} ms" for p in PHASES], "s/step", "img/s", "CPU s/step"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--tiny", action="store_true", help="16 px, batch 8, 2 steps after 1 warm-up, 1 thread (CI)")
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 5; --tiny 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=None, help="per step (default 64; --tiny 8)")
    parser.add_argument("--size", type=int, default=None, help="crop size in px (default 32; --tiny 16)")
    parser.add_argument("--views", type=int, default=2, help="crops per image for every method")
    parser.add_argument("--paper-views", action="store_true", help="W-MSE / CW-RGP with their recipes' 4 crops")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="NHWC model and crops; auto: as the zoo decides (`zoo.backbones.wants_channels_last`: "
                             "CUDA, or CPU crops from 32 px); off: NCHW")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch intra-op threads (default: torch's, {torch.get_num_threads()} here; --tiny 1)")
    parser.add_argument("--workers", type=int, default=None, help="data.num_workers (default: the zoo's, the cores up to 8)")
    parser.add_argument("--overhead-method", default="intl", help="the method of the overhead study ('none': skip it)")
    parser.add_argument("--ddp-sync", choices=["auto", "on", "off"], default="auto",
                        help="measure averaging the logged step values under DDP with 2 gloo processes (auto: not with --tiny)")
    parser.add_argument("--as-solo-learn", action="store_true",
                        help="the setting of step_time_solo_learn.py: solo-learn's CIFAR stem and projector shapes, "
                             "its synthetic input tensors (Barlow Twins, VICReg, SimSiam, W-MSE)")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args(argv)
    if args.as_solo_learn and set(args.methods) - set(SOLO_LEARN_MATCH):
        parser.error(f"--as-solo-learn takes --methods among {', '.join(SOLO_LEARN_MATCH)}")
    args.steps = args.steps or (2 if args.tiny else 5)
    args.batch = args.batch or (8 if args.tiny else 64)
    args.size = args.size or (16 if args.tiny else 32)
    args.threads = args.threads or (1 if args.tiny else torch.get_num_threads())
    torch.set_num_threads(args.threads)

    from zoo.backbones import wants_channels_last
    from zoo.pretrain import quiet_lightning

    quiet_lightning()
    if args.channels_last == "auto":
        channels_last = wants_channels_last("cuda" if torch.cuda.is_available() else "cpu", args.size)
    else:
        channels_last = args.channels_last == "on"
    layout = "on" if channels_last else "off"
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU {cpu_model()}"
    print(
        f"step_time: {device}, {cores()} cores, {args.threads} torch threads, load average {load_average():.1f}; "
        f"ResNet-18 (small stem), {args.size} px, batch {args.batch}, {args.views} views"
        f"{' (W-MSE / CW-RGP 4)' if args.paper_views else ''}, channels_last {layout}; "
        f"median of {args.steps} steps after {args.warmup} warm-up, trainer.fit with the zoo's trainer, validation off"
    )
    started = time.perf_counter()
    results, notes = {}, []
    configs = {}
    for method in args.methods:
        views = PAPER_VIEWS.get(method, args.views) if args.paper_views else args.views
        cfg, changed = run_config(args, method, views)
        if changed:
            notes.append(f"{method}: {', '.join(changed)} (its whitening cannot serve batch {args.batch} otherwise)")
        loader, num_classes = train_loader(cfg, args)
        configs[method] = (cfg, loader, num_classes, views)
        profile = fit_profile(args, cfg, loader, num_classes, channels_last)
        results[method] = {"views": views, "changed": changed, **profile}
        print(f"  {method}: {profile['step']:.3f} s/step", file=sys.stderr)
        print(step_result_line("zoo", method, profile["step"], profile["step"] - profile["data"], profile["cpu"],
                               args.batch, profile["timed_steps"], args.warmup, args.threads), flush=True)

    table = markdown_table(HEADERS, [fmt_row(m, r["views"], r, args.batch) for m, r in results.items()])
    print()
    print(table)
    for note in notes:
        print(f"- {note}")

    overhead = {}
    target = args.overhead_method
    if target != "none":
        if target not in configs:
            views = PAPER_VIEWS.get(target, args.views) if args.paper_views else args.views
            cfg, _ = run_config(args, target, views)
            loader, num_classes = train_loader(cfg, args)
            configs[target] = (cfg, loader, num_classes, views)
            results[target] = {"views": views, **fit_profile(args, cfg, loader, num_classes, channels_last)}
        cfg, loader, num_classes, views = configs[target]
        # One fit whose every step is followed by one step of each bare loop: all three see the same load.
        total = args.warmup + args.steps + 1
        other_threads = 1 if args.threads > 1 else cores()
        companions = [
            BareSteps(cfg, num_classes, channels_last, total),
            BareSteps(cfg, num_classes, not channels_last, total),
            BareSteps(cfg, num_classes, channels_last, total, threads=other_threads),
        ]
        fit = fit_profile(args, cfg, loader, num_classes, channels_last, companions)
        bare, other_format, other_threading = (step_rows(companion.windows, args.warmup) for companion in companions)
        extras = probe_costs(cfg, num_classes, args.batch, views)
        want_ddp = args.ddp_sync == "on" or (args.ddp_sync == "auto" and not args.tiny)
        ddp = ddp_sync_cost(fit["step_metrics_per_step"]) if want_ddp else None
        overhead = {"method": target, "fit": fit, "bare": bare, "bare_other_format": other_format,
                    "bare_other_threads": {"threads": other_threads, **other_threading}, **extras, "ddp": ddp}

        cl_name = f"bare loop, channels_last {'off' if channels_last else 'on'}"
        rows = [
            fmt_row(f"trainer.fit (the zoo), channels_last {layout}", views, fit, args.batch),
            fmt_row(f"bare loop, channels_last {layout}", views, bare, args.batch),
            fmt_row(cl_name, views, other_format, args.batch),
            fmt_row(f"bare loop, {other_threads} torch thread(s)", views, other_threading, args.batch),
        ]
        print(f"\nOverheads of {target}: one trainer.fit, each of its steps followed by one step of each bare loop "
              "(loader + compute_loss + backward + optimiser/scheduler step), so the rows share the machine's load")
        print(markdown_table(HEADERS, rows))
        step = fit["step"]
        pct = lambda seconds: f"{ms(seconds, 2)} ms ({100 * seconds / step:.2f}% of the step)"
        lines = [
            (f"framework overhead, measured directly: probe {ms(fit['probe'], 2)} + logging {ms(fit['logging'], 2)} + "
             f"Lightning loop and callbacks {ms(fit['other'] - bare['other'], 2)} (fit's other - bare's) = "
             f"{pct(fit['probe'] + fit['logging'] + fit['other'] - bare['other'])}; the medians' difference fit - bare, "
             f"{ms(step - bare['step'])} ms, is mostly the machine's noise at this step time"),
            (f"online probe, in the step: {pct(fit['probe'])}; alone: forward + CE + top-1 {ms(extras['probe_forward'], 2)} ms, "
            f"+ backward {ms(extras['probe_forward_backward'], 2)} ms"),
            (f"top-1 with torchmetrics multiclass_accuracy: {ms(extras['accuracy_torchmetrics'], 3)} ms vs "
            f"argmax == labels {ms(extras['accuracy_plain'], 3)} ms"),
            (f"self.log calls ({fit['step_metrics_per_step']} step values + their epoch means): "
            f"{pct(fit['logging/log'])}"),
            (f"Lightning's per-step metric update + CSV rows: {pct(fit['logging/metrics'])}; "
            f"progress bar: {pct(fit['logging/progress_bar'])}"),
            (f"other (Lightning loop, zero_grad, scheduler, finite-loss check, callbacks): fit {pct(fit['other'])}, "
            f"bare {ms(bare['other'], 2)} ms"),
            (f"finite-loss check `if not torch.isfinite(loss)`: {ms(extras['isfinite_check'], 4)} ms on the CPU "
            "(on CUDA it is a device sync every step)"),
            (f"checkpoint: {fit['checkpoint_mb']:.0f} MB in {fit['checkpoint_seconds']:.2f} s; every 200 steps "
            f"(checkpoint_every_n_steps) = {ms(fit['checkpoint_seconds'] / 200, 2)} ms per step"),
            (f"memory format: bare step {bare['step']:.3f} s with channels_last {args.channels_last}, "
            f"{other_format['step']:.3f} s {'off' if channels_last else 'on'} "
            f"(ratio {other_format['step'] / bare['step']:.2f})"),
            (f"intra-op threads: bare step {bare['step']:.3f} s with {args.threads}, {other_threading['step']:.3f} s with "
             f"{other_threads} (ratio {other_threading['step'] / bare['step']:.2f}; the loader's workers share the cores)"),
        ]
        if ddp:
            per_metric = ddp["sync_dist"] / max(fit["step_metrics_per_step"], 1)
            lines.append(
                f"under DDP (2 gloo processes on this CPU), averaging {fit['step_metrics_per_step']} step values over the "
                f"ranks: the zoo's one all-reduce {ms(ddp['one_all_reduce'], 3)} ms per step; sync_dist=True "
                f"{ms(ddp['sync_dist'], 2)} ms ({ms(per_metric, 3)} ms per metric: barrier + all_reduce)"
            )
        else:
            lines.append("under DDP: not measured (--ddp-sync on); on one process the step values are not reduced")
        for line in lines:
            print(f"- {line}")

    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} methods in {elapsed:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({
            "device": device, "cores": cores(), "settings": settings, "methods": results, "notes": notes,
            "overhead": overhead, "seconds": elapsed,
        }, indent=2, default=float) + "\n")


if __name__ == "__main__":
    from zoo.errors import exit_on_user_error

    exit_on_user_error(main)()
