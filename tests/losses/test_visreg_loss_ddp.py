"""VISReg's loss on two gloo processes, each with half of the global batch: the single-process loss, world_size x its
input gradients, and the same slice directions on every rank (the method and its float64 oracle:
tests/methods/test_visreg.py). A module of its own, light to import for the spawned ranks."""

import torch
from gloo_ranks import run_on_gloo_ranks

from zoo.losses.sigreg import random_slices, visreg_loss

WORLD_SIZE = 2


def _ddp_views():
    gen = torch.Generator().manual_seed(11)
    return [0.6 * torch.randn(12, 6, generator=gen, dtype=torch.float64) + 0.1 for _ in range(3)]


def _ddp_loss(views, directions):
    return visreg_loss(*views, global_views=2, directions=directions, lambd=0.4, centre=2.0)


def _single_process():
    views = [v.requires_grad_() for v in _ddp_views()]
    loss = _ddp_loss(views, random_slices(6, 32, 5, dtype=torch.float64))
    loss.backward()
    return loss.detach(), [v.grad for v in views]


def _ranks_match_one_process(rank, expected):
    loss, grads = expected
    directions = random_slices(6, 32, 5, dtype=torch.float64)  # the step's seed: the same draw on every rank
    every_rank = [torch.empty_like(directions) for _ in range(WORLD_SIZE)]
    torch.distributed.all_gather(every_rank, directions)
    assert all(torch.equal(d, directions) for d in every_rank), rank
    rows = slice(rank * 6, (rank + 1) * 6)
    local = [v[rows].clone().requires_grad_() for v in _ddp_views()]
    local_loss = _ddp_loss(local, directions)
    local_loss.backward()
    assert abs(local_loss.item() - loss.item()) < 1e-12 * abs(loss.item()), rank
    for part, whole in zip(local, grads):  # world_size x the single-process gradient: DDP's mean makes it exact
        assert ((part.grad - WORLD_SIZE * whole[rows]).norm() / (WORLD_SIZE * whole[rows]).norm()).item() < 1e-10, rank


def test_two_gloo_ranks_reproduce_the_single_process_loss_and_gradients():
    run_on_gloo_ranks(_ranks_match_one_process, WORLD_SIZE, before=_single_process)
