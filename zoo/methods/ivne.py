import itertools
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from zoo.backbones import build_mlp
from zoo.losses.spectral_family import ivne_loss
from zoo.methods.base import FIRST_STEP, Method, MethodConfig, largest_crops
from zoo.registry import register_method


@register_method("ivne")
class IVNE(Method):
    """I-VNE+ (Kim, Kang, Hwang, Shin and Rhee, CVPR 2023, "VNE: An Effective Method for Improving Deep
    Representation by Manipulating Eigenvalue Distribution"): the projections' invariance (the mean cosine of each
    of the two large crops with every later crop) plus the von Neumann entropy of each crop's autocorrelation
    matrix rho = Z^T Z / N of its L2-normalised projections, -sum lambda log lambda over its eigenvalues, which is
    largest when they are all equal (`zoo.losses.spectral_family.ivne_loss`; the entropy
    `zoo.spectral.von_neumann_entropy`, in float32 without TF32 also under AMP).

    Defaults: the official code (jaeill/CVPR23-VNE examples/i-vne+/train_ivne_imagenet100.py): projector
    F -> F -> F -> 256 (F the backbone's features, 2048 on its ResNet-50), every Linear with a bias, BatchNorm
    after every layer, the last one affine too, ReLU after the hidden ones; alpha_1 4.16 (log 64, its batch),
    alpha_2 1.0; SGD lr 0.4 x batch/256, momentum 0.9, weight decay 1e-4 off the biases and BatchNorms (the
    official exempts parameters named 'bn' or 'bias', so torchvision's downsample BatchNorm scales and the
    projector's BatchNorm scales are decayed there; the zoo exempts every 1-D parameter). The crops go through
    the backbone and the projector one call per run of same-size crops (its projector(model(torch.cat(data[:2])))
    then the small crops'); its DataParallel over 2 GPUs splits each call's batch between them, which one
    device cannot repeat. Loss parts: invariance (-alpha_1 x mean cosine) and entropy (-alpha_2 x mean entropy)."""

    num_views = None  # 2 large crops + any number of small ones (the official 2 + 4)
    joint_backbone = True  # one call per run of same-size crops; the projector too (compute_loss)
    joint_projector = True

    # train_ivne_imagenet100.py: SGD lr 0.4 x batch/256, momentum 0.9, weight decay 1e-4 except 'bn' / 'bias'.
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.4, "scale_lr": True, "weight_decay": 1e-4,
                                          "momentum": 0.9, "exclude_bias_and_norm": True}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] | None = None  # None: two layers of the backbone's width (rep_size)
        proj_out: int = 256  # --header_size
        alpha_1: float = 4.16
        alpha_2: float = 1.0

    def build_projector(self):
        m = self.mcfg
        hidden = m.proj_hidden if m.proj_hidden is not None else [self.feature_dim] * 2
        layers = build_mlp(self.feature_dim, hidden, m.proj_out, m.proj_hidden_bias, m.proj_last_bias,
                           hidden_bn=m.proj_hidden_bn)
        return nn.Sequential(*layers, nn.BatchNorm1d(m.proj_out))  # the official last BatchNorm1d, affine

    def compute_loss(self, crops, state=FIRST_STEP):
        features, projections = [], []
        for _, run in itertools.groupby(crops, key=lambda crop: tuple(crop.shape[1:])):
            run = list(run)
            sizes = [len(crop) for crop in run]
            run_features = self.backbone(torch.cat(run))
            features += run_features.split(sizes)
            projections += self.projector(run_features).split(sizes)
        m = self.mcfg
        loss = ivne_loss(*projections, alpha_1=m.alpha_1, alpha_2=m.alpha_2, return_parts=True)
        return loss, largest_crops(features, crops)
