from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from zoo.losses import nt_xent_loss
from zoo.methods.base import SOLO_LARS, BaseMethod, MethodConfig
from zoo.registry import register_method


@register_method("simclr")
class SimCLR(BaseMethod):
    """SimCLR (Chen et al., ICML 2020): NT-Xent over the global batch, every other crop of the
    batch a negative; more than two crops (multi-crop) sum their positives inside the log.
    Defaults: solo-learn's CIFAR recipe (scripts/pretrain/cifar/simclr.yaml): projector
    2048 -> 256 without BN, temperature 0.2, LARS lr 0.4 x batch/256.

    Two options, off by default (solo-learn has neither), reproduce the SimCLR of htdt/self-supervised
    (methods/contrastive.py, the W-MSE protocol): `proj_bn_last` appends an affine BatchNorm1d(proj_out)
    after the projector's last Linear (htdt's `bn_last`), and `joint_projector` runs the projector (and
    that BatchNorm) once on all crops concatenated, so each BatchNorm's statistics cover every view; the
    backbone still sees each crop on its own, as htdt's encoder does. `joint_backbone` (with `joint_projector`)
    is google-research/simclr's forward (model.py: the views concatenated along the batch before the ResNet,
    whose BatchNorms and the projection head's then see every view together)."""

    num_views = None  # two crops or more (multi-crop)
    # solo-learn's CIFAR optimizer: LARS lr 0.4, weight decay 1e-4, eta 0.02, clipped, no LARS / decay on 1-D params.
    optimizer_defaults: ClassVar[dict] = {**SOLO_LARS, "lr": 0.4}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048])
        proj_out: int = 256
        proj_hidden_bn: bool = False  # solo-learn: Linear-ReLU-Linear
        proj_bn_last: bool = False  # an affine BatchNorm1d(proj_out) after the last Linear (htdt's bn_last)
        joint_projector: bool = False  # the projector on all crops as one batch (htdt's head on torch.cat of the views)
        joint_backbone: bool = False  # the backbone on all crops of a size as one batch (google-research/simclr)
        temperature: float = 0.2

    @property
    def joint_projector(self):  # BaseMethod.project reads it
        return bool(self.mcfg.joint_projector)

    @property
    def joint_backbone(self):  # BaseMethod.encode reads it
        return bool(self.mcfg.joint_backbone)

    def build_projector(self):
        projector = super().build_projector()
        if self.mcfg.proj_bn_last:
            projector.append(nn.BatchNorm1d(self.mcfg.proj_out))
        return projector

    def loss(self, views):
        return nt_xent_loss(*views, temperature=self.mcfg.temperature)
