from dataclasses import dataclass, field
from typing import ClassVar

import torch

from zoo.errors import ZooError
from zoo.losses.sigreg import lejepa_loss, random_slices
from zoo.methods.base import Method, MethodConfig
from zoo.methods.crops import targets_first
from zoo.registry import register_method


@register_method("lejepa")
class LeJEPA(Method):
    """LeJEPA (Balestriero & LeCun, 2025): every crop's projection predicts the centroid of the global
    (largest) crops' projections, and SIGReg pushes each crop's projections of the global batch towards an
    isotropic Gaussian: the Epps-Pulley statistic of `num_slices` random 1-D projections, the directions
    drawn afresh at every loss call from a generator seeded by a step counter (`slice_step`, a buffer, so
    a resumed run draws what an uninterrupted one would), the same on every rank; weighted
    (1 - lambd) prediction + lambd SIGReg (`zoo.losses.sigreg.lejepa_loss`). No predictor, no EMA target,
    no stop-gradient.

    Defaults: rbalestr-lab/lejepa's runnable recipe (MINIMAL.md: projector 2048 -> 2048 (BN, ReLU) -> 16,
    lambd 0.02, 256 slices, the Epps-Pulley statistic on 17 points over [0, 3]; AdamW, not scaled with the
    batch, linear warm-up and cosine to lr / 1000) with the README's ResNet setting of the optimizer (lr
    5e-4, weight decay 5e-4); the README's multi-crop is 2 global + 6 local crops (`data.views`)."""

    num_views = None  # two crops or more (multi-crop: the largest are the global ones)
    # MINIMAL.md's ViTEncoder.forward: the backbone on every view at once (x.flatten(0, 1)), the projector (with
    # BatchNorm) on every embedding at once; crops of different sizes share the projector's call only.
    joint_backbone = True
    joint_projector = True
    # README (ResNets): AdamW lr 5e-4, weight decay 5e-4, no batch scaling; the probe at MINIMAL.md's 1e-3.
    optimizer_defaults: ClassVar[dict] = {"name": "adamw", "lr": 5e-4, "scale_lr": False, "weight_decay": 5e-4,
                                          "probe_lr": 1e-3}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 16
        lambd: float = 0.02  # SIGReg's weight; the prediction term's is 1 - lambd
        num_slices: int = 256
        t_max: float = 3.0  # the Epps-Pulley integral over [-t_max, t_max]
        points: int = 17  # of the trapezoid rule on [0, t_max]

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        if m.num_slices < 1 or not 0 <= m.lambd <= 1:
            raise ZooError(f"lejepa needs num_slices >= 1 and 0 <= lambd <= 1, got {m.num_slices} and {m.lambd}")
        self.register_buffer("slice_step", torch.zeros((), dtype=torch.long))

    def sliced_views(self, views):
        """(the views with the global crops first, how many are global, this step's random directions (D, K)),
        and the step counter that seeds the directions moved on."""
        m = self.mcfg
        order, global_views = targets_first(self.crop_sizes)
        directions = random_slices(m.proj_out, m.num_slices, self.slice_step.item(), device=views[0].device)
        self.slice_step.add_(1)
        return [views[v] for v in order], global_views, directions

    def loss(self, views):
        m = self.mcfg
        ordered, global_views, directions = self.sliced_views(views)
        return lejepa_loss(*ordered, global_views=global_views, directions=directions, lambd=m.lambd,
                           t_max=m.t_max, points=m.points, return_parts=True)  # (total, {"prediction", "sigreg"})
