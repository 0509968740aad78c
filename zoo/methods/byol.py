from dataclasses import dataclass, field
from typing import ClassVar

from zoo.backbones import build_mlp
from zoo.losses import byol_loss
from zoo.methods.base import SOLO_LARS, BaseMethod, MethodConfig, largest_crops
from zoo.methods.crops import target_pairs
from zoo.nn import EMA
from zoo.registry import register_method


@register_method("byol")
class BYOL(BaseMethod):
    """BYOL (Grill et al., NeurIPS 2020): an online projector + predictor regresses the EMA target's
    projection of another crop, 2 - 2 cos, summed over every (target crop, other crop) pair (the
    target encodes the largest crops; multi-crop adds online crops). Momentum 0.99 -> 1.0 on a
    cosine schedule. Defaults: solo-learn's CIFAR recipe (scripts/pretrain/cifar/byol.yaml:
    projector 4096 -> 256 and predictor 4096, with BN, LARS, weight decay 1e-5) but lr 0.5 x batch/256
    instead of 1.0: in the 150 steps of the digits default run lr 1.0 reaches k-NN 0.91 (0.90 after
    100 steps), 0.5 reaches 0.93 (0.94); a CIFAR recipe passes solo-learn's 1.0."""

    num_views = None  # two crops or more (multi-crop)
    # solo-learn's CIFAR optimizer (LARS, weight decay 1e-5, eta 0.02, clipped, no LARS / decay on 1-D params), lr 0.5.
    optimizer_defaults: ClassVar[dict] = {**SOLO_LARS, "lr": 0.5, "weight_decay": 1e-5}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [4096])
        proj_out: int = 256
        pred_hidden: int = 4096
        momentum_base: float = 0.99
        momentum_final: float = 1.0

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)
        self.predictor = build_mlp(self.mcfg.proj_out, [self.mcfg.pred_hidden], self.mcfg.proj_out)

    def compute_loss(self, crops):
        features = self.encode(crops)
        predictions = [self.predictor(z) for z in self.project(features)]
        pairs = target_pairs(self.crop_sizes)
        targets = {t: self.target(crops[t]) for t in sorted({t for t, _ in pairs})}
        loss = sum(byol_loss(predictions[v], targets[t]) for t, v in pairs)
        return loss, largest_crops(features, crops)
