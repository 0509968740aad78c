"""DCL, DCLW, TiCo, EMP-SSL and SimDINO on two real gloo processes, each with half the batch: the loss is the single-process loss
of the global batch, each rank's input gradient world_size x the single-process gradient of its half (what DDP's mean
turns into the single-process parameter gradient), and TiCo's running matrix is the global batch's on both ranks.
(EMP-SSL's four patches are the two inputs and two row-wise functions of them, so each rank's rows stay its own.)

DCL and TiCo also equal, rank by rank, what lightly-ai/lightly's losses with gather_distributed=True computed on two
gloo ranks (tests/fixtures/dcl_reference.json, tico_reference.json, "ddp"): lightly's DCL averages each rank's own
anchors (the ranks' mean is the global loss), its TiCo computes the global loss on every rank.

SimDINO equals, rank by rank, what RobinWu218/SimDINO's MCRLoss computed on two gloo ranks (tests/fixtures/
simdino_reference.json, "ddp"): each rank's own loss, its coding rate scaled by the world size (--reduce_cov 0, the
default) or of the Gram matrices summed over the ranks (--reduce_cov 1)."""

import json
from pathlib import Path

import torch
from gloo_ranks import run_on_gloo_ranks

from zoo.losses import dcl_loss
from zoo.losses.coding_rate import emp_ssl_loss
from zoo.losses.spectral_family import tico_loss
from zoo.methods.simdino import simdino_loss

WORLD_SIZE = 2
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


def _inputs(seed, n=8, d=5):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(2)]


COV = torch.eye(5, dtype=torch.float64) / 7
CASES = {  # name -> the loss of (z1, z2), returning (loss, state or None)
    "dcl": lambda z1, z2: (dcl_loss(z1, z2, temperature=0.2), None),
    "dclw": lambda z1, z2: (dcl_loss(z1, z2, temperature=0.2, sigma=0.5), None),
    "tico": lambda z1, z2: tico_loss(z1, z2, COV, beta=0.9, rho=8.0),
    "tico_batch_cov_grad": lambda z1, z2: tico_loss(z1, z2, COV, beta=0.5, rho=20.0, batch_cov_grad=True),
    "emp_ssl": lambda z1, z2: (emp_ssl_loss(z1, z2, z1 - z2, z1 * z2, patch_sim=3.0, tcr=0.7, eps=0.3), None),
}


def _run(name, z1, z2):
    leaves = [z1.clone().requires_grad_(), z2.clone().requires_grad_()]
    value, state = CASES[name](*leaves)
    value.backward()
    return value.detach(), [t.grad for t in leaves], state


def _references():
    """Each case's single-process loss, input gradients and state, before the process group exists."""
    return {name: _run(name, *_inputs(seed)) for seed, name in enumerate(CASES)}


def _worker(rank, references):
    rows = slice(rank * 4, (rank + 1) * 4)
    for seed, name in enumerate(CASES):
        value, grads, state = _run(name, *(t[rows] for t in _inputs(seed)))
        expected_value, expected_grads, expected_state = references[name]
        assert abs(value.item() - expected_value.item()) < 1e-12, (name, rank)
        for got, whole in zip(grads, expected_grads):
            assert torch.allclose(got, WORLD_SIZE * whole[rows], rtol=0, atol=1e-12), (name, rank)
        if state is not None:
            assert torch.allclose(state, expected_state, rtol=0, atol=1e-15), (name, rank)
    _check_lightly(rank, rows)
    _check_simdino(rank)


def _check_lightly(rank, rows):
    dcl = json.loads((FIXTURES / "dcl_reference.json").read_text())["ddp"]
    inputs, theirs = dcl["dcl_inputs"], dcl["ranks"]
    z1, z2 = tensor(inputs["z1"])[rows].requires_grad_(), tensor(inputs["z2"])[rows].requires_grad_()
    loss = dcl_loss(z1, z2, temperature=inputs["temperature"])
    loss.backward()
    assert abs(loss.item() - sum(r["dcl"]["loss"] for r in theirs) / WORLD_SIZE) < 1e-12  # the mean of lightly's ranks
    assert torch.allclose(z1.grad, tensor(theirs[rank]["dcl"]["z1_grad"]), rtol=0, atol=1e-12)
    assert torch.allclose(z2.grad, tensor(theirs[rank]["dcl"]["z2_grad"]), rtol=0, atol=1e-12)
    tico = json.loads((FIXTURES / "tico_reference.json").read_text())["ddp"]
    inputs, theirs = tico["inputs"], tico["ranks"][rank]
    z1, z2 = tensor(inputs["z1"])[rows].requires_grad_(), tensor(inputs["z2"])[rows].requires_grad_()
    loss, cov = tico_loss(z1, z2, torch.zeros(5, 5, dtype=torch.float64), beta=inputs["beta"], rho=inputs["rho"])
    loss.backward()
    assert abs(loss.item() - theirs["loss"]) < 1e-12
    assert torch.allclose(z1.grad, tensor(theirs["z1_grad"]), rtol=0, atol=1e-12)
    assert torch.allclose(z2.grad, tensor(theirs["z2_grad"]), rtol=0, atol=1e-12)
    assert torch.allclose(cov, tensor(theirs["cov_after"]), rtol=0, atol=1e-15)


def _check_simdino(rank):
    from reference_inputs import scaled_views

    for case in json.loads((FIXTURES / "simdino_reference.json").read_text())["ddp"]:
        assert case["world_size"] == WORLD_SIZE
        half = case["n"] // WORLD_SIZE
        rows = slice(rank * half, (rank + 1) * half)
        student = [x.detach()[rows].clone().requires_grad_() for x in scaled_views(case["seed"], case["views"], case["n"], case["d"])]
        teacher = [x.detach()[rows] for x in scaled_views(case["seed"] + 1000, 2, case["n"], case["d"])]
        loss, parts = simdino_loss(*student, teacher=teacher, eps=case["eps"], coeff=case["coeff"], expa_type=case["expa_type"],
                                   reduce_cov=bool(case["reduce_cov"]), return_parts=True)
        loss.backward()
        theirs = case["ranks"][rank]
        assert abs(loss.item() - theirs["loss"]) < 1e-12, (case["reduce_cov"], rank)
        assert abs(parts["expansion"].item() + theirs["expa_loss"]) < 1e-12, (case["reduce_cov"], rank)
        for crop, grad in zip(student, theirs["grads"]):
            assert torch.allclose(crop.grad, tensor(grad), rtol=0, atol=1e-12), (case["reduce_cov"], rank)


def test_two_gloo_ranks_reproduce_the_single_process_loss_gradient_and_running_matrix():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_references)
