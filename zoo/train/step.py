"""The training step, once, without Lightning: what the harness's hooks (`zoo.train.harness.Pretrainer`), the
benchmarks' bare loops and the tests all run, on a method (`zoo.methods.base.Method`).

    state = StepState(step=done, total_steps=total, epoch=epoch, steps_per_epoch=per_epoch)
    out = train_step(method, (crops, labels), optimizer, scheduler, state)   # a loop without Lightning
    out = train_step(method, batch, optimizer, scheduler, state, probe=pretrainer.probe_step)   # with a probe

The harness runs the same pieces from its hooks: `forward_step` in training_step, `before_optimizer_step`
in on_before_optimizer_step (after every backward and AMP's unscaling), `after_optimizer_step` in optimizer_step
right after the optimiser (before any callback sees the batch's end). The components of the method (`zoo.nn`:
EMA target, feature queue, early freezing) act at those points; a method's own timing lives in its components.
"""

import contextlib
from dataclasses import dataclass, field

import torch

from zoo.nn.component import StepState, components

__all__ = ["StepOutput", "StepState", "after_optimizer_step", "before_optimizer_step", "forward_step", "train_step"]


@dataclass
class StepOutput:
    """One forward of the step: `total` (what backward takes: the loss plus the probe's), the method's `loss` and
    its named `parts`, the online probe's loss and top-1 (None without labels or probe), the backbone features
    the probe read, and the values to log that the components and the method returned."""

    total: torch.Tensor
    loss: torch.Tensor
    parts: dict
    probe_loss: torch.Tensor
    probe_top1: torch.Tensor | None
    features: list
    logs: dict = field(default_factory=dict)


def step_components(method):
    """The method's components, found in its module tree at its first step and kept: a walk over every module at
    every hook would cost more than the hooks (components are built with the method, not added later)."""
    found = method.__dict__.get("_step_components")
    if found is None:
        found = method.__dict__["_step_components"] = components(method)
    return found


def _run(method, hook, state):
    logs = {}
    for component in step_components(method):
        logs.update(getattr(component, hook)(state) or {})
    return logs


def forward_step(method, crops, labels, state: StepState, *, probe=None) -> StepOutput:
    """The before-forward hooks (once per optimiser step: skipped on later micro-batches of the same step), the
    method's loss (`forward_loss`) and, given `probe` (a callable (features, labels) -> (loss, top-1), such as
    the harness's `probe_step`), the online probe on the features."""
    logs = {}
    if getattr(method, "_before_forward_step", None) != state.step:
        method._before_forward_step = state.step  # the first micro-batch of this optimiser step
        logs = _run(method, "before_forward", state)
    out = method.forward_loss(crops, state)
    logs.update(out.logs)
    if probe:
        probe_loss, probe_top1 = probe(out.features, labels)
    else:
        probe_loss, probe_top1 = out.total.new_zeros(()), None
    return StepOutput(out.total + probe_loss, out.total, out.parts, probe_loss, probe_top1, out.features, logs)


def before_optimizer_step(method, state: StepState) -> dict:
    """After every backward of the step (and AMP's unscaling), before the optimiser: e.g. early freezing."""
    return _run(method, "before_optimizer_step", state)


def after_optimizer_step(method, state: StepState) -> dict:
    """Right after the optimiser step: e.g. the EMA target of BYOL, DINO, MEC."""
    return _run(method, "after_optimizer_step", state)


def train_step(method, batch, optimizer, scheduler, state: StepState, *, scaler=None, autocast=None, probe=None):
    """One optimiser step of a loop without Lightning: forward_step (under `autocast()`, a context-manager
    factory, when given), zero_grad, backward (scaled by the AMP `scaler` when given), unscale,
    before_optimizer_step, the optimiser step, after_optimizer_step, the scheduler step. -> StepOutput, its
    logs holding every hook's values."""
    crops, labels = batch
    with autocast() if autocast is not None else contextlib.nullcontext():
        out = forward_step(method, crops, labels, state, probe=probe)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(out.total).backward()
        scaler.unscale_(optimizer)
    else:
        out.total.backward()
    out.logs.update(before_optimizer_step(method, state))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    out.logs.update(after_optimizer_step(method, state))
    if scheduler is not None:
        scheduler.step()
    return out
