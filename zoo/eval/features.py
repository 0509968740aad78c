"""Frozen features of a backbone (and projector) over the labelled images of a data set."""

from dataclasses import dataclass

import torch

from zoo.data.datasets import class_count
from zoo.data.loaders import evaluation_sets, make_loader

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
    loader = make_loader(dataset, batch_size, num_workers)
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


def labelled_features(encode, data, device, bank_size=None):
    """`encode` over the labelled training images of `data` (a `zoo.data.DataSpec`; a seeded random
    `bank_size` of them, when given) and the validation images, both with the evaluation transform;
    images without a label (STL-10's unlabelled ones carry -1) are left out."""

    def extract(dataset):
        features, labels = extract_features(encode, dataset, data.eval_batch_size, data.workers, device)
        known = labels >= 0
        return tuple(x[known] for x in features), labels[known]

    bank, val = evaluation_sets(data, bank_size, seed=0)
    return LabelledFeatures(*extract(bank), *extract(val), class_count(data.source, val))
