"""The one loader factory: every torch DataLoader of the zoo (pretraining, the k-NN bank and validation,
the linear probe, feature extraction, transfer) comes from `make_loader`, with one set of settings;
`build_loaders` makes pretraining's loaders (torchvision or DALI) of a `zoo.data.DataSpec`."""

import importlib.util
import os
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from zoo.catalog import dataset_info
from zoo.data.augment import MultiViewTransform
from zoo.data.datasets import build_dataset, class_count, training_files
from zoo.errors import ZooError

UNLABELLED_DIAGNOSTIC_IMAGES = 2048  # data.labels=false: the images each validation's spectra are computed on


def worker_count(num_workers):
    """`num_workers`, or (None) the CPUs this process may run on, at most 8: never more workers than
    CPUs, which torch's DataLoader would warn about."""
    if num_workers is not None:
        return num_workers
    return min(len(os.sched_getaffinity(0)), 8)


def make_loader(dataset, batch_size, workers, shuffle=False, drop_last=False):
    """A DataLoader with the zoo's settings: `workers` processes, kept between epochs; pinned memory when
    a CUDA GPU takes the batches. Training shuffles (torch's global generator, which Lightning seeds per
    run; under DDP Lightning puts a DistributedSampler in its place); evaluation reads in order."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())


def capped(dataset, size, seed):
    """A seeded random subset of `size` items when the dataset is larger (the k-NN bank of ImageNet)."""
    if size is None or len(dataset) <= size:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    return Subset(dataset, torch.randperm(len(dataset), generator=generator)[:size].tolist())


def evaluation_sets(data, bank_size=None, seed=0):
    """(the labelled training images, a seeded random `bank_size` of them when given; the validation
    images), both with the evaluation transform: the k-NN bank and what it is scored on."""
    transform = data.eval_transform()
    val = build_dataset(data.source, "val", transform)
    return capped(build_dataset(data.source, "train_labeled", transform), bank_size, seed), val


def evaluated_images(data, transform, seed=0):
    """The images each validation evaluates, transformed by `transform`: the validation images; without labels
    (data.labels=false), a fixed seeded subset of `UNLABELLED_DIAGNOSTIC_IMAGES` training images."""
    if not data.source.labels:
        return capped(build_dataset(data.source, "train", transform), UNLABELLED_DIAGNOSTIC_IMAGES, seed)
    return build_dataset(data.source, "val", transform)


@dataclass
class Loaders:
    train: object  # yields (list of crop batches, labels)
    knn_bank: DataLoader | None  # labelled training images, eval transform; None without labels
    val: DataLoader  # without labels: the images of the label-free diagnostics
    num_classes: int  # 0 without labels
    loader: str  # which loader feeds `train`: dali | torchvision


def dali_available():
    return importlib.util.find_spec("nvidia.dali") is not None


def choose_loader(data):
    """auto = DALI for image-folder data sets when it is installed, else torchvision."""
    folder = dataset_info(data.source.name).image_folder
    if data.loader == "torchvision":
        return "torchvision"
    if data.loader == "dali":
        if not dali_available():
            raise ZooError('data.loader=dali but NVIDIA DALI is not installed (pip install ".[dali]")')
        if not folder:
            raise ZooError(f"data.loader=dali reads the ImageFolder layout only; use data.loader=torchvision for {data.source.name}")
        return "dali"
    if folder and dali_available():
        return "dali"
    if folder:
        print("notice: NVIDIA DALI is not installed; loading with torchvision (pip install \".[dali]\" for DALI)")
    return "torchvision"


def train_loader(dataset, data):
    if len(dataset) < data.batch_size:
        raise ZooError(
            f"the training set has {len(dataset)} images, fewer than data.batch_size={data.batch_size}: lower data.batch_size"
        )
    return make_loader(dataset, data.batch_size, data.workers, shuffle=True, drop_last=True)


def dali_train_loader(data, seed, rank, world_size):
    from zoo.data.dali import build_dali_train_loader

    paths, labels = training_files(data.source)
    return build_dali_train_loader(paths, labels, data.views, data.mean, data.std, batch_size=data.batch_size,
                                   num_threads=max(1, data.workers), root=data.source.root,
                                   corrupt_images=data.source.corrupt_images, seed=seed, shard_id=rank, num_shards=world_size)


def unlabelled_loaders(data, seed):
    """data.labels=false: the images train (torchvision loader); a fixed seeded subset of them, with the
    evaluation transform, is the one validation loader, for label-free diagnostics (no k-NN bank)."""
    if data.loader == "dali":
        raise ZooError("data.labels=false reads its images with torchvision: use data.loader=auto or torchvision")
    train = build_dataset(data.source, "train", MultiViewTransform(data.views, data.mean, data.std))
    diagnostics = evaluated_images(data, data.eval_transform(), seed)
    return Loaders(train_loader(train, data), None, make_loader(diagnostics, data.eval_batch_size, data.workers), 0,
                   "torchvision")


def build_loaders(data, seed=0, rank=0, world_size=1, knn_bank_size=None):
    """Pretraining's loaders of `data` (a `zoo.data.DataSpec`): the crops of the training images, the k-NN
    bank and the validation images; DALI shards the training files over `world_size` processes by `rank`."""
    if not data.source.labels:
        return unlabelled_loaders(data, seed)
    loader = choose_loader(data)
    bank, val = evaluation_sets(data, knn_bank_size, seed)
    if loader == "dali":
        train = dali_train_loader(data, seed, rank, world_size)
    else:
        train = train_loader(build_dataset(data.source, "train", MultiViewTransform(data.views, data.mean, data.std)), data)
    evaluation = [make_loader(images, data.eval_batch_size, data.workers) for images in (bank, val)]
    return Loaders(train, *evaluation, class_count(data.source, val), loader)
