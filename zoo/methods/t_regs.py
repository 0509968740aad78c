from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import FB_LARS
from zoo.losses.spanning_tree import t_regs_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("t_regs")
class TREGS(Method):
    """T-REGS (Mordacq, Loiseaux, Kalogeiton and Oudot, NeurIPS 2025, "T-REGS: Minimum Spanning Tree Regularization
    for Self-Supervised Learning", arXiv 2510.23484), the standalone method: an invariance term plus, on each view's
    batch of embeddings Z, the length of its Euclidean minimum spanning tree (maximised) and a soft constraint to the
    unit sphere,

        L = beta 1/n sum_i ||z_i - z'_i||^2 + T-REG(Z) + T-REG(Z'),
        T-REG(Z) = gamma (-1/n E(MST(Z))) + lambda 1/n sum_i (||z_i|| - 1)^2

    (`zoo.losses.spanning_tree.t_regs_loss`). No official code exists to read: the project page
    (jumdc.github.io/tregs) links github.com/jumdc/t-regs, and no copy of it is to be had (the authors' public
    repositories hold only an earlier, unrelated persistence-diagram loss, jumdc/sim-RIPS); of the paper, only its
    opening (abstract and introduction) could be read here, not its method section, appendix or tables. So the loss
    is checked against an independent float64 oracle (scipy's minimum spanning tree, finite differences), and each
    value comes from:

    - the three terms, one tree and one sphere term per view (T-REG(Z) + T-REG(Z'), not one tree of both views), on
      the projector's raw outputs (not normalised: the sphere term is what keeps their norms near 1), beta 10,
      gamma 0.2, lambda 8e-4: the project page's formula and weights (the paper's abstract names the tree's length;
      a summary of the paper, arxivlens.com, the three terms: view invariance, the MST length, a soft sphere
      constraint);
    - the projector 8192-8192-8192 (BatchNorm + ReLU between, no last bias) and the optimiser (LARS, lr 0.2 x
      batch/256, weight decay 1e-6, biases and norms not adapted; zoo.config.FB_LARS): VICReg's official ones
      (facebookresearch/vicreg main_vicreg.py), the method whose variance and covariance terms T-REG takes the place
      of, guessed for want of the authors';
    - batch, epochs, crops and augmentations: none published that could be read; the zoo's two-crop defaults.

    No recipe: the paper's training settings and tables were not readable. The default run (digits_m) takes other
    weights, zoo/configs/embedded/t_regs.yaml: with these the embeddings collapse within its 105 steps. Loss parts:
    mse, length and sphere (both views'), as weighted in the total. Under DDP the trees and means cover the global
    batch. The same term is a regulariser of any method: regularizer=t_regs (zoo/regularizers/t_regs.py)."""

    optimizer_defaults: ClassVar[dict] = FB_LARS  # VICReg's (facebookresearch/vicreg): none of the authors' readable

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [8192, 8192])  # VICReg's (main_vicreg.py --mlp)
        proj_out: int = 8192
        proj_last_bias: bool = False
        beta: float = 10.0  # the invariance weight (project page)
        gamma: float = 0.2  # the MST length weight (project page)
        lambd: float = 8e-4  # the sphere constraint's weight (project page)

    def loss(self, views):
        z1, z2 = views
        m = self.mcfg
        return t_regs_loss(z1, z2, beta=m.beta, gamma=m.gamma, lambd=m.lambd, return_parts=True)
