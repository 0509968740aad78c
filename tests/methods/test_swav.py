"""SwAV: the official multi-resolution forward, the prototypes, the queue (from its epoch on, across kill -9 and
resume), the global crops first, the freeze period."""

import functools

import pytest
import torch
import torch.nn.functional as F
from killed_runs import killed_after_first_checkpoint, resumed
from method_settings import TINY_8, solo_learn_narrow
from method_settings import crops as crops_of_16
from torch import nn

from zoo.losses import sinkhorn_knopp
from zoo.methods.crops import targets_first
from zoo.registry import create_method

crops = functools.partial(crops_of_16, batch=TINY_8["global_batch_size"])


# ---- SwAV: the official multi-resolution forward -----------------------------------------------------------
def official_sinkhorn(scores, epsilon=0.05, iterations=3):
    """facebookresearch/swav main_swav.py distributed_sinkhorn on one process, from its description: Q = exp(s / eps)
    as prototypes x samples, scaled to sum 1; each iteration makes every prototype's row sum 1 / K, then every
    sample's column sum 1 / B; the columns scaled back to sum 1."""
    q = torch.exp(scores / epsilon).T
    q = q / q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / k
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).T


def test_swav_joint_forward_batches_the_crops_as_the_official_resnet():
    """main_swav.py with src/resnet50.py: the backbone once on the two large crops concatenated and once on the small
    ones, the head and the prototypes on all crops at once; codes of crops 0 and 1, each predicted by every other
    crop, averaged over the other crops (total - 1) and over the coded crops."""
    torch.manual_seed(0)
    small = {"proj_hidden": [32], "proj_out": 16, "num_prototypes": 24, "queue_size": 24, "temperature": 0.1}
    model = create_method("swav", {**small, "joint_forward": True},
                          **{**TINY_8, "crop_sizes": (16, 16, 8, 8, 8), "global_batch_size": 8}).double().train()
    batch = [c.double() for c in crops(2, batch=8) + crops(3, size=8, batch=8, seed=1)]
    loss, features = model.compute_loss(batch)
    with torch.no_grad():
        backbone = torch.cat([model.backbone(torch.cat(batch[:2])), model.backbone(torch.cat(batch[2:]))])
        output = F.normalize(model.projector(backbone), dim=1) @ model.prototypes.weight.T
        n, total = 8, 5
        expected = 0.0
        for crop in (0, 1):
            q = official_sinkhorn(output[crop * n:(crop + 1) * n])
            sub = sum(-(q * F.log_softmax(output[v * n:(v + 1) * n] / 0.1, dim=1)).sum(dim=1).mean()
                      for v in range(total) if v != crop)
            expected += sub / (total - 1)
        expected /= 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    assert len(features) == 2 and torch.allclose(torch.cat(features), backbone[:16], rtol=1e-12, atol=1e-12)
    per_crop = create_method("swav", {**small, "joint_forward": False},
                             **{**TINY_8, "crop_sizes": (16, 16, 8, 8, 8), "global_batch_size": 8}).double()
    per_crop.load_state_dict(model.state_dict())
    assert not per_crop.mcfg.joint_forward and not per_crop.joint_projector
    assert abs(per_crop.compute_loss(batch)[0].item() - loss.item()) > 1e-6  # per-crop BatchNorm statistics differ


def test_swav_prototypes_are_unit_rows_in_every_step_and_its_projector_is_solo_learns():
    model = create_method("swav", solo_learn_narrow("swav"), **TINY_8)
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert model.prototypes.bias is None and model.prototypes.weight.shape == (24, 16)
    with torch.no_grad():
        model.prototypes.weight.mul_(3.0)  # an optimiser step moved them off the sphere
    model.compute_loss(crops())
    assert torch.allclose(model.prototypes.weight.norm(dim=1), torch.ones(24))


def test_swav_codes_use_the_queue_only_from_its_epoch_on_and_once_full():
    torch.manual_seed(0)
    model = create_method("swav", {**solo_learn_narrow("swav"), "epoch_queue_starts": 1}, **TINY_8)
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


def test_the_global_crops_come_first_for_codes_and_teacher():
    assert targets_first((16, 16)) == ([0, 1], 2)
    assert targets_first((16, 8, 16, 8)) == ([0, 2, 1, 3], 2)
    model = create_method("swav", solo_learn_narrow("swav"), **{**TINY_8, "crop_sizes": (16, 16, 16, 8)})
    assert model.queue.keys.shape[0] == 3  # a queue per crop with codes


def test_the_freeze_period_is_the_longer_of_its_epochs_and_steps():
    model = create_method("swav", {**solo_learn_narrow("swav"), "freeze_epochs": 1, "freeze_steps": 313}, **TINY_8)
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
