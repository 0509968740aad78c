"""Frozen features of a backbone (and projector) over the labelled images of a data set."""

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from zoo.data import capped, eval_pipeline, worker_count
from zoo.data.datasets import build_dataset, num_classes

FEATURES = ("backbone", "projector")


def default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def encoder(backbone, projector=None, kinds=("backbone",)):
    """images -> a tuple of one feature tensor per kind, in the order asked: the backbone's
    features h, or the projector's outputs projector(h)."""

    def encode(images):
        h = backbone(images)
        return tuple(h if kind == "backbone" else projector(h) for kind in kinds)

    return encode


@torch.no_grad()
def extract_features(encode, dataset, batch_size, num_workers, device, progress=None):
    """`encode` (images -> a tuple of features) over `dataset`, in order: a tuple of float32
    feature tensors, and the labels; `progress` (a description) shows a progress bar."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    if progress:
        from tqdm import tqdm

        loader = tqdm(loader, desc=progress, unit="batch")
    outputs, labels = [], []
    for images, targets in loader:
        outputs.append(encode(images.to(device)))
        labels.append(torch.as_tensor(targets, device=device))
    return tuple(torch.cat(parts).float() for parts in zip(*outputs)), torch.cat(labels)


@dataclass
class LabelledFeatures:
    """Features of the labelled training images (the bank) and of the validation images, one
    tensor per kind of features, with their labels and the data set's class count."""

    train: tuple
    train_labels: torch.Tensor
    val: tuple
    val_labels: torch.Tensor
    num_classes: int


def labelled_features(encode, data_cfg, device, bank_size=None):
    """`encode` over the labelled training images (a seeded random `bank_size` of them, when
    given) and the validation images, both with the evaluation transform; images without a label
    (STL-10's unlabelled ones carry -1) are left out."""

    def extract(dataset):
        features, labels = extract_features(encode, dataset, data_cfg.eval_batch_size, worker_count(data_cfg), device)
        known = labels >= 0
        return tuple(x[known] for x in features), labels[known]

    transform = eval_pipeline(data_cfg)
    train = extract(capped(build_dataset(data_cfg, "train_labeled", transform), bank_size, seed=0))
    val_set = build_dataset(data_cfg, "val", transform)
    return LabelledFeatures(*train, *extract(val_set), num_classes(val_set))
