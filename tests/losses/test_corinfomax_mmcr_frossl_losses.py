"""CorInfoMax's, MMCR's and FroSSL's losses against the numbers the official code computed, and their DDP equality
on two gloo processes (the methods: tests/methods/test_corinfomax.py, test_corinfomax_mmcr_frossl.py).

tests/fixtures/spectral_family_reference.json holds the values and input gradients that the official losses
(serdarozsoy/corinfomax-ssl, ThomasYerxa/mmcr, OFSkean/FroSSL; the file names the commits and says how each
was called) gave in float64 on inputs drawn from seeds, with shapes and settings beyond the defaults: 2-5
views, more or fewer samples than features, CorInfoMax over several steps with other forgetting factors,
eps, weights and initial R, without the L2 normalisation too. `_inputs` draws the same inputs again.
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_gloo_ranks
from reference_inputs import rel_err, scaled_views

from zoo.errors import ZooError
from zoo.losses.spectral_family import corinfomax_loss, frossl_loss, mmcr_loss

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "spectral_family_reference.json").read_text())
WORLD_SIZE = 2


def _initial_state(d, init_scale):
    return torch.zeros(2, d, dtype=torch.float64), init_scale * torch.eye(d, dtype=torch.float64).expand(2, d, d)


def _tensor(values):
    return torch.tensor(values, dtype=torch.float64)


# ---- (a) the official numbers, float64 ------------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(OFFICIAL["corinfomax"])))
def test_corinfomax_equals_the_official_loss_gradients_and_running_covariances(index):
    case = OFFICIAL["corinfomax"][index]
    mean, cov = _initial_state(case["d"], case["init_scale"])
    settings = {k: case[k] for k in ("mean_forgetting", "cov_forgetting", "eps", "sim_weight", "cov_weight")}
    for step, expected in enumerate(case["per_step"]):
        raw = scaled_views(case["seed"] + step, 2, case["n"], case["d"])
        views = [F.normalize(z, dim=-1) for z in raw] if case["normalize"] else raw
        (total, parts), (mean, cov) = corinfomax_loss(*views, mean, cov, **settings, return_parts=True)
        total.backward()
        assert total.dtype == torch.float64 and not mean.requires_grad and not cov.requires_grad
        for name in ("value", "invariance", "log_det"):
            got = total if name == "value" else parts[name]
            assert rel_err(got.detach(), _tensor(expected[name])) < 1e-7, (step, name)
        for given, grad in zip(raw, expected["grads"]):
            assert rel_err(given.grad, _tensor(grad)) < 1e-7, step
    assert rel_err(mean, _tensor(case["final_state"]["mean"])) < 1e-7
    assert rel_err(cov, _tensor(case["final_state"]["cov"])) < 1e-7


@pytest.mark.parametrize("name, index", [(n, i) for n in ("mmcr", "frossl") for i in range(len(OFFICIAL[n]))])
def test_mmcr_and_frossl_equal_the_official_losses_and_gradients(name, index):
    case = OFFICIAL[name][index]
    views = scaled_views(case["seed"], case["views"], case["n"], case["d"])
    if name == "mmcr":
        value, parts = mmcr_loss(*views, lambd=case["lambd"], return_parts=True)
        assert rel_err(-parts["centroid_nuclear"].detach(), _tensor(case["global_nuc"])) < 1e-7
        local = parts["view_nuclear"].detach() * case["n"] / case["lambd"] if case["lambd"] else torch.zeros(())
        assert case["lambd"] == 0 or rel_err(local, _tensor(case["local_nuc"])) < 1e-7
    else:
        value = frossl_loss(*views, invariance_weight=case["invariance_weight"])
    value.backward()
    assert value.dtype == torch.float64
    assert rel_err(value.detach(), _tensor(case["value"])) < 1e-7
    for given, grad in zip(views, case["grads"]):
        assert rel_err(given.grad, _tensor(grad)) < 1e-7


def test_the_parts_sum_to_the_total_and_frossl_spreads_the_spectrum():
    views = [z.detach() for z in scaled_views(5, 3, 12, 8)]
    mean, cov = _initial_state(8, 1.0)
    for total, parts in (corinfomax_loss(*views[:2], mean, cov, return_parts=True)[0],
                         mmcr_loss(*views, lambd=0.3, return_parts=True), frossl_loss(*views, return_parts=True)):
        assert torch.allclose(total, sum(parts.values()), rtol=1e-12)
    # minimised, log ||C||_F^2 prefers a spread spectrum to a collapsed one (the official code's sign)
    collapsed = views[0][:, :1].expand(-1, 8) + 1e-3 * views[1]
    assert frossl_loss(collapsed, collapsed, return_parts=True)[1]["log_frobenius"] > \
        frossl_loss(views[0], views[0], return_parts=True)[1]["log_frobenius"]


def test_float32_maths_under_autocast_and_bad_input_is_one_error():
    views = [torch.randn(16, 8, dtype=torch.bfloat16) for _ in range(2)]
    mean, cov = torch.zeros(2, 8), torch.eye(8).expand(2, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert mmcr_loss(*views).dtype == frossl_loss(*views).dtype == torch.float32
        assert corinfomax_loss(*views, mean, cov)[0].dtype == torch.float32
    with pytest.raises(ZooError, match=r"corinfomax_loss needs the running state of 2 views of 8 features"):
        corinfomax_loss(*views, mean[:, :4], cov)
    with pytest.raises(ZooError, match="mmcr_loss needs at least 2 views"):
        mmcr_loss(views[0])


# ---- (b) two gloo processes -------------------------------------------------------------------------------
def _corinfomax_state(d):
    """A running state away from the initial one (a step already taken), float64."""
    gen = torch.Generator().manual_seed(99)
    mean = torch.randn(2, d, generator=gen, dtype=torch.float64) * 0.1
    half = torch.randn(2, d, d, generator=gen, dtype=torch.float64)
    return mean, half @ half.mT / d + 0.1 * torch.eye(d, dtype=torch.float64)


DDP_CASES = {  # name -> (loss on a list of local (n, D) views, views, N (global), D)
    "corinfomax": (lambda v: corinfomax_loss(*v, *_corinfomax_state(6), mean_forgetting=0.3, cov_forgetting=0.2,
                                             eps=1e-6, sim_weight=50.0)[0], 2, 16, 6),
    "mmcr": (lambda v: mmcr_loss(*v), 3, 12, 10),
    "mmcr_local": (lambda v: mmcr_loss(*v, lambd=0.5), 2, 16, 6),
    "frossl_more_samples": (lambda v: frossl_loss(*v, invariance_weight=2.0), 2, 20, 8),
    "frossl_more_features": (lambda v: frossl_loss(*v), 4, 8, 12),
}


def _corinfomax_new_state(views):
    return corinfomax_loss(*views, *_corinfomax_state(6), mean_forgetting=0.3, cov_forgetting=0.2)[1]


def _single_process():
    """Every case's inputs, loss and input gradients in this process alone (before the group exists)."""
    references = {}
    for seed, (name, (loss, views, n, d)) in enumerate(DDP_CASES.items()):
        inputs = scaled_views(seed, views, n, d)
        value = loss(inputs)
        value.backward()
        references[name] = (inputs, value.detach(), [t.grad for t in inputs])
    state = _corinfomax_new_state([t.detach() for t in references["corinfomax"][0]])
    return references, state


def _worker(rank, single):
    references, state = single
    for name, (loss, _, n, _) in DDP_CASES.items():
        full, expected_value, expected_grads = references[name]
        rows = slice(rank * n // WORLD_SIZE, (rank + 1) * n // WORLD_SIZE)
        local = [t.detach()[rows].clone().requires_grad_() for t in full]
        value = loss(local)
        value.backward()
        assert rel_err(value.detach(), expected_value) < 1e-10, (name, rank, value.item(), expected_value.item())
        for part, whole in zip(local, expected_grads):
            assert rel_err(part.grad, WORLD_SIZE * whole[rows]) < 1e-9, (name, rank)
    # the running estimates cover the global batch: the same on every rank, as in one process
    rows = slice(rank * 8, (rank + 1) * 8)
    mean, cov = _corinfomax_new_state([t.detach()[rows] for t in references["corinfomax"][0]])
    assert rel_err(mean, state[0]) < 1e-12 and rel_err(cov, state[1]) < 1e-12, rank


def test_two_gloo_ranks_reproduce_the_single_process_losses_gradients_and_state():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_single_process)


