"""One GPU, one command, at most ~5 minutes: the zoo's ImageNet loaders and every whitening method's step, in one table.

    python benchmarks/gpu_check.py --out runs/gpu-check       # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --out /tmp/gpu-check       # without one: a tiny CPU version of every row

Loader rows: images/s delivered on the GPU (and CPU ms per image) of DALI GPU (nvJPEG "mixed" decoding, ops
on the GPU), DALI CPU (DALI's CPU backend, the batch then copied to the GPU) and torchvision (DataLoader
workers, pinned memory), each for `augment=intl_imagenet` (2 crops of 224 px) and `augment=intl_multicrop`
(6 crops: 2 x 224, 192, 160, 128, 96), built by the zoo itself (`zoo.data.build_loaders` with
data.loader=dali / torchvision) from the recipes' data configs, on a generated folder of ImageNet-sized
JPEGs (`_common.make_fake_imagenet`, as benchmarks/data_loading.py), the recipes' per-GPU batch and workers.

Method rows: INTL, INTL-M (6 crops, EMA target), CW-RGP (4 views), W-MSE (4 views), Barlow Twins and VICReg
at their ImageNet recipes (`experiment=imagenet/<recipe>`, built by `zoo.build.build_method`):
ResNet-50, 224 px, the per-GPU batch data.global_batch_size / (recipe.paper_gpus x paper_nodes), the
recipe's trainer.precision (16-mixed: fp16 autocast + GradScaler; TF32 matmuls as main_pretrain.py
sets them). A step is the zoo's training step without Lightning (`zoo.train.step.train_step`, the one training
runs): compute_loss, the online probe, backward, optimizer and scheduler step, the EMA update where training
does it. The loss sees the global batch, as on every DDP rank of
the paper's run: the local batch plus random stand-ins for the other ranks' rows (the gather is
emulated; no communication is timed). Each method with channels_last off / on and torch.compile
(backbone, projector, predictor, EMA target) off / on: s/step, img/s per GPU, peak memory, and the
loss + whitening share of the step (its forward + backward timed alone on the step's projector outputs).

Compiled rows run last, while the time budget (--budget) lasts; the rest are listed as skipped. A missing
piece on a GPU machine (DALI, its nvJPEG decoder, NCCL) stops the check with one `error: ...` line (exit 2).
Writes DIR/table.md and DIR/table.json (--out DIR); the markdown also goes to stdout.
"""

import argparse
import contextlib
import copy
import gc
import itertools
import json
import socket
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from _common import (
    compose_config,
    cores,
    cpu_model,
    endless,
    fit_whitening,
    make_fake_imagenet,
    markdown_table,
    measure,
    median,
)

from zoo.errors import ZooError, exit_on_user_error
from zoo.nn import StepState
from zoo.train.step import train_step

# (row name, recipe): the ImageNet recipes of the check
RECIPES = [
    ("intl", "imagenet/intl"),
    ("intl_m", "imagenet/intl_m_ep100"),
    ("cwrgp", "imagenet/cwrgp"),
    ("wmse", "imagenet/wmse"),
    ("barlow_twins", "imagenet/barlow_twins"),
    ("vicreg", "imagenet/vicreg"),
]
# (row name, recipe whose data config it is): the augmentation presets of the loader rows
AUGMENTS = [("intl_imagenet", "imagenet/intl"), ("intl_multicrop", "imagenet/intl_m_ep100")]
LOADERS = ["dali_gpu", "dali_cpu", "torchvision"]
FORWARD_MODULES = ("backbone", "projector", "predictor", "target")
TINY_SIZE = 16  # CPU mode: crops of 224 px become 16 px (the others in proportion, at least 8)
TINY_BATCH = 4  # CPU mode: per "GPU", with 2 emulated ranks


def first_line(err):
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the pieces a GPU run needs


def dali_version():
    """(DALI's version or None, why it does not import)."""
    try:
        import nvidia.dali

        return nvidia.dali.__version__, None
    except ImportError:
        return None, 'NVIDIA DALI is not installed (pip install ".[dali]", the nvidia-dali-cuda120 wheel)'
    except Exception as err:  # noqa: BLE001 (a broken install: missing CUDA libraries, ...)
        return None, f"NVIDIA DALI does not import: {first_line(err)}"


def check_nvjpeg(jpeg):
    """DALI's GPU decoder on one JPEG (fn.decoders.image, device="mixed": nvJPEG)."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def
    def decode():
        encoded, _ = fn.readers.file(files=[str(jpeg)])
        return fn.decoders.image(encoded, device="mixed", output_type=types.RGB)

    try:
        pipe = decode(batch_size=1, num_threads=1, device_id=torch.cuda.current_device())
        pipe.build()
        (images,) = pipe.run()
        shape = images.as_cpu().at(0).shape
    except Exception as err:  # noqa: BLE001 (DALI raises RuntimeError and others with its C++ message)
        raise ZooError(f"DALI's GPU JPEG decoder (nvJPEG, fn.decoders.image device='mixed') does not run: {first_line(err)}")
    return shape


def check_nccl(metrics=5, repeats=50):
    """NCCL on this GPU (a one-rank process group and an all-reduce), and what Lightning's sync_dist costs per
    logged metric there: a barrier + all_reduce (lightning.fabric's _sync_ddp), each a wait for the GPU."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_nccl_available()):
        raise ZooError("this torch has no NCCL backend (torch.distributed.is_nccl_available() is False); DDP on GPUs needs it")
    try:
        dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
        value = torch.ones((), device="cuda")
        dist.all_reduce(value)
        torch.cuda.synchronize()
        from lightning.fabric.utilities.distributed import _sync_ddp

        times = []
        for _ in range(repeats + 3):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(metrics):
                _sync_ddp(value.clone(), reduce_op="mean")
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / metrics)
        version = torch.cuda.nccl.version()
        version = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        return version, median(times[3:])
    except ZooError:
        raise
    except Exception as err:  # noqa: BLE001 (whatever NCCL or torch.distributed raises: one line)
        raise ZooError(f"NCCL does not run on this GPU: {first_line(err)}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ---------------------------------------------------------------- configs


def recipe_config(recipe, tiny, overrides=()):
    """The recipe's run config, its per-GPU batch and the ranks of the paper's run (CPU mode: shrunk)."""
    extra = list(overrides)
    if tiny:
        extra += ["backbone.name=resnet18", f"data.image_size={TINY_SIZE}", "trainer.precision=32-true",
                  "method.proj_hidden=[128]", "method.proj_out=64"]
    cfg = compose_config([f"experiment={recipe}", *extra])
    ranks = cfg.recipe.paper_gpus * cfg.recipe.paper_nodes
    if tiny:
        for group in cfg.data.views:
            if group.size:
                group.size = max(8, round(group.size * TINY_SIZE / 224))
        ranks = min(ranks, 2)
        cfg.data.global_batch_size = TINY_BATCH * ranks
    from zoo.pretrain import split_global_batch

    per_gpu = split_global_batch(cfg.data.global_batch_size, ranks)
    changed = fit_whitening(cfg, cfg.data.global_batch_size)
    cfg.data.batch_size = per_gpu
    return cfg, per_gpu, ranks, changed


def crop_sizes(cfg):
    from zoo.data import data_spec

    return [crop.size for crop in data_spec(cfg.data).crops]


# ---------------------------------------------------------------- loader rows


def to_device(batch, device):
    crops, labels = batch
    return [crop.to(device, non_blocking=True) for crop in crops], labels.to(device, non_blocking=True)


def loader_stream(kind, cfg, device):
    """Endless batches of the zoo's own training loader, delivered on `device`."""
    from zoo.data import build_loaders, data_spec

    data = copy.deepcopy(cfg.data)
    data.loader = "torchvision" if kind == "torchvision" else "dali"
    loader = build_loaders(data_spec(data), seed=0).train

    def stream():
        batches = endless(loader)
        if kind == "dali_cpu" and torch.cuda.is_available():
            # The zoo's DALI loader decodes on the GPU whenever CUDA is there; its CPU backend is what it
            # builds on a machine without CUDA, so that is what it is shown while it builds the pipeline.
            with mock.patch("torch.cuda.is_available", return_value=False):
                first = next(batches)
            yield to_device(first, device)
        for batch in batches:
            yield to_device(batch, device)

    return stream()


def loader_rows(args, device, root, have_dali, gpu):
    rows = []
    sync = torch.cuda.synchronize if gpu else None
    for augment, recipe in AUGMENTS:
        overrides = [f"data.root={root}", f"data.num_workers={min(8, cores())}"]
        cfg, per_gpu, _, _ = recipe_config(recipe, not gpu, overrides)
        sizes = crop_sizes(cfg)
        base = {"kind": "loader", "augment": augment, "batch_per_gpu": per_gpu, "crops": len(sizes),
                "crop_sizes": sizes, "workers": cfg.data.num_workers}
        streams, statuses = {}, {}
        for kind in LOADERS:
            if kind.startswith("dali") and not have_dali:
                statuses[kind] = "skipped: NVIDIA DALI does not import"
            elif kind == "dali_gpu" and not gpu:
                statuses[kind] = "skipped: no GPU"
            else:
                try:
                    streams[kind] = loader_stream(kind, cfg, device)
                except ZooError as err:
                    statuses[kind] = f"failed: {err}"
        results = {}
        read_ahead = 2 * max(1, cfg.data.num_workers)  # DALI: prefetch queue 2; torchvision: 2 per worker

        def timed(chosen, per_gpu=per_gpu, read_ahead=read_ahead):
            return measure(chosen, per_gpu, args.loader_batches, args.loader_repeats, 1, read_ahead, sync)

        try:
            results = timed(streams) if streams else {}  # the loaders take turns: load changes hit all alike
        except Exception:  # noqa: BLE001 (one loader broke while running: time the others alone, name the culprit)
            for kind in list(streams):
                try:
                    results.update(timed({kind: loader_stream(kind, cfg, device)}))
                except Exception as err:  # noqa: BLE001
                    statuses[kind] = f"failed: {first_line(err)}"
        for kind in LOADERS:
            row = {"item": f"loader/{kind}/{augment}", "loader": kind, **base}
            if kind in results:
                rate, low, high, cpu_ms = results[kind]
                row.update(status="ok", images_per_s=rate, images_per_s_min=low, images_per_s_max=high, cpu_ms_per_image=cpu_ms)
            else:
                row["status"] = statuses.get(kind, "skipped")
            rows.append(row)
        del streams
        gc.collect()
    return rows


# ---------------------------------------------------------------- method rows


@contextlib.contextmanager
def emulated_ranks(ranks):
    """The zoo's losses as on one rank of a `ranks`-process DDP run: `zoo.spectral.gather` returns the local
    rows followed by random stand-ins for the other ranks' (scaled like the local ones, no gradient), so the
    whitening and the covariances cover the global batch; the random partitions are not broadcast."""
    if ranks == 1:
        yield
        return
    import zoo.spectral

    def gather(x, dim=0):
        local = x.detach()
        others = [torch.randn_like(local) * local.std() + local.mean() for _ in range(ranks - 1)]
        return torch.cat([x, *others], dim=dim)

    stand_ins = {"is_distributed": lambda: True, "world_size": lambda: ranks, "gather": gather,
                 "_same_on_every_rank": lambda t, device: t.to(device)}
    # every zoo module holding one of zoo.spectral's functions under its name (`from zoo.spectral import gather`)
    patches = {(module, name): value for module in list(sys.modules.values())
               if getattr(module, "__name__", "").startswith("zoo")
               for name, value in stand_ins.items()
               if getattr(module, name, None) is getattr(zoo.spectral, name)}
    saved = {key: getattr(*key) for key in patches}
    try:
        for (module, name), value in patches.items():
            setattr(module, name, value)
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


class Stepper:
    """The zoo's training step without Lightning, for one method at one setting."""

    def __init__(self, cfg, per_gpu, ranks, device, num_classes, total_steps):
        from zoo.build import build_method

        torch.manual_seed(0)
        self.model = build_method(cfg, num_classes, world_size=ranks).to(device)  # the harness; its .method
        self.model.train()
        self.steps_per_epoch = 1000
        configured = self.model.build_optimizer(steps_per_epoch=self.steps_per_epoch, total_steps=total_steps)
        self.optimizer, self.scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
        precision = str(cfg.trainer.precision)
        self.dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
        self.device, self.ranks, self.total, self.done = device, ranks, total_steps, 0
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype is torch.float16)
        self.sizes = crop_sizes(cfg)
        generator = torch.Generator().manual_seed(0)
        self.crops = [torch.randn(per_gpu, 3, s, s, generator=generator).to(device) for s in self.sizes]
        self.labels = torch.randint(0, num_classes, (per_gpu,), generator=generator).to(device)
        self.channels_last = False

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def set_channels_last(self, on):
        memory_format = torch.channels_last if on else torch.contiguous_format
        self.model.to(memory_format=memory_format)
        self.crops = [crop.contiguous(memory_format=memory_format) for crop in self.crops]
        self.channels_last = on

    def compile(self, backend, mode, dynamic=None):
        for name in FORWARD_MODULES:
            module = getattr(self.model.method, name, None)
            if isinstance(module, torch.nn.Module):
                module.compile(backend=backend, mode=mode, dynamic=dynamic)

    def forward_context(self):
        """The forward's context: the emulated ranks and autocast."""
        stack = contextlib.ExitStack()
        stack.enter_context(emulated_ranks(self.ranks))
        stack.enter_context(self.autocast())
        return stack

    def step(self):
        """The training step (`zoo.train.step.train_step`): each component (an EMA target) acts where training has it act."""
        state = StepState(step=self.done, total_steps=self.total, epoch=self.done // self.steps_per_epoch,
                          steps_per_epoch=self.steps_per_epoch)
        train_step(self.model.method, (self.crops, self.labels), self.optimizer, self.scheduler, state, scaler=self.scaler,
                   autocast=self.forward_context, probe=self.model.probe_step)
        self.done += 1

    def loss_seconds(self, sync, repeats):
        """Forward + backward of the loss alone (whitening included) on this step's projector outputs."""
        model = self.model.method
        with torch.no_grad(), self.autocast():
            if getattr(model, "momentum_target", False):
                views = [model.target(self.crops[0])]
                views += model.project([model.backbone(crop) for crop in self.crops[1:]])
            else:
                views = model.project([model.backbone(crop) for crop in self.crops])
        grad = not getattr(model, "momentum_target", False)
        leaves = [v.detach().requires_grad_(grad or i > 0) for i, v in enumerate(views)]
        times = []
        for _ in range(repeats + 1):
            for leaf in leaves:
                leaf.grad = None
            sync()
            start = time.perf_counter()
            with emulated_ranks(self.ranks), self.autocast():
                loss, _ = model.split_loss(model.loss(leaves))
            loss.backward()
            sync()
            times.append(time.perf_counter() - start)
        return median(times[1:])


def timed_steps(stepper, sync, warmup, steps, gpu):
    """(first step's seconds, median seconds per step after the warm-up, peak GiB of the timed steps)."""
    sync()
    start = time.perf_counter()
    stepper.step()
    sync()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        stepper.step()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        stepper.step()
        sync()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else None
    return first, median(times), peak


def release():
    """Free the last method's memory (call after dropping every reference to its Stepper)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    torch._dynamo.reset()


def method_rows(args, device, gpu, started):
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    num_classes = 1000 if gpu else 10
    total = args.warmup + args.steps + 2
    variants_eager = [(False, False), (True, False)]
    variants_compiled = [(True, True), (False, True)]
    rows, info, loss_time = {}, {}, {}

    def row_key(name, cl, compiled):
        return f"method/{name}/channels_last={'on' if cl else 'off'}/compile={'on' if compiled else 'off'}"

    def run(name, stepper, cl, compiled):
        key = row_key(name, cl, compiled)
        try:
            stepper.set_channels_last(cl)
            if compiled:
                stepper.compile(args.compile_backend, args.compile_mode, args.compile_dynamic)
            first, seconds, peak = timed_steps(stepper, sync, args.warmup, args.steps, gpu)
        except torch.cuda.OutOfMemoryError:
            rows[key] = {**info[name], "status": "OOM", "channels_last": cl, "compile": compiled}
            return
        except Exception as err:
            if not compiled:
                raise
            rows[key] = {**info[name], "status": f"failed: {first_line(err)}", "channels_last": cl, "compile": compiled}
            return
        share = loss_time.get(name)
        rows[key] = {
            **info[name], "status": "ok", "channels_last": cl, "compile": compiled,
            "s_per_step": seconds, "images_per_s": info[name]["batch_per_gpu"] / seconds, "peak_gib": peak,
            "first_step_s": first, "loss_s": share, "loss_share": share / seconds if share else None,
        }

    for compiled_phase, variants in ((False, variants_eager), (True, variants_compiled)):
        for name, recipe in RECIPES:
            if name not in args.methods:
                continue
            if compiled_phase and args.no_compile:
                for cl, compiled in variants:
                    rows[row_key(name, cl, compiled)] = {**info[name], "status": "skipped: --no-compile",
                                                         "channels_last": cl, "compile": compiled}
                continue
            if name not in info:
                cfg, per_gpu, ranks, changed = recipe_config(recipe, not gpu)
                info[name] = {
                    "kind": "method", "method": name, "recipe": recipe, "backbone": cfg.backbone.name,
                    "batch_per_gpu": per_gpu, "global_batch": cfg.data.global_batch_size, "ranks": ranks,
                    "crops": len(crop_sizes(cfg)), "crop_sizes": crop_sizes(cfg), "precision": str(cfg.trainer.precision),
                    "changed": changed, "_cfg": cfg,
                }
            stepper = None
            for cl, compiled in variants:
                elapsed = time.perf_counter() - started
                estimate = args.compile_estimate if compiled else 0
                if elapsed + estimate > args.budget:
                    rows[row_key(name, cl, compiled)] = {**info[name], "status": f"skipped: over the {args.budget:.0f} s budget",
                                                         "channels_last": cl, "compile": compiled}
                    continue
                if stepper is None:
                    try:
                        stepper = Stepper(copy.deepcopy(info[name]["_cfg"]), info[name]["batch_per_gpu"], info[name]["ranks"],
                                          device, num_classes, total)
                    except torch.cuda.OutOfMemoryError:
                        rows[row_key(name, cl, compiled)] = {**info[name], "status": "OOM", "channels_last": cl,
                                                             "compile": compiled}
                        break
                    if name not in loss_time:
                        try:
                            loss_time[name] = stepper.loss_seconds(sync, args.loss_repeats)
                        except torch.cuda.OutOfMemoryError:
                            loss_time[name] = None
                run(name, stepper, cl, compiled)
                if compiled and rows[row_key(name, cl, compiled)].get("first_step_s"):
                    args.compile_estimate = max(args.compile_estimate, rows[row_key(name, cl, compiled)]["first_step_s"])
                print(f"  {row_key(name, cl, compiled)}: {rows[row_key(name, cl, compiled)]['status']} "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
            if stepper is not None:
                stepper = None
                release()
    ordered = [rows[row_key(name, cl, compiled)] | {"item": row_key(name, cl, compiled)}
               for name, _ in RECIPES if name in args.methods
               for cl, compiled in variants_eager + variants_compiled]
    for row in ordered:
        row.pop("_cfg", None)
    return ordered


# ---------------------------------------------------------------- the tables


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def crops_text(sizes):
    """[224, 224, 96, 96] -> "2x224 + 2x96"."""
    groups = [(size, len(list(run))) for size, run in itertools.groupby(sizes)]
    return " + ".join(f"{count}x{size}" if count > 1 else str(size) for size, count in groups)


def tables(rows):
    loaders = [r for r in rows if r["kind"] == "loader"]
    methods = [r for r in rows if r["kind"] == "method"]
    loader_table = markdown_table(
        ["loader", "augment", "crops", "batch/GPU", "workers", "img/s", "min", "max", "CPU ms/img", "status"],
        [[r["loader"], r["augment"], crops_text(r["crop_sizes"]), r["batch_per_gpu"], r["workers"],
          fmt(r.get("images_per_s"), ".0f"), fmt(r.get("images_per_s_min"), ".0f"), fmt(r.get("images_per_s_max"), ".0f"),
          fmt(r.get("cpu_ms_per_image"), ".2f"), r["status"]] for r in loaders],
    )
    method_table = markdown_table(
        ["method", "recipe", "backbone", "batch/GPU (global, ranks)", "crops", "precision", "channels_last", "compile",
         "s/step", "img/s per GPU", "peak GiB", "loss+whitening share", "first step s", "status"],
        [[r["method"], r["recipe"], r["backbone"], f"{r['batch_per_gpu']} ({r['global_batch']}, {r['ranks']})",
          crops_text(r["crop_sizes"]), r["precision"], "on" if r["channels_last"] else "off", "on" if r["compile"] else "off",
          fmt(r.get("s_per_step"), ".3f"), fmt(r.get("images_per_s"), ".1f"), fmt(r.get("peak_gib"), ".2f"),
          "-" if r.get("loss_share") is None else f"{100 * r['loss_share']:.1f}%", fmt(r.get("first_step_s"), ".1f"),
          r["status"]] for r in methods],
    )
    return loader_table, method_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--out", type=Path, required=True, help="writes table.md and table.json here")
    parser.add_argument("--cpu", action="store_true", help="the tiny CPU version even when a GPU is there")
    parser.add_argument("--root", type=Path, help="JPEG folder (train/<class>/*.jpg); default: generated under --out")
    parser.add_argument("--images", type=int, default=None, help="JPEGs to generate (default 512; CPU mode 32)")
    parser.add_argument("--methods", nargs="+", default=[name for name, _ in RECIPES])
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (default 10; CPU mode 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; CPU mode 1)")
    parser.add_argument("--loader-batches", type=int, default=None, help="batches per timed loader turn (default 8; CPU 2)")
    parser.add_argument("--loader-repeats", type=int, default=None, help="timed turns per loader (default 3; CPU 2)")
    parser.add_argument("--loss-repeats", type=int, default=None, help="timed loss forward+backward (default 10; CPU 2)")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds; compiled rows that would end later are skipped")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; CPU mode eager: dynamo only, seconds)")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode (default: its default)")
    parser.add_argument("--compile-dynamic", choices=["auto", "on", "off"], default=None,
                        help="torch.compile dynamic shapes (default auto: torch decides)")
    parser.add_argument("--compile-estimate", type=float, default=None,
                        help="seconds a compiled row is assumed to take before one has run (default 60; CPU 5)")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark (Lightning: off)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    gpu = torch.cuda.is_available() and not args.cpu
    tiny = not gpu
    defaults = {"images": (512, 32), "steps": (10, 2), "warmup": (3, 1), "loader_batches": (8, 2), "loader_repeats": (3, 2),
                "loss_repeats": (10, 2), "compile_backend": ("inductor", "eager"), "compile_estimate": (60.0, 5.0)}
    for key, (on_gpu, on_cpu) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, on_cpu if tiny else on_gpu)
    args.warmup = max(1, args.warmup)
    args.compile_dynamic = {"auto": None, "on": True, "off": False}[args.compile_dynamic or "auto"]
    unknown = set(args.methods) - {name for name, _ in RECIPES}
    if unknown:
        raise ZooError(f"--methods: unknown {sorted(unknown)}; choose from {[name for name, _ in RECIPES]}")
    if tiny:
        torch.set_num_threads(1)  # two threads on two shared cores stall each other (benchmarks/step_time.py)
    torch.set_float32_matmul_precision("high")  # as main_pretrain.py: TF32 for the backbone (whitening stays float32)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    from zoo.pretrain import quiet_lightning

    quiet_lightning()

    dali, dali_problem = dali_version()
    have_dali = dali is not None
    device = torch.device("cuda" if gpu else "cpu")
    if gpu:
        name = torch.cuda.get_device_name()
        headline = (f"gpu_check: GPU mode on 1 x {name} (CUDA {torch.version.cuda}, torch {torch.__version__}, "
                    f"DALI {dali or 'missing'}), {cores()} CPU cores; ImageNet settings, {args.steps} timed steps "
                    f"per row after {args.warmup}, budget {args.budget:.0f} s")
    else:
        why = "--cpu" if torch.cuda.is_available() else "no CUDA GPU here"
        headline = (f"gpu_check: CPU mode ({why}; {cores()} x CPU {cpu_model()}), a tiny version of every row "
                    f"(ResNet-18, {TINY_SIZE} px crops and smaller ones in proportion, batch {TINY_BATCH} per 'GPU' with 2 emulated "
                    f"ranks, small projectors, float32, 1 thread, {args.steps} steps after {args.warmup}, torch.compile backend "
                    f"{args.compile_backend}; DALI GPU rows skipped): it checks that each row runs, its numbers are not GPU numbers")
    print(headline, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    root = args.root or args.out / "fake-imagenet"
    if not any((root / "train").glob("*/*.jpg")):
        size = (500, 375) if gpu else (64, 48)
        print(f"writing {args.images} JPEGs of about {size[0]}x{size[1]} to {root}", file=sys.stderr)
        make_fake_imagenet(root, args.images, size=size)
        make_fake_imagenet(root, 10, size=size, split="val", seed=1)

    pieces = {"dali": dali, "nvjpeg": None, "nccl": None, "sync_dist_per_metric_ms": None}
    if gpu:
        if not have_dali:
            raise ZooError(dali_problem)
        jpeg = next((root / "train").glob("*/*.jpg"))
        pieces["nvjpeg"] = f"ok (decoded {jpeg.name} to {tuple(check_nvjpeg(jpeg))})"
        version, per_metric = check_nccl()
        pieces["nccl"] = f"ok ({version})"
        pieces["sync_dist_per_metric_ms"] = 1000 * per_metric

    print(f"  start-up and checks: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows = loader_rows(args, device, root, have_dali, gpu)
    if gpu:  # DALI keeps its GPU memory pooled: give it back before the methods measure their peaks
        import nvidia.dali.backend

        getattr(nvidia.dali.backend, "ReleaseUnusedMemory", lambda: None)()
        torch.cuda.empty_cache()
    print(f"  loaders done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows += method_rows(args, device, gpu, started)

    loader_table, method_table = tables(rows)
    checks = (f"pieces: DALI {pieces['dali'] or 'not installed'}; nvJPEG {pieces['nvjpeg'] or 'not checked (no GPU)'}; "
              f"NCCL {pieces['nccl'] or 'not checked (no GPU)'}")
    if pieces["sync_dist_per_metric_ms"] is not None:
        checks += (f"; Lightning sync_dist per logged metric (barrier + all_reduce, NCCL, 1 rank): "
                   f"{pieces['sync_dist_per_metric_ms']:.3f} ms")
    notes = [f"- {r['method']}: {', '.join(r['changed'])} (CPU mode: the whitening of the shrunk batch)"
             for r in rows if r["kind"] == "method" and r.get("changed") and r["item"].endswith("compile=off")
             and "channels_last=off" in r["item"]]
    elapsed = time.perf_counter() - started
    body = "\n".join([
        checks, "",
        "Loaders (images/s delivered on the device; CPU ms per image over all threads and workers):", "", loader_table, "",
        ("Methods (the zoo's step without Lightning; the loss sees the global batch: local rows + stand-ins for the other "
        "ranks'; loss+whitening share = its forward + backward alone / the step):"), "", method_table, *([""] + notes if notes else []),
        "", f"{len(rows)} rows in {elapsed:.0f} s",
    ])
    print(body)
    (args.out / "table.md").write_text(headline + "\n\n" + body + "\n")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    (args.out / "table.json").write_text(json.dumps({
        "mode": "gpu" if gpu else "cpu-tiny", "headline": headline, "device": torch.cuda.get_device_name() if gpu else cpu_model(),
        "pieces": pieces, "settings": settings, "rows": rows, "seconds": elapsed,
    }, indent=2, default=str) + "\n")


if __name__ == "__main__":
    exit_on_user_error(main)()
