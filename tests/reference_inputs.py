"""Inputs of the reference files whose numbers an authors' loss computed (tests/fixtures/*_reference.json), drawn
again here, and the relative error the comparisons take."""

import torch


def scaled_views(seed, views, n, d):
    """Per-feature scales and shifts, then one (n, d) draw per view or patch (float64, requiring gradients)."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(d, generator=gen, dtype=torch.float64) * 2 + 0.5
    shift = torch.randn(d, generator=gen, dtype=torch.float64)
    return [(torch.randn(n, d, generator=gen, dtype=torch.float64) * scale + shift).requires_grad_() for _ in range(views)]


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()
