from dataclasses import dataclass
from typing import ClassVar

from zoo.losses.spectral_family import frossl_loss
from zoo.methods.base import SOLO_LARS, BaseMethod, NarrowProjectorConfig
from zoo.registry import register_method


@register_method("frossl")
class FroSSL(BaseMethod):
    """FroSSL (Skean et al., ECCV 2024): each feature of each view is L2-normalised over the global batch;
    the loss sums over the views log ||C_v||_F^2 of the trace-normalised covariance C_v (minimised, which
    spreads the spectrum: the sign of the official code, which the zoo follows where the paper's text
    differs) plus V D `invariance_weight` x the MSE of the view to the mean of the views
    (`zoo.losses.spectral_family.frossl_loss`, the official multi-view loss for any number of views).

    The official loss sees each GPU's own batch; the zoo's sees the global batch (one process: the same).
    Defaults: the official CIFAR recipe's optimiser (OFSkean/FroSSL scripts/pretrain/cifar/frossl.yaml: LARS
    lr 0.3 x batch/256, weight decay 1e-4, eta 0.02, clipped, no LARS / decay on 1-D params) with a 512-wide
    projector and invariance weight 0.1 for the digits default run (5 epochs of batch 64): with the recipe's
    2048-2048 (BN) -> 1024 projector and weight 1 it collapses there (k-NN 0.840, online probe 0.756, backbone
    effective rank 2.7), with the 512-wide projector and weight 1 too (0.847, rank 2.8); weight 0.1 gives k-NN
    0.973, rank 63.8, and 0.02 k-NN 0.958 but online probe 0.598 (2-core Intel Xeon). The recipes set the
    official widths and weights (docs/spectral_family.md)."""

    num_views = None  # 2 or more views
    optimizer_defaults: ClassVar[dict] = {**SOLO_LARS, "lr": 0.3, "weight_decay": 1e-4}

    @dataclass
    class Config(NarrowProjectorConfig):
        invariance_weight: float = 0.1

    def loss(self, views):
        # (total, {"invariance", "log_frobenius"})
        return frossl_loss(*views, invariance_weight=self.mcfg.invariance_weight, return_parts=True)
