"""SwAV and DINO: their losses against the official codes' numbers, under two gloo processes, and as
methods (prototypes, queue, head, centre, temperature schedule, the frozen-early parameters in a real
fit, the queue across kill -9 and resume).

tests/data/swav_dino_reference.json holds float64 inputs with what facebookresearch/swav's
distributed_sinkhorn, solo-learn's swav_loss_func and facebookresearch/dino's DINOLoss computed on them
(run outside the project; the file says how each was called): shapes, temperatures, epsilons, Sinkhorn
iterations, crop counts and centre momenta other than the tests' and the defaults.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from default_run import default_run
from gloo_ranks import run_on_gloo_ranks
from killed_runs import killed_after_first_checkpoint, resumed
from torch import nn
from torch.utils.data import DataLoader

from zoo.config import SOLO_LARS
from zoo.errors import ZooError
from zoo.losses import dino_center, dino_loss, sinkhorn_knopp, swav_loss
from zoo.methods.crops import targets_first
from zoo.methods.dino import DINO
from zoo.nn import FeatureQueue
from zoo.registry import create_method
from zoo.train.harness import Pretrainer

REPO = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((Path(__file__).parent / "data" / "swav_dino_reference.json").read_text())
TINY = {"crop_sizes": (16, 16), "global_batch_size": 8, "backbone": "resnet18"}
# solo-learn's CIFAR settings (the default run's; the class defaults are the official code's), at small widths
SMALL = {
    "swav": {"proj_hidden": [32], "proj_out": 16, "num_prototypes": 24, "queue_size": 24, "epoch_queue_starts": 50,
             "freeze_epochs": 2, "freeze_steps": 0, "joint_forward": False},
    "dino": {"proj_hidden": [32, 32], "proj_out": 16, "num_prototypes": 24, "teacher_temperature": 0.07,
             "momentum_base": 0.9995},
}
SOLO_OPTIMIZER = {"swav": {**SOLO_LARS, "lr": 0.6, "weight_decay": 1e-6}, "dino": {**SOLO_LARS, "weight_decay": 1e-6}}
WORLD_SIZE = 2


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


def f64(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def crops(count=2, size=16, batch=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, size, size, generator=gen) for _ in range(count)]


# ---- the losses against the official codes, float64 ---------------------------------------------
@pytest.mark.parametrize("case", REFERENCE["sinkhorn"], ids=lambda c: f"{len(c['scores'])}x{len(c['scores'][0])}")
def test_sinkhorn_codes_equal_the_official_distributed_sinkhorns(case):
    scores = f64(case["scores"])
    rows = scores if case["queue"] is None else torch.cat([scores, f64(case["queue"])])  # official: queue first
    codes = sinkhorn_knopp(rows, case["epsilon"], case["iters"])[: len(scores)]
    assert codes.dtype == torch.float64 and not codes.requires_grad
    assert rel_err(codes, f64(case["codes"])) < 1e-7
    assert torch.allclose(codes.sum(dim=1), torch.ones(len(codes), dtype=torch.float64))


@pytest.mark.parametrize("case", REFERENCE["swav"], ids=lambda c: f"{len(c['scores'])}crops")
def test_swav_loss_value_and_gradient_equal_solo_learns(case):
    scores = [f64(s, grad=True) for s in case["scores"]]
    codes = [sinkhorn_knopp(s.detach()) for s in scores[: len(case["codes"])]]  # solo-learn's defaults: 0.05, 3
    assert all(rel_err(mine, f64(theirs)) < 1e-7 for mine, theirs in zip(codes, case["codes"]))
    value = swav_loss(*scores, codes=codes, temperature=case["temperature"])
    value.backward()
    assert rel_err(value.detach(), f64(case["value"])) < 1e-7
    for given, expected in zip(scores, case["grads"]):
        assert rel_err(given.grad, f64(expected)) < 1e-7


@pytest.mark.parametrize("case", REFERENCE["dino"], ids=lambda c: f"{len(c['student'])}crops")
def test_dino_loss_gradient_and_centre_equal_the_official_dinoloss(case):
    student = [f64(s, grad=True) for s in case["student"]]
    teacher, center = [f64(t) for t in case["teacher"]], f64(case["center"])
    value = dino_loss(*student, teacher=teacher, center=center, teacher_temperature=case["teacher_temperature"],
                      student_temperature=case["student_temperature"])
    value.backward()
    assert rel_err(value.detach(), f64(case["value"])) < 1e-7
    for given, expected in zip(student, case["grads"]):
        assert rel_err(given.grad, f64(expected)) < 1e-7
    new_center = dino_center(*teacher, center=center, momentum=case["center_momentum"])
    assert new_center.shape == center.shape and rel_err(new_center, f64(case["new_center"])) < 1e-7


@pytest.mark.parametrize("case", REFERENCE["teacher_temperature_schedules"],
                         ids=lambda c: f"warmup{c['warmup_teacher_temperature_epochs']}")
def test_the_teacher_temperature_schedule_is_the_officials(case):
    config = DINO.Config(**{k: case[k] for k in ("warmup_teacher_temperature", "teacher_temperature",
                                                 "warmup_teacher_temperature_epochs")})
    holder = SimpleNamespace(mcfg=config, current_epoch=0)
    schedule = [DINO.teacher_temperature(holder, epoch) for epoch in range(len(case["schedule"]))]
    assert schedule == pytest.approx(case["schedule"], rel=1e-12)


def test_bad_loss_inputs_are_clear_errors():
    scores = [torch.randn(4, 6) for _ in range(2)]
    with pytest.raises(ZooError, match=r"swav_loss needs 1 to 2 codes of the first crops, each \(4, 6\)"):
        swav_loss(*scores, codes=[torch.ones(4, 5)])
    with pytest.raises(ZooError, match="epsilon > 0 and iters >= 1"):
        sinkhorn_knopp(scores[0], epsilon=0.05, iters=0)
    with pytest.raises(ZooError, match="temperatures > 0"):
        dino_loss(*scores, teacher=scores, center=torch.zeros(1, 6), teacher_temperature=0.0)


def test_the_losses_keep_float32_under_autocast():
    scores = [torch.randn(8, 6, dtype=torch.bfloat16) for _ in range(3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert sinkhorn_knopp(scores[0]).dtype == torch.float32
        assert swav_loss(*scores, codes=[torch.rand(8, 6, dtype=torch.bfloat16)]).dtype == torch.float32
        assert dino_loss(*scores, teacher=scores[:2], center=torch.zeros(1, 6)).dtype == torch.float32


# ---- two gloo processes, each with half the batch ------------------------------------------------
def _ddp_inputs():
    gen = torch.Generator().manual_seed(5)
    scores = [F.normalize(torch.randn(12, 4, generator=gen, dtype=torch.float64), dim=1) @
              F.normalize(torch.randn(9, 4, generator=gen, dtype=torch.float64), dim=1).T for _ in range(3)]
    queue = torch.randn(7, 9, generator=gen, dtype=torch.float64)  # an odd count: unequal shares per rank
    student = [torch.randn(12, 9, generator=gen, dtype=torch.float64) for _ in range(3)]
    teacher = [torch.randn(12, 9, generator=gen, dtype=torch.float64) for _ in range(2)]
    return scores, queue, student, teacher, torch.randn(1, 9, generator=gen, dtype=torch.float64)


def _ddp_losses(scores, queue_rows, student, teacher, center):
    """(Sinkhorn codes of scores[0] with the queue rows, SwAV loss, DINO loss, DINO's next centre)."""
    codes = [sinkhorn_knopp(torch.cat([s, queue_rows]), 0.1, 4)[: len(s)] for s in scores[:2]]
    return (codes[0], swav_loss(*scores, codes=codes, temperature=0.2),
            dino_loss(*student, teacher=teacher, center=center, teacher_temperature=0.05, student_temperature=0.2),
            dino_center(*teacher, center=center, momentum=0.8))


def _single_process():
    scores, queue, student, teacher, center = _ddp_inputs()
    scores, student = [s.requires_grad_() for s in scores], [s.requires_grad_() for s in student]
    codes, swav, dino, new_center = _ddp_losses(scores, queue, student, teacher, center)
    (swav + dino).backward()
    return codes, swav.detach(), dino.detach(), new_center, [s.grad for s in scores], [s.grad for s in student]


def _ranks_match_one_process(rank, expected):
    codes, swav, dino, new_center, score_grads, student_grads = expected
    scores, queue, student, teacher, center = _ddp_inputs()
    rows = slice(rank * 6, (rank + 1) * 6)
    local_scores = [s[rows].clone().requires_grad_() for s in scores]
    local_student = [s[rows].clone().requires_grad_() for s in student]
    holder = FeatureQueue(count=1, size=len(queue), dim=queue.shape[-1])
    holder.keys = queue[None]  # the queue's share of the rows: 4 and 3 of the 7
    local_codes, local_swav, local_dino, local_center = _ddp_losses(
        local_scores, holder.share()[0], local_student, [t[rows] for t in teacher], center)
    (local_swav + local_dino).backward()
    assert rel_err(local_codes, codes[rows]) < 1e-12, rank
    assert rel_err(local_swav.detach(), swav) < 1e-12 and rel_err(local_dino.detach(), dino) < 1e-12, rank
    assert rel_err(local_center, new_center) < 1e-12, rank
    for local, whole in zip(local_scores + local_student, score_grads + student_grads):
        assert rel_err(local.grad, WORLD_SIZE * whole[rows]) < 1e-10, rank


def test_two_gloo_ranks_reproduce_the_single_process_codes_losses_gradients_and_centre():
    run_on_gloo_ranks(_ranks_match_one_process, WORLD_SIZE, before=_single_process)


# ---- the methods ---------------------------------------------------------------------------------
def test_the_default_runs_values():
    """solo-learn's CIFAR values in the default run (`method=<name>`, zoo/configs/embedded/), SwAV with fewer
    prototypes; the classes' own defaults are the official code's (tests/test_default_run.py)."""
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


def test_swav_prototypes_are_unit_rows_in_every_step_and_its_projector_is_solo_learns():
    model = create_method("swav", SMALL["swav"], **TINY)
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert model.prototypes.bias is None and model.prototypes.weight.shape == (24, 16)
    with torch.no_grad():
        model.prototypes.weight.mul_(3.0)  # an optimiser step moved them off the sphere
    model.compute_loss(crops())
    assert torch.allclose(model.prototypes.weight.norm(dim=1), torch.ones(24))


def test_swav_codes_use_the_queue_only_from_its_epoch_on_and_once_full():
    torch.manual_seed(0)
    model = create_method("swav", {**SMALL["swav"], "epoch_queue_starts": 1}, **TINY)
    assert not model.queue.keys.any() and model.queue.keys.shape == (2, 24, 16)  # starts empty, one queue per global crop
    batch = crops()
    model.compute_loss(batch)
    with torch.no_grad():  # the queue holds the global crops' L2-normalised projections
        keys = torch.stack([F.normalize(model.projector(model.backbone(crop)), dim=-1) for crop in batch])
    assert model.queue.ptr.item() == 8 and torch.allclose(model.queue.keys[:, :8], keys, atol=1e-6)
    assert not model.queue.keys[:, 8:].any()
    assert not model.uses_queue(epoch=1)  # from its epoch on, but not full yet
    model.queue.keys.normal_()
    assert model.uses_queue(epoch=1)
    assert not model.uses_queue(epoch=0)
    queue = model.queue.keys.clone()
    scores = [torch.randn(8, 24) for _ in range(2)]
    with torch.no_grad():
        expected = [sinkhorn_knopp(torch.cat([s, model.prototypes(queue[i])]))[:8] for i, s in enumerate(scores)]
    assert all(torch.allclose(c, e) for c, e in zip(model.codes(scores, epoch=1), expected))


def test_dino_head_is_the_officials_and_the_teacher_averages_its_last_layer_too():
    model = create_method("dino", SMALL["dino"], **TINY)
    head = model.projector
    assert [type(layer) for layer in head.mlp] == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    linears = [layer for layer in head.mlp if isinstance(layer, nn.Linear)]
    assert all(not layer.bias.any() and abs(layer.weight.std() - 0.02) < 0.002 for layer in linears)  # trunc. normal
    assert torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(24))
    norm, direction = head.last_layer.parametrizations.weight.original0, head.last_layer.parametrizations.weight.original1
    assert not norm.requires_grad and direction.requires_grad
    assert all(norm is not p for g in Pretrainer(model, num_classes=10).param_groups() for p in g["params"])
    learnt = create_method("dino", {**SMALL["dino"], "norm_last_layer": False, "proj_hidden_bn": True}, **TINY)
    assert learnt.projector.last_layer.parametrizations.weight.original0.requires_grad
    assert nn.BatchNorm1d in [type(layer) for layer in learnt.projector.mlp]
    with torch.no_grad():
        direction.add_(1.0)
    model.target.update(0.5)  # the teacher's last layer is half-way to the student's
    target = model.target.projector.last_layer.parametrizations.weight.original1
    assert torch.allclose(target, direction - 0.5)
    assert head(torch.randn(4, model.feature_dim)).shape == (4, 16)  # the projector's output: the bottleneck


def test_dino_centres_the_teacher_and_keeps_the_centre_in_the_state_dict():
    torch.manual_seed(0)
    model = create_method("dino", {**SMALL["dino"], "center_momentum": 0.7}, **{**TINY, "crop_sizes": (16, 8, 16)})
    assert model.center.shape == (1, 24) and not model.center.any()
    batch = [crops(1)[0], crops(1, size=8, seed=1)[0], crops(1, seed=2)[0]]
    loss, features = model.compute_loss(batch)
    assert torch.isfinite(loss) and len(features) == 2  # the probe sees the two 16 px crops
    with torch.no_grad():
        teacher = [model.target.projector.logits(model.target(batch[t])) for t in (0, 2)]
    # teacher BN in training mode: the same batches give the same logits, so the centre is 0.3 x their mean
    assert torch.allclose(model.center, 0.3 * torch.cat(teacher).mean(dim=0, keepdim=True), atol=1e-6)
    fresh = create_method("dino", {**SMALL["dino"], "center_momentum": 0.7}, **{**TINY, "crop_sizes": (16, 8, 16)})
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.center, model.center) and fresh.center.any()


def test_the_global_crops_come_first_for_codes_and_teacher():
    assert targets_first((16, 16)) == ([0, 1], 2)
    assert targets_first((16, 8, 16, 8)) == ([0, 2, 1, 3], 2)
    model = create_method("swav", SMALL["swav"], **{**TINY, "crop_sizes": (16, 16, 16, 8)})
    assert model.queue.keys.shape[0] == 3  # a queue per crop with codes


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
    harness = Pretrainer(name, config={**SMALL[name], **freeze}, **TINY, num_classes=10, scheduler={"warmup_epochs": 0},
                         optimizer={**SOLO_OPTIMIZER[name], "name": optimizer})
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


def test_the_freeze_period_is_the_longer_of_its_epochs_and_steps():
    model = create_method("swav", {**SMALL["swav"], "freeze_epochs": 1, "freeze_steps": 313}, **TINY)
    assert model.freeze_early.frozen(epoch=0, step=500) and model.freeze_early.frozen(epoch=3, step=312)
    assert not model.freeze_early.frozen(epoch=1, step=313)
    model.compute_loss(crops())[0].backward()
    assert model.prototypes.weight.grad is not None
    assert model.freeze_early.cancel_gradients(epoch=0, step=0) and model.prototypes.weight.grad is None


# ---- the queue across kill -9 and resume, through the entry point ---------------------------------
RUN = ["method=swav", "data.batch_size=16", "data.num_workers=0", "data.image_size=16", "trainer.limit_train_batches=3",
       "trainer.limit_val_batches=1", "data.eval_batch_size=32", "trainer.enable_progress_bar=false", "eval.knn_max_train=64",
       "method.proj_hidden=[32]", "method.proj_out=16", "method.num_prototypes=32",
       "trainer.max_epochs=3", "checkpoint_every_n_steps=1"]


def test_the_swav_queue_survives_kill_minus_nine_and_resume(tmp_path):
    """SwAV killed while it checkpoints every step: the resumed run goes on from the saved queue and pointer
    (the rows written before the kill are still there at the end, and the queue, empty at the start, fills)."""
    run_dir = tmp_path / "run"
    batch, steps, queue_size = 16, 9, 144  # full after the 9 steps: nothing written is overwritten
    args = [*RUN, f"method.queue_size={queue_size}", f"run_dir={run_dir}"]
    killed = killed_after_first_checkpoint(args, run_dir)
    killed_steps = killed["global_step"]
    assert 0 < killed_steps < steps, "the run was not killed mid-training"
    written = batch * killed_steps
    killed_queue = killed["state_dict"]["method.queue.keys"]
    assert killed["state_dict"]["method.queue.ptr"].item() == written
    assert killed_queue[:, :written].any(dim=-1).all() and not killed_queue[:, written:].any()
    final = resumed(args, run_dir)
    assert final["global_step"] == steps and final["state_dict"]["method.queue.ptr"].item() == 0  # 144 rows: wrapped once
    assert torch.equal(final["state_dict"]["method.queue.keys"][:, :written], killed_queue[:, :written])
    assert final["state_dict"]["method.queue.keys"].any(dim=-1).all()
