"""Two real gloo processes, each with half the batch, get the single-process loss and gradient.

Every rank's loss is the loss of the global batch (VICReg: its invariance
term is the rank's own, as in the official code), and each rank's input
gradient is world_size x the single-process gradient of its half: what DDP's
mean over ranks turns into the single-process parameter gradient.
"""

import socket

import reference_losses as reference
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from zoo import losses

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


def _worker(rank, port):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE)
    try:
        for name in CASES:
            _run_case(rank, name)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_reproduce_the_single_process_loss_and_gradient():
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD_SIZE, join=True)
