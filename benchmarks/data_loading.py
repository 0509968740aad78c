"""Pretraining input throughput: the DALI loader vs the torchvision DataLoader, one augmentation spec.

Both loaders get INTL's ImageNet views (A-INTL-IN: RRC scale (0.08, 1), colour
jitter 0.8 x (0.4, 0.4, 0.2, 0.1), grayscale 0.2, blur 1.0 / 0.1, solarization
0.0 / 0.2, flip), built from the same `CropGroup` objects, and as many threads
(DALI) or worker processes (torchvision) as the machine has cores.

    python benchmarks/data_loading.py --root /tmp/fake-imagenet --make-fake 300
    python benchmarks/data_loading.py --root /data/imagenet --batches 50

Prints a table of images per second (median, min and max over the timed runs;
the loaders take turns, each run after a warm-up) and CPU milliseconds per image
(all threads and worker processes: the number to trust when other jobs share the
cores), and last `speedup dali/torchvision: X.XX` (of the median images per second).
"""

import argparse
import itertools
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from zoo.data.augment import CropGroup, MultiViewTransform
from zoo.data.datasets import IMAGENET_MEAN, IMAGENET_STD
from zoo.errors import exit_on_user_error


def intl_imagenet_views(crop, views):
    """A-INTL-IN: the two asymmetric groups (blur 1.0 / 0.1, solarization 0.0 / 0.2), `views` crops in all."""
    intl = CropGroup(
        size=crop, scale=[0.08, 1.0], jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, gray_p=0.2
    )
    first = replace(intl, count=(views + 1) // 2, blur_p=1.0, solarize_p=0.0)
    second = replace(intl, count=views // 2, blur_p=0.1, solarize_p=0.2)
    return [group for group in (first, second) if group.count]


def natural_image(rng, width=500, height=375, grain=0.06):
    """Smooth random colour fields at a few scales plus sensor-like grain: JPEG sizes like ImageNet's."""
    image = np.zeros((height, width, 3), np.float32)
    for cells, weight in [(4, 0.45), (16, 0.3), (64, 0.15), (250, 0.1)]:
        noise = rng.random((max(2, cells * height // width), cells, 3), dtype=np.float32)
        image += weight * np.stack(
            [np.asarray(Image.fromarray(noise[..., c]).resize((width, height), Image.BICUBIC)) for c in range(3)], axis=-1
        )
    image = (image - image.min()) / (image.max() - image.min())
    image += grain * rng.standard_normal(image.shape, dtype=np.float32)
    return Image.fromarray((image.clip(0, 1) * 255).astype(np.uint8))


def make_fake_imagenet(root, count, classes=10, seed=0):
    """`count` ImageNet-sized JPEGs (about 500x375, 90 KB) in root/train/<class>/."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        folder = Path(root) / "train" / f"class{index % classes:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        width, height = 500 + int(rng.integers(-60, 61)), 375 + int(rng.integers(-50, 51))
        natural_image(rng, width, height).save(folder / f"{index:06d}.jpg", quality=90)


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


def measure(streams, batch_size, count, repeats, warmup, read_ahead):
    """{name: (median img/s, min, max, median CPU ms per image)}; the loaders take `repeats` turns each.

    A turn drains what the loader queued while idle (`read_ahead` batches at most),
    times `count` batches of steady state, then idles until the loader has refilled
    its queue, so neither loader's read-ahead runs on the other's clock. Turns spread load changes on a shared
    machine over both loaders; CPU time per image hardly depends on that load.
    """
    rates, cpu_ms = {name: [] for name in streams}, {name: [] for name in streams}
    for _ in range(repeats):
        for name, batches in streams.items():
            for _ in itertools.islice(batches, max(warmup, read_ahead)):
                pass
            cpu_start, start = cpu_seconds(), time.perf_counter()
            for _ in itertools.islice(batches, count):
                pass
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


def dali_batches(args, groups, cores):
    from zoo.data.dali import build_dali_train_loader

    data_cfg = SimpleNamespace(name="folder", root=args.root, batch_size=args.batch_size, num_workers=cores)
    return endless(build_dali_train_loader(data_cfg, groups, list(IMAGENET_MEAN), list(IMAGENET_STD)))


def torchvision_batches(args, groups, cores):
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(os.path.join(args.root, "train"), transform=MultiViewTransform(groups, IMAGENET_MEAN, IMAGENET_STD))
    loader = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=cores, persistent_workers=True
    )
    return endless(loader)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="ImageFolder root with train/<class>/*.jpg")
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=10, help="batches per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=4, help="untimed batches before each run (at least the read-ahead)")
    parser.add_argument("--make-fake", type=int, default=0, metavar="N", help="first write N fake JPEGs into an empty --root")
    args = parser.parse_args(argv)

    if args.make_fake:
        if Path(args.root).exists() and any(Path(args.root).iterdir()):
            print(f"{args.root} is not empty: benchmarking the images already there")
        else:
            make_fake_imagenet(args.root, args.make_fake)
    cores = len(os.sched_getaffinity(0))
    groups = intl_imagenet_views(args.crop, args.views)
    print(
        f"{cores} cores, batch {args.batch_size}, {args.views} views of {args.crop} px, {args.repeats} x {args.batches} batches"
    )
    streams = {"dali": dali_batches(args, groups, cores), "torchvision": torchvision_batches(args, groups, cores)}
    read_ahead = 2 * cores  # torchvision: prefetch_factor 2 per worker; DALI: prefetch_queue_depth 2
    results = measure(streams, args.batch_size, args.batches, args.repeats, args.warmup, read_ahead)
    print(f"{'loader':<12} {'workers':>7} {'img/s':>8} {'min':>8} {'max':>8} {'cpu ms/img':>11}")
    for name, (rate, low, high, cpu_ms) in results.items():
        print(f"{name:<12} {cores:>7} {rate:>8.1f} {low:>8.1f} {high:>8.1f} {cpu_ms:>11.1f}")
    print(f"speedup dali/torchvision: {results['dali'][0] / results['torchvision'][0]:.2f}")


if __name__ == "__main__":
    exit_on_user_error(main)()
