from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import WMSE_ADAM
from zoo.losses.spectral_family import mmcr_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("mmcr")
class MMCR(Method):
    """MMCR (Yerxa et al., NeurIPS 2023), maximum manifold capacity representations: the views of each
    image are L2-normalised and averaged into a centroid, and the loss is minus the nuclear norm of the
    N x D matrix of centroids over the global batch, plus `lambd` x the mean nuclear norm of each
    image's D x views matrix (`zoo.losses.spectral_family.mmcr_loss`). Any number of views >= 2.

    Defaults: the official CIFAR / STL-10 code (ThomasYerxa/mmcr mmcr/cifar_stl: projector 512 (BN) ->
    128, no biases; lambd 0; Adam lr 1e-3, not scaled, weight decay 1e-6). That recipe takes 40 views of
    batch 32 (`data.views` count 40). All views go through backbone and projector as one batch, as the
    official code's "B N C H W -> (B N) C H W" before model(img_batch), so BatchNorm statistics cover every
    view. The official ImageNet variant's momentum encoder is not part of this method."""

    num_views = None  # 2 or more views; the official CIFAR recipe uses 40
    joint_backbone = True
    joint_projector = True
    # The official Adam: lr 1e-3 (not scaled), weight decay 1e-6; the probe as the zoo's other Adam methods.
    optimizer_defaults: ClassVar[dict] = {**WMSE_ADAM, "lr": 1e-3}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [512])
        proj_out: int = 128
        proj_hidden_bias: bool = False
        proj_last_bias: bool = False
        lambd: float = 0.0  # weight of the per-image (local) nuclear norm; the official default 0

    def loss(self, views):
        return mmcr_loss(*views, lambd=self.mcfg.lambd, return_parts=True)  # (total, {"centroid_nuclear", "view_nuclear"})
