from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from zoo.losses import nt_xent_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("simclr")
class SimCLR(Method):
    """SimCLR (Chen et al., ICML 2020): NT-Xent over the global batch, every other crop of the
    batch a negative; more than two crops (multi-crop) sum their positives inside the log.
    Defaults: the official code's (google-research/simclr run.py, model.py, model_util.py and the README's
    ImageNet command): the 3-layer projection head 2048 -> 2048 -> 128 with BN in the hidden layers,
    temperature 0.1, the views through backbone and head as one batch (`joint_backbone`, `joint_projector`:
    model.py concatenates them along the batch first, so every BatchNorm's statistics cover both views), its
    LARS (`lars_google`) lr 0.3 x batch/256, weight decay 1e-4, eta 0.001, no LARS or weight decay on biases
    and BatchNorm. The official head's last layer is a Linear without bias and a BatchNorm without offset;
    the zoo's is a Linear with bias. solo-learn's recipes (projector 2048 -> 256 without BN, per-crop calls,
    temperature 0.2) set theirs.

    `proj_bn_last` (off by default) appends an affine BatchNorm1d(proj_out) after the projector's last
    Linear: with `joint_projector` and `joint_backbone` off it reproduces the SimCLR of htdt/self-supervised
    (methods/contrastive.py `bn_last`, the W-MSE protocol: the head on all crops concatenated, the encoder
    on each crop on its own)."""

    num_views = None  # two crops or more (multi-crop)
    # lars_optimizer.py (classic_momentum) with the README's lr 0.3 x batch/256 and run.py's weight decay 1e-4.
    optimizer_defaults: ClassVar[dict] = {"name": "lars_google", "lr": 0.3, "weight_decay": 1e-4, "lars_eta": 0.001,
                                          "lars_clip": False, "exclude_bias_and_norm": True}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])  # official: the backbone's width
        proj_out: int = 128
        proj_hidden_bn: bool = True  # solo-learn: false (Linear-ReLU-Linear)
        proj_bn_last: bool = False  # an affine BatchNorm1d(proj_out) after the last Linear (htdt's bn_last)
        joint_projector: bool = True  # the projector on all crops as one batch (htdt's head on torch.cat of the views)
        joint_backbone: bool = True  # the backbone on all crops of a size as one batch (google-research/simclr)
        temperature: float = 0.1

    @property
    def joint_projector(self):  # Method.project reads it
        return bool(self.mcfg.joint_projector)

    @property
    def joint_backbone(self):  # Method.encode reads it
        return bool(self.mcfg.joint_backbone)

    def build_projector(self):
        projector = super().build_projector()
        if self.mcfg.proj_bn_last:
            projector.append(nn.BatchNorm1d(self.mcfg.proj_out))
        return projector

    def loss(self, views):
        return nt_xent_loss(*views, temperature=self.mcfg.temperature)
