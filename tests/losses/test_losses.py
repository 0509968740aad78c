"""zoo.losses against the loop-based oracles of tests/reference_losses.py."""

import random

import pytest
import reference_losses as reference
import torch
from reference_losses import rel_err

from zoo import losses

SEEDS = range(6)


def random_case(name, seed):
    """Valid random views (float64, requires_grad) and hyper-parameters for loss ``name``."""
    rng = random.Random(seed)
    if name == "intl":
        axis = rng.choice(["channel", "batch"])
        n, d, views = rng.choice([16, 32, 48]), rng.choice([8, 24, 64]), rng.randint(2, 4)
        kwargs = {"iters": rng.randint(1, 6), "axis": axis}
        if rng.random() < 0.5:
            kwargs["trade_off"] = rng.uniform(0.0, 0.1)
    elif name == "wmse":
        d, views, w_iter = rng.choice([4, 8, 12]), rng.randint(2, 4), rng.randint(1, 3)
        w_size = rng.choice([None, 2 * d, d + 4])
        n = 64 if w_size is None else w_size * rng.randint(1, 3)
        kwargs = {"w_size": w_size, "w_iter": w_iter, "eps": rng.choice([0.0, 0.1])}
    elif name == "cwrgp":
        groups, views, w_iter = rng.choice([1, 2, 4]), rng.randint(2, 4), rng.randint(1, 3)
        d = groups * rng.choice([16, 24])
        w_size = rng.choice([8, d // groups - 1])
        n = w_size * rng.randint(1, 3)
        kwargs = {"groups": groups, "w_size": w_size, "w_iter": w_iter, "eps": rng.choice([0.0, 0.1])}
    else:
        n, d = rng.choice([8, 32]), rng.choice([4, 16, 32])
        views = 4 if name == "simsiam" else 2
        kwargs = {
            "barlow_twins": {"lambd": rng.uniform(0.001, 0.01)},
            "vicreg": {"sim": rng.uniform(1, 30), "var": rng.uniform(1, 30), "cov": rng.uniform(0.5, 2)},
            "simsiam": {},
        }[name]
    gen = torch.Generator().manual_seed(seed)
    # a few dominant directions, so the spectrum looks like a projector's (and VICReg's hinge is active)
    scale = torch.rand(d, generator=gen, dtype=torch.float64) * 2
    tensors = [(torch.randn(n, d, generator=gen, dtype=torch.float64) * scale).requires_grad_() for _ in range(views)]
    return tensors, kwargs


def value_and_grads(fn, tensors, kwargs, seed):
    torch.manual_seed(seed)  # the same permutations for the loss and its oracle
    for t in tensors:
        t.grad = None
    value = fn(*tensors, **kwargs)
    value.backward()
    return value.detach(), [torch.zeros_like(t) if t.grad is None else t.grad.clone() for t in tensors]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(reference.LOSSES))
def test_matches_reference_in_float64(name, seed):
    tensors, kwargs = random_case(name, seed)
    value, grads = value_and_grads(getattr(losses, f"{name}_loss"), tensors, kwargs, seed)
    expected, expected_grads = value_and_grads(reference.LOSSES[name], tensors, kwargs, seed)
    assert value.dtype == torch.float64 and value.ndim == 0
    assert rel_err(value, expected) < 1e-7
    for grad, expected_grad in zip(grads, expected_grads):
        if expected_grad.norm() > 0:  # SimSiam's stop-gradient targets get none
            assert rel_err(grad, expected_grad) < 1e-7


@pytest.mark.parametrize("name", list(reference.LOSSES))
def test_float32_close_to_float64_reference(name):
    tensors, kwargs = random_case(name, seed=7)
    single = [t.detach().float().requires_grad_() for t in tensors]
    value, grads = value_and_grads(getattr(losses, f"{name}_loss"), single, kwargs, seed=7)
    expected, expected_grads = value_and_grads(reference.LOSSES[name], tensors, kwargs, seed=7)
    assert value.dtype == torch.float32
    assert rel_err(value.double(), expected) < 1e-3
    for grad, expected_grad in zip(grads, expected_grads):
        if expected_grad.norm() > 0:
            assert rel_err(grad.double(), expected_grad) < 1e-3


@pytest.mark.parametrize("name", list(reference.LOSSES))
def test_autocast_keeps_float32_accuracy(name):
    tensors, kwargs = random_case(name, seed=11)
    full = [t.detach().float() for t in tensors]
    half = [t.bfloat16() for t in full]  # what a projector under autocast hands over
    loss = getattr(losses, f"{name}_loss")
    torch.manual_seed(0)
    expected_full = loss(*full, **kwargs)
    torch.manual_seed(0)
    expected_half = loss(*[h.float() for h in half], **kwargs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(0)
        value_full = loss(*full, **kwargs)
        torch.manual_seed(0)
        value_half = loss(*half, **kwargs)
    assert value_full.dtype == value_half.dtype == torch.float32
    # float32 inputs: exactly the float32 computation; bf16 inputs: float32 maths on the rounded inputs
    assert rel_err(value_full, expected_full) < 1e-6
    assert rel_err(value_half, expected_half) < 1e-6


def test_intl_default_trade_off_follows_the_paper():
    z0, z1 = torch.randn(64, 16, dtype=torch.float64), torch.randn(64, 16, dtype=torch.float64)
    for axis, size in (("channel", 64), ("batch", 16)):
        beta = (torch.tensor(size).log2().item() - 3) * 0.01
        assert losses.intl_loss(z0, z1, axis=axis) == pytest.approx(
            losses.intl_loss(z0, z1, axis=axis, trade_off=beta).item(), rel=1e-12
        )


def test_intl_multicrop_pairs_every_later_view_with_the_first():
    views = [torch.randn(32, 8, dtype=torch.float64) for _ in range(4)]
    pairs = [losses.intl_loss(views[0], v, trade_off=0.05) for v in views[1:]]
    assert losses.intl_loss(*views, trade_off=0.05) == pytest.approx(torch.stack(pairs).mean().item(), rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_intl_without_first_view_trace_is_intl_m(seed):
    tensors, kwargs = random_case("intl", seed)
    value, grads = value_and_grads(losses.intl_loss, tensors, {**kwargs, "first_view_trace": False}, seed)
    expected, expected_grads = value_and_grads(reference.intl_m_loss, tensors, kwargs, seed)
    assert rel_err(value, expected) < 1e-7
    assert all(rel_err(g, e) < 1e-7 for g, e in zip(grads, expected_grads))


BAD_CALLS = [
    (losses.wmse_loss, {"w_size": 8}, (32, 16)),  # batch axis: w_size <= D
    (losses.wmse_loss, {"w_size": 24}, (64, 8)),  # w_size does not divide the batch
    (losses.wmse_loss, {}, (16, 16)),  # whole batch smaller than D
    (losses.cwrgp_loss, {"groups": 3}, (8, 64)),  # groups does not divide D
    (losses.cwrgp_loss, {"groups": 4, "w_size": 16}, (32, 64)),  # channel axis: w_size > D/groups - 1
    (losses.cwrgp_loss, {}, (64, 64)),  # whole batch of 64 on 64 channels
    (losses.intl_loss, {"axis": "feature"}, (16, 8)),  # not an axis
]


@pytest.mark.parametrize("loss, kwargs, shape", BAD_CALLS)
def test_bad_whitening_raises_one_line_value_error(loss, kwargs, shape):
    views = [torch.randn(*shape), torch.randn(*shape)]
    with pytest.raises(ValueError) as err:
        loss(*views, **kwargs)
    assert "\n" not in str(err.value) and str(err.value)


@pytest.mark.parametrize("loss", [losses.intl_loss, losses.wmse_loss, losses.cwrgp_loss])
def test_views_must_be_several_and_alike(loss):
    with pytest.raises(ValueError, match="at least 2 views"):
        loss(torch.randn(8, 4))
    with pytest.raises(ValueError, match="one shape"):
        loss(torch.randn(8, 4), torch.randn(8, 5))


def test_iternorm_is_exempt_from_the_rank_check():
    # INTL's usual regime: a 256 x 256 sample covariance over only 64 channels.
    value = losses.intl_loss(torch.randn(256, 64), torch.randn(256, 64))
    assert torch.isfinite(value)


@pytest.mark.parametrize(
    "name, n_views, dim, kwargs",
    [("cwrgp", 4, 512, {"groups": 4, "w_size": 64}), ("wmse", 4, 64, {"w_size": 128}), ("intl", 2, 2048, {})],
)
def test_float32_at_the_official_cifar_scale(name, n_views, dim, kwargs):
    torch.manual_seed(0)
    views = [torch.randn(256, dim, dtype=torch.float64, requires_grad=True) for _ in range(n_views)]
    singles = [v.detach().float().requires_grad_() for v in views]
    loss = getattr(losses, f"{name}_loss")
    value, grads = value_and_grads(loss, singles, kwargs, seed=1)
    expected, expected_grads = value_and_grads(loss, views, kwargs, seed=1)
    assert rel_err(value.double(), expected) < 1e-5
    assert max(rel_err(g.double(), e) for g, e in zip(grads, expected_grads)) < 1e-4


# name -> (the parts, the kwargs that leave only one part in the reference loss)
PARTS = {
    "intl": {"mse": {"trade_off": 0.0}},
    "barlow_twins": {"on_diag": {"lambd": 0.0}},
    "vicreg": {
        "invariance": {"var": 0.0, "cov": 0.0},
        "variance": {"sim": 0.0, "cov": 0.0},
        "covariance": {"sim": 0.0, "var": 0.0},
    },
}
PART_NAMES = {
    "intl": {"mse", "trace"},
    "st": {"mse", "trace"},
    "barlow_twins": {"on_diag", "off_diag"},
    "vicreg": {"invariance", "variance", "covariance"},
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", list(PART_NAMES))
def test_return_parts_gives_the_same_total_and_terms_that_sum_to_it(name, seed):
    tensors, kwargs = random_case("intl" if name == "st" else name, seed)
    if name == "st":
        kwargs = {"axis": "batch", "power": 0.25, "trade_off": 0.05}
        tensors = [t[:, :8] for t in tensors]  # full rank on the batch axis
    loss = getattr(losses, f"{name}_loss")
    torch.manual_seed(seed)
    scalar = loss(*tensors, **kwargs)
    torch.manual_seed(seed)
    total, parts = loss(*tensors, **kwargs, return_parts=True)
    assert torch.equal(total, scalar)  # the same computation, bit for bit
    assert set(parts) == PART_NAMES[name] and all(p.ndim == 0 for p in parts.values())
    assert rel_err(sum(parts.values()), total) < 1e-12
    for part, only in PARTS.get(name, {}).items():  # each part is the loss with the others switched off
        assert rel_err(parts[part], reference.LOSSES[name](*tensors, **{**kwargs, **only})) < 1e-7, part


def test_intl_m_parts_leave_out_the_target_trace():
    tensors, kwargs = random_case("intl", 1)
    total, parts = losses.intl_loss(*tensors, **kwargs, first_view_trace=False, return_parts=True)
    assert rel_err(total, reference.intl_m_loss(*tensors, **kwargs)) < 1e-7
    assert rel_err(parts["mse"], reference.intl_m_loss(*tensors, **{**kwargs, "trade_off": 0.0})) < 1e-7
    assert rel_err(parts["mse"] + parts["trace"], total) < 1e-12


def test_wmse_on_a_batch_of_identical_samples_is_one_clear_error():
    """Its covariance is 0, which Cholesky cannot factor: a ZooError (one `error:` line), not torch's LinAlgError."""
    from zoo.errors import ZooError

    constant = torch.ones(16, 4)
    with pytest.raises(ZooError, match="cholesky whitening failed: a \\(sub-\\)batch's covariance is singular"):
        losses.wmse_loss(constant, constant.clone())
    assert torch.isfinite(losses.wmse_loss(constant + torch.randn(16, 4), constant + torch.randn(16, 4), eps=0.0))
