"""Two real gloo processes, each with half the batch: SimCLR's negatives and MoCo's queue cover the
global batch, the loss is the single-process loss and each rank's input gradient is world_size x
the single-process gradient of its half (what DDP's mean turns into the single-process parameter
gradient), as tests/losses/test_losses_ddp.py checks for the other losses."""


import torch
import torch.nn.functional as F
from gloo_ranks import run_on_gloo_ranks
from reference_inputs import rel_err

from zoo.losses import byol_loss, info_nce_loss, nt_xent_loss
from zoo.nn import FeatureQueue

WORLD_SIZE = 2


def _inputs(seed, views, n, d):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(views)]


CASES = {  # name -> (loss on a list of (N, D) inputs, views, N (global), D)
    "nt_xent_2_views": (lambda v: nt_xent_loss(*v, temperature=0.2), 2, 16, 8),
    "nt_xent_3_views": (lambda v: nt_xent_loss(*v, temperature=0.5), 3, 12, 5),
    "byol": (lambda v: byol_loss(v[0], v[1]) + byol_loss(v[1], v[0]), 2, 10, 6),
}
QUEUE = F.normalize(torch.randn(24, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64), dim=1)


def _single_process(loss, full_inputs):
    """The loss and input gradients in this process alone (before the process group exists)."""
    value = loss(full_inputs)
    value.backward()
    return value.detach(), [t.grad for t in full_inputs]


def _check(rank, name, loss, full_inputs, expected):
    expected_value, expected_grads = expected
    rows = slice(rank * len(full_inputs[0]) // WORLD_SIZE, (rank + 1) * len(full_inputs[0]) // WORLD_SIZE)
    local = [t.detach()[rows].clone().requires_grad_() for t in full_inputs]
    value = loss(local)
    value.backward()
    assert rel_err(value.detach(), expected_value) < 1e-12, (name, rank, value.item(), expected_value.item())
    for part, whole in zip(local, expected_grads):
        if whole is None:  # BYOL's stop-gradient targets
            assert part.grad is None, (name, rank)
        else:
            assert rel_err(part.grad, WORLD_SIZE * whole[rows]) < 1e-10, (name, rank)


def _moco_inputs():
    return [F.normalize(t.detach(), dim=1).requires_grad_() for t in _inputs(7, 2, 8, 6)]


def _moco_loss(views):
    return info_nce_loss(views[0], views[1], QUEUE, temperature=0.2)


def _check_queue(rank, q, k):
    """Both ranks put the same global keys in their queue, in place of the oldest, wrapping around."""
    holder = FeatureQueue(count=2, size=QUEUE.shape[0], dim=QUEUE.shape[1])
    holder.keys = QUEUE.expand(2, -1, -1).clone()
    holder.ptr.fill_(20)
    rows = slice(rank * 4, (rank + 1) * 4)
    holder.enqueue(q[rows], k[rows])
    wrapped = torch.tensor([20, 21, 22, 23, 0, 1, 2, 3])  # the global batch of 8 keys
    assert torch.equal(holder.keys[0, wrapped], q) and torch.equal(holder.keys[1, wrapped], k), rank
    assert holder.ptr.item() == 4
    untouched = torch.arange(4, 20)
    assert torch.equal(holder.keys[:, untouched], QUEUE[untouched].expand(2, -1, -1)), rank


def _cases_and_references():
    cases = [(name, loss, _inputs(seed, views, n, d)) for seed, (name, (loss, views, n, d)) in enumerate(CASES.items())]
    cases.append(("info_nce", _moco_loss, _moco_inputs()))
    return cases, [_single_process(loss, inputs) for _, loss, inputs in cases]


def _worker(rank, cases_and_references):
    cases, expected = cases_and_references
    for (name, loss, inputs), truth in zip(cases, expected):
        _check(rank, name, loss, inputs, truth)
    _check_queue(rank, *(t.detach() for t in _moco_inputs()))


def test_two_gloo_ranks_reproduce_the_single_process_loss_gradient_and_queue():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_cases_and_references)
