"""zoo.spectral: the batched whitening against the loop oracle, and its maths."""

import itertools

import pytest
import reference_losses as reference
import torch

from zoo import spectral
from zoo.spectral import center, check_whitening, covariance, whiten

# (kind, axis, N, D, groups, w_size): each valid for its kind (inverting kinds need a full-rank covariance)
CONFIGS = [
    ("iternorm", "channel", 24, 16, 1, None),
    ("iternorm", "batch", 24, 32, 2, 12),  # rank-deficient, fine for IterNorm
    ("cholesky", "batch", 48, 8, 1, 16),
    ("cholesky", "channel", 24, 32, 2, 8),
    ("zca", "batch", 36, 12, 3, 6),
    ("zca", "channel", 32, 48, 4, 8),
    ("power", "batch", 40, 8, 2, 20),
    ("power", "channel", 12, 24, 1, None),
]


def sample(shape, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(shape[-1], generator=gen, dtype=dtype) + 0.2
    return torch.randn(*shape, generator=gen, dtype=dtype) * scale


@pytest.mark.parametrize("kind, axis, n, d, groups, w_size", CONFIGS)
def test_matches_the_loop_reference_forward_and_backward(kind, axis, n, d, groups, w_size):
    views, w_iter, power = 3, 2, 0.3
    x = sample((views, n, d), seed=len(kind) + n).requires_grad_()
    weights = sample((w_iter, views, n, d), seed=99)
    opts = {"groups": groups, "w_size": w_size, "eps": 0.05, "iters": 5, "power": power}

    torch.manual_seed(0)
    batched = whiten(x, kind, axis, w_iter=w_iter, **opts)
    (grad,) = torch.autograd.grad((batched * weights).sum(), x)

    torch.manual_seed(0)
    looped = torch.stack([torch.stack(reference.whiten_views(list(x), kind, axis, **opts)) for _ in range(w_iter)])
    (expected_grad,) = torch.autograd.grad((looped * weights).sum(), x)

    assert batched.shape == (w_iter, views, n, d)
    assert reference.rel_err(batched, looped) < 1e-9
    assert reference.rel_err(grad, expected_grad) < 1e-7


@pytest.mark.parametrize("axis", ["batch", "channel"])
def test_pca_matches_svd_up_to_component_signs(axis):
    x = sample((40, 12) if axis == "batch" else (10, 24), seed=5)
    white = whiten(x, "pca", axis)[0]
    expected = reference.whiten_one(x, "pca", axis)
    component_dim = -2 if axis == "batch" else -1  # batch: columns are components; channel: rows
    signs = (white * expected).sum(dim=component_dim, keepdim=True).sign()
    assert reference.rel_err(white * signs, expected) < 1e-10


@pytest.mark.parametrize("kind", ["cholesky", "zca", "pca", "power"])
@pytest.mark.parametrize("axis", ["batch", "channel"])
def test_inverting_whitenings_give_identity_covariance(kind, axis):
    groups = 2
    x = sample((256, 16) if axis == "batch" else (12, 64), seed=1)
    white = whiten(x, kind, axis, groups=groups, shuffle_groups=False)[0]
    for block in white.chunk(groups, dim=-1):
        # channel axis: the samples were centred over all channels, not per group
        cov = covariance(block, axis, assume_centered=axis == "channel")
        assert torch.allclose(cov, torch.eye(cov.shape[-1], dtype=cov.dtype), atol=1e-10)


def test_power_transform_maps_eigenvalues_to_their_power():
    x = sample((200, 8), seed=2)
    eigenvalues = torch.linalg.eigvalsh(covariance(x, "batch"))
    for p in (0.0, 0.25, 0.5, 0.75):
        white = whiten(x, "power", "batch", power=p)[0]
        after = torch.linalg.eigvalsh(covariance(white, "batch"))
        assert torch.allclose(after, eigenvalues.pow(1 - 2 * p).sort().values, rtol=1e-9)


def test_power_zero_is_the_identity_with_finite_gradient_on_repeated_eigenvalues():
    x = sample((64, 8), seed=4)
    x = torch.cat([x, x], dim=1).requires_grad_()  # every eigenvalue repeated: eigh's backward is NaN here
    white = whiten(x, "power", "batch", power=0.0)[0]
    assert torch.allclose(white, x - x.mean(0))
    white.pow(3).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("axis", ["batch", "channel"])
def test_iternorm_approaches_identity_covariance_as_iterations_grow(axis):
    x = sample((512, 16) if axis == "batch" else (16, 512), seed=3)
    errors = []
    for iters in (1, 2, 4, 8, 16):
        white = whiten(x, "iternorm", axis, iters=iters)[0]
        cov = covariance(white, axis)
        errors.append((cov - torch.eye(cov.shape[-1], dtype=cov.dtype)).norm().item())
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    assert errors[-1] < 1e-5


def test_generator_gives_the_same_draws_as_the_seeded_global_generator():
    x = sample((2, 32, 24), seed=4)
    opts = {"groups": 3, "w_size": 16, "w_iter": 2}
    with_generator = whiten(x, "iternorm", "channel", generator=torch.Generator().manual_seed(7), **opts)
    torch.manual_seed(7)
    assert torch.equal(with_generator, whiten(x, "iternorm", "channel", **opts))
    # and the draws matter: another seed gives another result
    other = whiten(x, "iternorm", "channel", generator=torch.Generator().manual_seed(8), **opts)
    assert not torch.allclose(with_generator, other)


def test_leading_dimensions_and_dtypes_are_kept():
    x = sample((2, 3, 16, 4), seed=6)
    assert whiten(x, "zca", "batch").shape == (1, 2, 3, 16, 4)
    assert whiten(x, "zca", "batch").dtype == torch.float64
    assert whiten(x.float(), "zca", "batch").dtype == torch.float32
    assert whiten(x.half(), "zca", "batch").dtype == torch.float32


@pytest.mark.parametrize("kind", spectral.KINDS)
def test_autocast_does_not_lower_precision(kind):
    x = sample((64, 8), seed=8, dtype=torch.float32)
    expected = whiten(x, kind, "batch")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        white = whiten(x, kind, "batch")
        white_from_half = whiten(x.bfloat16(), kind, "batch")
    assert white.dtype == white_from_half.dtype == torch.float32
    assert torch.equal(white, expected)
    assert reference.rel_err(white_from_half, whiten(x.bfloat16().float(), kind, "batch")) < 1e-6


def test_helpers_agree_with_torch():
    x = sample((20, 6), seed=9)
    assert torch.allclose(covariance(x, "batch"), torch.cov(x.T))
    assert torch.allclose(covariance(x, "channel"), torch.cov(x))
    assert torch.allclose(covariance(center(x, "batch"), "batch", assume_centered=True), torch.cov(x.T))
    assert torch.allclose(spectral.variance(x, "batch"), x.var(dim=0))
    assert torch.allclose(spectral.variance(x, "channel"), x.var(dim=1))
    assert spectral.gather(x) is x  # not distributed


BAD = [
    ({"kind": "zca", "axis": "channel", "batch_size": 64, "dim": 512, "groups": 3}, "groups=3"),
    ({"kind": "cholesky", "axis": "batch", "batch_size": 256, "dim": 64, "w_size": 100}, "w_size=100"),
    ({"kind": "cholesky", "axis": "batch", "batch_size": 256, "dim": 64, "w_size": 64}, "rank-deficient"),
    ({"kind": "pca", "axis": "batch", "batch_size": 256, "dim": 1024, "groups": 4}, "rank-deficient"),
    ({"kind": "zca", "axis": "channel", "batch_size": 256, "dim": 512, "groups": 4, "w_size": 128}, "rank-deficient"),
    ({"kind": "power", "axis": "channel", "batch_size": 64, "dim": 64}, "rank-deficient"),
    ({"kind": "zca", "axis": "channel", "batch_size": 7, "dim": 64, "w_size": 1}, "at least 2"),
    ({"kind": "svd", "axis": "batch", "batch_size": 64, "dim": 8}, "kind="),
    ({"kind": "zca", "axis": 0, "batch_size": 64, "dim": 8}, "axis="),
]


@pytest.mark.parametrize("args, names", BAD)
def test_check_whitening_raises_one_line_messages(args, names):
    with pytest.raises(ValueError, match=names) as err:
        check_whitening(**args)
    assert "\n" not in str(err.value) and "use" in str(err.value)


def test_check_whitening_accepts_the_official_settings():
    check_whitening("zca", "channel", 256, 512, groups=4, w_size=64)  # CW-RGP CIFAR
    check_whitening("zca", "channel", 512, 1024, groups=2, w_size=128)  # CW-RGP ImageNet
    check_whitening("cholesky", "batch", 256, 64, w_size=128)  # W-MSE CIFAR
    check_whitening("iternorm", "channel", 256, 2048)  # INTL CIFAR
    check_whitening("iternorm", "batch", 16, 2048, groups=1)  # IterNorm never inverts


def test_bad_whitening_raises_before_any_maths():
    with pytest.raises(ValueError):
        whiten(torch.randn(32, 64), "cholesky", "batch")


@pytest.mark.parametrize("kind", ["iternorm", "cholesky", "zca"])
def test_whitening_runs_without_tf32_when_the_run_allows_it(kind, monkeypatch):
    """Pretraining sets matmul precision "high" (TF32 on Ampere+ GPUs) for the backbone; the
    whitening must still see "highest" (true float32), and the run's setting comes back after."""
    seen = []
    original = spectral.whitening_matrix

    def spy(*args, **kwargs):
        seen.append(torch.get_float32_matmul_precision())
        return original(*args, **kwargs)

    monkeypatch.setattr(spectral, "whitening_matrix", spy)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        whiten(torch.randn(64, 16), kind, "batch")
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(previous)
    assert seen == ["highest"]


def test_whitening_leaves_the_precision_alone_when_it_is_already_float32(monkeypatch):
    """On the CPU the run keeps "highest"; setting it anyway (even to the same value) around every
    whitening made oneDNN rebuild the backbone's kernels each step."""
    calls = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda value: calls.append(value))
    assert torch.get_float32_matmul_precision() == "highest"
    whiten(torch.randn(64, 16), "cholesky", "batch")
    assert calls == []


def _gather_worker(rank, port):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        x = torch.arange(24, dtype=torch.float64).view(2, 3, 4).add(100 * rank).requires_grad_()
        gathered = spectral.gather(x, dim=-2)  # (2, 6, 4): both ranks' samples
        assert torch.equal(gathered[:, 3 * rank : 3 * rank + 3], x.detach())
        weights = torch.arange(48, dtype=torch.float64).view(6, 2, 4)
        # a consumer that lays the gathered tensor out in another order: its gradient arrives permuted
        (gathered.transpose(0, 1).contiguous() * weights).sum().backward()
        assert torch.equal(x.grad, 2 * weights.transpose(0, 1)[:, 3 * rank : 3 * rank + 3]), rank
    finally:
        dist.destroy_process_group()


def test_gather_gives_each_rank_the_gradient_of_its_rows_whatever_the_gradients_layout():
    """The all-gather's backward fills an `empty_like` of each piece's gradient as if contiguous:
    `gather` hands it contiguous gradients (a permuted one came back scrambled)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_gather_worker, args=(port,), nprocs=2)
