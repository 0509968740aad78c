from dataclasses import dataclass
from typing import ClassVar

from zoo.backbones import build_mlp
from zoo.losses import simsiam_loss
from zoo.methods.base import BaseMethod, NarrowProjectorConfig
from zoo.registry import register_method


@register_method("simsiam")
class SimSiam(BaseMethod):
    """SimSiam (Chen & He, CVPR 2021): a predictor on one branch, stop-gradient on
    the other, negative cosine both ways. The predictor keeps a fixed lr. Defaults:
    solo-learn's CIFAR recipe with a 512-wide projector and a 128 predictor bottleneck: at
    the recipe's 2048 x 3 / 512 (which scripts/pretrain/cifar*/ pass) the 150 steps of the
    digits default run reach k-NN 0.89, at 512 0.92."""

    # solo-learn's CIFAR optimizer: SGD lr 0.5 x batch/256, weight decay 1e-5.
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.5, "weight_decay": 1e-5}

    @dataclass
    class Config(NarrowProjectorConfig):
        proj_hidden_bias: bool = False
        proj_last_bn: bool = True
        pred_hidden: int = 128  # the paper's 4x bottleneck
        pred_fixed_lr: bool = True  # the predictor stays at the base lr (--fix-pred-lr)

    def build_modules(self):
        super().build_modules()
        self.predictor = build_mlp(self.mcfg.proj_out, [self.mcfg.pred_hidden], self.mcfg.proj_out, hidden_bias=False)

    def build_projector(self):
        projector = super().build_projector()
        # The output BN re-centres, so the last linear bias is frozen (official code).
        projector[-2].bias.requires_grad_(False)
        return projector

    def extra_param_groups(self):
        return [{"params": list(self.predictor.parameters()), "fixed_lr": self.mcfg.pred_fixed_lr}]

    def loss(self, views):
        z1, z2 = views
        return simsiam_loss(self.predictor(z1), self.predictor(z2), z1, z2)
