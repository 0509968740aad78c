from dataclasses import dataclass, field

from zoo.losses import intl_loss
from zoo.methods.base import Method, MethodConfig
from zoo.names import WhiteningAxis
from zoo.registry import register_method
from zoo.spectral import whiten


@register_method("intl")
class INTL(Method):
    """INTL (Weng et al., ICLR 2024): IterNorm whitening of each view, the
    normalised MSE between views, and a trace loss that keeps the whitened
    output's eigenvalues from collapsing. Defaults: the official CIFAR recipe.
    Loss parts (logged as train/loss/<part>): mse (the alignment term) and trace (the
    trace loss x trade_off), which sum to the total."""

    num_views = None  # any number of crops: every later crop is matched to the first

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 2048
        proj_hidden_bias: bool = False
        iters: int = 4  # Newton iterations of IterNorm
        axis: WhiteningAxis = WhiteningAxis.channel  # channel: N x N over the features (official axis 0); batch: D x D
        trade_off: float | None = None  # None = 0.01 (log2(global batch) - 3) on the channel axis

    def loss(self, views):
        m = self.mcfg
        return intl_loss(*views, iters=m.iters, axis=m.axis, trade_off=m.trade_off, return_parts=True)

    def transform(self, z):
        return whiten(z, "iternorm", self.mcfg.axis, iters=self.mcfg.iters, distributed=False)[0], self.mcfg.axis
