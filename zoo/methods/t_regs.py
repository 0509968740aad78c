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

    (`zoo.losses.spanning_tree.t_regs_loss`), beta 10, gamma 0.2, lambda 8e-4. Implemented from the paper: the
    project page (jumdc.github.io/tregs) links github.com/jumdc/t-regs, of which no copy could be read here, so the
    loss is checked against an independent float64 oracle (scipy's minimum spanning tree, finite differences) and
    the projector and optimiser are not the authors' but VICReg's official ones (facebookresearch/vicreg
    main_vicreg.py: 8192-8192-8192, LARS lr 0.2 x batch/256, weight decay 1e-6), the method whose variance and
    covariance terms T-REG takes the place of. Loss parts: mse, length and sphere (both views'), as weighted in the
    total. Under DDP the trees and means cover the global batch. The same term is a regulariser of any method:
    regularizer=t_regs (zoo/regularizers/t_regs.py)."""

    optimizer_defaults: ClassVar[dict] = FB_LARS  # VICReg's (no published optimiser could be read)

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [8192, 8192])  # VICReg's
        proj_out: int = 8192
        proj_last_bias: bool = False
        beta: float = 10.0  # the MSE (invariance) weight
        gamma: float = 0.2  # the MST length weight
        lambd: float = 8e-4  # the sphere constraint's weight

    def loss(self, views):
        z1, z2 = views
        m = self.mcfg
        return t_regs_loss(z1, z2, beta=m.beta, gamma=m.gamma, lambd=m.lambd, return_parts=True)
