from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from zoo.losses.spectral_family import corinfomax_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("corinfomax")
class CorInfoMax(Method):
    """CorInfoMax (Ozsoy et al., NeurIPS 2022): each view's L2-normalised projection updates a running
    mean and covariance R_v (forgetting factors `mean_forgetting`, `cov_forgetting`, over the global
    batch); the loss is `sim_weight` x the MSE between the views minus `cov_weight` x
    [log det(R_1 + eps I) + log det(R_2 + eps I)] / D (`zoo.losses.spectral_family.corinfomax_loss`).

    The running estimates are registered buffers (`running_mean` (2, D), `running_cov` (2, D, D)), so a
    checkpoint keeps them and a resume continues with the same R; they start, as officially, at mean 0
    and R = `init_scale` I, and are kept in float64 as the official code keeps them (so the log-dets run
    in float64 too). Under DDP every rank updates them with the same global batch, so they agree.
    Defaults: the official CIFAR-10 command (serdarozsoy/corinfomax-ssl README, cifars-tiny): projector
    2048-2048-64 without BatchNorm, the last layer without bias, outputs L2-normalised, alpha
    (sim_weight) 250, forgetting factors 0.01, eps 1e-8, R_ini 1; SGD lr 0.5 (not scaled with the batch
    of 512), momentum 0.9, weight decay 1e-4; the default run trains with them unchanged."""

    # The official SGD: lr 0.5 at its batch of 512, not scaled (at any batch, the default run's too).
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.5, "scale_lr": False, "weight_decay": 1e-4}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 64
        proj_hidden_bn: bool = False  # Linear + ReLU hidden layers, as the official projector
        proj_last_bias: bool = False
        normalize: bool = True  # the official --normalize_on: L2-normalised projector outputs
        sim_weight: float = 250.0  # alpha; 1000 for CIFAR-100 (projector 4096-4096-128), 500 for Tiny ImageNet
        cov_weight: float = 1.0
        init_scale: float = 1.0  # R_ini: the covariance estimates start at init_scale x I
        cov_forgetting: float = 0.01  # la_R: the weight of the past R (0.1 for Tiny ImageNet)
        mean_forgetting: float = 0.01  # la_mu
        eps: float = 1e-8  # R_eps_weight: log det(R + eps I)

    def build_modules(self):
        super().build_modules()
        dim = self.mcfg.proj_out
        self.register_buffer("running_mean", torch.zeros(2, dim, dtype=torch.float64))
        identity = torch.eye(dim, dtype=torch.float64).expand(2, dim, dim)
        self.register_buffer("running_cov", self.mcfg.init_scale * identity.clone())

    def loss(self, views):
        m = self.mcfg
        if m.normalize:
            views = [F.normalize(z, dim=-1) for z in views]
        loss, (mean, cov) = corinfomax_loss(
            *views, self.running_mean, self.running_cov, mean_forgetting=m.mean_forgetting,
            cov_forgetting=m.cov_forgetting, eps=m.eps, sim_weight=m.sim_weight, cov_weight=m.cov_weight,
            return_parts=True,
        )  # (total, {"invariance", "log_det"})
        self.running_mean.copy_(mean)
        self.running_cov.copy_(cov)
        return loss
