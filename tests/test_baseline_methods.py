"""SimCLR, MoCo v2+ and BYOL as methods: their modules, the EMA target and the key queue, its state
in checkpoints (also across kill -9 and resume), and short digits runs through the entry point."""

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from default_run import default_run
from hydra import compose, initialize_config_module
from killed_runs import killed_after_first_checkpoint, resumed
from torch import nn

from zoo.config import register_configs
from zoo.errors import ZooError
from zoo.losses import byol_loss, info_nce_loss
from zoo.methods.base import Method, MethodConfig
from zoo.nn import FeatureQueue
from zoo.registry import create_method, get_method, method_names
from zoo.train.harness import Pretrainer

REPO = Path(__file__).resolve().parents[1]
TINY = {"crop_sizes": (16, 16), "global_batch_size": 16, "backbone": "resnet18"}
# solo-learn's SimCLR (the default run's; the class defaults are google-research/simclr's), at a small width
SOLO_SIMCLR = {"proj_hidden_bn": False, "joint_projector": False, "joint_backbone": False, "temperature": 0.2}
SMALL = {
    "simclr": {"proj_hidden": [64], "proj_out": 32, **SOLO_SIMCLR},
    "mocov2plus": {"proj_hidden": [64], "proj_out": 32, "queue_size": 40},
    "byol": {"proj_hidden": [64], "proj_out": 32, "pred_hidden": 48},
}


def crops(count=2, size=16, batch=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, size, size, generator=gen) for _ in range(count)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_training_step_gives_a_finite_loss_and_backbone_gradients(name):
    assert name in method_names()
    torch.manual_seed(0)
    model = create_method(name, SMALL[name], **TINY)
    loss, features = model.compute_loss(crops())
    assert loss.ndim == 0 and torch.isfinite(loss) and features[0].shape == (16, model.feature_dim)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.backbone.parameters())
    if hasattr(model, "target"):  # the EMA target's copies of backbone and projector
        assert all(p.grad is None for p in model.target.parameters())


def test_the_default_runs_values():
    """solo-learn's CIFAR values in the default run (`method=<name>`, zoo/configs/embedded/); the classes' own
    defaults are the official code's (tests/test_default_run.py)."""
    simclr, simclr_optimizer = default_run("simclr")
    assert (simclr.proj_hidden, simclr.proj_out, simclr.temperature) == ([2048], 256, 0.2)
    assert simclr_optimizer.name == "lars" and simclr_optimizer.lr == 0.4
    config, optimizer = default_run("mocov2plus")
    assert (config.temperature, config.momentum_base, config.momentum_final) == (0.2, 0.99, 0.999)
    assert get_method("mocov2plus").optimizer_defaults == {"name": "sgd", "lr": 0.3, "weight_decay": 1e-4, "probe_lr": 0.3}
    config, optimizer = default_run("byol")
    assert (config.proj_hidden, config.proj_out, config.pred_hidden, config.momentum_base) == ([4096], 256, 4096, 0.99)
    # solo-learn's CIFAR lr is 1.0; the digits default run learns better at 0.5 (a CIFAR recipe passes 1.0)
    assert optimizer.lr == 0.5 and optimizer.weight_decay == 1e-5


@pytest.mark.parametrize("name, hidden_bn", [("simclr", False), ("mocov2plus", False), ("byol", True)])
def test_projectors_are_solo_learns(name, hidden_bn):
    model = create_method(name, SMALL[name], **TINY)
    layers = [type(layer) for layer in model.projector]
    assert layers == ([nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear] if hidden_bn else [nn.Linear, nn.ReLU, nn.Linear])
    if name == "simclr":
        with_bn = create_method(name, {**SMALL[name], "proj_hidden_bn": True}, **TINY)
        assert any(isinstance(layer, nn.BatchNorm1d) for layer in with_bn.projector)


# ---- htdt/self-supervised's SimCLR (the W-MSE protocol): bn_last and the head on both views at once ----------------
HTDT_SIMCLR = {"proj_hidden": [24], "proj_out": 8, "proj_hidden_bn": True, "proj_bn_last": True, "joint_projector": True,
               "temperature": 0.5}


def batch_norm(x, weight, bias, eps=1e-5):
    """BatchNorm1d in training mode: the batch's mean and biased variance."""
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps) * weight + bias


def htdt_simclr_loss(views, head, tau):
    """htdt methods/contrastive.py Contrastive.forward after the encoder, written from its description: the views'
    features concatenated go once through get_head (Linear, BatchNorm1d, ReLU, Linear) and bn_last (an affine
    BatchNorm1d), then split back; every pair of views (i < j) gives contrastive_loss, averaged over the pairs.
    contrastive_loss (norm=True, cfg.py's default): latents L2-normalised; for view 0 the logits against view 1 and
    against view 0 itself with its own sample pushed out by -1e9, cross-entropy to the sample's index in view 1;
    the same for view 1; the two averaged."""
    w1, b1, g1, beta1, w2, b2, g2, beta2 = head
    h = batch_norm(torch.cat(views) @ w1.T + b1, g1, beta1).relu()
    h = batch_norm(h @ w2.T + b2, g2, beta2)
    n = len(views[0])
    parts = [F.normalize(h[i * n:(i + 1) * n], dim=1) for i in range(len(views))]
    mask = torch.eye(n, dtype=h.dtype) * 1e9
    index = torch.arange(n)
    loss, pairs = 0.0, 0
    for i in range(len(parts)):
        for j in range(i + 1, len(parts)):
            x0, x1 = parts[i], parts[j]
            logits0 = torch.cat([x0 @ x1.T / tau, x0 @ x0.T / tau - mask], dim=1)
            logits1 = torch.cat([x1 @ x0.T / tau, x1 @ x1.T / tau - mask], dim=1)
            loss = loss + (F.cross_entropy(logits0, index) + F.cross_entropy(logits1, index)) / 2
            pairs += 1
    return loss / pairs


def test_simclr_with_htdts_head_equals_htdts_computation_in_value_and_gradient():
    torch.manual_seed(0)
    model = create_method("simclr", HTDT_SIMCLR, **TINY).double().train()
    assert [type(layer) for layer in model.projector] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    last_bn = model.projector[4]
    assert last_bn.affine and last_bn.num_features == 8 and model.projector[3].bias is not None
    with torch.no_grad():  # BatchNorm affine parameters away from 1 / 0, so that they matter
        for bn in (model.projector[1], last_bn):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    gen = torch.Generator().manual_seed(1)
    views = [torch.randn(16, model.feature_dim, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    loss = model.loss(model.project(views))
    loss.backward()
    params = [model.projector[0].weight, model.projector[0].bias, model.projector[1].weight, model.projector[1].bias,
              model.projector[3].weight, model.projector[3].bias, last_bn.weight, last_bn.bias]
    head = [p.detach().clone().requires_grad_() for p in params]
    inputs = [v.detach().clone().requires_grad_() for v in views]
    expected = htdt_simclr_loss(inputs, head, tau=0.5)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    for zoo, ref in zip(views + params, inputs + head):
        assert torch.allclose(zoo.grad, ref.grad, rtol=1e-9, atol=1e-13)
    # Each view through the head on its own (solo-learn's way) is a different computation.
    model.mcfg.joint_projector = False
    assert abs(model.loss(model.project(views)).item() - loss.item()) > 1e-3


def test_simclr_has_neither_htdt_option_by_default():
    assert not get_method("simclr").Config().proj_bn_last  # the official (google-research) head joins the views
    config, _ = default_run("simclr")  # solo-learn's, in the default run
    assert not config.proj_bn_last and not config.joint_projector
    model = create_method("simclr", SMALL["simclr"], **TINY)
    assert not model.joint_projector and not isinstance(model.projector[-1], nn.BatchNorm1d)


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
                          **{**TINY, "crop_sizes": (16, 16, 8, 8, 8), "global_batch_size": 8}).double().train()
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
                             **{**TINY, "crop_sizes": (16, 16, 8, 8, 8), "global_batch_size": 8}).double()
    per_crop.load_state_dict(model.state_dict())
    assert not per_crop.mcfg.joint_forward and not per_crop.joint_projector
    assert abs(per_crop.compute_loss(batch)[0].item() - loss.item()) > 1e-6  # per-crop BatchNorm statistics differ


@pytest.mark.parametrize("name", ["simclr", "byol"])
def test_multi_crop_methods_take_small_crops_too(name):
    model = create_method(name, SMALL[name], **{**TINY, "crop_sizes": (16, 16, 8, 8)})
    loss, features = model.compute_loss(crops(2) + crops(2, size=8, seed=1))
    assert torch.isfinite(loss) and len(features) == 2  # the probe sees the large crops


def test_byol_sums_the_loss_over_every_target_and_other_crop():
    torch.manual_seed(0)
    model = create_method("byol", SMALL["byol"], **{**TINY, "crop_sizes": (16, 16, 8)})
    batch = crops(2) + crops(1, size=8, seed=1)
    torch.manual_seed(1)
    loss, _ = model.compute_loss(batch)
    with torch.no_grad():
        torch.manual_seed(1)
        predictions = [model.predictor(model.projector(model.backbone(c))) for c in batch]
        targets = [model.target.projector(model.target.backbone(c)) for c in batch[:2]]
    expected = sum(byol_loss(predictions[v], targets[t]) for t, v in [(0, 1), (0, 2), (1, 0), (1, 2)])
    assert torch.allclose(loss, expected, rtol=1e-5)
    groups = Pretrainer(model, num_classes=10).param_groups()
    assert any(p is next(model.predictor.parameters()) for g in groups for p in g["params"])  # trained, at the method lr


def test_moco_contrasts_with_the_queue_before_this_steps_keys_go_in():
    torch.manual_seed(0)
    model = create_method("mocov2plus", SMALL["mocov2plus"], **TINY)
    model.queue.ptr.fill_(32)  # 16 keys wrap around the 40-key queue: rows 32..39, then 0..7
    before = model.queue.keys.clone()
    batch = crops()
    loss, _ = model.compute_loss(batch)
    with torch.no_grad():
        q1, q2 = (F.normalize(model.projector(model.backbone(c)), dim=-1) for c in batch)
        k1, k2 = (F.normalize(model.target(c), dim=-1) for c in batch)
    expected = (info_nce_loss(q1, k2, before[1], 0.2) + info_nce_loss(q2, k1, before[0], 0.2)) / 2
    assert torch.allclose(loss, expected, rtol=1e-5)
    rows = torch.cat([torch.arange(32, 40), torch.arange(0, 8)])
    assert torch.allclose(model.queue.keys[0, rows], k1, atol=1e-6) and torch.allclose(model.queue.keys[1, rows], k2, atol=1e-6)
    assert torch.equal(model.queue.keys[:, 8:32], before[:, 8:32]) and model.queue.ptr.item() == 8
    assert torch.allclose(before.norm(dim=-1), torch.ones(2, 40))  # initially random unit keys


def test_the_queue_and_its_pointer_are_in_the_state_dict():
    model = create_method("mocov2plus", SMALL["mocov2plus"], **TINY)
    model.compute_loss(crops())
    state = model.state_dict()
    assert state["queue.keys"].shape == (2, 40, 32) and state["queue.ptr"].item() == 16
    fresh = create_method("mocov2plus", SMALL["mocov2plus"], **TINY)
    assert not torch.equal(fresh.queue.keys, model.queue.keys)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.queue.keys, model.queue.keys) and fresh.queue.ptr.item() == 16


def test_a_queue_smaller_than_the_global_batch_is_a_clear_error():
    with pytest.raises(ZooError, match=r"method.queue_size=8 is smaller than the global batch of 16"):
        create_method("mocov2plus", {**SMALL["mocov2plus"], "queue_size": 8}, **TINY)


def test_a_method_composes_a_queue_with_its_own_config_field():
    """No Config-order rule: the method declares queue_size like any field and holds the component."""

    class WithQueue(Method):
        @dataclass
        class Config(MethodConfig):
            queue_size: int = 24

        def build_modules(self):
            super().build_modules()
            self.queue = FeatureQueue(count=1, size=self.mcfg.queue_size, dim=self.mcfg.proj_out)

    model = WithQueue({"proj_hidden": [16], "proj_out": 8}, **TINY)
    assert model.state_dict()["queue.keys"].shape == (1, 24, 8) and model.state_dict()["queue.ptr"].item() == 0


# ---- digits runs through the entry point -------------------------------------------------------
RUN = ["data.batch_size=32", "data.num_workers=0", "data.image_size=16", "trainer.limit_train_batches=3",
       "trainer.limit_val_batches=2", "data.eval_batch_size=32", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
       "method.proj_hidden=[128]", "method.proj_out=64"]


@pytest.mark.parametrize("name, extra", [("simclr", []), ("byol", ["method.pred_hidden=64"])])
def test_a_short_digits_run_trains_and_logs_the_loss(name, extra, tmp_path):
    from zoo.pretrain import pretrain

    register_configs()
    method_names()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        cfg = compose("pretrain", overrides=[f"method={name}", *RUN, *extra, "trainer.max_steps=3", f"run_dir={tmp_path}"])
    pretrain(cfg)
    with open(tmp_path / "metrics.csv", newline="") as f:
        losses = [float(row["train/loss_step"]) for row in csv.DictReader(f) if row.get("train/loss_step")]
    assert len(losses) == 3 and all(map(torch.isfinite, torch.tensor(losses)))
    if name == "byol":
        with open(tmp_path / "metrics.csv", newline="") as f:
            assert any(row.get("train/momentum") for row in csv.DictReader(f))


def test_the_queue_survives_kill_minus_nine_and_resume(tmp_path):
    """MoCo v2+ killed while it checkpoints every step: the resumed run goes on from the saved queue and
    pointer (rows written before the kill are still there at the end; the pointer counts every step)."""
    run_dir = tmp_path / "run"
    batch, steps, queue_size = 32, 9, 320  # the queue holds all 9 steps' keys: nothing written is overwritten
    args = ["method=mocov2plus", *RUN, f"method.queue_size={queue_size}", "trainer.max_epochs=3",
            "checkpoint_every_n_steps=1", f"run_dir={run_dir}"]
    killed = killed_after_first_checkpoint(args, run_dir, settle=1.0)
    killed_steps = killed["global_step"]
    assert 0 < killed_steps < steps, "the run was not killed mid-training"
    written = batch * killed_steps
    assert killed["state_dict"]["method.queue.ptr"].item() == written
    final = resumed(args, run_dir)
    assert final["global_step"] == steps
    assert final["state_dict"]["method.queue.ptr"].item() == batch * steps
    assert torch.equal(final["state_dict"]["method.queue.keys"][:, :written],
                       killed["state_dict"]["method.queue.keys"][:, :written])
    assert not torch.equal(final["state_dict"]["method.queue.keys"][:, written:batch * steps],
                           killed["state_dict"]["method.queue.keys"][:, written:batch * steps])
