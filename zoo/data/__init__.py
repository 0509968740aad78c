"""Data loading: datasets, the one augmentation spec, and the loader choice."""

import importlib.util
import os
from dataclasses import dataclass, replace

import torch
from torch.utils.data import DataLoader, Subset

from zoo.catalog import dataset_info
from zoo.data.augment import MultiViewTransform, eval_transform, expand_crops, with_default_size
from zoo.data.datasets import build_dataset, num_classes
from zoo.errors import ZooError

UNLABELLED_DIAGNOSTIC_IMAGES = 2048  # data.labels=false: the images each validation's spectra are computed on


@dataclass
class Loaders:
    train: object  # yields (list of crop batches, labels)
    knn_bank: DataLoader | None  # labelled training images, eval transform; None without labels
    val: DataLoader  # without labels: the images of the label-free diagnostics
    num_classes: int  # 0 without labels
    loader: str  # which loader feeds `train`: dali | torchvision


def resolved_views(data_cfg):
    """The crop groups with every size filled in (data.image_size, else the dataset's), and the
    count of a one-group spec set by data.num_views."""
    size = data_cfg.image_size or dataset_info(data_cfg.name).image_size
    views = with_default_size(data_cfg.views, size)
    if data_cfg.num_views is not None:
        if len(views) != 1:
            raise ZooError(f"data.num_views={data_cfg.num_views} sets the crop count of a one-group data.views, but it has "
                           f"{len(views)} groups: set each group's count in data.views instead")
        views = [replace(views[0], count=data_cfg.num_views)]
    return views


def normalisation(data_cfg):
    info = dataset_info(data_cfg.name)
    return list(data_cfg.mean or info.mean), list(data_cfg.std or info.std)


def eval_pipeline(data_cfg):
    info = dataset_info(data_cfg.name)
    size = data_cfg.image_size or info.image_size
    ratio = data_cfg.eval_resize_ratio or info.eval_resize_ratio
    return eval_transform(size, *normalisation(data_cfg), resize_ratio=ratio, interpolation=info.eval_interpolation)


def worker_count(data_cfg):
    """data.num_workers, or (None) the CPUs this process may run on, at most 8: never more
    workers than CPUs, which torch's DataLoader would warn about."""
    if data_cfg.num_workers is not None:
        return data_cfg.num_workers
    return min(len(os.sched_getaffinity(0)), 8)


def dali_available():
    return importlib.util.find_spec("nvidia.dali") is not None


def choose_loader(data_cfg):
    """auto = DALI for folder datasets when it is installed, else torchvision."""
    folder = dataset_info(data_cfg.name).kind == "folder"
    if data_cfg.loader == "torchvision":
        return "torchvision"
    if data_cfg.loader == "dali":
        if not dali_available():
            raise ZooError('data.loader=dali but NVIDIA DALI is not installed (pip install ".[dali]")')
        if not folder:
            raise ZooError(f"data.loader=dali reads the ImageFolder layout only; use data.loader=torchvision for {data_cfg.name}")
        return "dali"
    if folder and dali_available():
        return "dali"
    if folder:
        print("notice: NVIDIA DALI is not installed; loading with torchvision (pip install \".[dali]\" for DALI)")
    return "torchvision"


def eval_loader(dataset, data_cfg):
    return DataLoader(
        dataset,
        batch_size=data_cfg.eval_batch_size,
        shuffle=False,
        num_workers=worker_count(data_cfg),
        persistent_workers=worker_count(data_cfg) > 0,
    )


def capped(dataset, size, seed):
    """A seeded random subset of `size` items when the dataset is larger (the k-NN bank of ImageNet)."""
    if size is None or len(dataset) <= size:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    return Subset(dataset, torch.randperm(len(dataset), generator=generator)[:size].tolist())


def train_loader(dataset, data_cfg):
    if len(dataset) < data_cfg.batch_size:
        raise ZooError(
            f"the training set has {len(dataset)} images, fewer than data.batch_size={data_cfg.batch_size}: lower data.batch_size"
        )
    return DataLoader(
        dataset,
        batch_size=data_cfg.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=worker_count(data_cfg),
        persistent_workers=worker_count(data_cfg) > 0,
        pin_memory=torch.cuda.is_available(),
    )


def unlabelled_loaders(data_cfg, views, mean, std, seed):
    """data.labels=false: the images train (torchvision loader); a fixed seeded subset of them, with the
    evaluation transform, is the one validation loader, for label-free diagnostics (no k-NN bank)."""
    if data_cfg.loader == "dali":
        raise ZooError("data.labels=false reads its images with torchvision: use data.loader=auto or torchvision")
    train = build_dataset(data_cfg, "train", MultiViewTransform(views, mean, std))
    diagnostics = capped(build_dataset(data_cfg, "train", eval_pipeline(data_cfg)), UNLABELLED_DIAGNOSTIC_IMAGES, seed)
    return Loaders(train_loader(train, data_cfg), None, eval_loader(diagnostics, data_cfg), 0, "torchvision")


def build_loaders(data_cfg, seed=0, rank=0, world_size=1, knn_bank_size=None):
    views = resolved_views(data_cfg)
    if not expand_crops(views):
        raise ZooError("data.views holds no crop: give at least one group with count >= 1")
    mean, std = normalisation(data_cfg)
    if not data_cfg.labels:
        return unlabelled_loaders(data_cfg, views, mean, std, seed)
    loader = choose_loader(data_cfg)
    val = build_dataset(data_cfg, "val", eval_pipeline(data_cfg))
    bank = capped(build_dataset(data_cfg, "train_labeled", eval_pipeline(data_cfg)), knn_bank_size, seed)
    if loader == "dali":
        from zoo.data.dali import build_dali_train_loader

        train = build_dali_train_loader(data_cfg, views, mean, std, seed=seed, shard_id=rank, num_shards=world_size)
    else:
        train = train_loader(build_dataset(data_cfg, "train", MultiViewTransform(views, mean, std)), data_cfg)
    return Loaders(train, eval_loader(bank, data_cfg), eval_loader(val, data_cfg), num_classes(val), loader)
