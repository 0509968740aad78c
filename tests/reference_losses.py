"""Loop-based oracles for zoo.losses / zoo.spectral, shaped like the official code.

Each function follows the structure of its official implementation (a loop
over whitening iterations, sub-batches, views and groups, one 2-D matrix at a
time; SVD where the official code uses SVD, BatchNorm1d where it uses BN) and
draws its random permutations from torch's global generator in the same order
as `zoo.spectral.whiten`. They never gather across ranks: they are the
single-process truth. Sources:

* INTL: winci-ai/INTL methods/{intl,base,whitening}.py
* W-MSE: htdt/self-supervised methods/{w_mse,whitening}.py
* CW-RGP: winci-ai/CW-RGP base/methods/{cwrgp,whitening,losses}.py
* Barlow Twins: facebookresearch/barlowtwins main.py; per device: vturrisi/solo-learn solo/losses/barlow.py
* VICReg: facebookresearch/vicreg main_vicreg.py
* SimSiam: facebookresearch/simsiam main_simsiam.py, simsiam/builder.py
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def norm_mse(x0, x1):
    x0, x1 = F.normalize(x0), F.normalize(x1)
    return 2 - 2 * (x0 * x1).sum(dim=-1).mean()


# --- whitening of one (sub-)batch, one group at a time ----------------------


def whitening_map(sigma, kind, iters=4, power=0.5):
    """A function applying W(sigma) to an observations x variables matrix, for one 2-D sigma."""
    k = sigma.shape[0]
    eye = torch.eye(k, dtype=sigma.dtype)
    if kind == "iternorm":
        trace = torch.trace(sigma)
        sigma_n = sigma / trace
        p = eye
        for _ in range(iters):
            p = 1.5 * p - 0.5 * torch.linalg.matrix_power(p, 3) @ sigma_n
        wm = p / torch.sqrt(trace)
        return lambda obs: obs @ wm
    if kind == "cholesky":
        lower = torch.linalg.cholesky(sigma)
        # rows L^-1 x_i, solved rather than multiplied by an explicit inverse
        return lambda obs: torch.linalg.solve_triangular(lower, obs.T, upper=False).T
    u, s, _ = torch.linalg.svd(sigma)
    if kind == "pca":
        return lambda obs: obs @ (u * s.rsqrt())
    p = 0.5 if kind == "zca" else power
    wm = u @ torch.diag(s.pow(-p)) @ u.T
    return lambda obs: obs @ wm


def whiten_one(x, kind, axis, eps=0.0, groups=1, shuffle=None, iters=4, power=0.5):
    """Whiten one (n, D) (sub-)batch as the official Whitening2d.forward, looping over the groups."""
    d = x.shape[1]
    if axis == "batch":
        xn = x - x.mean(dim=0, keepdim=True)
    else:
        xn = x - x.mean(dim=1, keepdim=True)
    order = list(range(d)) if shuffle is None else shuffle.tolist()
    size = d // groups
    out = torch.empty_like(xn)
    for g in range(groups):
        cols = order[g * size : (g + 1) * size]
        block = xn[:, cols]
        obs = block if axis == "batch" else block.T
        m = obs.shape[0]
        sigma = obs.T @ obs / (m - 1)
        sigma = (1 - eps) * sigma + eps * torch.eye(sigma.shape[0], dtype=sigma.dtype)
        white = whitening_map(sigma, kind, iters, power)(obs)
        out[:, cols] = white if axis == "batch" else white.T
    return out


def whiten_views(views, kind, axis, w_size=None, eps=0.0, groups=1, iters=4, power=0.5, shuffle_groups=True):
    """One whitening iteration as W-MSE / CW-RGP's forward: a shared random sub-batch partition, then a loop."""
    bs, d = views[0].shape
    w_size = bs if w_size is None else w_size
    perm = torch.randperm(bs) if bs // w_size > 1 else torch.arange(bs)
    z = [torch.empty_like(v) for v in views]
    for idx in perm.view(-1, w_size):
        for i, v in enumerate(views):
            shuffle = torch.randperm(d) if groups > 1 and shuffle_groups else None
            z[i][idx] = whiten_one(v[idx], kind, axis, eps, groups, shuffle, iters, power)
    return z


# --- losses -----------------------------------------------------------------


def trace_loss(x, axis):
    if axis == "channel":
        x = x.T
    n = x.shape[0]
    x = x - x.mean(dim=0)
    d = (x**2).sum(dim=0) / (n - 1)
    return ((d - 1) ** 2).sum()


def intl_loss(*views, iters=4, axis="channel", trade_off=None):
    if trade_off is None:
        size = views[0].shape[0] if axis == "channel" else views[0].shape[1]
        trade_off = (math.log2(size) - 3) * 0.01
    t = [whiten_one(v, "iternorm", axis, iters=iters) for v in views]
    tl = [trace_loss(x, axis) for x in t]
    loss = 0
    for i in range(1, len(views)):
        loss = loss + norm_mse(t[i], t[0]) + trade_off * (tl[i] + tl[0])
    return loss / (len(views) - 1)


def intl_m_loss(*views, iters=4, axis="channel", trade_off=None):
    """INTL_M: view 0 is the momentum target, and the trace loss is on the online views only."""
    if trade_off is None:
        size = views[0].shape[0] if axis == "channel" else views[0].shape[1]
        trade_off = (math.log2(size) - 3) * 0.01
    tk = whiten_one(views[0], "iternorm", axis, iters=iters)
    tq = [whiten_one(v, "iternorm", axis, iters=iters) for v in views[1:]]
    loss = 0
    for x in tq:
        loss = loss + norm_mse(x, tk) + trade_off * trace_loss(x, axis)
    return loss / len(tq)


def _pairwise_whitened_loss(views, kind, axis, w_size, w_iter, eps, groups):
    loss = 0
    for _ in range(w_iter):
        z = whiten_views(views, kind, axis, w_size, eps, groups)
        for i in range(len(views) - 1):
            for j in range(i + 1, len(views)):
                loss = loss + norm_mse(z[i], z[j])
    return loss / (w_iter * sum(range(len(views))))


def wmse_loss(*views, w_size=None, w_iter=1, eps=0.0):
    return _pairwise_whitened_loss(views, "cholesky", "batch", w_size, w_iter, eps, 1)


def cwrgp_loss(*views, groups=1, w_size=None, w_iter=1, eps=0.0):
    return _pairwise_whitened_loss(views, "zca", "channel", w_size, w_iter, eps, groups)


def _off_diagonal_squares(m):
    mask = ~torch.eye(m.shape[0], dtype=torch.bool)
    return m[mask].pow(2).sum()


def barlow_twins_loss(z1, z2, lambd=0.0051):
    bn = nn.BatchNorm1d(z1.shape[1], affine=False).to(z1.dtype)
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambd * _off_diagonal_squares(c)


def barlow_twins_per_device_loss(z1, z2, lambd=0.0051, devices=2):
    """Barlow Twins with each device's share of the batch standardised by its own BatchNorm1d
    and the devices' cross-correlations averaged, computed in one process."""
    corrs = []
    for a, b in zip(z1.chunk(devices), z2.chunk(devices)):
        bn = nn.BatchNorm1d(z1.shape[1], affine=False).to(z1.dtype)
        corrs.append(bn(a).T @ bn(b) / a.shape[0])
    c = sum(corrs) / devices
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambd * _off_diagonal_squares(c)


def vicreg_loss(z1, z2, sim=25.0, var=25.0, cov=1.0):
    n, d = z1.shape
    repr_loss = F.mse_loss(z1, z2)
    x, y = z1 - z1.mean(dim=0), z2 - z2.mean(dim=0)
    std_x, std_y = torch.sqrt(x.var(dim=0) + 0.0001), torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)
    cov_loss = _off_diagonal_squares(cov_x) / d + _off_diagonal_squares(cov_y) / d
    return sim * repr_loss + var * std_loss + cov * cov_loss


def simsiam_loss(p1, p2, z1, z2):
    criterion = nn.CosineSimilarity(dim=1)
    return -(criterion(p1, z2.detach()).mean() + criterion(p2, z1.detach()).mean()) * 0.5


def rel_err(actual, expected):
    """Relative error in the Frobenius norm (a test helper)."""
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-30)).item()


LOSSES = {
    "intl": intl_loss,
    "wmse": wmse_loss,
    "cwrgp": cwrgp_loss,
    "barlow_twins": barlow_twins_loss,
    "vicreg": vicreg_loss,
    "simsiam": simsiam_loss,
}
