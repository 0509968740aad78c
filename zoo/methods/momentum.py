"""The momentum (EMA) target, a mixin: INTL-M, BYOL, MoCo v2+, DINO; its schedules and crop pairing.

    @register_method("intl_m")
    class INTLMomentum(MomentumTargetMixin, INTL):
        @dataclass
        class Config(MomentumTargetMixin.Config, INTL.Config):  # + momentum_base, momentum_final
            ...

        def compute_loss(self, crops):
            target = self.target_forward(crops[0])  # no gradient
            ...

The mixin goes before the method class in the bases, and the method's `Config` subclasses
`MomentumTargetMixin.Config` (first) and its parent's `Config`, so that the fields the mixin
reads are declared (and Hydra-typed) in the method's config.
"""

import copy
import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch

from zoo.methods.base import BaseMethod, MethodConfig


class ConfiguredMixin:
    """Base of a method mixin with config fields of its own (its nested `Config` dataclass): a method
    using the mixin must list that Config among its Config's bases, beside a method Config, so the
    fields the mixin reads are declared (and Hydra-typed) in the method's config; TypeError otherwise."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not issubclass(cls, BaseMethod):
            return
        for mixin in cls.__mro__:
            if mixin is ConfiguredMixin or not issubclass(mixin, ConfiguredMixin) or issubclass(mixin, BaseMethod):
                continue
            if not (issubclass(cls.Config, mixin.Config) and issubclass(cls.Config, MethodConfig)):
                names = " / ".join(f.name for f in fields(mixin.Config))
                raise TypeError(
                    f"{cls.__name__}.Config must subclass {mixin.__name__}.Config and a method Config, e.g. "
                    f"`class Config({mixin.__name__}.Config, BaseMethod.Config)`, so that {names} are declared"
                )


def cosine_ramp(base, final, progress):
    """`base` at progress 0 to `final` at progress >= 1 on a half cosine: the EMA momentum schedule of BYOL,
    MoCo v2+ (solo-learn's MomentumUpdater) and INTL-M; a schedule of any other value (a temperature) too."""
    progress = min(max(progress, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


def linear_ramp(base, final, progress):
    """`base` at progress 0 to `final` at progress >= 1 on a straight line: DINO's teacher-temperature warm-up."""
    progress = min(max(progress, 0.0), 1.0)
    return base + (final - base) * progress


def target_pairs(crop_sizes):
    """Multi-crop pairing of an EMA-target method: every (target crop, online crop) pair of two different
    crops, the target crops being those of the largest size; two crops give [(0, 1), (1, 0)].
    vturrisi/solo-learn solo/methods/byol.py (its large crops as targets, every other crop online)."""
    largest = max(crop_sizes)
    return [(t, v) for t, size in enumerate(crop_sizes) if size == largest for v in range(len(crop_sizes)) if v != t]


def targets_first(crop_sizes):
    """(crop indices with the target crops first, number of target crops): the target crops are those of the
    largest size, as in `target_pairs`, in crop order, then the other crops; the order of SwAV's and DINO's
    losses, whose targets (codes, teacher outputs) belong to their first crops. (16, 8, 16) gives ([0, 2, 1], 2)."""
    largest = max(crop_sizes)
    targets = [i for i, size in enumerate(crop_sizes) if size == largest]
    return targets + [i for i, size in enumerate(crop_sizes) if size != largest], len(targets)


class MomentumTargetMixin(ConfiguredMixin):
    """An EMA copy of backbone + projector (`target_backbone`, `target_projector`), without gradients,
    moved once per optimiser step with momentum rising from `momentum_base` to `momentum_final` on a
    cosine schedule over training. Parameters only: BN buffers are not averaged (official INTL_M).

    When (`ema_timing`):
      "after_step" (default): solo-learn's order (solo/methods/base.py BaseMomentumMethod.on_train_batch_end),
        which the official BYOL (byol_experiment.py: the target after the optimiser update, at the step's
        tau), DINO (main_dino.py: the teacher after optimizer.step(), momentum_schedule[it]) and MEC share:
        right after optimiser step k (0-based), target <- tau(k) target + (1 - tau(k)) online, with the online
        parameters step k produced. The forward of step k + 1 sees it, and the final target includes the last
        step. It runs inside `optimizer_step`, so only on batches that step (not while accumulating, as
        solo-learn's `global_step > last_step`) and before any callback of the batch (a checkpoint saved every
        n steps holds the updated target).
      "before_forward": the official INTL_M order (INTL main.py adjust_momentum(step) before the forward,
        methods/intl_m.py updating at the start of it): before the forward of step k, at tau(k), with the
        online parameters after k steps (a no-op at step 0); once per optimiser step.
    MoCo's constant momentum makes the two orders give the same target at every forward."""

    momentum_target = True
    ema_timing: ClassVar[str] = "after_step"

    @dataclass
    class Config:
        """The mixin's fields; a method's Config lists this class first among its bases. Not a
        MethodConfig itself, so it cannot shadow the method's own defaults of the shared fields."""

        momentum_base: float = 0.996
        momentum_final: float = 1.0

    def build_modules(self):
        super().build_modules()
        if self.ema_timing not in ("after_step", "before_forward"):
            raise ValueError(f"{type(self).__name__}.ema_timing must be 'after_step' or 'before_forward', not {self.ema_timing!r}")
        self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def momentum(self, step=None, total_steps=None):
        """EMA momentum of optimiser step `step` (0-based) of `total_steps` (default: this trainer's current
        step and total): a cosine schedule from momentum_base at step 0 to momentum_final (BYOL, INTL-M;
        solo-learn's MomentumUpdater.update_tau at cur_step = step)."""
        step = self.global_step if step is None else step
        total = max(self.trainer.estimated_stepping_batches if total_steps is None else total_steps, 1)
        return cosine_ramp(self.mcfg.momentum_base, self.mcfg.momentum_final, step / total)

    @torch.no_grad()
    def update_target(self, tau):
        """target <- tau target + (1 - tau) online, parameters only."""
        for online, target in ((self.backbone, self.target_backbone), (self.projector, self.target_projector)):
            torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1 - tau)

    def _move_target(self, step=None):
        tau = self.momentum(step)  # None: the current step's
        self.update_target(tau)
        self.log("train/momentum", tau)

    def on_train_batch_start(self, batch, batch_idx):
        step = self.global_step
        if self.ema_timing == "before_forward" and step != getattr(self, "_target_moved_at", None):
            self._target_moved_at = step  # the first batch of this optimiser step (under accumulation)
            self._move_target()
        return super().on_train_batch_start(batch, batch_idx)

    def optimizer_step(self, *args, **kwargs):
        step = self.global_step  # optimiser steps completed before this one (Lightning counts it after the hook)
        result = super().optimizer_step(*args, **kwargs)  # the closure inside runs training_step and backward
        if self.ema_timing == "after_step":
            self._move_target(step)
        return result

    def target_forward(self, crop):
        """The target branch's projector output of `crop`, without gradient."""
        with torch.no_grad():
            return self.target_projector(self.target_backbone(crop))
