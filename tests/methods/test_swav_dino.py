"""SwAV and DINO as methods: the default run's values, the frozen-early parameters in a real fit."""

import lightning as L
import pytest
import torch
from default_run import default_run
from method_settings import SOLO_OPTIMIZER, TINY_8, solo_learn_narrow
from torch.utils.data import DataLoader

from zoo.train.harness import Pretrainer


def test_the_default_runs_values():
    """solo-learn's CIFAR values in the default run (`method=<name>`, zoo/configs/embedded/), SwAV with fewer
    prototypes; the classes' own defaults are the official code's (tests/config/test_default_run.py)."""
    (swav, optimizer), (dino, dino_optimizer) = default_run("swav"), default_run("dino")
    # 100 prototypes for the digits (the README's embedded benchmark; a recipe passes 3000)
    assert (swav.proj_hidden, swav.proj_out, swav.num_prototypes, swav.temperature) == ([2048], 128, 100, 0.1)
    assert (swav.sk_epsilon, swav.sk_iters, swav.queue_size, swav.epoch_queue_starts, swav.freeze_epochs) == (
        0.05, 3, 3840, 50, 2)
    assert (optimizer.name, optimizer.lr, optimizer.weight_decay) == ("lars", 0.6, 1e-6)
    assert (dino.proj_hidden, dino.proj_out, dino.num_prototypes, dino.proj_hidden_bn) == ([2048, 2048], 256, 4096, False)
    assert (dino.student_temperature, dino.teacher_temperature, dino.warmup_teacher_temperature_epochs) == (0.1, 0.07, 0)
    assert (dino.center_momentum, dino.momentum_base, dino.momentum_final, dino.freeze_epochs) == (0.9, 0.9995, 1.0, 1)
    assert dino_optimizer.lr == 0.3


def _random_crops(count, batches):
    gen = torch.Generator().manual_seed(3)
    return [([torch.randn(3, 16, 16, generator=gen) for _ in range(2)], i % 10) for i in range(count * batches)]


@pytest.mark.parametrize("optimizer", ["lars", "sgd"])
@pytest.mark.parametrize("name, freeze", [("swav", {"freeze_epochs": 0, "freeze_steps": 2}),
                                          ("dino", {"freeze_epochs": 1})])
def test_the_frozen_parameters_stay_fixed_early_in_a_real_fit_then_train(name, freeze, optimizer):
    """Two steps per epoch, through Lightning's hooks: SwAV's prototypes frozen for 2 steps (the official
    count), DINO's last layer for 1 epoch (solo-learn's); the optimiser steps everything else from the start.
    Under SGD with momentum the unfrozen parameters get their momentum buffers at their first gradient (torch's
    fused SGD would stop there with a TypeError)."""
    torch.manual_seed(0)
    harness = Pretrainer(name, config={**solo_learn_narrow(name), **freeze}, **TINY_8, num_classes=10,
                         scheduler={"warmup_epochs": 0}, optimizer={**SOLO_OPTIMIZER[name], "name": optimizer})
    model = harness.method
    assert harness.optimizer_cfg.name == optimizer and harness.optimizer_cfg.momentum > 0
    frozen = model.prototypes.weight if name == "swav" else model.projector.last_layer.parametrizations.weight.original1
    trained = model.projector[0].weight if name == "swav" else model.projector.mlp[0].weight
    seen = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append((frozen.detach().clone(), trained.detach().clone()))

    start = (frozen.detach().clone(), trained.detach().clone())
    trainer = L.Trainer(max_steps=3, limit_val_batches=0, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[Record()])
    trainer.fit(harness, DataLoader(_random_crops(8, 2), batch_size=8, shuffle=False))
    def moved(now, before):  # SwAV renormalises its unit prototypes every step: rounding only, ~1e-8
        return (now - before).abs().max().item() > 1e-5

    assert len(seen) == 3
    assert not moved(seen[0][0], start[0]) and not moved(seen[1][0], start[0])  # frozen for steps 0 and 1
    assert moved(seen[2][0], start[0])  # trained from step 2 (epoch 1) on
    assert moved(seen[0][1], start[1])
