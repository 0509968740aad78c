from dataclasses import dataclass, field
from typing import ClassVar

from zoo.losses import vicreg_loss
from zoo.methods.base import SOLO_LARS, BaseMethod, MethodConfig
from zoo.registry import register_method


@register_method("vicreg")
class VICReg(BaseMethod):
    """VICReg (Bardes et al., ICLR 2022): invariance + variance + covariance.
    Defaults: solo-learn's CIFAR projector (2048 x 3) with the paper's 25/25/1."""

    optimizer_defaults: ClassVar[dict] = SOLO_LARS  # solo-learn's CIFAR optimizer

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 2048
        sim: float = 25.0
        var: float = 25.0
        cov: float = 1.0

    def loss(self, views):
        z1, z2 = views
        return vicreg_loss(z1, z2, sim=self.mcfg.sim, var=self.mcfg.var, cov=self.mcfg.cov)
