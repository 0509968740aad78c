"""What main_transfer.py's many-shot suite costs: features + fit CPU seconds per data set at the digits scale on
this machine, and the whole suite's estimate for a ResNet-50 at 224 px from the real data sets' sizes.

Writes each of the 12 data sets in its on-disk layout (tests/transfer_layouts.py) with about the embedded
digits set's size (10 classes, 120 training / 30 validation / 30 test images per class), computes the
checkpoint's features (transfer.image_size, default 16 as the digits run's crops) and runs ssl-transfer's
search (45 values of C) and refit, timing the two apart. The estimate: the images of every split (ssl-transfer's
splits) / --images-per-second for the features, plus the fits timed here scaled by images x classes x width.

    python benchmarks/transfer_cost.py --ckpt runs/intl-digits-<id>/checkpoints/last.ckpt [--image-size 16]
        [--images-per-second 1000] [--datasets dtd cars]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import torch
import transfer_layouts as layouts
from _common import cpu_model, load_average, markdown_table
from omegaconf import OmegaConf

from zoo.checkpoint import read_checkpoint
from zoo.data.transfer import CATALOG
from zoo.eval.common import load_backbone
from zoo.eval.transfer import FeatureCache, c_grid, grid_search

# Images per split as ssl-transfer reads them (train, val, test; a drawn validation split is part of train) and
# classes: the published sizes (Birdsnap: the 49,829 listed, fewer are still on Flickr).
SIZES = {"food101": (75750, 0, 25250, 101), "cifar10": (50000, 0, 10000, 10), "cifar100": (50000, 0, 10000, 100),
         "birdsnap": (47386, 0, 2443, 500), "sun397": (19850, 0, 19850, 397), "cars": (8144, 0, 8041, 196),
         "aircraft": (3334, 3333, 3333, 100), "voc2007": (2501, 2510, 4952, 20), "dtd": (1880, 1880, 1880, 47),
         "pets": (3680, 0, 3669, 37), "caltech101": (2416, 0, 6728, 102), "flowers102": (1020, 1020, 6149, 102)}
RESNET50_WIDTH = 2048


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a checkpoint of main_pretrain.py (the digits run)")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--images-per-second", type=float, default=1000.0,
                        help="features of a ResNet-50 at 224 px on one GPU, JPEG decoding included (the estimate's assumption)")
    parser.add_argument("--datasets", nargs="*", default=list(CATALOG))
    args = parser.parse_args()
    layouts.SPLIT_COUNTS.update({"train": 120, "val": 30, "test": 30})
    backbone = load_backbone(read_checkpoint(args.ckpt)).eval()
    rows, fit_rates = [], []
    with tempfile.TemporaryDirectory() as root:
        cfg = OmegaConf.create({"root": root, "download": False, "image_size": args.image_size, "normalise": True, "batch_size": 64,
                                "num_workers": 0, "val_fraction": 0.2, "split_seed": 0, "cache": False, "progress": False})
        cache = FeatureCache(backbone, args.ckpt, cfg, "cpu")
        for name in args.datasets:
            layouts.WRITERS[name](root, classes=10)
            started = time.process_time()  # CPU seconds of this process: what a busy shared machine does not inflate
            data = cache.splits(name)
            features = time.process_time() - started
            started = time.process_time()
            result = grid_search(data["train"], data["val"], data["trainval"], data["test"], data["metric"], c_grid(45))
            fit = time.process_time() - started
            images = sum(len(data[s][1]) for s in ("trainval", "test"))
            classes = data["train"][1].shape[1] if data["metric"] == "map11" else len(set(data["train"][1].tolist()))
            width = data["train"][0].shape[1]
            fit_rates.append(fit / (len(data["trainval"][1]) * classes * width))
            rows.append([name, str(images), f"{features:.1f}", f"{fit:.1f}", f"{100 * result['score']:.1f}"])
            print(" | ".join(rows[-1]), flush=True)  # as it goes: the table follows at the end
    print(f"{cpu_model()}, load average {load_average()}, {torch.get_num_threads()} threads, transfer.image_size={args.image_size}, "
          f"width {width}")
    print(markdown_table(["dataset", "images", "features CPU s", "fit CPU s (45 C + refit)", "score"], rows))
    rate = sorted(fit_rates)[len(fit_rates) // 2]  # seconds per (training image x class x feature), the median
    feature_s = sum(sum(size[:3]) for size in SIZES.values()) / args.images_per_second
    fit_s = sum((size[0] + size[1]) * size[3] * RESNET50_WIDTH * rate for size in SIZES.values())
    print(f"\nResNet-50 estimate: {sum(sum(s[:3]) for s in SIZES.values())} images at {args.images_per_second:.0f} images/s: "
          f"{feature_s / 60:.0f} min of features; fits scaled from this CPU's median rate: {fit_s / 3600:.1f} h")


if __name__ == "__main__":
    main()
