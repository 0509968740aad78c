"""What produced a result, recorded in every summary.json (pretraining, linear, k-NN, finetune,
detection) under "provenance": wall time, training throughput, peak memory, the machine, the
batch and the lr each parameter group trained with, precision, seed, and the exact code
(zoo version, git commit and whether the tree had uncommitted changes, library versions).

`provenance()` builds the record; `TrainingMeter` measures the training it describes, as a
Lightning callback or called by hand from a plain training loop.
"""

import platform
import resource
import subprocess
import sys
import time
from functools import cache
from importlib import import_module, metadata
from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist

LIBRARIES = ("torch", "torchvision", "lightning", "timm")  # imported by every entry point
MIB = 2**20


def this_process_memory():
    """Peak memory of this process so far: host RSS (and of its finished children, e.g. data
    loader workers), and the CUDA memory allocated on each device it used (MiB)."""
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cuda = {}
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            peak = torch.cuda.max_memory_allocated(index)
            if peak:
                cuda[f"cuda:{index}"] = round(peak / MIB, 1)
    return {"host_rss_mib": round(self_kib / 1024, 1), "children_rss_mib": round(children_kib / 1024, 1), "cuda_mib": cuda}


def every_process_memory():
    """`this_process_memory()` of every rank, in rank order (a collective under torch.distributed:
    every rank must call it)."""
    local = this_process_memory()
    if not (dist.is_available() and dist.is_initialized()):
        return [{"rank": 0, **local}]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, local)
    return [{"rank": rank, **memory} for rank, memory in enumerate(gathered)]


def accelerator_name(device):
    """'cuda (NVIDIA A100-SXM4-80GB)' or 'cpu (AMD EPYC ...)': the model that ran the training."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({cpu_model()})"


@cache
def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def lr_per_group(optimizer):
    """The lr each parameter group trained with, after batch scaling: the scheduler's base
    (`initial_lr`; the peak of a warmup-cosine), or the fixed lr of an unscheduled optimiser."""
    if optimizer is None:
        return []
    return [
        {"group": group.get("name", index), "lr": group.get("initial_lr", group["lr"]),
         "weight_decay": group.get("weight_decay"), "parameters": sum(p.numel() for p in group["params"])}
        for index, group in enumerate(optimizer.param_groups)
    ]


@cache
def code_version():
    """The zoo's version, and its git commit and dirtiness when it runs from a checkout."""
    try:
        version = metadata.version("zoo")
    except metadata.PackageNotFoundError:
        version = None
    source = Path(__file__).resolve().parents[1]

    def git(*args):
        result = subprocess.run(["git", "--no-optional-locks", "-C", str(source), *args], capture_output=True, text=True,
                                check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"version": version, "commit": commit, "dirty": None if status is None else bool(status)}


@cache
def library_versions():
    """The running versions (torch's with its CUDA build tag, e.g. 2.4.0+cu121) and DALI's, if installed."""
    versions = {"python": platform.python_version(), **{name: import_module(name).__version__ for name in LIBRARIES},
                "cuda": torch.version.cuda}
    dali = sorted(d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].startswith("nvidia-dali"))
    versions["dali"] = metadata.version(dali[0]) if dali else None
    return versions


class TrainingMeter(L.Callback):
    """Times training: from each epoch's start (and the end of each validation inside an epoch)
    to the end of each training batch, so data loading and checkpointing count and validation
    does not. As a callback it also keeps, at the end of training, what the provenance reports
    about the trainer; a plain loop calls `start(optimizer)` once and `step(images)` per step."""

    def __init__(self):
        self.steps, self.images, self.seconds = 0, 0, 0.0
        self.per_device_batch = 0
        self.optimizer = None
        self.setup = {}  # accelerator, devices, nodes, precision (from the trainer)
        self.memory = None  # every rank's peaks at the end of training
        self._tick = None
        self._first_step = 0

    # ---- a plain training loop ----
    def start(self, optimizer, device, precision="32-true", devices=1, nodes=1):
        """Before the first step of a plain loop: what it trains with, on which machine."""
        self.optimizer = optimizer
        self.setup = {"accelerator": accelerator_name(device), "devices": devices, "nodes": nodes, "precision": precision}
        self._restart_clock()

    def _restart_clock(self):
        self._tick = time.perf_counter()

    def step(self, images, world_size=1):
        """One optimiser step on `images` images in this process (x `world_size` processes)."""
        now = time.perf_counter()
        if self._tick is not None:
            self.seconds += now - self._tick
        self._tick = now
        self.steps += 1
        self.images += images * world_size
        self.per_device_batch = max(self.per_device_batch, images)

    # ---- Lightning ----
    def on_train_start(self, trainer, pl_module):
        self._first_step = trainer.global_step

    def on_train_epoch_start(self, trainer, pl_module):
        self._restart_clock()

    def on_validation_end(self, trainer, pl_module):
        self._restart_clock()  # a validation inside the epoch is not training time

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.step(len(batch[-1]), trainer.world_size)  # batches are (inputs, labels)

    def on_train_end(self, trainer, pl_module):
        self.steps = trainer.global_step - self._first_step  # optimiser steps (gradient accumulation aside)
        self.optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.setup = {"accelerator": accelerator_name(trainer.strategy.root_device), "devices": trainer.num_devices,
                      "nodes": trainer.num_nodes, "precision": str(trainer.precision)}
        self.memory = every_process_memory()

    def record(self):
        """Throughput of the measured training (None if nothing trained)."""
        if not self.images:
            return None
        # Four significant digits, as the seconds: a slow run (0.17 images/s on a loaded CPU) keeps its precision.
        rate = (lambda count: float(f"{count / self.seconds:.4g}")) if self.seconds > 0 else (lambda count: None)
        return {"steps": self.steps, "images": self.images, "seconds": float(f"{self.seconds:.4g}"),
                "steps_per_second": rate(self.steps), "images_per_second": rate(self.images)}


def provenance(started, seed, meter=None, device=None, precision="32-true", deterministic=None):
    """The provenance record of a result whose work began at `started` (time.time()).

    `meter`: the TrainingMeter of its training, which knows the devices, precision and optimiser;
    None when nothing trained (a k-NN sweep: one process on `device` at `precision`)."""
    meter = meter or TrainingMeter()
    # This process (rank 0, which writes the summary) up to now; the others' at the end of training.
    memory = [{"rank": 0, **this_process_memory()}, *(meter.memory or [])[1:]]
    setup = meter.setup or {"accelerator": accelerator_name(device or "cpu"), "devices": 1, "nodes": 1, "precision": precision}
    processes = setup["devices"] * setup["nodes"]
    cuda_peaks = [peak for process in memory for peak in process["cuda_mib"].values()]
    return {
        "wall_seconds": round(time.time() - started, 1),
        "training": meter.record(),
        "peak_host_rss_mib": max(process["host_rss_mib"] for process in memory),
        "peak_cuda_mib": max(cuda_peaks) if cuda_peaks else None,
        "memory_per_process": memory,
        **setup,
        "batch": {"global": meter.per_device_batch * processes, "per_device": meter.per_device_batch}
        if meter.per_device_batch else None,
        "lr_per_group": lr_per_group(meter.optimizer),
        "seed": seed,
        "deterministic": torch.are_deterministic_algorithms_enabled() if deterministic is None else deterministic,
        "zoo": code_version(),
        "versions": library_versions(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
    }
