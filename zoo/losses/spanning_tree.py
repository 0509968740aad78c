"""T-REGS (Mordacq, Loiseaux, Kalogeiton and Oudot, NeurIPS 2025, "T-REGS: Minimum Spanning Tree Regularization for
Self-Supervised Learning", arXiv 2510.23484): the length of the Euclidean minimum spanning tree (MST) of a batch of
embeddings, maximised, with a soft constraint that keeps the embeddings near the unit sphere.

No official code could be read here (the project page links github.com/jumdc/t-regs, of which no copy was
reachable): the formulas are the paper's, as its project page (jumdc.github.io/tregs) writes them,

    L_E(Z) = -1/n E(MST(Z)),   E(G) = sum over the edges (z, z') of G of ||z - z'||_2,
    L_S(Z) = 1/n sum_i (||z_i||_2 - 1)^2,
    T-REG(Z) = gamma L_E(Z) + lambda L_S(Z),
    T-REGS(Z, Z') = beta L_MSE(Z, Z') + T-REG(Z) + T-REG(Z'),   L_MSE = 1/n sum_i ||z_i - z'_i||_2^2,

one MST per view batch (built with Kruskal's algorithm there; any MST algorithm gives the same tree up to ties, and
the same length). The tree is chosen on detached distances; the gradient flows through the lengths of its edges.
"""

import torch
from torch import Tensor

from zoo.losses.shared import check_views, total_or_parts
from zoo.spectral import float32_math, gather


@torch.no_grad()
def minimum_spanning_tree(z: Tensor) -> Tensor:
    """The n - 1 edges of the Euclidean minimum spanning tree of the rows of `z` (n, D), as an (n - 1, 2) tensor of row
    indices: Prim's algorithm on the n x n distances, each round adding the nearest row outside the tree (n - 1 rounds
    of O(n) tensor operations, without a host synchronisation)."""
    n = z.shape[0]
    distances = torch.cdist(z, z)
    edges = torch.empty(max(n - 1, 0), 2, dtype=torch.long, device=z.device)
    inside = torch.zeros(n, dtype=torch.bool, device=z.device)
    inside[0] = True
    nearest = distances[0].masked_fill(inside, float("inf"))  # each outside row's distance to the tree
    parent = torch.zeros(n, dtype=torch.long, device=z.device)  # ... and the tree row it is nearest to
    for i in range(n - 1):
        row = nearest.argmin()
        edges[i, 0], edges[i, 1] = parent[row], row
        inside[row] = True
        closer = distances[row] < nearest
        parent = torch.where(closer, row, parent)
        nearest = torch.minimum(nearest, distances[row]).masked_fill(inside, float("inf"))
    return edges


def mst_length(z: Tensor) -> Tensor:
    """E(MST(z)): the summed length of the minimum spanning tree's edges, differentiable in `z` (n, D)."""
    edges = minimum_spanning_tree(z.detach())
    return (z[edges[:, 0]] - z[edges[:, 1]]).norm(dim=1).sum()


@float32_math
def t_reg_loss(z: Tensor, gamma: float = 0.2, lambd: float = 8e-4, return_parts: bool = False):
    """T-REG of one view's embeddings `z` (N, D): gamma L_E(Z) + lambda L_S(Z) (see the module), over the global
    batch under torch.distributed (one tree of every rank's rows; each rank gets the global value). Parts: length
    (gamma L_E), sphere (lambda L_S)."""
    z = gather(z)
    length = -gamma * mst_length(z) / z.shape[0]
    sphere = lambd * (z.norm(dim=1) - 1).square().mean()
    return total_or_parts((length + sphere, {"length": length, "sphere": sphere}), return_parts)


@float32_math
def t_regs_loss(z1: Tensor, z2: Tensor, beta: float = 10.0, gamma: float = 0.2, lambd: float = 8e-4,
                return_parts: bool = False):
    """T-REGS as a method (the paper's standalone form): beta L_MSE(Z, Z') + T-REG(Z) + T-REG(Z'), over the global
    batch. Parts: mse (beta L_MSE), length and sphere (both views' T-REG terms)."""
    check_views((z1, z2), "t_regs_loss")
    mse = beta * gather((z1 - z2).square().sum(dim=1)).mean()
    parts = [t_reg_loss(z, gamma, lambd, return_parts=True)[1] for z in (z1, z2)]
    length, sphere = (sum(p[name] for p in parts) for name in ("length", "sphere"))
    return total_or_parts((mse + length + sphere, {"mse": mse, "length": length, "sphere": sphere}), return_parts)
