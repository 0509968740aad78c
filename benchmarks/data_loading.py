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
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import endless, make_fake_imagenet, measure  # the fake JPEG folder and loader timing, shared

from zoo.catalog import IMAGENET_MEAN, IMAGENET_STD
from zoo.config import CropGroup
from zoo.data.augment import MultiViewTransform
from zoo.data.datasets import Source, build_dataset, training_files
from zoo.data.loaders import make_loader
from zoo.errors import exit_on_user_error


def intl_imagenet_views(crop, views):
    """A-INTL-IN: the two asymmetric groups (blur 1.0 / 0.1, solarization 0.0 / 0.2), `views` crops in all."""
    intl = CropGroup(
        size=crop, scale=[0.08, 1.0], jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, gray_p=0.2
    )
    first = replace(intl, count=(views + 1) // 2, blur_p=1.0, solarize_p=0.0)
    second = replace(intl, count=views // 2, blur_p=0.1, solarize_p=0.2)
    return [group for group in (first, second) if group.count]


def dali_batches(args, groups, cores):
    from zoo.data.dali import build_dali_train_loader

    paths, labels = training_files(Source("folder", args.root))
    return endless(build_dali_train_loader(paths, labels, groups, IMAGENET_MEAN, IMAGENET_STD, batch_size=args.batch_size,
                                           num_threads=cores, root=args.root))


def torchvision_batches(args, groups, cores):
    """The zoo's torchvision training loader (zoo.data.loaders.make_loader) on the same folder."""
    dataset = build_dataset(Source("folder", args.root), "train", MultiViewTransform(groups, IMAGENET_MEAN, IMAGENET_STD))
    return endless(make_loader(dataset, args.batch_size, cores, shuffle=True, drop_last=True))


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
