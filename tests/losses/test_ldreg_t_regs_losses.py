"""LDReg's term against the numbers the official criteria computed (tests/fixtures/ldreg_reference.json: HanxunH/LDReg
NTXentLIDReg and BYOLLIDReg, float64, one process and two gloo ranks), and T-REGS' terms, whose authors' code could
not be read, against an independent float64 oracle: scipy's minimum spanning tree, the gradient of its edges' lengths
written out in numpy, and finite differences. Both on two real gloo processes as well."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gloo_ranks import run_on_gloo_ranks
from scipy.sparse.csgraph import minimum_spanning_tree as scipy_mst
from scipy.spatial.distance import cdist

from zoo.losses import byol_loss, nt_xent_loss
from zoo.losses.local_dimension import ldreg_loss, lid_mom
from zoo.losses.spanning_tree import minimum_spanning_tree, mst_length, t_reg_loss, t_regs_loss

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "ldreg_reference.json").read_text())
WORLD_SIZE = 2
# each official case: the zoo's term of the fixture's inputs, (the views' keys, ldreg_loss arguments)
LDREG_CASES = {
    "simclr_features": (("f0", "f1"), {"k": 5}),
    "simclr_embeddings": (("z0", "z1"), {"k": 5}),
    "simclr_k_clamped": (("f0", "f1"), {"k": 64}),
    "byol_features": (("f0", "f1"), {"k": 5, "reduction": "per_view", "references": ("f0_m", "f1_m")}),
}


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


def ldreg_case(name, rows=slice(None)):
    """(term, {key: input leaf}) of an official case on the fixture's `rows` of each view."""
    inputs = {key: tensor(value)[rows] for key, value in FIXTURE["inputs"].items()}
    keys, arguments = LDREG_CASES[name]
    leaves = {key: inputs[key].requires_grad_() for key in keys}
    arguments = {**arguments, "references": tuple(inputs[key] for key in arguments.get("references", ()))}
    return ldreg_loss(*leaves.values(), **arguments), leaves, inputs


def check_against(expected, term, leaves):
    """The term's value and its gradient (the official total's minus its main loss's) equal the official ones."""
    term.backward()
    assert term.item() == pytest.approx(expected["term"], abs=1e-12)
    for key, leaf in leaves.items():
        official = tensor(expected[f"{key}_grad"]) - tensor(expected[f"{key}_main_grad"])
        assert torch.allclose(leaf.grad, official, rtol=0, atol=1e-10), key


@pytest.mark.parametrize("name", LDREG_CASES)
def test_ldreg_term_equals_the_official_criterion(name):
    term, leaves, _ = ldreg_case(name)
    check_against(FIXTURE["single"][name], term, leaves)


def test_ldreg_added_to_simclr_and_byol_is_the_official_total():
    """The official criteria's totals (alpha 1): the zoo's NT-Xent (temperature 0.1) or BYOL loss plus the term."""
    term, _, x = ldreg_case("simclr_features")
    total = nt_xent_loss(x["z0"], x["z1"], temperature=0.1) + term
    assert total.item() == pytest.approx(FIXTURE["single"]["simclr_features"]["loss"], abs=1e-12)
    term, _, x = ldreg_case("byol_features")
    total = byol_loss(tensor(FIXTURE["inputs"]["p0"]), x["z1_m"]) + byol_loss(tensor(FIXTURE["inputs"]["p1"]), x["z0_m"]) + term
    assert total.item() == pytest.approx(FIXTURE["single"]["byol_features"]["loss"], abs=1e-12)


def test_lid_estimate_is_the_method_of_moments_of_the_k_nearest():
    """LID_i = m / (w_k - m) on hand-made distances: row 0's neighbours at 1 and 2 (m = 1.5), its third at 3 (w_3):
    LID 1.5 / 1.5; k is clamped to the data's rows - 2 (here 3)."""
    data = torch.tensor([[0.0], [1.0], [-2.0], [3.0], [10.0]], dtype=torch.float64)
    assert lid_mom(data, data, k=3)[0].item() == pytest.approx(1.0)
    assert torch.equal(lid_mom(data, data, k=30), lid_mom(data, data, k=3))


# ---- T-REGS: the oracle ------------------------------------------------------------------------------------------
def oracle_t_reg(z, gamma, lambd):
    """(value, gradient) of gamma (-1/n E(MST(z))) + lambda 1/n sum_i (||z_i|| - 1)^2 in numpy, the tree scipy's."""
    n = len(z)
    tree = scipy_mst(cdist(z, z)).tocoo()
    grad = np.zeros_like(z)
    length = 0.0
    for i, j in zip(tree.row, tree.col):
        edge = z[i] - z[j]
        norm = np.linalg.norm(edge)
        length += norm
        grad[i] += edge / norm
        grad[j] -= edge / norm
    norms = np.linalg.norm(z, axis=1)
    value = -gamma * length / n + lambd * np.mean((norms - 1) ** 2)
    grad = -gamma * grad / n + lambd * 2 * ((norms - 1) / norms)[:, None] * z / n
    return value, grad


def points(seed, n=9, d=4):
    return torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 0.7


@pytest.mark.parametrize("n, d", [(2, 3), (9, 4), (40, 3)])
def test_the_spanning_tree_is_scipys(n, d):
    z = points(n, n, d)
    edges = minimum_spanning_tree(z)
    tree = scipy_mst(cdist(z, z)).tocoo()
    assert {frozenset(e) for e in edges.tolist()} == {frozenset((i, j)) for i, j in zip(tree.row, tree.col)}
    assert mst_length(z).item() == pytest.approx(tree.sum(), abs=1e-12)


def test_t_reg_equals_the_oracle_and_finite_differences():
    z = points(1)
    leaf = z.clone().requires_grad_()
    value = t_reg_loss(leaf, gamma=0.2, lambd=8e-4)
    value.backward()
    expected, grad = oracle_t_reg(z.numpy(), 0.2, 8e-4)
    assert value.item() == pytest.approx(expected, abs=1e-12)
    assert np.allclose(leaf.grad.numpy(), grad, rtol=0, atol=1e-12)
    eps, flat = 1e-6, z.flatten()
    numeric = []
    for index in range(flat.numel()):  # central differences of the oracle's value (scipy's tree at each point)
        step = torch.zeros_like(flat)
        step[index] = eps
        plus, minus = (oracle_t_reg((flat + s).view_as(z).numpy(), 0.2, 8e-4)[0] for s in (step, -step))
        numeric.append((plus - minus) / (2 * eps))
    assert np.allclose(leaf.grad.flatten().numpy(), numeric, rtol=0, atol=1e-8)


def test_t_regs_is_beta_mse_plus_both_views_t_reg():
    z1, z2 = points(2), points(3)
    leaves = [z1.clone().requires_grad_(), z2.clone().requires_grad_()]
    total, parts = t_regs_loss(*leaves, beta=10.0, gamma=0.2, lambd=8e-4, return_parts=True)
    total.backward()
    (v1, g1), (v2, g2) = (oracle_t_reg(z.numpy(), 0.2, 8e-4) for z in (z1, z2))
    diff = (z1 - z2).numpy()
    mse = np.mean(np.sum(diff**2, axis=1))
    assert total.item() == pytest.approx(10 * mse + v1 + v2, abs=1e-12)
    assert sum(parts.values()).item() == pytest.approx(total.item(), abs=1e-12) and set(parts) == {"mse", "length", "sphere"}
    assert np.allclose(leaves[0].grad.numpy(), 10 * 2 * diff / len(diff) + g1, rtol=0, atol=1e-12)
    assert np.allclose(leaves[1].grad.numpy(), -10 * 2 * diff / len(diff) + g2, rtol=0, atol=1e-12)


# ---- two gloo ranks -----------------------------------------------------------------------------------------------
def _t_regs_run(rows=slice(None)):
    z1, z2 = (points(seed, n=8)[rows].requires_grad_() for seed in (4, 5))
    value = t_regs_loss(z1, z2, beta=10.0, gamma=0.2, lambd=8e-4)
    value.backward()
    return value.detach(), z1.grad, z2.grad


def _worker(rank, single):
    """LDReg: rank r's term is the mean of the official ranks' (the global value) and its input gradient the official
    rank's; T-REGS: the single-process value of the global batch, each rank's gradient world_size x its rows'."""
    half = len(FIXTURE["inputs"]["f0"]) // WORLD_SIZE
    rows = slice(rank * half, (rank + 1) * half)
    for name in LDREG_CASES:
        term, leaves, _ = ldreg_case(name, rows)
        official = FIXTURE["ddp"][rank][name]
        mean_of_ranks = sum(r[name]["term"] for r in FIXTURE["ddp"]) / WORLD_SIZE
        check_against({**official, "term": mean_of_ranks}, term, leaves)
    value, g1, g2 = _t_regs_run(slice(rank * 4, (rank + 1) * 4))
    assert abs(value.item() - single[0].item()) < 1e-12
    assert torch.allclose(g1, WORLD_SIZE * single[1][rank * 4:(rank + 1) * 4], rtol=0, atol=1e-12)
    assert torch.allclose(g2, WORLD_SIZE * single[2][rank * 4:(rank + 1) * 4], rtol=0, atol=1e-12)


def test_ldreg_and_t_regs_on_two_gloo_ranks():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_t_regs_run)
