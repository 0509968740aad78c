"""Zero-CL's (as CW-RGP's code runs it) and Shuffled-DBN's losses against the numbers the CW-RGP repository's own code
computed, and their DDP equality on two gloo processes with MoCo v2's shuffling BN (the methods:
tests/methods/test_mocov2.py, test_shuffled_dbn.py, test_zero_cl.py, test_zero_cl_shuffled_dbn_mocov2.py); on the same
two processes, Zero-CL's official per-device form against Sherrylone/Zero-CL's two-rank numbers.

tests/fixtures/whitening_baselines_reference.json holds float64 inputs with the value and input
gradients that winci-ai/CW-RGP's ZeroICL.ins_loss and CW_RGP.forward (batch axis, random groups)
gave on them, run outside the project (the file says how each was called); its shapes and settings
differ from the other tests' (more samples than features for Zero-CL, 2-4 views, w_iter 2, eps).
tests/fixtures/zero_cl_official_reference.json ("ddp") holds what ImageNet-100/main.py's fea_loss and ins_loss
gave on two gloo ranks, each rank whitening its own half of the batch.
"""

import json
from pathlib import Path

import pytest
import torch
from gloo_ranks import run_on_gloo_ranks
from reference_inputs import rel_err

from zoo.errors import ZooError
from zoo.losses import shuffled_dbn_loss, zero_cl_loss
from zoo.methods.mocov2 import encode_shuffled_across_ranks

FIXTURES = Path(__file__).parents[1] / "fixtures"
CW_RGP = json.loads((FIXTURES / "whitening_baselines_reference.json").read_text())
ZERO_CL_OFFICIAL = json.loads((FIXTURES / "zero_cl_official_reference.json").read_text())
# winci-ai/CW-RGP base/methods/zero_icl.py: instance-wise, std without epsilon, covariance / (D - 1) shrunk 0.9 / 0.1,
# eigenvalues + 1e-5, the whole (global) batch; the zoo's defaults are the official Zero-CL code's.
CW_RGP_ZERO_CL = {"mode": "ins", "std_eps": 0.0, "cov_ddof": 1, "eps": 0.1, "ridge": 1e-5, "per_device_norm": False}
CASES = [(name, i) for name in ("zero_cl", "shuffled_dbn") for i in range(len(CW_RGP[name]))]
WORLD_SIZE = 2


def _float64(values, grad=True):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=grad) for v in values]


def _reference_loss(name, case, inputs):
    if name == "zero_cl":
        return zero_cl_loss(*inputs, **CW_RGP_ZERO_CL)
    torch.manual_seed(case["seed"])
    if case["w_size"] is None:
        torch.randperm(case["n"])  # the official sub-batch draw, which the zoo skips for a single sub-batch
    return shuffled_dbn_loss(*inputs, groups=case["groups"], w_size=case["w_size"], w_iter=case["w_iter"], eps=case["eps"])


@pytest.mark.parametrize("name, index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_value_and_gradient_equal_the_cwrgp_repositorys_in_float64(name, index):
    case = CW_RGP[name][index]
    if name == "shuffled_dbn":  # the same random groups: torch draws the official permutations from the seed
        torch.manual_seed(case["seed"])
        assert [torch.randperm(len(p)).tolist() for p in case["permutations"]] == case["permutations"]
    inputs = _float64(case["inputs"])
    value = _reference_loss(name, case, inputs)
    value.backward()
    assert value.dtype == torch.float64
    assert rel_err(value.detach(), torch.tensor(case["value"], dtype=torch.float64)) < 1e-7
    for given, expected in zip(inputs, case["grads"]):
        assert rel_err(given.grad, torch.tensor(expected, dtype=torch.float64)) < 1e-7


def test_zero_cl_shrinkage_whitens_more_samples_than_features_and_is_scale_free():
    gen = torch.Generator().manual_seed(0)
    z1, z2 = (torch.randn(40, 16, generator=gen, dtype=torch.float64) for _ in range(2))
    value = zero_cl_loss(z1, z2, **CW_RGP_ZERO_CL)  # N > D: the shrunk N x N covariance is full rank
    assert torch.isfinite(value)
    # each sample is standardised first: a per-sample scale and shift change nothing
    shifted = z1 * torch.rand(40, 1, generator=gen, dtype=torch.float64) * 3 + 2
    assert torch.allclose(zero_cl_loss(shifted, z2, **CW_RGP_ZERO_CL), value, rtol=1e-10)
    with pytest.raises(ZooError, match="rank-deficient"):  # without shrinkage it is not
        zero_cl_loss(z1, z2, **{**CW_RGP_ZERO_CL, "eps": 0.0, "ridge": 0.0})


def test_float32_maths_under_autocast():
    views = [torch.randn(16, 32, dtype=torch.bfloat16) for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert zero_cl_loss(*views).dtype == torch.float32
        assert shuffled_dbn_loss(*views, groups=4).dtype == torch.float32


# ---- two gloo processes ------------------------------------------------------------------------
LOSSES = {  # name -> (loss on a list of (N, D) inputs, views, N (global), D)
    "zero_cl": (lambda v: zero_cl_loss(*v, **CW_RGP_ZERO_CL), 2, 16, 24),
    "zero_cl_more_samples": (lambda v: zero_cl_loss(*v, **{**CW_RGP_ZERO_CL, "eps": 0.2}), 2, 20, 12),
    "zero_cl_fea_global": (lambda v: zero_cl_loss(*v, per_device_norm=False), 2, 16, 12),
    "shuffled_dbn": (lambda v: shuffled_dbn_loss(*v, groups=3, w_size=8, w_iter=2, eps=0.05), 3, 24, 12),
    "shuffled_dbn_whole_batch": (lambda v: shuffled_dbn_loss(*v, groups=2), 2, 16, 8),
}
SHUFFLE_SEED = 17


def _inputs(seed, views, n, d):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(d, generator=gen, dtype=torch.float64) * 2 + 0.5
    return [(torch.randn(n, d, generator=gen, dtype=torch.float64) * scale).requires_grad_() for _ in range(views)]


def _single_process():
    """Every case's inputs, loss and input gradients in this process alone (before the group exists)."""
    references = {}
    for seed, (name, (loss, views, n, d)) in enumerate(LOSSES.items()):
        inputs = _inputs(seed, views, n, d)
        torch.manual_seed(seed)
        value = loss(inputs)
        value.backward()
        references[name] = (inputs, value.detach(), [t.grad for t in inputs])
    return references


def _batch_statistics(x):
    return x - x.mean(dim=0)  # what a BN layer in training mode does to the batch it sees


def _worker(rank, references):
    for seed, (name, (loss, _, n, _)) in enumerate(LOSSES.items()):
        full, expected_value, expected_grads = references[name]
        rows = slice(rank * n // WORLD_SIZE, (rank + 1) * n // WORLD_SIZE)
        local = [t.detach()[rows].clone().requires_grad_() for t in full]
        torch.manual_seed(seed + 1000 * rank)  # rank 0's random groups must win, whatever the other ranks draw
        value = loss(local)
        value.backward()
        assert rel_err(value.detach(), expected_value) < 1e-10, (name, rank, value.item(), expected_value.item())
        for part, whole in zip(local, expected_grads):
            assert rel_err(part.grad, WORLD_SIZE * whole[rows]) < 1e-9, (name, rank)

    _check_zero_cl_official(rank)

    # shuffling BN: each rank encodes rank 0's random share of the global batch, rows back in order
    everyone = torch.randn(8, 3, generator=torch.Generator().manual_seed(SHUFFLE_SEED), dtype=torch.float64)
    mine = slice(rank * 4, (rank + 1) * 4)
    torch.manual_seed(SHUFFLE_SEED)
    order = torch.randperm(8)
    torch.manual_seed(SHUFFLE_SEED + rank)
    keys = encode_shuffled_across_ranks(_batch_statistics, everyone[mine])
    expected = torch.empty_like(everyone)
    for share in order.view(WORLD_SIZE, -1):
        expected[share] = _batch_statistics(everyone[share])
    assert torch.allclose(keys, expected[mine], rtol=1e-12), rank
    assert not torch.allclose(keys, _batch_statistics(everyone[mine])), rank  # other samples' statistics


def _check_zero_cl_official(rank):
    """Zero-CL's per-device form (the class default) on each rank's half: the official two-rank value, and world_size x
    the official rank's input gradient (its plain all_reduce passes each rank 1/world_size of the loss's gradient)."""
    ranks = ZERO_CL_OFFICIAL["ddp"]["ranks"]
    assert ZERO_CL_OFFICIAL["ddp"]["world_size"] == WORLD_SIZE and len(ranks) == WORLD_SIZE
    for key, official in ranks[rank].items():
        inputs, loss = key.split("/")
        entry = ZERO_CL_OFFICIAL["sets"][inputs]
        rows = slice(rank * entry["n"] // WORLD_SIZE, (rank + 1) * entry["n"] // WORLD_SIZE)
        local = [torch.tensor(entry[k], dtype=torch.float64)[rows].requires_grad_() for k in ("z1", "z2")]
        value = zero_cl_loss(*local, mode=loss.split("_")[-1])
        value.backward()
        assert abs(value.item() - official["value"]) < 1e-10 * abs(official["value"]), (key, rank)
        for part, grad in zip(local, official["grads"]):
            assert rel_err(part.grad, WORLD_SIZE * torch.tensor(grad, dtype=torch.float64)) < 1e-10, (key, rank)


def test_two_gloo_ranks_reproduce_the_single_process_losses_gradients_and_shuffle_bn():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_single_process)
