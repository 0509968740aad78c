from dataclasses import dataclass

from zoo.losses import dcl_loss
from zoo.methods.simclr import SimCLR
from zoo.registry import register_method


@register_method("dcl")
class DCL(SimCLR):
    """Decoupled contrastive learning (DCL; Yeh et al., ECCV 2022): SimCLR with the positive pair taken out of
    InfoNCE's denominator, L_i = -s(z_i, z'_i) + log sum_{j != i} [e^s(z_i, z_j) + e^s(z_i, z'_j)],
    s = cosine / temperature, averaged over both views (`zoo.losses.dcl_loss`; the negatives cover the global
    batch under DDP).

    The authors published no code: the loss is the paper's eq. 6 with lightly-ai/lightly lightly/loss/dcl_loss.py
    (``DCLLoss``) as the numeric reference (tests/fixtures/dcl_reference.json; raminnakhli/Decoupled-Contrastive-
    Learning loss/dcl.py, which lightly's follows, sums the two directions: 2 x this loss). The paper trains
    DCL inside SimCLR, so everything else is the zoo's SimCLR with its defaults (google-research/simclr: the
    projection head 2048 -> 2048 -> 128 with BN, the views through backbone and head as one batch, LARS lr
    0.3 x batch/256, weight decay 1e-4) and temperature 0.1 (lightly's and raminnakhli's default). Two views."""

    num_views = 2

    @dataclass
    class Config(SimCLR.Config):
        pass

    def loss(self, views):
        return dcl_loss(*views, temperature=self.mcfg.temperature)
