from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import FB_LARS
from zoo.losses import barlow_twins_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("barlow_twins")
class BarlowTwins(Method):
    """Barlow Twins (Zbontar et al., ICML 2021): the cross-correlation of the two
    batch-normalised views driven to the identity. Defaults: the official code's
    (facebookresearch/barlowtwins main.py): projector 8192-8192-8192 without biases, lambd 0.0051,
    the loss unscaled (scale_loss 1; solo-learn's recipes scale it by 0.1), its LARS with biases and
    BatchNorm at 0.024 x the lr.
    Loss parts (logged as train/loss/<part>): on_diag and off_diag (lambd x), both x scale_loss."""

    # main.py: LARS lr 0.2 x batch/256 (biases and BatchNorm 0.0048: 0.024 x), weight decay 1e-6, eta 0.001.
    optimizer_defaults: ClassVar[dict] = {**FB_LARS, "bias_lr_factor": 0.024}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [8192, 8192])
        proj_out: int = 8192
        proj_hidden_bias: bool = False
        proj_last_bias: bool = False
        lambd: float = 0.0051
        scale_loss: float = 1.0
        # true: standardise each device's local batch and average the devices' cross-correlations
        # (solo-learn's loss, as its ImageNet 100-epoch recipe ran it on 4 GPUs); false: standardise
        # the global batch (FB's official code, SyncBN). The same on one device.
        per_device_norm: bool = False

    def loss(self, views):
        z1, z2 = views
        m = self.mcfg
        total, parts = barlow_twins_loss(
            z1, z2, lambd=m.lambd, per_device_norm=m.per_device_norm, return_parts=True
        )
        return m.scale_loss * total, {name: m.scale_loss * part for name, part in parts.items()}
