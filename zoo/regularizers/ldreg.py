from dataclasses import dataclass

from zoo.errors import ZooError
from zoo.losses.local_dimension import ldreg_loss
from zoo.names import LIDReduction, Representation
from zoo.registry import register_regularizer
from zoo.regularizers import Regularizer, RegularizerConfig


@register_regularizer("ldreg")
class LDReg(Regularizer):
    """LDReg (Huang, Campello, Erfani, Ma, Houle and Bailey, ICLR 2024, "LDReg: Local Dimensionality Regularized
    Self-Supervised Learning"): minus the mean |log LID| of the backbone's features, each sample's local intrinsic
    dimension estimated by the method of moments from its k nearest neighbours in the batch
    (`zoo.losses.local_dimension.ldreg_loss`); minimised, it raises the local dimension of the representation.

        total = loss + weight x (-mean_i |log LID_i|)

    Official code: HanxunH/LDReg (lid.py lid_mom_est; losses/ntxent_lid_reg.py NTXentLIDReg for SimCLR,
    losses/byol_loss.py BYOLLIDReg for BYOL). Defaults: its SimCLR configs' (configs/simclr_lid_l1_f_mom_bs_2048_e100:
    alpha 0.01, est_type mom, reg_type l1, lid_type f: the backbone's pooled features, the criterion's warm-up of 10
    epochs without the term), k 64 (the configs hold runs at k 16, 32, 64 and 128; 64 is the middle one every
    method's configs have); BYOL's configs weigh it 0.005 with `reduction=per_view` (the recipe
    imagenet/byol_ldreg). The term reads the features the method gives its online probe (the largest crops': both
    views of a two-view method); `representation=embeddings` reads the projector's outputs (the code's lid_type z).
    `per_view` takes the EMA target's backbone features of the same step as further neighbours where the method has
    an EMA target with a backbone (BYOL's momentum encoder), as BYOLLIDReg does."""

    @dataclass
    class Config(RegularizerConfig):
        weight: float = 0.01  # the code's alpha (SimCLR's configs; BYOL's 0.005)
        k: int = 64  # neighbours; clamped to the data rows - 2 on each device, as lid_mom_est does
        representation: Representation = Representation.features  # lid_type f (backbone) | z (projector)
        reduction: LIDReduction = LIDReduction.joint  # joint: NTXentLIDReg; per_view: BYOLLIDReg
        warmup_epochs: int = 10  # epochs without the term (the criterion's warmup_epochs)

    def __init__(self, config=None):
        super().__init__(config)
        if self.rcfg.k < 2:
            raise ZooError(f"method.regularizer.k={self.rcfg.k}: LDReg's estimate needs at least 2 neighbours")
        self.reads_embeddings = self.rcfg.representation == Representation.embeddings
        self.reads_target_features = (self.rcfg.reduction == LIDReduction.per_view
                                      and self.rcfg.representation == Representation.features)

    def active(self, state):
        return state.epoch >= self.rcfg.warmup_epochs

    def term(self, inputs, state):
        views = inputs.embeddings if self.reads_embeddings else inputs.features
        return ldreg_loss(*views, k=self.rcfg.k, reduction=self.rcfg.reduction, references=tuple(inputs.target_features))
