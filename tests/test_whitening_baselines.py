"""Zero-CL and Shuffled-DBN against the numbers the CW-RGP repository's own code computed, their DDP
equality on two gloo processes, and MoCo v2's single queue, asymmetric loss, constant momentum and
shuffling BN.

tests/data/whitening_baselines_reference.json holds float64 inputs with the value and input
gradients that winci-ai/CW-RGP's ZeroICL.ins_loss and CW_RGP.forward (batch axis, random groups)
gave on them, run outside the project (the file says how each was called); its shapes and settings
differ from the other tests' (more samples than features for Zero-CL, 2-4 views, w_iter 2, eps).
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_gloo_ranks
from torch import nn

from zoo.errors import ZooError
from zoo.losses import info_nce_loss, shuffled_dbn_loss, zero_cl_loss
from zoo.methods.mocov2 import encode_shuffled_across_ranks
from zoo.registry import create_method, get_method
from zoo.spectral import covariance

CW_RGP = json.loads((Path(__file__).parent / "data" / "whitening_baselines_reference.json").read_text())
CASES = [(name, i) for name in ("zero_cl", "shuffled_dbn") for i in range(len(CW_RGP[name]))]
TINY = {"crop_sizes": (16, 16), "global_batch_size": 16, "backbone": "resnet18"}
SMALL_MOCO = {"proj_hidden": [64], "proj_out": 32, "queue_size": 40}
WORLD_SIZE = 2


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


def _float64(values, grad=True):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=grad) for v in values]


def _reference_loss(name, case, inputs):
    if name == "zero_cl":
        return zero_cl_loss(*inputs)
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
    value = zero_cl_loss(z1, z2)  # N > D: the shrunk N x N covariance is full rank
    assert torch.isfinite(value)
    # each sample is standardised first: a per-sample scale and shift change nothing
    shifted = z1 * torch.rand(40, 1, generator=gen, dtype=torch.float64) * 3 + 2
    assert torch.allclose(zero_cl_loss(shifted, z2), value, rtol=1e-10)
    with pytest.raises(ZooError, match="rank-deficient"):  # without shrinkage it is not
        zero_cl_loss(z1, z2, eps=0.0, ridge=0.0)


def test_float32_maths_under_autocast():
    views = [torch.randn(16, 32, dtype=torch.bfloat16) for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert zero_cl_loss(*views).dtype == torch.float32
        assert shuffled_dbn_loss(*views, groups=4).dtype == torch.float32


def test_the_defaults_are_their_sources():
    zero_cl, shuffled_dbn, mocov2 = (get_method(name) for name in ("zero_cl", "shuffled_dbn", "mocov2"))
    config = zero_cl.Config()
    assert (config.proj_hidden, config.proj_out, config.eps, config.ridge) == ([1024], 512, 0.1, 1e-5)
    assert zero_cl.optimizer_defaults["name"] == "adam" and not zero_cl.joint_projector  # one projector call per view
    config = shuffled_dbn.Config()
    assert (config.proj_out, config.groups, config.w_size, config.eps) == (128, 16, None, 0.0)
    assert shuffled_dbn.joint_projector and shuffled_dbn.num_views is None
    config = mocov2.Config()
    assert (config.proj_hidden, config.proj_out, config.proj_hidden_bn, config.temperature) == ([2048], 128, False, 0.2)
    assert config.momentum_base == config.momentum_final == 0.999 and config.shuffle_bn
    assert mocov2.optimizer_defaults == {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4} and mocov2.queue_count == 1


def test_shuffled_dbn_transform_whitens_its_first_group():
    model = create_method("shuffled_dbn", {"proj_hidden": [64], "proj_out": 32, "groups": 4}, **TINY)
    white, axis = model.transform(torch.randn(16, 32, dtype=torch.float64))
    assert axis == "batch" and white.shape == (16, 8)
    assert torch.allclose(covariance(white, "batch"), torch.eye(8, dtype=torch.float64), atol=1e-8)
    with pytest.raises(ZooError, match="rank-deficient"):  # 16 samples cannot whiten groups of 16 features
        create_method("shuffled_dbn", {"proj_hidden": [64], "proj_out": 32, "groups": 2}, **TINY)


# ---- MoCo v2 ------------------------------------------------------------------------------------
def crops(count=2, size=16, batch=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, size, size, generator=gen) for _ in range(count)]


def test_mocov2_contrasts_the_first_crops_query_with_the_seconds_key_and_one_queue():
    torch.manual_seed(0)
    model = create_method("mocov2", SMALL_MOCO, **TINY)
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.ReLU, nn.Linear]
    model.queue.ptr.fill_(32)  # 16 keys wrap around the 40-key queue: rows 32..39, then 0..7
    before = model.queue.keys.clone()
    batch = crops()
    loss, features = model.compute_loss(batch)
    with torch.no_grad():
        query = F.normalize(model.projector(model.backbone(batch[0])), dim=-1)
        key = F.normalize(model.target(batch[1]), dim=-1)
    assert torch.allclose(loss, info_nce_loss(query, key, before[0], 0.2), rtol=1e-5)
    assert len(features) == 1 and features[0].shape == (16, model.feature_dim)  # the query crop's, for the probe
    assert model.queue.keys.shape == (1, 40, 32)
    rows = torch.cat([torch.arange(32, 40), torch.arange(0, 8)])
    assert torch.allclose(model.queue.keys[0, rows], key, atol=1e-6) and torch.equal(model.queue.keys[0, 8:32], before[0, 8:32])
    assert model.queue.ptr.item() == 8
    loss.backward()
    assert all(p.grad is None for p in model.target.backbone.parameters())
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_mocov2_momentum_is_constant_and_moves_the_key_encoder_by_a_thousandth():
    model = create_method("mocov2", SMALL_MOCO, **TINY)
    assert model.target.momentum(step=0, total_steps=100) == model.target.momentum(step=70, total_steps=100) == 0.999
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    target = [p.clone() for p in model.target.backbone.parameters()]
    model.target.update(model.target.momentum(step=5, total_steps=100))
    for new, old, online in zip(model.target.backbone.parameters(), target, model.backbone.parameters()):
        assert torch.allclose(new, 0.999 * old + 0.001 * online, atol=1e-6)


def test_one_process_encodes_the_keys_unshuffled():
    x = torch.randn(6, 3)
    assert torch.equal(encode_shuffled_across_ranks(lambda t: t - t.mean(0), x), x - x.mean(0))


# ---- two gloo processes ------------------------------------------------------------------------
LOSSES = {  # name -> (loss on a list of (N, D) inputs, views, N (global), D)
    "zero_cl": (lambda v: zero_cl_loss(*v), 2, 16, 24),
    "zero_cl_more_samples": (lambda v: zero_cl_loss(*v, eps=0.2), 2, 20, 12),
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


def test_two_gloo_ranks_reproduce_the_single_process_losses_gradients_and_shuffle_bn():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_single_process)
