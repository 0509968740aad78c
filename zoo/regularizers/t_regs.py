from dataclasses import dataclass

from zoo.losses.spanning_tree import t_reg_loss
from zoo.registry import register_regularizer
from zoo.regularizers import Regularizer, RegularizerConfig


@register_regularizer("t_regs")
class TREGS(Regularizer):
    """T-REGS as an auxiliary term (Mordacq, Loiseaux, Kalogeiton and Oudot, NeurIPS 2025, arXiv 2510.23484): on each
    crop batch Z the online projector embeds, gamma x (-1/n the length of Z's minimum spanning tree) + lambda x
    (1/n sum_i (||z_i|| - 1)^2) (`zoo.losses.spanning_tree.t_reg_loss`), summed over the batches:

        total = loss + weight x sum_v T-REG(Z_v).

    The paper writes the auxiliary form beta L_SSL + T-REGS; weight 1 is beta = 1, and weight w the same direction as
    beta = 1 / w (times w). No official code was readable here (see zoo/losses/spanning_tree.py): the formula is the
    paper's; gamma 0.2 and lambda 8e-4 are the values the standalone method takes (zoo/methods/t_regs.py)."""

    reads_embeddings = True

    @dataclass
    class Config(RegularizerConfig):
        weight: float = 1.0
        gamma: float = 0.2  # the MST length term
        lambd: float = 8e-4  # the sphere constraint

    def term(self, inputs, state):
        return sum(t_reg_loss(z, self.rcfg.gamma, self.rcfg.lambd) for z in inputs.embeddings)
