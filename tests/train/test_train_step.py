"""zoo.train.step: the one training step, without Lightning (its Lightning use: tests/train/test_ema_timing.py)."""

import copy

import pytest
import torch
from method_settings import TEST_RESNET, narrow_config

from zoo.config import SOLO_LARS
from zoo.nn import StepState, components
from zoo.registry import create_method
from zoo.train.harness import Pretrainer
from zoo.train.step import forward_step, train_step

# solo-learn's clipped LARS (eta 0.02): its steps move the prototypes visibly in two steps, which the official
# SwAV LARS (eta 0.001, the class default) does not
HARNESS = {"num_classes": 10, "optimizer": {**SOLO_LARS, "lr": 0.6}}
# SwAV's prototypes frozen for the first step only; INTL-M's target moving a lot in two steps.
STEPPED = {"swav": {**narrow_config("swav"), "freeze_epochs": 0, "freeze_steps": 1}, "intl_m": {**narrow_config("intl_m"), "momentum_base": 0.5}}


def batch(seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 3, 16, 16, generator=gen) for _ in range(2)], torch.randint(0, 10, (8,), generator=gen)


def optimiser(model):
    configured = Pretrainer(model, **HARNESS).build_optimizer(steps_per_epoch=2, total_steps=4)
    return configured["optimizer"], configured["lr_scheduler"]["scheduler"]


@pytest.mark.parametrize("name", sorted(STEPPED))
def test_an_amp_scaler_takes_the_same_steps_as_none(name):
    """The scaler's path (scaled backward, unscale before the components' hooks, scaler.step) gives the steps of
    the plain path: the scale is a power of two, so unscaling is exact; SwAV's prototypes stay frozen in step 0."""
    torch.manual_seed(0)
    plain = create_method(name, STEPPED[name], **TEST_RESNET)
    scaled = copy.deepcopy(plain)
    prototypes = plain.prototypes.weight.clone() if name == "swav" else None
    for model, scaler in ((plain, None), (scaled, torch.amp.GradScaler("cpu", init_scale=2.0**10))):
        optimizer, scheduler = optimiser(model)
        for step in range(2):
            train_step(model, batch(step), optimizer, scheduler, StepState(step=step, total_steps=4, steps_per_epoch=2),
                       scaler=scaler)
            if name == "swav" and step == 0:
                # frozen: freeze_steps=1 (only renormalised, as every step does)
                assert torch.allclose(model.prototypes.weight, prototypes, atol=1e-6)
    for (key, a), b in zip(plain.state_dict().items(), scaled.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), key
    if name == "swav":
        assert (plain.prototypes.weight - prototypes).abs().max() > 1e-4  # trained from step 1 on


def test_the_before_forward_hooks_run_once_per_optimiser_step():
    """Under gradient accumulation the forward runs several times per optimiser step: INTL-M's target moves at
    the first of them only."""
    torch.manual_seed(0)
    model = create_method("intl_m", STEPPED["intl_m"], **TEST_RESNET)
    (ema,) = components(model)
    moves = []
    update = ema.update
    ema.update = lambda tau: (moves.append(tau), update(tau))
    logged = []
    for step in (0, 0, 1, 1, 1, 2):
        logged.append(forward_step(model, *batch(step), StepState(step=step, total_steps=4)).logs)
    assert moves == [ema.momentum(s, 4) for s in (0, 1, 2)]
    assert logged == [{"train/momentum": moves[0]}, {}, {"train/momentum": moves[1]}, {}, {}, {"train/momentum": moves[2]}]
