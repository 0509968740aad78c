"""Schedules of a value over training progress in [0, 1] (momentum, temperature, ...)."""

import math


def cosine_ramp(base, final, progress):
    """`base` at progress 0 to `final` at progress >= 1 on a half cosine: the EMA momentum schedule of BYOL,
    MoCo v2+ (solo-learn's MomentumUpdater) and INTL-M; a schedule of any other value (a temperature) too."""
    progress = min(max(progress, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


def linear_ramp(base, final, progress):
    """`base` at progress 0 to `final` at progress >= 1 on a straight line: DINO's teacher-temperature warm-up."""
    progress = min(max(progress, 0.0), 1.0)
    return base + (final - base) * progress
