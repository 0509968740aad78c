from dataclasses import dataclass

from zoo.losses import intl_loss
from zoo.methods.base import largest_crops
from zoo.methods.intl import INTL
from zoo.nn import EMA
from zoo.registry import register_method


@register_method("intl_m")
class INTLMomentum(INTL):
    """INTL with an EMA target and multi-crop (the official ImageNet INTL_M): the target
    encodes crop 0, the online branch every other crop; each online crop is matched to
    the target, with the trace loss on the online branch only. The target's momentum
    rises from `momentum_base` to `momentum_final` on a cosine schedule (parameters only), and the target
    moves before each forward, as INTL's main.py (adjust_momentum before the step) does."""

    @dataclass
    class Config(INTL.Config):
        momentum_base: float = 0.996
        momentum_final: float = 1.0

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final,
                          timing="before_forward")

    def compute_loss(self, crops, state=None):
        target = self.target(crops[0])
        features = self.encode(crops[1:])
        m = self.mcfg
        loss = intl_loss(
            target, *self.project(features), iters=m.iters, axis=m.axis, trade_off=m.trade_off, first_view_trace=False,
            return_parts=True,
        )  # (total, {"mse", "trace"}): INTL's parts, the trace loss on the online crops only
        return loss, largest_crops(features, crops[1:])
