from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import FB_LARS
from zoo.losses import vicreg_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("vicreg")
class VICReg(Method):
    """VICReg (Bardes et al., ICLR 2022): invariance + variance + covariance.
    Defaults: the official code's (facebookresearch/vicreg main_vicreg.py): projector 8192-8192-8192
    (hidden Linears with bias, BatchNorm, ReLU; the last Linear without bias), coefficients 25/25/1,
    LARS lr 0.2 x batch/256, weight decay 1e-6.
    Loss parts (logged as train/loss/<part>): invariance, variance, covariance, each as
    weighted in the total (x sim, x var, x cov), so they sum to it."""

    optimizer_defaults: ClassVar[dict] = FB_LARS  # main_vicreg.py's LARS, base lr 0.2, weight decay 1e-6

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [8192, 8192])
        proj_out: int = 8192
        proj_last_bias: bool = False
        sim: float = 25.0
        var: float = 25.0
        cov: float = 1.0

    def loss(self, views):
        z1, z2 = views
        return vicreg_loss(z1, z2, sim=self.mcfg.sim, var=self.mcfg.var, cov=self.mcfg.cov, return_parts=True)
