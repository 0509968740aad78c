"""The whitening layer (backbone.whitening_layer) on two real gloo processes, each with half the batch: its statistics
are the global batch's, as SyncBatchNorm's (each rank's rows of the single-process output, the input gradient of the
ranks' summed losses, the same running statistics on both ranks, the same eval-mode rows). Kept apart from
tests/methods/test_whitening_layer.py so that the spawned processes import only torch and zoo.nn."""

import torch
from gloo_ranks import run_on_gloo_ranks

from zoo.nn import WhiteningLayer

WORLD_SIZE = 2


def _inputs():
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(3, 12, 8, generator=gen, dtype=torch.float64) * 2 + 1  # three steps of a global batch of 12
    return x, torch.randn(3, 12, 8, generator=gen, dtype=torch.float64)


def _run_layer(rows):
    layer = WhiteningLayer(8, "iternorm", groups=2).double()
    x, cotangents = _inputs()
    outputs, grads = [], []
    for step in range(2):
        leaf = x[step, rows].clone().requires_grad_()
        y = layer(leaf)
        (y * cotangents[step, rows]).sum().backward()
        outputs.append(y.detach())
        grads.append(leaf.grad)
    layer.eval()
    return outputs, grads, layer.running_mean, layer.running_matrix, layer(x[2, rows]).detach()


def _single_process():
    return _run_layer(slice(None))


def _rank(rank, whole):
    """Each rank's half of the batch: the whole batch's rows, the gradient of the ranks' summed losses (the
    SyncBatchNorm convention: DDP's mean of it is the single-process parameter gradient / world size), the same
    running statistics on both ranks, and eval-mode rows."""
    rows = slice(rank * 6, (rank + 1) * 6)
    outputs, grads, mean, matrix, evaluated = _run_layer(rows)
    for got, expected in zip(outputs, whole[0]):
        assert torch.allclose(got, expected[rows], rtol=0, atol=1e-12), rank
    for got, expected in zip(grads, whole[1]):
        assert torch.allclose(got, expected[rows], rtol=0, atol=1e-12), rank
    assert torch.allclose(mean, whole[2], rtol=0, atol=1e-14) and torch.allclose(matrix, whole[3], rtol=0, atol=1e-14)
    assert torch.allclose(evaluated, whole[4][rows], rtol=0, atol=1e-12)


def test_two_gloo_ranks_whiten_the_global_batch():
    run_on_gloo_ranks(_rank, WORLD_SIZE, before=_single_process)
