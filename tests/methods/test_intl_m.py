"""INTL-M: the target is an EMA of the online parameters only."""

import torch
from method_settings import build

from zoo.nn import StepState


def test_intl_m_target_is_an_ema_of_online_parameters_only():
    model = build("intl_m", ["data.views=[{size: 16, count: 3}]"]).method
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.target.backbone.parameters()]
    buffers_before = [b.clone() for b in model.target.backbone.buffers()]
    model.target.momentum = lambda step, total_steps: 0.75  # the schedule is tested on its own; here only the update
    model.target.before_forward(StepState(step=0, total_steps=10))  # INTL-M's target moves before the forward
    for old, new, online in zip(before, model.target.backbone.parameters(), model.backbone.parameters()):
        assert torch.allclose(new, 0.75 * old + 0.25 * online)
        assert not new.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(buffers_before, model.target.backbone.buffers()))
    loss, _ = model.split_loss(model.compute_loss([torch.randn(32, 3, 16, 16) for _ in range(3)])[0])
    loss.backward()
    assert all(p.grad is None for p in model.target.backbone.parameters())
