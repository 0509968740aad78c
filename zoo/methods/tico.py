from dataclasses import dataclass, field
from typing import ClassVar

import torch

from zoo.losses.spectral_family import tico_loss
from zoo.methods.base import Method, MethodConfig
from zoo.nn import EMA
from zoo.registry import register_method


@register_method("tico")
class TiCo(Method):
    """TiCo (Zhu et al., 2022, "Transformation Invariance and Covariance Contrast"): the online embedding z1 of
    the first crop agrees with the momentum target's embedding z2 of the second, and its quadratic form under a
    running matrix C (an exponential average, beta 0.9, of the batches' z1^T z1 / N) is pushed down, rho 8:
    L = 1 - mean_i z1_i . z2_i + rho mean_i z1_i^T C z1_i, z L2-normalised, C updated with this batch before
    the loss (`zoo.losses.spectral_family.tico_loss`). The quadratic form is a contrast against every past
    batch at once (the paper's implicit memory bank); its minimum spreads the embeddings' spectrum.

    The authors published no code. The numeric reference is lightly-ai/lightly lightly/loss/tico_loss.py
    ``TiCoLoss`` (tests/fixtures/tico_reference.json) and the method is lightly's benchmark
    (benchmarks/imagenet/resnet50/tico.py): projector 2048 -> 4096 (BN, ReLU; no bias) -> 256, a momentum
    target of backbone and projector from 0.99 to 1.0 on a cosine over training, moved at the start of each
    step; LARS lr 0.2 x batch/256, weight decay 1.5e-6, none on biases and BatchNorm. Deviations: B is a
    constant in the backward as lightly's (`batch_cov_grad` lets the gradient through it, as the paper's
    formula and sayannag/TiCo-pytorch); lightly's momentum cosine reaches 1.0 at its last step, the zoo's EMA
    one step later (at most 1.8e-8 apart over lightly's 500,400 steps of 100 ImageNet epochs).

    C is a registered buffer (`running_cov`, (D, D), zeros at first), so a checkpoint keeps it and a resume
    continues with it (lightly's is a plain attribute). Under DDP every rank updates it with the gathered
    global batch, as lightly's gather_distributed does, so every rank holds the same C.
    Loss parts (train/loss/<part>): invariance, covariance (x rho)."""

    # lightly's TiCo benchmark: its LARS (lightly/utils/lars.py, timm's formula: trust 0.001 ||w|| / (||g|| + wd ||w||),
    # no clipping) lr 0.2 x batch/256, weight decay 1.5e-6, neither decay nor adaptation on biases and norms.
    optimizer_defaults: ClassVar[dict] = {"name": "lars", "lr": 0.2, "weight_decay": 1.5e-6, "lars_eta": 0.001,
                                          "lars_clip": False, "exclude_bias_and_norm": True}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [4096])
        proj_out: int = 256
        proj_hidden_bias: bool = False  # lightly's ProjectionHead: no bias before BatchNorm
        beta: float = 0.9  # the weight of the past C
        rho: float = 8.0  # the covariance contrast's weight
        batch_cov_grad: bool = False  # true: the gradient also through this batch's covariance (the paper's formula)
        momentum_base: float = 0.99
        momentum_final: float = 1.0

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final,
                          timing="before_forward")
        self.register_buffer("running_cov", torch.zeros(m.proj_out, m.proj_out))

    def compute_loss(self, crops, state=None):
        m = self.mcfg
        online_crop, target_crop = crops
        features = self.backbone(online_crop)  # only the first crop goes through the online branch
        loss, cov = tico_loss(self.projector(features), self.target(target_crop), self.running_cov, beta=m.beta,
                              rho=m.rho, batch_cov_grad=m.batch_cov_grad, return_parts=True)
        self.running_cov.copy_(cov)
        return loss, [features]
