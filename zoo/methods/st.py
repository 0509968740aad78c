from dataclasses import dataclass

from zoo.losses import st_loss
from zoo.methods.intl import INTL
from zoo.registry import register_method
from zoo.spectral import check_whitening, whiten


@register_method("st")
class SpectralTransform(INTL):
    """The INTL paper's spectral transformation g(lambda) = lambda^-p of the
    covariance in place of IterNorm (p = 0.5 is whitening, p = 0 no transform),
    with INTL's loss and trace-loss options; `trade_off=0` drops the trace loss.
    Same projector and defaults as INTL, and INTL's loss parts (mse, trace)."""

    @dataclass
    class Config(INTL.Config):
        p: float = 0.5
        eps: float = 0.0  # shrinkage towards the identity before the eigendecomposition

    @classmethod
    def check_batch(cls, config, global_batch_size):
        check_whitening("power", config.axis, global_batch_size, config.proj_out)

    def loss(self, views):
        m = self.mcfg
        return st_loss(*views, power=m.p, axis=m.axis, trade_off=m.trade_off, eps=m.eps, return_parts=True)

    def transform(self, z):
        return whiten(z, "power", self.mcfg.axis, power=self.mcfg.p, eps=self.mcfg.eps, distributed=False)[0], self.mcfg.axis
