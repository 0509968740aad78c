from dataclasses import dataclass

from zoo.losses import dcl_loss
from zoo.methods.dcl import DCL
from zoo.registry import register_method


@register_method("dclw")
class DCLW(DCL):
    """DCLW (Yeh et al., ECCV 2022): DCL (`zoo.methods.dcl`) with the positive term of each sample weighted by
    the negative von Mises-Fisher weight w_i = 2 - N softmax_i(z_i . z'_i / sigma) over the global batch,
    sigma 0.5, so that the pairs that already agree pull less (`zoo.losses.dcl_loss` with sigma; the weight
    is a constant in the backward).

    No authors' code exists: the numeric reference is lightly-ai/lightly lightly/loss/dcl_loss.py
    ``DCLWLoss`` (tests/fixtures/dcl_reference.json). raminnakhli/Decoupled-Contrastive-Learning loss/dcl.py
    ``DCLW`` lets the weight carry gradient and sums the two directions; lightly's DDP normalises the weights
    over each rank's batch, the zoo over the global batch (the same on one device). Every other default is
    DCL's (the zoo's SimCLR)."""

    @dataclass
    class Config(DCL.Config):
        sigma: float = 0.5

    def loss(self, views):
        return dcl_loss(*views, temperature=self.mcfg.temperature, sigma=self.mcfg.sigma)
