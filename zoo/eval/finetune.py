"""Semi-supervised finetuning (`linear.protocol=finetune`): the frozen protocol's classifier with
the backbone training too (train mode, `linear.backbone_lr`), on all labels or on
`linear.label_fraction` % of ImageNet's, from SimCLR's subset lists."""

import urllib.request
from pathlib import Path

from torch.utils.data import Subset

from zoo.atomic import atomic_write_bytes
from zoo.errors import ZooError
from zoo.eval.linear import lightning_eval

# SimCLR's ImageNet label subsets (12,811 and 128,116 file names), the standard semi-supervised split.
SUBSET_URL = "https://raw.githubusercontent.com/google-research/simclr/master/imagenet_subsets/{percent}percent.txt"
LABEL_FRACTIONS = (1, 10)


def label_subset_names(percent, cache_dir):
    """The file names of SimCLR's `<percent>percent.txt`, downloaded once into `cache_dir`."""
    cache_dir = Path(cache_dir).expanduser()
    path = cache_dir / f"{percent}percent.txt"
    if not path.is_file():
        url = SUBSET_URL.format(percent=percent)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                atomic_write_bytes(path, response.read())
        except OSError as err:  # URLError, timeouts, refused connections
            raise ZooError(f"cannot download {url} ({getattr(err, 'reason', err)}): put that file at {path} "
                           "(or set linear.subset_dir)") from None
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def label_subset(dataset, percent, cache_dir):
    """The images of an ImageFolder whose file names are in SimCLR's subset list."""
    names = label_subset_names(percent, cache_dir)
    if not hasattr(dataset, "samples"):
        raise ZooError("linear.label_fraction needs an ImageFolder data set (ImageNet: data.name=imagenet)")
    kept = [i for i, (path, _) in enumerate(dataset.samples) if Path(path).name in names]
    if not kept:
        raise ZooError(f"none of the {len(names)} files of {percent}percent.txt is in the training folder {dataset.root}")
    return Subset(dataset, kept)


def run_name(linear_cfg):
    """The folder of a linear evaluation in its pretraining run: semi-<fraction>pct, or linear."""
    return f"semi-{linear_cfg.label_fraction}pct" if linear_cfg.label_fraction else "linear"


def finetune_eval(backbone, cfg, run_dir):
    """-> (result, is this the process that reports), as `lightning_eval`."""
    percent = cfg.linear.label_fraction
    if not percent:
        return lightning_eval(backbone, cfg, run_dir)
    return lightning_eval(backbone, cfg, run_dir, lambda images: label_subset(images, percent, cfg.linear.subset_dir))
