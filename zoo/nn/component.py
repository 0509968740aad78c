"""The base of a component and the state its hooks read.

A component is an `nn.Module` a method holds as an attribute (`self.target = EMA(...)`); the training step
(`zoo.train.step`) finds every component in the method's module tree and calls its hooks at named points of
each optimiser step:
  before_forward(state): before the forward, once per optimiser step (at its first micro-batch under
    gradient accumulation);
  before_optimizer_step(state): after every backward of the step (and AMP's unscaling), before the
    optimiser moves the parameters;
  after_optimizer_step(state): right after the optimiser step, before anything else sees the batch's end.
A hook returns {metric name: value} to log (the harness logs it), or None.
"""

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class StepState:
    """Where training is, as the hooks read it (instead of a trainer's counters)."""

    step: int  # optimiser steps done before this one (0-based index of the current step)
    total_steps: int  # optimiser steps of the whole run
    epoch: int = 0
    steps_per_epoch: int = 1


class Component(nn.Module):
    """A module with a part in the training step; subclasses override the hooks they need."""

    # True where a trained parameter gets its first gradient after other parameters have stepped, so that the
    # optimiser cannot be torch's fused SGD (it creates a group's momentum buffers only at the group's first step).
    gradients_start_late = False

    def before_forward(self, state: StepState) -> dict | None:
        return None

    def before_optimizer_step(self, state: StepState) -> dict | None:
        return None

    def after_optimizer_step(self, state: StepState) -> dict | None:
        return None


def components(module):
    """The components in `module`'s tree, in registration order."""
    return [m for m in module.modules() if isinstance(m, Component)]
