from dataclasses import dataclass, field
from typing import ClassVar

from zoo.backbones import build_mlp
from zoo.config import FB_LARS
from zoo.losses import byol_loss
from zoo.methods.base import Method, MethodConfig, largest_crops
from zoo.methods.crops import target_pairs
from zoo.nn import EMA
from zoo.registry import register_method


@register_method("byol")
class BYOL(Method):
    """BYOL (Grill et al., NeurIPS 2020): an online projector + predictor regresses the EMA target's
    projection of another crop, 2 - 2 cos, summed over every (target crop, other crop) pair (the
    target encodes the largest crops; multi-crop adds online crops). Momentum 0.99 -> 1.0 on a
    cosine schedule. Defaults: the official code's (google-deepmind/deepmind-research byol/configs/byol.py,
    the preset of main_loop.py's default 1000 epochs; utils/networks.py): projector 4096 (BN) -> 256 with
    no bias on its last Linear, predictor 4096, base momentum 0.996, LARS lr 0.2 x batch/256, weight decay
    1.5e-6, eta 0.001, no LARS or weight decay on biases and BatchNorm. The official predictor's last
    Linear has no bias either; the zoo's has one."""

    num_views = None  # two crops or more (multi-crop)
    # byol.py's 1000-epoch preset: LARS lr 0.2 x batch/256, weight decay 1.5e-6, eta 0.001, 1-D params excluded.
    optimizer_defaults: ClassVar[dict] = {**FB_LARS, "weight_decay": 1.5e-6}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [4096])
        proj_out: int = 256
        proj_last_bias: bool = False
        pred_hidden: int = 4096
        momentum_base: float = 0.996
        momentum_final: float = 1.0

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)
        self.predictor = build_mlp(self.mcfg.proj_out, [self.mcfg.pred_hidden], self.mcfg.proj_out)

    def compute_loss(self, crops, state=None):
        features = self.encode(crops)
        predictions = [self.predictor(z) for z in self.project(features)]
        pairs = target_pairs(self.crop_sizes)
        targets = {t: self.target(crops[t]) for t in sorted({t for t, _ in pairs})}
        loss = sum(byol_loss(predictions[v], targets[t]) for t, v in pairs)
        return loss, largest_crops(features, crops)
