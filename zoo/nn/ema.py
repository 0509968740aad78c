"""An exponential moving average (EMA) copy of modules: the momentum target of BYOL, MoCo, DINO, MEC, INTL-M.

    self.target = EMA({"backbone": self.backbone, "projector": self.projector}, base, final, timing="after_step")
    ...
    z = self.target(crop)   # the copies applied in order, without gradient

The copies are submodules (`target.backbone.*`, `target.projector.*` in the state dict, so a checkpoint keeps
them); the online modules are only referenced. Parameters only: BatchNorm buffers are not averaged (official
INTL_M), each copy keeps its own, updated by its own forward passes.

When (`timing`):
  "after_step": solo-learn's order (solo/methods/base.py BaseMomentumMethod.on_train_batch_end), which the
    official BYOL (byol_experiment.py: the target after the optimiser update, at the step's tau), DINO
    (main_dino.py: the teacher after optimizer.step(), momentum_schedule[it]) and MEC share: right after
    optimiser step k (0-based), target <- tau(k) target + (1 - tau(k)) online, with the online parameters
    step k produced. The forward of step k + 1 sees it, and the final target includes the last step.
  "before_forward": the official INTL_M order (INTL main.py adjust_momentum(step) before the forward,
    methods/intl_m.py updating at the start of it): before the forward of step k, at tau(k), with the online
    parameters after k steps (a no-op at step 0).
Either way once per optimiser step. MoCo's constant momentum makes the two orders give the same target at
every forward.
"""

import copy
from collections.abc import Mapping

import torch
from torch import nn

from zoo.nn.component import Component, StepState
from zoo.nn.ramps import cosine_ramp

TIMINGS = ("after_step", "before_forward")


class EMA(Component):
    """EMA copies of `online` ({name: module}, applied in that order by `forward`), without gradients, moved
    once per optimiser step with momentum rising from `base` to `final` on a cosine schedule over training."""

    def __init__(self, online: Mapping[str, nn.Module], base: float, final: float, timing: str = "after_step"):
        super().__init__()
        if timing not in TIMINGS:
            raise ValueError(f"EMA timing must be one of {', '.join(TIMINGS)}, not {timing!r}")
        self.base, self.final, self.timing = float(base), float(final), timing
        self.online = dict(online)  # a plain dict: the method owns (and checkpoints) the online modules
        for name, module in self.online.items():
            self.add_module(name, copy.deepcopy(module).requires_grad_(False))

    def momentum(self, step, total_steps):
        """The momentum of optimiser step `step` (0-based) of `total_steps`: base at step 0 to final at the end
        (BYOL, INTL-M; solo-learn's MomentumUpdater.update_tau at cur_step = step)."""
        return cosine_ramp(self.base, self.final, step / max(total_steps, 1))

    @torch.no_grad()
    def update(self, tau):
        """copy <- tau copy + (1 - tau) online, parameters only."""
        for name, online in self.online.items():
            torch._foreach_lerp_(list(getattr(self, name).parameters()), list(online.parameters()), 1 - tau)

    def _move(self, state: StepState):
        tau = self.momentum(state.step, state.total_steps)
        self.update(tau)
        return {"train/momentum": tau}

    def before_forward(self, state):
        return self._move(state) if self.timing == "before_forward" else None

    def after_optimizer_step(self, state):
        return self._move(state) if self.timing == "after_step" else None

    @torch.no_grad()
    def forward(self, x):
        """The copies applied in order to `x`, without gradient."""
        for name in self.online:
            x = getattr(self, name)(x)
        return x
