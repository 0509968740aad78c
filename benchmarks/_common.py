"""Helpers shared by the benchmarks: fake ImageNet JPEGs, loader timing, configs as training composes them,
whitening settings fitted to a batch, the machine's name, markdown tables.

Not a benchmark itself (the leading underscore keeps it out of `ls benchmarks/*.py` listings of runnable ones).
"""

import itertools
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing


# ---------------------------------------------------------------- fake ImageNet folder


def natural_image(rng, width=500, height=375, grain=0.06):
    """Smooth random colour fields at a few scales plus sensor-like grain: JPEG sizes like ImageNet's."""
    image = np.zeros((height, width, 3), np.float32)
    for cells, weight in [(4, 0.45), (16, 0.3), (64, 0.15), (250, 0.1)]:
        cells = max(2, min(cells, width))
        noise = rng.random((max(2, cells * height // width), cells, 3), dtype=np.float32)
        image += weight * np.stack(
            [np.asarray(Image.fromarray(noise[..., c]).resize((width, height), Image.BICUBIC)) for c in range(3)], axis=-1
        )
    image = (image - image.min()) / (image.max() - image.min())
    image += grain * rng.standard_normal(image.shape, dtype=np.float32)
    return Image.fromarray((image.clip(0, 1) * 255).astype(np.uint8))


def make_fake_imagenet(root, count, classes=10, seed=0, size=(500, 375), split="train"):
    """`count` JPEGs of about `size` (default ImageNet's typical 500x375, 90 KB) in root/<split>/<class>/."""
    rng = np.random.default_rng(seed)
    width0, height0 = size
    for index in range(count):
        folder = Path(root) / split / f"class{index % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        width = width0 + int(rng.integers(-(width0 // 8), width0 // 8 + 1))
        height = height0 + int(rng.integers(-(height0 // 8), height0 // 8 + 1))
        natural_image(rng, width, height).save(folder / f"{index:06d}.jpg", quality=90)


# ---------------------------------------------------------------- loader timing


def cpu_seconds():
    """CPU time of this process (all threads) and its child processes (DataLoader workers) so far."""
    total = time.process_time()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == os.getpid():  # fields[1] = ppid; [11], [12] = utime, stime in ticks
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(streams, batch_size, count, repeats, warmup, read_ahead, sync=None):
    """{name: (median img/s, min, max, median CPU ms per image)}; the loaders take `repeats` turns each.

    A turn drains what the loader queued while idle (`read_ahead` batches at most),
    times `count` batches of steady state, then idles until the loader has refilled
    its queue, so neither loader's read-ahead runs on the other's clock. Turns spread load changes on a shared
    machine over both loaders; CPU time per image hardly depends on that load. `sync` (e.g.
    torch.cuda.synchronize) runs before each clock reading, for loaders whose batches land on a GPU.
    """
    sync = sync or (lambda: None)
    rates, cpu_ms = {name: [] for name in streams}, {name: [] for name in streams}
    for _ in range(repeats):
        for name, batches in streams.items():
            for _ in itertools.islice(batches, max(warmup, read_ahead)):
                pass
            sync()
            cpu_start, start = cpu_seconds(), time.perf_counter()
            for _ in itertools.islice(batches, count):
                pass
            sync()
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            time.sleep(read_ahead * seconds / count)
            rates[name].append(count * batch_size / seconds)
            cpu_ms[name].append(1000 * cpu / (count * batch_size))
    return {
        name: (statistics.median(rates[name]), min(rates[name]), max(rates[name]), statistics.median(cpu_ms[name]))
        for name in streams
    }


def endless(loader):
    """Batches across epochs, as a long training run sees them."""
    while True:
        yield from loader


# ---------------------------------------------------------------- configs as training builds them


def compose_config(overrides):
    """The pretraining run config of `overrides`, composed as `main_pretrain.py` does (Hydra's compose API)."""
    from hydra import compose, initialize_config_module

    from zoo.config import register_configs
    from zoo.registry import method_names

    register_configs()
    method_names()  # registers every method's config group entry
    with initialize_config_module("zoo.configs", version_base="1.3"):
        return compose("pretrain", overrides=list(overrides))


def _divisors_at_most(n, limit):
    return [d for d in range(min(n, limit), 1, -1) if n % d == 0]


def fit_whitening(cfg, global_batch):
    """Shrink the whitening settings of `cfg.method` (w_size, then the embedding dim) until the whitening
    serves `global_batch` samples (`zoo.spectral.check_whitening`); returns what it changed, as overrides.

    W-MSE (Cholesky on the batch axis) needs w_size | batch and w_size > D; CW-RGP (ZCA on the channel
    axis) w_size | batch and w_size <= D/groups - 1; ST (power on the channel axis) batch <= D - 1.
    """
    from zoo.errors import ZooError
    from zoo.spectral import check_whitening

    m = cfg.method
    kinds = {"wmse": ("cholesky", "batch"), "cwrgp": ("zca", "channel"), "st": ("power", "channel")}
    if m.name not in kinds:
        return []
    kind, axis = kinds[m.name]
    axis = m.get("axis", axis)
    groups = m.get("groups", 1)
    changed = []

    def ok():
        try:
            check_whitening(kind, axis, global_batch, m.proj_out, groups=groups, w_size=m.get("w_size"))
            return True
        except ZooError:
            return False

    if ok():
        return changed
    if "w_size" in m:
        wanted = m.w_size or global_batch
        limit = wanted if axis == "batch" else min(wanted, m.proj_out // groups - 1)
        candidates = _divisors_at_most(global_batch, limit) or [global_batch]
        m.w_size = candidates[0]
        changed.append(f"method.w_size={m.w_size}")
        if axis == "batch" and m.w_size <= m.proj_out // groups:
            m.proj_out = max(groups, (m.w_size // 2) // groups * groups)
            changed.append(f"method.proj_out={m.proj_out}")
    elif axis == "channel" and global_batch > m.proj_out - 1:
        m.proj_out = global_batch + 1
        changed.append(f"method.proj_out={m.proj_out}")
    if not ok():
        check_whitening(kind, axis, global_batch, m.proj_out, groups=groups, w_size=m.get("w_size"))  # raises
    return changed


# ---------------------------------------------------------------- reporting


def cpu_model():
    """The CPU's model name (lscpu's "Model name"), e.g. "AMD EPYC": the one the zoo records in summary.json."""
    from zoo.provenance import cpu_model

    return cpu_model()


def cores():
    return len(os.sched_getaffinity(0))


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def markdown_table(headers, rows):
    """A GitHub markdown table; cells are str()-ed."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def ms(seconds, digits=1):
    return "-" if seconds is None or math.isnan(seconds) else f"{1000 * seconds:.{digits}f}"


# ---------------------------------------------------------------- the side-by-side comparison with solo-learn

# solo-learn's CIFAR recipes (scripts/pretrain/cifar/<method>.yaml) as the zoo's overrides, so both sides build
# the same network: solo-learn's CIFAR stem (3x3 conv, stride 1, padding 2, no max-pool) and its projector
# shapes (two hidden layers; W-MSE one). W-MSE's recipe (whitening 128, output 64) cannot whiten batch 64: both
# sides take w_size 64 and output 32, what `fit_whitening` picks. `solo` holds the same facts as solo-learn's
# method_kwargs.
SOLO_LEARN_MATCH = {
    "barlow_twins": {
        "zoo": ["method.proj_hidden=[2048,2048]", "method.proj_out=2048"],
        "solo": {"proj_hidden_dim": 2048, "proj_output_dim": 2048, "scale_loss": 0.1},
    },
    "vicreg": {
        "zoo": ["method.proj_hidden=[2048,2048]", "method.proj_out=2048"],
        "solo": {"proj_hidden_dim": 2048, "proj_output_dim": 2048, "sim_loss_weight": 25.0, "var_loss_weight": 25.0,
                 "cov_loss_weight": 1.0},
    },
    "simsiam": {
        "zoo": ["method.proj_hidden=[2048,2048]", "method.proj_out=2048", "method.pred_hidden=512"],
        "solo": {"proj_hidden_dim": 2048, "proj_output_dim": 2048, "pred_hidden_dim": 512},
    },
    "wmse": {
        "zoo": ["method.proj_hidden=[1024]", "method.proj_out=32", "method.w_size=64"],
        "solo": {"proj_hidden_dim": 1024, "proj_output_dim": 32, "whitening_size": 64},
    },
}
SOLO_LEARN_STEM = ["backbone.small_stem=true", "backbone.small_stem_padding=2", "backbone.small_stem_maxpool=false"]
SYNTHETIC_CLASSES = 10


def synthetic_batches(batch, views, size, count, seed=0):
    """`count` copies of one fixed batch: `views` crops (batch, 3, size, size) of standard normal pixels and labels
    in [0, SYNTHETIC_CLASSES), drawn from `seed`: the same tensors in every process and environment."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    crops = [torch.randn(batch, 3, size, size, generator=generator) for _ in range(views)]
    labels = torch.randint(0, SYNTHETIC_CLASSES, (batch,), generator=generator)
    return [(crops, labels)] * count


def step_result_line(driver, method, step_seconds, compute_seconds, cpu_seconds, batch, timed_steps, warmup, threads):
    """The one JSON line per method that both step-time drivers print, prefixed "step_result " for grep."""
    import json

    return "step_result " + json.dumps({
        "driver": driver, "method": method, "s_per_step": round(step_seconds, 4),
        "compute_s_per_step": round(compute_seconds, 4), "cpu_s_per_step": round(cpu_seconds, 4),
        "img_per_s": round(batch / step_seconds, 2), "timed_steps": timed_steps, "warmup": warmup, "threads": threads,
    })
