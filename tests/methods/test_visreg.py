"""VISReg: the loss against an independent float64 oracle written from the formula (numpy loops, the value and
the input gradient derived by hand), the gradient at collapse next to SIGReg's, the slice directions of each
step and their step counter (two gloo ranks against one process: tests/losses/test_visreg_loss_ddp.py).

VISReg's official code is under a non-commercial licence and was not read or run; the oracle below is
written from the paper's formula (Algorithm 1, Eqs. 1, 2, 5, 6 and 8, as zoo/methods/visreg.py cites them):
sigma over the batch with 1/N, the scale term on it without eps, the shape term on (x - mu) / (sg(sigma) + eps).
"""

import functools
from statistics import NormalDist

import numpy as np
import pytest
import torch
from method_settings import TINY_8, narrow_config
from method_settings import crops as crops_of_16

from zoo.errors import ZooError
from zoo.losses.sigreg import random_slices, sigreg_loss, visreg_loss, visreg_terms
from zoo.registry import create_method

crops = functools.partial(crops_of_16, batch=TINY_8["global_batch_size"])


def rel_err(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


# ---- the oracle: loops over views, samples, features and directions, float64 --------------------------
def oracle(z, global_views, directions, lambd, weights, eps, detach_std):
    """(value, parts, dL/dz) of VISReg's loss for z (V, N, D), directions (D, K), weights (scale, shape, centre)."""
    views, n, dim = z.shape
    k_slices = directions.shape[1]
    quantile = [NormalDist().inv_cdf((r + 1) / (n + 1)) for r in range(n)]
    grad = np.zeros_like(z)
    # prediction: mean over v, i, d of (c_id - z_vid)^2, c the mean of the global views
    centroid = sum(z[g] for g in range(global_views)) / global_views
    prediction = sum(((centroid - z[v]) ** 2).sum() for v in range(views)) / (views * n * dim)
    residual_sum = sum(centroid - z[v] for v in range(views))
    for u in range(views):
        grad[u] += (1 - lambd) * 2 / (views * n * dim) * (-(centroid - z[u]) + (u < global_views) / global_views * residual_sum)
    totals = {"scale": 0.0, "shape": 0.0, "centre": 0.0}
    for v in range(views):
        x = z[v]
        mean = [sum(x[i, j] for i in range(n)) / n for j in range(dim)]
        c = np.array([[x[i, j] - mean[j] for j in range(dim)] for i in range(n)])
        std = [np.sqrt(sum(c[i, j] ** 2 for i in range(n)) / n) for j in range(dim)]
        denom = [std[j] + eps for j in range(dim)]  # the shape term's standardisation
        scale = sum((1 - std[j]) ** 2 for j in range(dim)) / dim
        centre = sum(mean[j] ** 2 for j in range(dim)) / dim
        d_scale = np.array([[-2 * (1 - std[j]) / dim * c[i, j] / (n * std[j]) for j in range(dim)] for i in range(n)])
        d_centre = np.array([[2 * mean[j] / (dim * n) for j in range(dim)] for i in range(n)])
        shape, d_shape = 0.0, np.zeros((n, dim))
        for k in range(k_slices):
            y = [sum(c[i, j] * directions[j, k] / denom[j] for j in range(dim)) for i in range(n)]
            order = sorted(range(n), key=lambda i: y[i])
            rank = {i: r for r, i in enumerate(order)}
            shape += sum((y[i] - quantile[rank[i]]) ** 2 for i in range(n))
            g = [2 * (y[i] - quantile[rank[i]]) / (k_slices * n) for i in range(n)]
            g_mean = sum(g) / n
            for lo in range(n):
                for j in range(dim):
                    d_shape[lo, j] += directions[j, k] / denom[j] * (g[lo] - g_mean)  # through the centred sample
                    if not detach_std:  # through sigma_j = sqrt(sum_i c_ij^2 / n) in sigma_j + eps
                        d_sigma = sum(g[i] * -c[i, j] * directions[j, k] / denom[j] ** 2 for i in range(n))
                        d_shape[lo, j] += d_sigma * c[lo, j] / (n * std[j])
        shape /= k_slices * n
        for name, term in (("scale", scale), ("shape", shape), ("centre", centre)):
            totals[name] += term / views
        w_scale, w_shape, w_centre = weights
        grad[v] += lambd / views * (w_scale * d_scale + w_shape * d_shape + w_centre * d_centre)
    parts = {"prediction": (1 - lambd) * prediction,
             **{name: lambd * w * totals[name] for name, w in zip(("scale", "shape", "centre"), weights)}}
    return sum(parts.values()), parts, grad


CASES = [  # (views, global views, n, dim, slices, lambd, weights, eps, detach_std)
    (3, 2, 12, 6, 24, 0.9, (1.0, 1.0, 1.0), 1e-4, True),  # the paper's ImageNet-1K weights
    (3, 2, 12, 6, 24, 0.3, (0.7, 1.3, 2.0), 1e-4, False),
    (2, 1, 9, 5, 16, 0.8, (1.0, 0.5, 1.0), 1e-2, True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}v{c[1]}g-l{c[5]}-detach{c[8]}")
def test_visreg_loss_value_parts_and_gradient_equal_the_float64_oracle(case):
    views, global_views, n, dim, slices, lambd, weights, eps, detach_std = case
    rng = np.random.default_rng(n * dim + views)
    z = 0.7 * rng.standard_normal((views, n, dim)) + 0.2  # off-centre, so that the centring term counts
    directions = rng.standard_normal((dim, slices))
    directions /= np.linalg.norm(directions, axis=0)
    expected, expected_parts, expected_grad = oracle(z, global_views, directions, lambd, weights, eps, detach_std)
    inputs = [torch.tensor(z[v], requires_grad=True) for v in range(views)]
    value, parts = visreg_loss(*inputs, global_views=global_views, directions=torch.tensor(directions), lambd=lambd,
                               scale=weights[0], shape=weights[1], centre=weights[2], eps=eps, detach_std=detach_std,
                               return_parts=True)
    value.backward()
    assert value.dtype == torch.float64 and abs(value.item() - expected) < 1e-12 * abs(expected)
    assert all(abs(parts[name].item() - expected_parts[name]) < 1e-12 * abs(expected_parts[name]) for name in expected_parts)
    assert rel_err(np.stack([t.grad.numpy() for t in inputs]), expected_grad) < 1e-10


def test_the_scale_gradient_stays_at_collapse_where_sigregs_vanishes():
    """The paper's claim: near collapse, d L_scale / d sigma tends to the constant -2 (here along t, every feature's
    spread, sigma = t down to 1e-3), while SIGReg's gradient vanishes with t. With the shape term's sigma not held
    constant (and its eps taken to 1e-18) the shape term is scale-free, so the whole regulariser's derivative along
    t is the scale term's -2 (1 - t). At exact collapse the gradient is finite (the variance's floor), not NaN."""
    gen = torch.Generator().manual_seed(3)
    u = torch.randn(64, 8, generator=gen, dtype=torch.float64)
    u = (u - u.mean(0)) / u.std(0, unbiased=False)  # every feature mean 0, batch standard deviation 1
    directions = random_slices(8, 64, 0, dtype=torch.float64)
    slopes = {}
    for t in (1e-1, 1e-2, 1e-3):
        spread = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        scale, shape, centre = visreg_terms(spread * u, directions, eps=1e-18, detach_std=False)
        (d_visreg,) = torch.autograd.grad(scale + shape + centre, spread)
        spread = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        (d_sigreg,) = torch.autograd.grad(sigreg_loss(spread * u, directions), spread)
        slopes[t] = d_visreg.item(), d_sigreg.item()
        assert d_visreg.item() == pytest.approx(-2 * (1 - t), rel=1e-6)
    assert abs(slopes[1e-3][1]) < 0.02 * abs(slopes[1e-1][1])  # SIGReg's slope shrinks as t: 100x from 0.1 to 1e-3
    collapsed = torch.zeros(16, 8, dtype=torch.float64, requires_grad=True)
    sum(visreg_terms(collapsed + 0.5, directions, detach_std=False)).backward()
    assert torch.isfinite(collapsed.grad).all()


def test_visreg_draws_the_directions_of_its_step_and_keeps_its_step_counter_in_the_state_dict():
    torch.manual_seed(0)
    config = {**narrow_config("visreg"), "lambd": 0.4}
    model = create_method("visreg", config, **TINY_8)
    with torch.no_grad():
        views = model.project([model.backbone(crop) for crop in crops()])
        for step in range(2):  # the same views, the directions of each step
            total, parts = model.loss(views)
            expected = visreg_loss(*views, global_views=2, directions=random_slices(8, 16, step), lambd=0.4)
            assert torch.allclose(total, expected) and set(parts) == {"prediction", "scale", "shape", "centre"}
    assert model.slice_step.item() == 2 and not torch.equal(random_slices(8, 16, 0), random_slices(8, 16, 1))
    fresh = create_method("visreg", config, **TINY_8)
    fresh.load_state_dict(model.state_dict())
    assert fresh.slice_step.item() == 2
    with pytest.raises(ZooError, match="visreg needs non-negative term weights"):
        create_method("visreg", {**config, "shape": -1.0}, **TINY_8)
    z = [torch.randn(8, 4, dtype=torch.bfloat16) for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 maths under autocast
        assert visreg_loss(*z, global_views=2, directions=random_slices(4, 8, 0)).dtype == torch.float32


def test_the_class_defaults_are_the_papers_values_as_cited():
    """lambd 0.9, weights 1, 2048 slices, eps 1e-4 on sg(sigma), the 2048 -> 2048 -> 256 projector with BatchNorm and
    GELU, AdamW lr 9e-4 (zoo/methods/visreg.py says where each comes from)."""
    cls = type(create_method("visreg", narrow_config("visreg"), **TINY_8))
    config = cls.Config()
    assert (config.lambd, config.scale, config.shape, config.centre, config.num_slices, config.eps, config.detach_std) \
        == (0.9, 1.0, 1.0, 1.0, 2048, 1e-4, True)
    assert (config.proj_hidden, config.proj_out) == ([2048, 2048], 256)
    assert cls.optimizer_defaults["name"] == "adamw" and cls.optimizer_defaults["lr"] == 9e-4
    model = create_method("visreg", narrow_config("visreg"), **TINY_8)
    assert any(isinstance(layer, torch.nn.GELU) for layer in model.projector.modules())
    assert not any(isinstance(layer, torch.nn.ReLU) for layer in model.projector.modules())
