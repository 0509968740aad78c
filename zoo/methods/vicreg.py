from dataclasses import dataclass
from typing import ClassVar

from zoo.losses import vicreg_loss
from zoo.methods.base import SOLO_LARS, BaseMethod, NarrowProjectorConfig
from zoo.registry import register_method


@register_method("vicreg")
class VICReg(BaseMethod):
    """VICReg (Bardes et al., ICLR 2022): invariance + variance + covariance.
    Defaults: solo-learn's CIFAR recipe with the paper's 25/25/1 and a 512-wide projector:
    at the recipe's 2048 x 3 (which scripts/pretrain/cifar*/ pass) the 150 steps of the
    digits default run reach k-NN 0.84, at 512 0.95.
    Loss parts (logged as train/loss/<part>): invariance, variance, covariance, each as
    weighted in the total (x sim, x var, x cov), so they sum to it."""

    optimizer_defaults: ClassVar[dict] = SOLO_LARS  # solo-learn's CIFAR optimizer

    @dataclass
    class Config(NarrowProjectorConfig):
        sim: float = 25.0
        var: float = 25.0
        cov: float = 1.0

    def loss(self, views):
        z1, z2 = views
        return vicreg_loss(z1, z2, sim=self.mcfg.sim, var=self.mcfg.var, cov=self.mcfg.cov, return_parts=True)
