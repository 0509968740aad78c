from dataclasses import dataclass, field
from typing import ClassVar

from zoo.backbones import build_mlp
from zoo.losses import simsiam_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("simsiam")
class SimSiam(Method):
    """SimSiam (Chen & He, CVPR 2021): a predictor on one branch, stop-gradient on
    the other, negative cosine both ways. The predictor keeps a fixed lr. Defaults: the official
    code's (facebookresearch/simsiam main_simsiam.py, simsiam/builder.py, and the README's command):
    projector 2048-2048-2048 without hidden biases, BN after every layer (the last without affine, its
    bias frozen), predictor bottleneck 512, the predictor at a fixed lr (the README's --fix-pred-lr;
    main_simsiam.py's flag is off unless given), SGD lr 0.05 x batch/256, weight decay 1e-4."""

    # main_simsiam.py: SGD (momentum 0.9) lr 0.05 x batch/256, weight decay 1e-4 on every parameter.
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.05, "weight_decay": 1e-4}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 2048
        proj_hidden_bias: bool = False
        proj_last_bn: bool = True
        pred_hidden: int = 512  # the paper's 4x bottleneck
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
