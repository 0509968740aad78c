from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from zoo.backbones import build_mlp
from zoo.losses import dino_center, dino_loss
from zoo.methods.base import FIRST_STEP, Method, MethodConfig, largest_crops
from zoo.methods.crops import targets_first
from zoo.nn import EMA, FreezeEarly
from zoo.nn.ramps import linear_ramp
from zoo.registry import register_method


class DINOHead(nn.Module):
    """DINO's head: an MLP with GELUs (BatchNorm optional) down to a bottleneck, then, on the L2-normalised
    bottleneck, a weight-normalised linear layer without bias (`last_layer`, rows of norm 1, a learnt norm
    unless `norm_last_layer`) giving the logits over the prototypes. Linear layers of the MLP start from a
    truncated normal (std 0.02) with zero biases. `forward` returns the bottleneck embedding (what the
    spectrum diagnostics see of a projector), `logits` the prototype logits of one.
    facebookresearch/dino vision_transformer.py ``DINOHead``; solo-learn solo/methods/dino.py."""

    def __init__(self, in_dim, hidden, bottleneck, num_prototypes, hidden_bn=False, norm_last_layer=True):
        super().__init__()
        self.mlp = build_mlp(in_dim, hidden, bottleneck, hidden_bn=hidden_bn, activation=nn.GELU)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck, num_prototypes, bias=False))
        norm = self.last_layer.parametrizations.weight.original0
        norm.data.fill_(1.0)
        norm.requires_grad = not norm_last_layer

    def forward(self, features):
        return self.mlp(features)

    def logits(self, embedding):
        return self.last_layer(F.normalize(embedding, dim=-1))


@register_method("dino")
class DINO(Method):
    """DINO (Caron et al., ICCV 2021) with a ResNet: the student (backbone + `DINOHead`) matches, for every
    crop, the softmax over the prototypes that its EMA teacher gives for every other global (largest) crop,
    centred and sharpened: the teacher's logits minus a centre (an EMA, `center_momentum`, of their mean
    over the global batch; a buffer, so checkpoints keep it) at a temperature rising linearly from
    `warmup_teacher_temperature` to `teacher_temperature` over `warmup_teacher_temperature_epochs` epochs;
    the student's at `student_temperature`. The head's last layer gets no gradient during the first
    `freeze_epochs` epochs (`zoo.nn.FreezeEarly`). Defaults: the official code's (facebookresearch/dino
    main_dino.py, vision_transformer.py DINOHead): head 2048 -> 2048 -> 256 without BN, 65536 prototypes, the
    last layer weight-normalised with its norm fixed, teacher temperature 0.04 (warm-up from 0.04 over 0
    epochs), student 0.1, centre momentum 0.9, last layer frozen for 1 epoch, momentum 0.996 -> 1.0; the
    optimizer of the README's ResNet-50 command (SGD lr 0.03 x batch/256, weight decay 1e-4, none on biases
    and norms), main_dino.py's AdamW with a weight-decay schedule being its ViT setting."""

    num_views = None  # two crops or more (multi-crop)
    # README, ResNet-50: --optimizer sgd --lr 0.03 --weight_decay 1e-4 --weight_decay_end 1e-4 (momentum 0.9, the lr
    # x batch/256, no weight decay on biases and 1-D params: utils.get_params_groups).
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4, "exclude_bias_and_norm": True}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 256  # the bottleneck
        proj_hidden_bn: bool = False
        num_prototypes: int = 65536  # out_dim
        norm_last_layer: bool = True
        student_temperature: float = 0.1
        teacher_temperature: float = 0.04
        warmup_teacher_temperature: float = 0.04
        warmup_teacher_temperature_epochs: int = 0
        center_momentum: float = 0.9
        momentum_base: float = 0.996  # momentum_teacher
        momentum_final: float = 1.0
        freeze_epochs: int = 1  # the last layer's
        freeze_steps: int = 0

    def build_projector(self):
        m = self.mcfg
        return DINOHead(self.feature_dim, m.proj_hidden, m.proj_out, m.num_prototypes, m.proj_hidden_bn, m.norm_last_layer)

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)
        self.freeze_early = FreezeEarly(self.projector.last_layer.parameters, epochs=m.freeze_epochs, steps=m.freeze_steps)
        self.register_buffer("center", torch.zeros(1, m.num_prototypes))

    def teacher_temperature(self, epoch):
        """The teacher's temperature at `epoch`: the official np.linspace warm-up, warmup_teacher_temperature at
        epoch 0 to teacher_temperature at epoch W - 1, then constant."""
        m = self.mcfg
        warmup = m.warmup_teacher_temperature_epochs
        if epoch >= warmup:
            return m.teacher_temperature
        return linear_ramp(m.warmup_teacher_temperature, m.teacher_temperature, epoch / max(warmup - 1, 1))

    def step_logs(self, state):
        return {"train/teacher_temperature": self.teacher_temperature(state.epoch)}

    def compute_loss(self, crops, state=FIRST_STEP):
        features = self.encode(crops)
        student = [self.projector.logits(z) for z in self.project(features)]
        order, teacher_count = targets_first(self.crop_sizes)
        with torch.no_grad():
            teacher = [self.target.projector.logits(self.target(crops[t])) for t in order[:teacher_count]]
        loss = dino_loss(*(student[v] for v in order), teacher=teacher, center=self.center,
                         teacher_temperature=self.teacher_temperature(state.epoch), student_temperature=self.mcfg.student_temperature)
        self.center.copy_(dino_center(*teacher, center=self.center, momentum=self.mcfg.center_momentum))
        return loss, largest_crops(features, crops)
