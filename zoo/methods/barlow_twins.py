from dataclasses import dataclass
from typing import ClassVar

from zoo.losses import barlow_twins_loss
from zoo.methods.base import SOLO_LARS, BaseMethod, NarrowProjectorConfig
from zoo.registry import register_method


@register_method("barlow_twins")
class BarlowTwins(BaseMethod):
    """Barlow Twins (Zbontar et al., ICML 2021): the cross-correlation of the two
    batch-normalised views driven to the identity. Defaults: solo-learn's CIFAR recipe
    (`scale_loss` 0.1; the official ImageNet code uses 1.0 and bias-free layers) with a
    512-wide projector: at the recipe's 2048 (which scripts/pretrain/cifar*/ pass) the
    150 steps of the digits default run reach k-NN 0.71, at 512 0.94.
    Loss parts (logged as train/loss/<part>): on_diag and off_diag (lambd x), both x scale_loss."""

    optimizer_defaults: ClassVar[dict] = SOLO_LARS  # solo-learn's CIFAR optimizer

    @dataclass
    class Config(NarrowProjectorConfig):
        lambd: float = 0.0051
        scale_loss: float = 0.1
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
