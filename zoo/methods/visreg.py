from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from zoo.backbones import build_mlp
from zoo.errors import ZooError
from zoo.losses.sigreg import visreg_loss
from zoo.methods.base import MethodConfig
from zoo.methods.lejepa import LeJEPA
from zoo.registry import register_method


@register_method("visreg")
class VISReg(LeJEPA):
    """VISReg (Wu, Balestriero & Levine, 2026, arXiv 2606.02572, "VISReg: Variance-Invariance-Sketching
    Regularization for JEPA training"): LeJEPA's JEPA training with SIGReg replaced by a decoupled
    regulariser of each crop's projections of the global batch (`zoo.losses.sigreg.visreg_loss`)::

        L = (1 - lambd) mean_{v,i,d} (c_id - z_vid)^2 + lambd mean_v (scale + shape + centre)     (Eq. 8)
        scale  = 1/D sum_j (1 - sigma_j)^2,   sigma_j the batch's standard deviation (1/N)      (Eq. 1)
        centre = 1/D sum_j mu_j^2                                                                 (Eq. 6)
        shape  = squared sliced 2-Wasserstein distance of (x - mu) / (sg(sigma) + eps) to N(0, I)  (Eqs. 2, 5)
                 along `num_slices` random unit directions: mean over the directions and the sorted
                 projections of (projection - Phi^-1(i / (N + 1)))^2

    Implemented from the paper: the official code (HaiyuWu/visreg) is under a non-commercial licence and
    was neither read nor run. The paper's body could not be opened here beyond its abstract and the
    authors' project page (haiyuwu.github.io/visreg: the scale term, the shape term on the batch with its
    scale normalised out); the formula and the values below are the paper's as cited, equation and table
    by number, by lightly-ai/lightly's implementation from the paper's Algorithm 1 (lightly/loss/
    visreg_loss.py, commit e8d317f, and the commit message of its ImageNet benchmark, 8985ad9), cross-read
    against the project page:
    - the three terms with weight 1 each, lambd 0.9 (the paper's ImageNet-1K value, Tables 3 and 12; it
      advises 0.6 on small data sets and a larger shape weight on long-tailed or low-rank data);
    - sigma over the batch with 1/N, no eps in the scale term; the shape term's standardisation by
      sigma under a stop-gradient (`detach_std`; False lets its gradient through sigma) plus eps 1e-4;
      target quantiles Phi^-1(i / (N + 1)), the 1-D distances averaged over slices and samples;
    - 2048 slices drawn afresh at every step, unit-normalised Gaussian columns (the ImageNet setting);
    - the projector 2048 -> 2048 -> 256, BatchNorm and GELU on the hidden layers (App. A.1, Table 4);
    - AdamW lr 9e-4 (ViT, 100 epochs, Table 3); the invariance term is LeJEPA's centroid of the global
      crops predicted by every crop; the paper's views are 4 global + 6 local crops (App. A.1: `data.views`).
    The zoo's own choices where the paper's text was not read: weight decay 5e-4 and the schedule (LeJEPA's
    here); the same directions on every rank, drawn from a generator seeded by the step counter
    `slice_step` (a buffer: a resumed run draws what an uninterrupted one would), and the statistics over
    the gathered global batch, so the loss equals the single-process one. The paper draws each GPU's
    slices independently (Section 3.2), so its effective number of slices is num_slices x the number of
    GPUs: the same on one GPU. The variance is floored at the dtype's smallest normal number before its
    square root (a zero, not a NaN, gradient at exact collapse; no effect otherwise). No recipe: the
    paper's training tables (batch size, weight decay, schedule, results) could not be read here."""

    # Table 3 (ViT, 100 epochs): lr 9e-4, not scaled with the batch; the weight decay is LeJEPA's (paper unread)
    optimizer_defaults: ClassVar[dict] = {**LeJEPA.optimizer_defaults, "lr": 9e-4}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
        proj_out: int = 256  # App. A.1 / Table 4
        lambd: float = 0.9  # the regulariser's weight; the prediction term's is 1 - lambd
        scale: float = 1.0  # the weights of the regulariser's three terms
        shape: float = 1.0
        centre: float = 1.0
        num_slices: int = 2048
        eps: float = 1e-4  # added to sg(sigma) in the shape term's standardisation
        detach_std: bool = True  # the shape term standardises by sigma under a stop-gradient

    def build_projector(self):
        m = self.mcfg  # App. A.1: BatchNorm and GELU after each hidden Linear
        return build_mlp(self.feature_dim, m.proj_hidden, m.proj_out, m.proj_hidden_bias, m.proj_last_bias, m.proj_last_bn,
                         m.proj_hidden_bn, activation=nn.GELU)

    def build_modules(self):
        super().build_modules()  # LeJEPA's projector checks and the `slice_step` buffer
        m = self.mcfg
        if min(m.scale, m.shape, m.centre) < 0 or m.eps <= 0:
            raise ZooError(f"visreg needs non-negative term weights and eps > 0, got scale={m.scale}, "
                           f"shape={m.shape}, centre={m.centre}, eps={m.eps}")

    def loss(self, views):
        m = self.mcfg
        ordered, global_views, directions = self.sliced_views(views)
        return visreg_loss(*ordered, global_views=global_views, directions=directions,
                           lambd=m.lambd, scale=m.scale, shape=m.shape, centre=m.centre, eps=m.eps,
                           detach_std=m.detach_std, return_parts=True)  # (total, {prediction, scale, shape, centre})
