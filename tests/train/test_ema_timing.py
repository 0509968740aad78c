"""When the EMA target moves, against solo-learn's order, in real Lightning fits.

solo-learn (solo/methods/base.py BaseMomentumMethod.on_train_batch_end with solo/utils/momentum.py
MomentumUpdater) moves the target after the optimiser step, once per optimiser step (`global_step >
last_step`, so not on an accumulating batch), with the tau of the previous step's schedule: tau starts at
base_tau and, after each update, becomes final - (final - base) (cos(pi g / G) + 1) / 2 at the new global
step g of G. The official BYOL (deepmind-research byol/byol_experiment.py `_update_fn`: the target after the
optimiser update, at target_ema(global_step)) and DINO (main_dino.py: the teacher after optimizer.step(),
at momentum_schedule[it]) give the same sequence. The reference below is a plain loop of that order, fed
with the online parameters each optimiser step produced (recorded by a callback); the zoo's target, read
before every batch's forward and after the fit, and the momentum of each update must equal it.
"""

import math
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from method_settings import TEST_RESNET, narrow_config, overrides
from torch.utils.data import DataLoader

from zoo.registry import create_method
from zoo.train.harness import Pretrainer

# The tiny test ResNet at narrow widths; DINO's last layer not frozen, so that every step moves the whole target.
TIMED = {"byol": narrow_config("byol"), "mocov2plus": narrow_config("mocov2plus"), "dino": {**narrow_config("dino"), "freeze_epochs": 0},
         "simdino": narrow_config("simdino")}
# A schedule that moves a lot in 4 steps, so that an update one step early or late changes the target.
STEEP = {"momentum_base": 0.5, "momentum_final": 1.0}


def samples(batches, batch=8):
    gen = torch.Generator().manual_seed(5)
    return [([torch.randn(3, 16, 16, generator=gen, dtype=torch.float64) for _ in range(2)], i % 10)
            for i in range(batches * batch)]


def target_params(model):
    return [p.detach().clone() for m in (model.target.backbone, model.target.projector) for p in m.parameters()]


def online_params(model):
    return [p.detach().clone() for m in (model.backbone, model.projector) for p in m.parameters()]


class Record(L.Callback):
    """Per batch, at its start (callbacks' on_train_batch_start run before the module's) and its end (after the
    optimiser step, where a ModelCheckpoint every n steps saves): the target, the online parameters and, at the
    end, the global step."""

    def __init__(self):
        self.target_start, self.online_start, self.target_end, self.online_end, self.step_end = [], [], [], [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.target_start.append(target_params(pl_module.method))
        self.online_start.append(online_params(pl_module.method))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.target_end.append(target_params(pl_module.method))
        self.online_end.append(online_params(pl_module.method))
        self.step_end.append(trainer.global_step)


def solo_learn_order(initial_target, online_end, step_end, total_steps, base, final):
    """solo-learn's momentum pass over the recorded run: (target before each batch, after each batch, taus used)."""
    target = [t.clone() for t in initial_target]
    cur_tau, last_step = base, 0
    before, after, taus = [], [], []
    for online, global_step in zip(online_end, step_end):
        before.append(target)
        if global_step > last_step:  # an optimiser step was made on this batch
            target = [cur_tau * t + (1 - cur_tau) * o for t, o in zip(target, online)]
            taus.append(cur_tau)
            cur_tau = final - (final - base) * (math.cos(math.pi * global_step / total_steps) + 1) / 2
        last_step = global_step
        after.append(target)
    return before, after, taus


def intl_order(initial_target, online_start, step_start, total_steps, base):
    """INTL main.py + methods/intl_m.py: before the forward of step k, m = 1 - (1 + cos(pi k / T)) (1 - m0) / 2 and
    target <- m target + (1 - m) online (the online parameters after k steps); (target each forward sees, taus)."""
    target = [t.clone() for t in initial_target]
    seen, taus = [], []
    for online, step in zip(online_start, step_start):
        m = 1.0 - 0.5 * (1.0 + math.cos(math.pi * step / total_steps)) * (1.0 - base)
        target = [m * t + (1 - m) * o for t, o in zip(target, online)]
        seen.append(target)
        taus.append(m)
    return seen, taus


def fit(name, batches, accumulate=1, timing=None):
    torch.manual_seed(0)
    model = create_method(name, {**TIMED[name], **STEEP}, **TEST_RESNET)
    harness = Pretrainer(model, num_classes=10, scheduler={"warmup_epochs": 0})
    if timing:
        model.target.timing = timing
    initial = target_params(model)
    taus = []
    update = model.target.update

    def recording_update(tau):
        taus.append(tau)
        return update(tau)

    model.target.update = recording_update
    record = Record()
    trainer = L.Trainer(max_epochs=1, limit_val_batches=0, accelerator="cpu", devices=1, precision="64-true", logger=False,
                        accumulate_grad_batches=accumulate, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[record])
    trainer.fit(harness, DataLoader(samples(batches), batch_size=8, shuffle=False))
    return model, trainer, initial, record, taus


def assert_same(actual, expected, what):
    assert len(actual) == len(expected)
    worst = max((a - e).abs().max().item() for a, e in zip(actual, expected))
    assert worst < 1e-12, f"{what}: differs by {worst}"


@pytest.mark.parametrize("name", sorted(TIMED))
def test_the_target_moves_after_each_optimiser_step_as_solo_learn_moves_it(name):
    model, trainer, initial, record, taus = fit(name, batches=4)
    total = trainer.estimated_stepping_batches
    assert total == 4 and record.step_end == [1, 2, 3, 4] and model.target.timing == "after_step"
    m = model.mcfg
    before, after, expected_taus = solo_learn_order(initial, record.online_end, record.step_end, total,
                                                    m.momentum_base, m.momentum_final)
    assert len(taus) == 4 and taus == pytest.approx(expected_taus, abs=1e-15)
    assert taus[0] == m.momentum_base  # the first update, after step 0, at the schedule's start
    for batch in range(4):
        assert_same(record.target_start[batch], before[batch], f"{name}: target seen by the forward of batch {batch}")
        assert_same(record.target_end[batch], after[batch], f"{name}: target at the end of batch {batch} (checkpointed)")
    assert_same(target_params(model), after[-1], f"{name}: target after the last step")
    assert_same(record.target_start[0], initial, "the forward of step 0 sees the untouched copy")
    assert max((a - b).abs().max().item() for a, b in zip(after[-1], before[-1])) > 1e-6  # the last step's update


def test_under_gradient_accumulation_the_target_moves_once_per_optimiser_step():
    model, trainer, initial, record, taus = fit("byol", batches=8, accumulate=2)
    assert trainer.estimated_stepping_batches == 4 and record.step_end == [0, 1, 1, 2, 2, 3, 3, 4]
    m = model.mcfg
    before, after, expected_taus = solo_learn_order(initial, record.online_end, record.step_end, 4,
                                                    m.momentum_base, m.momentum_final)
    assert len(taus) == 4 and taus == pytest.approx(expected_taus, abs=1e-15)
    for batch in range(8):
        assert_same(record.target_start[batch], before[batch], f"target seen by batch {batch}")
        assert_same(record.target_end[batch], after[batch], f"target at the end of batch {batch}")


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_before_forward_timing_is_intl_ms_official_order(accumulate):
    """EMA timing "before_forward", for INTL-M: the target each forward sees is INTL's."""
    batches = 4 * accumulate
    model, _, initial, record, taus = fit("byol", batches=batches, accumulate=accumulate, timing="before_forward")
    steps_start = [0] + record.step_end[:-1]
    first = [i for i in range(batches) if i == 0 or steps_start[i] != steps_start[i - 1]]  # each step's first batch
    seen, expected_taus = intl_order(initial, [record.online_start[i] for i in first], [steps_start[i] for i in first],
                                     4, model.mcfg.momentum_base)
    assert len(taus) == 4 and taus == pytest.approx(expected_taus, abs=1e-15)
    for k, i in enumerate(first):
        for j in range(i, i + accumulate):  # every batch of optimiser step k, after its optimiser step too
            assert_same(record.target_end[j], seen[k], f"target seen by batch {j}")
    # one step late against solo-learn's order: a different target from the second step on
    _, after, _ = solo_learn_order(initial, record.online_end, record.step_end, 4, model.mcfg.momentum_base, 1.0)
    assert max((a - b).abs().max().item() for a, b in zip(seen[1], after[first[1] - 1])) > 1e-6


def test_the_update_is_a_plain_ema_of_parameters_and_leaves_buffers_alone():
    torch.manual_seed(0)
    model = create_method("byol", {**TIMED["byol"], **STEEP}, **TEST_RESNET).double()
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    old, online = target_params(model), online_params(model)
    buffers = [b.clone() for b in model.target.backbone.buffers()]
    model.target.update(0.75)
    assert_same(target_params(model), [0.75 * t + 0.25 * o for t, o in zip(old, online)], "EMA")
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.target.backbone.buffers()))
    assert not any(p.requires_grad for m in (model.target.backbone, model.target.projector) for p in m.parameters())


# ---- the GPU benchmark's step (benchmarks/gpu_check.py Stepper) against training's --------------------------------
# Every EMA method at a tiny setting; each moves its target where its official code does (INTL-M before the forward).
EMA_METHODS = {name: overrides(narrow_config(name)) for name in ("byol", "mocov2", "mocov2plus", "dino", "simdino", "mec", "intl_m",
                                                                         "matrix_ssl")}
EMA_METHODS["intl_m"].append("data.views=[{size: 16, count: 3}]")


def record_events(model, optimizer, events):
    """Appends "forward" (the online backbone's first call of a step), "step" (after optimizer.step) and
    ("ema", tau) (each move of the EMA target) to `events`, in the order they happen."""
    def forward(*_):
        if events[-1:] != ["forward"]:
            events.append("forward")

    model.backbone.register_forward_pre_hook(forward)
    optimizer.register_step_post_hook(lambda *_: events.append("step"))
    update = model.target.update

    def recording_update(tau):
        events.append(("ema", tau))
        return update(tau)

    model.target.update = recording_update


@pytest.mark.parametrize("name", sorted(EMA_METHODS))
def test_the_gpu_benchmarks_step_moves_the_target_where_training_does(name):
    """benchmarks/gpu_check.py's step and a Lightning fit of the same method: the same sequence of forwards,
    optimiser steps and EMA moves (with the same momenta) over 3 steps."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from _common import compose_config
    from gpu_check import Stepper, crop_sizes

    from zoo.build import build_method

    cfg = compose_config([f"method={name}", *EMA_METHODS[name], "backbone.name=test_resnet", "backbone.small_stem=false",
                          "data.image_size=16", "data.batch_size=8", "scheduler.warmup_epochs=0"])
    steps = 3
    stepper = Stepper(cfg, per_gpu=8, ranks=1, device=torch.device("cpu"), num_classes=10, total_steps=steps)
    benchmark = []
    record_events(stepper.model.method, stepper.optimizer, benchmark)
    for _ in range(steps):
        stepper.step()

    torch.manual_seed(0)
    model = build_method(cfg, 10, world_size=1)
    training = []

    class Record(L.Callback):
        def on_train_start(self, trainer, pl_module):
            record_events(pl_module.method, trainer.optimizers[0], training)

    gen = torch.Generator().manual_seed(0)
    data = [([torch.randn(3, s, s, generator=gen) for s in crop_sizes(cfg)], i % 10) for i in range(8 * steps)]
    trainer = L.Trainer(max_steps=steps, limit_val_batches=0, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[Record()])
    trainer.fit(model, DataLoader(data, batch_size=8, shuffle=False))

    def shape(events):
        return [e if isinstance(e, str) else e[0] for e in events]

    assert shape(benchmark) == shape(training), name
    assert [e[1] for e in benchmark if e[0] == "ema"] == pytest.approx([e[1] for e in training if e[0] == "ema"], abs=1e-15)
    first = ["ema", "forward", "step"] if name == "intl_m" else ["forward", "step", "ema"]  # the official orders
    assert shape(training) == first * steps
