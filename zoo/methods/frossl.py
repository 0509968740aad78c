from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import SOLO_LARS
from zoo.losses.spectral_family import frossl_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("frossl")
class FroSSL(Method):
    """FroSSL (Skean et al., ECCV 2024): each feature of each view is L2-normalised over the global batch;
    the loss sums over the views log ||C_v||_F^2 of the trace-normalised covariance C_v (minimised, which
    spreads the spectrum: the sign of the official code, which the zoo follows where the paper's text
    differs) plus V D `invariance_weight` x the MSE of the view to the mean of the views
    (`zoo.losses.spectral_family.frossl_loss`, the official multi-view loss for any number of views).

    The official loss sees each GPU's own batch; the zoo's sees the global batch (one process: the same).
    Defaults: the official CIFAR recipe (OFSkean/FroSSL scripts/pretrain/cifar/frossl.yaml, solo/methods/
    frossl.py): projector 2048-2048 (BN) -> 1024, invariance weight 1, LARS lr 0.3 x batch/256, weight decay
    1e-4, eta 0.02, clipped, no LARS / decay on 1-D params (solo-learn's LARS, which the repository builds on)."""

    num_views = None  # 2 or more views
    optimizer_defaults: ClassVar[dict] = SOLO_LARS  # lr 0.3, weight decay 1e-4

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 1024
        invariance_weight: float = 1.0

    def loss(self, views):
        # (total, {"invariance", "log_frobenius"})
        return frossl_loss(*views, invariance_weight=self.mcfg.invariance_weight, return_parts=True)
