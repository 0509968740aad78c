"""SimDINO: the loss against the official code's numbers (float64), the method's defaults, a step's batching and
teacher, and the EMA teacher with its momentum schedule across a checkpoint and resume. Two gloo ranks (the
official per-rank coding rate and --reduce_cov): tests/losses/test_dcl_tico_losses_ddp.py (its SimDINO check).

tests/fixtures/simdino_reference.json holds what RobinWu218/SimDINO computed (the file names the commit and how it
was called): simdino/main_dino.py MCRLoss on the L2-normalised raw head outputs, its loss, parts and gradient per
student crop. `reference_inputs.scaled_views` draws the same inputs again.
"""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from method_settings import TEST_RESNET, narrow_config
from reference_inputs import rel_err, scaled_views
from torch import nn
from torch.utils.data import DataLoader

from zoo.errors import ZooError
from zoo.methods.simdino import SimDINO, simdino_loss
from zoo.registry import create_method
from zoo.train.harness import Pretrainer

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "simdino_reference.json").read_text())


def reference_inputs(case):
    student = scaled_views(case["seed"], case["views"], case["n"], case["d"])
    teacher = [t.detach() for t in scaled_views(case["seed"] + 1000, 2, case["n"], case["d"])]
    return student, teacher


# ---- the official numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", OFFICIAL["cases"], ids=lambda c: f"{c['views']}crops-{c['n']}x{c['d']}-expa{c['expa_type']}")
def test_the_loss_and_its_gradients_are_the_official_ones(case):
    student, teacher = reference_inputs(case)
    total, parts = simdino_loss(*student, teacher=teacher, eps=case["eps"], coeff=case["coeff"],
                                expa_type=case["expa_type"], return_parts=True)
    total.backward()
    assert total.dtype == torch.float64
    assert total.item() == pytest.approx(case["loss"], rel=1e-10)
    assert parts["compression"].item() == pytest.approx(-case["coeff"] * case["comp_loss"], rel=1e-10)
    assert parts["expansion"].item() == pytest.approx(-case["expa_loss"], rel=1e-10)
    for crop, grad in zip(student, case["grads"]):
        assert rel_err(crop.grad, torch.tensor(grad, dtype=torch.float64)) < 1e-10


def test_the_pairs_skip_each_teacher_crops_own_student_and_the_rate_is_scaled_by_gamma():
    """The official pairing by hand: teacher crop i against every student crop v != i; the rate of (s_i + t_i) / 2
    times (D + m) / (D m) in one process."""
    student, teacher = reference_inputs(OFFICIAL["cases"][0])
    s = [torch.nn.functional.normalize(x.detach(), dim=-1) for x in student]
    t = [torch.nn.functional.normalize(x, dim=-1) for x in teacher]
    pairs = [(i, v) for i in range(2) for v in range(len(s)) if v != i]
    comp = sum((t[i] * s[v]).sum(-1).mean() for i, v in pairs) / len(pairs)
    m, d = s[0].shape
    rate = sum(torch.logdet(torch.eye(d, dtype=torch.float64) + d / (m * 0.5) * ((s[i] + t[i]) / 2).T @ ((s[i] + t[i]) / 2)) / 2
               for i in range(2)) / 2
    expected = -comp - rate * (d + m) / (d * m)
    assert simdino_loss(*(x.detach() for x in student), teacher=teacher).item() == pytest.approx(expected.item(), rel=1e-12)


def test_half_precision_outputs_give_the_float32_loss():
    """Under AMP the student's and the teacher's (a keyword argument) half-precision outputs are taken in float32."""
    student, teacher = reference_inputs(OFFICIAL["cases"][0])
    halves = [x.detach().to(torch.bfloat16) for x in student], [x.to(torch.bfloat16) for x in teacher]
    loss = simdino_loss(*halves[0], teacher=halves[1])
    expected = simdino_loss(*(x.float() for x in halves[0]), teacher=[x.float() for x in halves[1]])
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_loss_refuses_what_the_official_one_cannot_take():
    z = [torch.randn(4, 3) for _ in range(3)]
    with pytest.raises(ZooError, match="simdino_loss needs at least 2 views"):
        simdino_loss(z[0], teacher=z[:1])
    with pytest.raises(ZooError, match="teacher crops"):
        simdino_loss(*z, teacher=[torch.randn(5, 3)])
    with pytest.raises(ZooError, match="expa_type 0 or 1"):
        simdino_loss(*z, teacher=z[:2], expa_type=2)
    with pytest.raises(ZooError, match="method.expa_type must be 0 or 1"):
        create_method("simdino", {**narrow_config("simdino"), "expa_type": 3}, **TEST_RESNET)


# ---- the method -------------------------------------------------------------------------------------------
def test_the_defaults_are_the_official_code():
    """main_dino.py's argument defaults (ViT-S/16's run), its optimiser and vision_transformer.py's DINOHead without
    the prototype layer."""
    config = SimDINO.Config()
    assert (config.proj_hidden, config.proj_out, config.proj_hidden_bn, config.eps, config.coeff, config.expa_type,
            config.reduce_cov, config.momentum_base, config.momentum_final) == ([2048, 2048], 256, False, 0.5, 1.0, 1, False,
                                                                                0.996, 1.0)
    assert SimDINO.optimizer_defaults == {"name": "adamw", "lr": 5e-4, "weight_decay": 0.04, "exclude_bias_and_norm": True,
                                          "probe_lr": 1e-3}
    assert SimDINO.num_views is None and SimDINO.joint_backbone and SimDINO.joint_projector
    model = create_method("simdino", narrow_config("simdino"), **TEST_RESNET)
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    linears = [layer for layer in model.projector if isinstance(layer, nn.Linear)]
    assert all(not layer.bias.any() and abs(layer.weight.std() - 0.02) < 0.003 for layer in linears)  # trunc_normal_(std=.02)
    assert not any(p.requires_grad for p in model.target.parameters())


def test_a_step_is_the_official_forward():
    """2 global + 2 local crops: the backbone on each size's run as one batch, the head on all crops at once, the
    teacher (the untouched copy) on the two global crops in one call; the probe sees the global crops."""
    torch.manual_seed(0)
    sizes = (16, 16, 8, 8)
    model = create_method("simdino", {**narrow_config("simdino"), "proj_hidden_bn": True}, **{**TEST_RESNET, "crop_sizes": sizes}).double()
    reference = create_method("simdino", {**narrow_config("simdino"), "proj_hidden_bn": True}, **{**TEST_RESNET, "crop_sizes": sizes}).double()
    reference.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(1)
    crops = [torch.randn(8, 3, s, s, generator=gen, dtype=torch.float64) for s in sizes]
    (total, parts), features = model.compute_loss(crops)
    feats = [*reference.backbone(torch.cat(crops[:2])).split(8), *reference.backbone(torch.cat(crops[2:])).split(8)]
    student = reference.projector(torch.cat(feats)).split(8)
    with torch.no_grad():
        teacher = reference.target.projector(reference.target.backbone(torch.cat(crops[:2]))).split(8)
    expected = simdino_loss(*student, teacher=teacher)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    assert set(parts) == {"compression", "expansion"} and len(features) == 2
    total.backward()
    assert all(p.grad is None for p in model.target.parameters())


# ---- the EMA teacher and its schedule across a resume -------------------------------------------------------
class Momenta(L.Callback):
    def __init__(self):
        self.taus = []

    def on_train_start(self, trainer, pl_module):
        update = pl_module.method.target.update

        def recording(tau):
            self.taus.append(tau)
            return update(tau)

        pl_module.method.target.update = recording


def _fit(tmp_path, ckpt_path=None):
    """4 steps (2 epochs of 2 batches, all 4 the same 8 samples: a run resumed from an epoch's end restarts its
    loader mid-epoch), a steep momentum schedule and the default cosine lr; a checkpoint at each epoch's end."""
    torch.manual_seed(0)
    model = create_method("simdino", {**narrow_config("simdino"), "momentum_base": 0.5}, **TEST_RESNET)
    harness = Pretrainer(model, num_classes=10, scheduler={"warmup_epochs": 0})
    gen = torch.Generator().manual_seed(3)
    data = [([torch.randn(3, 16, 16, generator=gen) for _ in range(2)], i % 10) for i in range(8)] * 2
    momenta = Momenta()
    checkpoints = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1, save_on_train_epoch_end=True)
    trainer = L.Trainer(max_steps=4, limit_val_batches=0, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[momenta, checkpoints])
    trainer.fit(harness, DataLoader(data, batch_size=8, shuffle=False), ckpt_path=ckpt_path)
    return model, momenta.taus, harness


def test_a_resumed_run_restores_the_teacher_and_the_momentum_and_lr_schedules(tmp_path):
    uninterrupted, taus, harness = _fit(tmp_path / "a")
    assert len(taus) == 4 and taus[0] == 0.5 and taus[-1] > taus[1]
    halfway = torch.load(tmp_path / "a" / "epoch=0-step=2.ckpt", map_location="cpu", weights_only=False)
    assert any(key.startswith("method.target.backbone.") for key in halfway["state_dict"])
    resumed, resumed_taus, resumed_harness = _fit(tmp_path / "b", ckpt_path=tmp_path / "a" / "epoch=0-step=2.ckpt")
    assert resumed_taus == pytest.approx(taus[2:], abs=1e-15)  # the schedule goes on from step 2, not from its start
    for a, b in zip(resumed.state_dict().values(), uninterrupted.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert resumed_harness.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(harness.trainer.optimizers[0].param_groups[0]["lr"])
    # the teacher moved in the resumed steps: it is not the checkpoint's
    saved = halfway["state_dict"]["method.target.projector.0.weight"]
    assert not torch.allclose(resumed.target.projector[0].weight, saved)
