"""MEC's and LeJEPA's losses against the official codes' numbers, and under two gloo processes (the methods:
tests/methods/test_mec.py, test_lejepa.py, test_mec_lejepa.py).

tests/fixtures/mec_lejepa_reference.json holds what xinliu20/MEC's loss_func, lamda_scheduler and cosine_scheduler
and rbalestr-lab/lejepa's EppsPulley, SlicingUnivariateTest and MINIMAL.md's SIGReg and loss lines computed
(run outside the project; the file says how each was called) on float64 inputs the tests regenerate from their
seeds: batch sizes, widths, eps, series orders, slice counts, integration ranges and points, view counts and
lambdas other than the defaults.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from gloo_ranks import run_on_gloo_ranks
from method_settings import TINY_8, narrow_config
from reference_inputs import rel_err

from zoo.errors import ZooError
from zoo.losses.coding_rate import mec_lambda, mec_loss
from zoo.losses.sigreg import epps_pulley, lejepa_loss, random_slices, sigreg_loss
from zoo.methods.mec import MEC
from zoo.nn import EMA
from zoo.registry import create_method
from zoo.spectral import log_det_series

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "mec_lejepa_reference.json").read_text())
WORLD_SIZE = 2


def f64(x):
    return torch.tensor(x, dtype=torch.float64)


def draws(seed, *shapes):
    """The reference's inputs: float64 standard normal draws of one seeded generator, in order."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in shapes]


def unit_directions(seed, dim, num_slices):
    (directions,) = draws(seed, (dim, num_slices))
    return directions / directions.norm(dim=0)


# ---- MEC against the official code, float64 -----------------------------------------------------
@pytest.mark.parametrize("case", REFERENCE["mec"], ids=lambda c: f"m{c['m']}d{c['d']}o{c['order']}-{c['which']}")
def test_mec_loss_value_and_gradients_equal_the_officials(case):
    p1, p2, z1, z2 = [t.requires_grad_() for t in draws(case["seed"], *[(case["m"], case["d"])] * 4)]
    final = 1 / mec_lambda(case["d"], case["m"], case["eps"])
    lambda_inverse = final if case["which"] == "final" else 8 * final
    assert lambda_inverse == pytest.approx(case["lambda_inverse"], rel=1e-12)
    pairs = [mec_loss(p1, z2, lambda_inverse=lambda_inverse, order=case["order"]),
             mec_loss(p2, z1, lambda_inverse=lambda_inverse, order=case["order"])]
    value = torch.stack(pairs).mean()
    value.backward()
    assert rel_err(value.detach(), f64(case["value"])) < 1e-7
    for name, given in zip(("p1", "p2", "z1", "z2"), (p1, p2, z1, z2)):
        assert rel_err(given.grad, f64(case["grads"][name])) < 1e-7, name


@pytest.mark.parametrize("case", REFERENCE["mec_schedules"], ids=lambda c: f"warmup{c['lambda_warmup_epochs']}")
def test_mec_lambda_warmup_and_momentum_schedules_are_the_officials(case):
    steps, per_epoch = case["epochs"] * case["steps_per_epoch"], case["steps_per_epoch"]
    config = MEC.Config(proj_out=case["d"], eps=case["eps"], lambda_warmup_epochs=case["lambda_warmup_epochs"])
    holder = SimpleNamespace(mcfg=config, global_batch_size=case["m"], global_step=0)
    lambda_inverse = [MEC.lambda_inverse(holder, step, per_epoch) for step in range(steps)]
    assert lambda_inverse == pytest.approx(case["lambda_inverse"], rel=1e-12)
    ema = EMA({}, config.momentum_base, config.momentum_final)  # the schedule MEC's target moves with
    momentum = [ema.momentum(step, steps) for step in range(steps)]
    assert momentum == pytest.approx(case["momentum"], rel=1e-12)


def test_the_log_det_series_converges_to_the_log_det_on_either_side_of_the_product():
    for n, d in ((5, 9), (9, 5)):  # the N x N product, then the D x D one
        a, b = draws(n * d, (n, d), (n, d))
        a = 0.05 * a
        exact = torch.logdet(torch.eye(n, dtype=torch.float64) + a @ b.T)
        assert rel_err(log_det_series(a, b, order=30), exact) < 1e-12
        assert rel_err(log_det_series(a, b, order=1), torch.trace(a @ b.T)) < 1e-12
        assert 1e-6 < rel_err(log_det_series(a, b, order=2), exact) < 1e-1  # truncated: close, not equal


# ---- SIGReg / LeJEPA against the official code, float64 ------------------------------------------
@pytest.mark.parametrize("case", REFERENCE["sigreg"], ids=lambda c: f"{'x'.join(map(str, c['shape']))}k{c['num_slices']}")
def test_sigreg_value_and_gradient_equal_the_official_epps_pulley_of_slices(case):
    (x,) = draws(case["seed"], case["shape"])
    x = (0.7 * x + 0.2).requires_grad_()
    directions = unit_directions(case["directions_seed"], case["shape"][-1], case["num_slices"])
    value = sigreg_loss(x, directions, t_max=case["t_max"], points=case["points"])
    value.backward()
    assert value.dtype == torch.float64
    assert rel_err(value.detach(), f64(case["value"])) < 1e-7
    assert rel_err(x.grad, f64(case["grad"])) < 1e-7


@pytest.mark.parametrize("case", REFERENCE["slices"], ids=lambda c: f"d{c['dim']}k{c['num_slices']}step{c['step']}")
def test_the_random_directions_are_the_official_slicings_at_each_step(case):
    directions = random_slices(case["dim"], case["num_slices"], case["step"])
    assert directions.dtype == torch.float32
    assert torch.equal(directions, torch.tensor(case["directions"], dtype=torch.float32))
    assert torch.allclose(directions.norm(dim=0), torch.ones(case["num_slices"]))
    assert not torch.equal(random_slices(case["dim"], case["num_slices"], case["next_step"]), directions)


@pytest.mark.parametrize("case", REFERENCE["lejepa"], ids=lambda c: f"{c['global_views']}of{c['views']}views-l{c['lambd']}")
def test_lejepa_loss_parts_and_gradients_equal_the_minimal_codes(case):
    views = [t.requires_grad_() for t in draws(case["seed"], *[(case["n"], case["d"])] * case["views"])]
    directions = unit_directions(case["directions_seed"], case["d"], case["num_slices"])
    value, parts = lejepa_loss(*views, global_views=case["global_views"], directions=directions, lambd=case["lambd"],
                               return_parts=True)
    value.backward()
    assert rel_err(value.detach(), f64(case["value"])) < 1e-7
    assert rel_err(parts["prediction"].detach(), f64(case["prediction"])) < 1e-7
    assert rel_err(parts["sigreg"].detach(), f64(case["sigreg"])) < 1e-7
    for given, expected in zip(views, case["grad"]):
        assert rel_err(given.grad, f64(expected)) < 1e-7


def test_a_standard_gaussian_sample_scores_low_and_a_collapsed_one_high():
    gaussian = torch.randn(4096, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert epps_pulley(gaussian).item() < 2.0  # N x the distance: O(1) under the null
    assert epps_pulley(torch.zeros(4096, 1, dtype=torch.float64)).item() > 100.0


def test_bad_inputs_are_clear_errors():
    z = torch.randn(8, 4)
    with pytest.raises(ZooError, match="lambda_inverse > 0"):
        mec_loss(z, z, lambda_inverse=0.0)
    with pytest.raises(ZooError, match=r"one shape \(N, D\)"):
        mec_loss(z, z[:, :3], lambda_inverse=1.0)
    with pytest.raises(ZooError, match="order >= 1"):
        log_det_series(z, z, order=0)
    with pytest.raises(ZooError, match="odd number of points"):
        epps_pulley(z, points=16)
    with pytest.raises(ZooError, match=r"directions \(D, K\)"):
        sigreg_loss(z, torch.randn(5, 3))
    with pytest.raises(ZooError, match="1 <= global_views <= 2"):
        lejepa_loss(z, z, global_views=3, directions=torch.randn(4, 3))
    with pytest.raises(ZooError, match="lejepa needs num_slices >= 1"):
        create_method("lejepa", {**narrow_config("lejepa"), "num_slices": 0}, **TINY_8)


def test_the_losses_keep_float32_under_autocast():
    z = [torch.randn(8, 4, dtype=torch.bfloat16) for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert mec_loss(*z, lambda_inverse=2.0).dtype == torch.float32
        assert lejepa_loss(*z, global_views=2, directions=random_slices(4, 8, 0)).dtype == torch.float32


# ---- two gloo processes, each with half the batch ------------------------------------------------
def _ddp_inputs():
    mec_views = draws(7, *[(12, 5)] * 4)  # p1, p2, z1, z2
    lejepa_views = [0.5 * t + 0.3 for t in draws(8, *[(12, 6)] * 3)]  # 2 global views, 1 local
    return mec_views, lejepa_views, unit_directions(9, 6, 10)


def _ddp_losses(mec_views, lejepa_views, directions):
    p1, p2, z1, z2 = mec_views
    mec = (mec_loss(p1, z2, lambda_inverse=3.0) + mec_loss(p2, z1, lambda_inverse=3.0)) / 2
    return mec, lejepa_loss(*lejepa_views, global_views=2, directions=directions, lambd=0.3, t_max=4.0, points=9)


def _single_process():
    mec_views, lejepa_views, directions = _ddp_inputs()
    inputs = [t.requires_grad_() for t in mec_views + lejepa_views]
    mec, lejepa = _ddp_losses(inputs[:4], inputs[4:], directions)
    (mec + lejepa).backward()
    return mec.detach(), lejepa.detach(), [t.grad for t in inputs]


def _ranks_match_one_process(rank, expected):
    mec, lejepa, grads = expected
    mec_views, lejepa_views, directions = _ddp_inputs()
    rows = slice(rank * 6, (rank + 1) * 6)
    local = [t[rows].clone().requires_grad_() for t in mec_views + lejepa_views]
    local_mec, local_lejepa = _ddp_losses(local[:4], local[4:], directions)
    (local_mec + local_lejepa).backward()
    assert rel_err(local_mec.detach(), mec) < 1e-12 and rel_err(local_lejepa.detach(), lejepa) < 1e-12, rank
    for part, whole in zip(local, grads):  # world_size x the single-process gradient: DDP's mean makes it exact
        assert rel_err(part.grad, WORLD_SIZE * whole[rows]) < 1e-10, rank


def test_two_gloo_ranks_reproduce_the_single_process_losses_and_gradients():
    run_on_gloo_ranks(_ranks_match_one_process, WORLD_SIZE, before=_single_process)


