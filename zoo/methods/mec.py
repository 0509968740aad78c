from dataclasses import dataclass, field
from typing import ClassVar

import torch

from zoo.backbones import build_mlp
from zoo.errors import ZooError
from zoo.losses.coding_rate import mec_lambda, mec_loss
from zoo.methods.base import FIRST_STEP, Method, MethodConfig, largest_crops
from zoo.methods.crops import target_pairs
from zoo.nn import EMA
from zoo.nn.ramps import linear_ramp
from zoo.registry import register_method


class MECModel(Method):
    """MEC's model (xinliu20/MEC builder.py), which Matrix-SSL trains unchanged: an online backbone + projector
    (2048 -> 2048 -> 2048 without hidden biases, BN after every layer, the last without affine and its bias
    frozen) + predictor (512 with BN), and an EMA teacher of backbone + projector whose momentum rises
    0.996 -> 1.0 on a cosine schedule, moved after each optimiser step. A subclass adds its loss and its
    settings, checked in its `build_modules` before calling this one's."""

    # The official SGD: lr 0.5 x batch/256, weight decay 1e-5 on every parameter, the predictor scheduled too.
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.5, "weight_decay": 1e-5}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 2048
        proj_hidden_bias: bool = False
        proj_last_bn: bool = True
        pred_hidden: int = 512
        order: int = 4  # of the loss's Taylor series
        momentum_base: float = 0.996
        momentum_final: float = 1.0

    def build_projector(self):
        projector = super().build_projector()
        projector[-2].bias.requires_grad_(False)  # followed by BN: the official code freezes it
        return projector

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)
        self.predictor = build_mlp(m.proj_out, [m.pred_hidden], m.proj_out, hidden_bias=False)


@register_method("mec")
class MEC(MECModel):
    """MEC (Liu et al., NeurIPS 2022), maximum entropy coding: an online projector + predictor and the
    EMA teacher's projection of another crop, both L2-normalised over the global batch, maximise the
    order-4 Taylor series of the coding length log det(I + lambda P Z^T), lambda = d / (m eps), averaged
    over every (teacher crop, other crop) pair (`zoo.losses.coding_rate.mec_loss`; two crops: the official
    symmetric loss). 1 / lambda starts at `lambda_warmup_factor` / lambda and falls linearly to 1 / lambda
    over `lambda_warmup_epochs` epochs (the official warm-up, which keeps the series convergent), then
    stays there. The teacher's momentum rises 0.996 -> 1.0 on a cosine schedule, as officially.

    Defaults: the official ImageNet code (xinliu20/MEC main_pretrain.py, builder.py: projector
    2048 -> 2048 -> 2048 without hidden biases, BN after every layer (the last without affine, its bias
    frozen), predictor 512 with BN; eps 64; the lambda warm-up over 10 epochs from 8 / lambda; SGD lr
    0.5 x batch/256, momentum 0.9, weight decay 1e-5, 10 warm-up epochs, cosine to 0). The official hidden
    widths are the backbone's feature width (2048 on its ResNet-50), and its ResNet zero-initialises each
    block's last BN (`backbone.zero_init_residual=true`, a run setting). The teacher moves after each
    optimiser step with that step's momentum, as the official code (and the EMA component's default) does."""

    num_views = None  # two crops or more (multi-crop pairs as BYOL's)

    @dataclass
    class Config(MECModel.Config):
        eps: float = 64.0  # the official --eps: the squared bound on the expected decoding error
        lambda_warmup_factor: float = 8.0  # 1 / lambda starts at this x its final value
        lambda_warmup_epochs: float = 10.0

    def build_modules(self):
        m = self.mcfg
        if m.order < 1 or m.eps <= 0 or m.lambda_warmup_factor <= 0 or m.lambda_warmup_epochs < 0:
            raise ZooError(f"mec needs order >= 1, eps > 0, lambda_warmup_factor > 0 and lambda_warmup_epochs >= 0, "
                           f"got {m.order}, {m.eps}, {m.lambda_warmup_factor}, {m.lambda_warmup_epochs}")
        super().build_modules()

    def lambda_inverse(self, step, steps_per_epoch):
        """1 / lambda at optimiser step `step`: the official np.linspace warm-up from lambda_warmup_factor / lambda
        at step 0 to 1 / lambda at the last warm-up step, then constant."""
        final = 1 / mec_lambda(self.mcfg.proj_out, self.global_batch_size, self.mcfg.eps)
        warmup = round(self.mcfg.lambda_warmup_epochs * steps_per_epoch)
        if step >= warmup:
            return final
        return linear_ramp(self.mcfg.lambda_warmup_factor * final, final, step / max(warmup - 1, 1))

    def step_logs(self, state):
        return {"train/lambda_inverse": self.lambda_inverse(state.step, state.steps_per_epoch)}

    def compute_loss(self, crops, state=FIRST_STEP):
        features = self.encode(crops)
        predictions = [self.predictor(z) for z in self.project(features)]
        pairs = target_pairs(self.crop_sizes)
        targets = {t: self.target(crops[t]) for t in sorted({t for t, _ in pairs})}
        lambda_inverse = self.lambda_inverse(state.step, state.steps_per_epoch)
        m = self.mcfg
        loss = torch.stack([mec_loss(targets[t], predictions[v], lambda_inverse=lambda_inverse, order=m.order)
                            for t, v in pairs]).mean()
        return loss, largest_crops(features, crops)
