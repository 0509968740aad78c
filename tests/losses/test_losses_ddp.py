"""Two real gloo processes, each with half the batch, get the single-process loss and gradient.

Every rank's loss is the loss of the global batch (VICReg: its invariance
term is the rank's own, as in the official code), and each rank's input
gradient is world_size x the single-process gradient of its half: what DDP's
mean over ranks turns into the single-process parameter gradient.

Barlow Twins's per-device form (solo-learn's) is checked against its own
single-process truth: each half standardised alone, the two cross-correlations
averaged.
"""


import reference_losses as reference
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_gloo_ranks

from zoo import losses
from zoo.spectral import is_distributed

WORLD_SIZE = 2
SEED = 3

# name -> (views, N (global), D, kwargs); random sub-batches and groups check that ranks share their draws
CASES = {
    "intl": (3, 32, 16, {"axis": "channel"}),
    "intl_batch": (2, 32, 16, {"axis": "batch", "iters": 5}),
    "wmse": (3, 48, 8, {"w_size": 16, "w_iter": 2, "eps": 0.1}),
    "cwrgp": (2, 32, 64, {"groups": 2, "w_size": 16, "w_iter": 2}),
    "barlow_twins": (2, 16, 8, {"lambd": 0.01}),
    "vicreg": (2, 16, 8, {}),
    "simsiam": (4, 16, 8, {}),
}


def _run_case(rank, name):
    n_views, n, d, kwargs = CASES[name]
    base = name.removesuffix("_batch")
    gen = torch.Generator().manual_seed(SEED)
    scale = torch.rand(d, generator=gen, dtype=torch.float64) * 2
    full = [(torch.randn(n, d, generator=gen, dtype=torch.float64) * scale).requires_grad_() for _ in range(n_views)]
    rows = slice(rank * n // WORLD_SIZE, (rank + 1) * n // WORLD_SIZE)
    local = [t.detach()[rows].clone().requires_grad_() for t in full]

    torch.manual_seed(SEED + 1000 * rank)  # rank 0's draws must win, whatever the other ranks' seeds
    value = getattr(losses, f"{base}_loss")(*local, **kwargs)
    value.backward()

    torch.manual_seed(SEED)
    expected = reference.LOSSES[base](*full, **kwargs)
    expected.backward()
    if base == "vicreg":  # the official invariance term is per rank
        sim = kwargs.get("sim", 25.0)
        expected = expected + sim * (F.mse_loss(local[0], local[1]) - F.mse_loss(full[0], full[1])).detach()

    assert reference.rel_err(value.detach(), expected.detach()) < 1e-10, (name, rank, value.item(), expected.item())
    for part, whole in zip(local, full):
        if whole.grad is None:  # SimSiam's stop-gradient targets
            assert part.grad is None, (name, rank)
            continue
        assert reference.rel_err(part.grad, WORLD_SIZE * whole.grad[rows]) < 1e-9, (name, rank)


# vturrisi/solo-learn's barlow_loss_func(lamb=0.01, scale_loss=1) on `solo_inputs()` in float64, computed
# once outside the project: split over 2 gloo ranks (8 samples each), and in one process.
SOLO_LEARN_TWO_RANKS = 0.4346856068800837
SOLO_LEARN_ONE_PROCESS = 0.41703870105619034


def solo_inputs():
    """Fixed (16, 8) float64 views: a few dominant directions, z2 a noisy copy of z1."""
    gen = torch.Generator().manual_seed(5)
    scale = torch.rand(8, generator=gen, dtype=torch.float64) * 2
    z1 = torch.randn(16, 8, generator=gen, dtype=torch.float64) * scale
    z2 = z1 + 0.5 * torch.randn(16, 8, generator=gen, dtype=torch.float64)
    return [z1.requires_grad_(), z2.requires_grad_()]


def _run_barlow_per_device(rank):
    full = solo_inputs()
    rows = slice(rank * 8, (rank + 1) * 8)
    local = [t.detach()[rows].clone().requires_grad_() for t in full]
    value = losses.barlow_twins_loss(*local, lambd=0.01, per_device_norm=True)
    value.backward()
    expected = reference.barlow_twins_per_device_loss(*full, lambd=0.01, devices=WORLD_SIZE)
    expected.backward()
    assert reference.rel_err(value.detach(), expected.detach()) < 1e-7, (rank, value.item(), expected.item())
    for part, whole in zip(local, full):
        assert reference.rel_err(part.grad, WORLD_SIZE * whole.grad[rows]) < 1e-7, rank
    assert abs(value.item() - SOLO_LEARN_TWO_RANKS) < 1e-7 * SOLO_LEARN_TWO_RANKS, (rank, value.item())
    global_form = losses.barlow_twins_loss(*local, lambd=0.01)
    assert abs(global_form.item() - SOLO_LEARN_ONE_PROCESS) < 1e-7 * SOLO_LEARN_ONE_PROCESS, rank
    assert abs(global_form.item() - value.item()) > 1e-2 * value.item(), rank  # the two forms differ here


def _worker(rank):
    for name in CASES:
        _run_case(rank, name)
    _run_barlow_per_device(rank)


def test_two_gloo_ranks_reproduce_the_single_process_loss_and_gradient():
    run_on_gloo_ranks(_worker, WORLD_SIZE)


def test_barlow_per_device_form_is_the_global_form_on_one_process():
    assert not is_distributed()
    results = []
    for per_device_norm in (False, True):
        views = [t.detach().clone().requires_grad_() for t in solo_inputs()]
        value = losses.barlow_twins_loss(*views, lambd=0.01, per_device_norm=per_device_norm)
        value.backward()
        results.append((value.detach(), [v.grad for v in views]))
    (global_value, global_grads), (device_value, device_grads) = results
    assert torch.equal(global_value, device_value)
    assert all(torch.equal(a, b) for a, b in zip(global_grads, device_grads))
    assert abs(device_value.item() - SOLO_LEARN_ONE_PROCESS) < 1e-7 * SOLO_LEARN_ONE_PROCESS
    one_device = reference.barlow_twins_per_device_loss(*solo_inputs(), lambd=0.01, devices=1)
    assert reference.rel_err(device_value, one_device.detach()) < 1e-12
