"""Registry, every registered method's training step, the lr schedule, adding a method."""

import copy
import csv
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from default_run import compose_run
from hydra.core.config_store import ConfigStore
from method_settings import LOSS_PARTS, TINY, build, overrides, small_config
from omegaconf import OmegaConf

from zoo import registry
from zoo.build import build_method
from zoo.errors import ZooError
from zoo.methods.base import Method, MethodConfig
from zoo.nn import EMA, StepState
from zoo.optim import lr_factor_schedule
from zoo.registry import create_method, get_method, method_names, register_method
from zoo.train.harness import Pretrainer, top_k_accuracy
from zoo.train.step import train_step

REPO = Path(__file__).resolve().parents[2]
# Every registered method, so that a new method file gets the generic step test without an edit here.
METHODS = method_names()


def test_every_method_of_the_papers_and_the_family_is_registered():
    assert set(LOSS_PARTS) <= set(METHODS)


def test_unknown_method_lists_the_registered_names():
    with pytest.raises(ZooError, match=r"unknown method 'nope' \(registered: .*intl.*wmse"):
        get_method("nope")


def check_training_step(method):
    """The generic step test: `method` built at its small config (its class defaults if it has none), one
    training step on two crops of 32 samples."""
    torch.manual_seed(0)
    model = build(method)
    crops = [torch.randn(32, 3, 16, 16) for _ in range(2)]
    labels = torch.randint(0, 10, (32,))
    configured = model.build_optimizer(steps_per_epoch=5, total_steps=10)
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    # the one training step (forward, probe, backward, the components' hooks, optimiser and scheduler)
    out = train_step(model.method, (crops, labels), optimizer, scheduler, StepState(step=0, total_steps=10, steps_per_epoch=5),
                     probe=model.probe_step)
    loss, parts, probe_features = out.loss, out.parts, out.features
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(parts) == LOSS_PARTS.get(method, set(parts)) and all(p.ndim == 0 and torch.isfinite(p) for p in parts.values())
    grads = [p.grad for p in model.method.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert probe_features and probe_features[0].shape == (32, model.method.feature_dim)


@pytest.mark.parametrize("method", METHODS)
def test_training_step_gives_a_finite_loss_and_gradients(method):
    check_training_step(method)


def test_a_method_without_test_settings_still_gets_the_generic_step_test(monkeypatch):
    """A newly registered method (one file, no entry in tests/method_settings.py) is built at its class defaults
    and passes the generic step test; registered here for this test only."""

    class Throwaway(Method):
        @dataclass
        class Config(MethodConfig):  # small class defaults: what a settings entry would otherwise give
            proj_hidden: list[int] = field(default_factory=lambda: [64])
            proj_out: int = 32

        def loss(self, views):
            return -F.cosine_similarity(*views).mean()
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))  # the registration ends with the test
    try:
        register_method("throwaway_step_test")(Throwaway)
        assert "throwaway_step_test" in method_names() and small_config("throwaway_step_test") == {}
        check_training_step("throwaway_step_test")
    finally:
        ConfigStore.instance().repo["method"].pop("throwaway_step_test.yaml", None)


def test_two_view_method_given_four_crops_is_a_clear_error():
    views = "data.views=[{size: 16, count: 4}]"
    with pytest.raises(ZooError, match="method vicreg takes 2 views but data.views gives 4 crops"):
        build("vicreg", [views])


@pytest.mark.parametrize("method", ["intl", "wmse", "cwrgp"])
def test_multi_view_methods_take_four_crops(method):
    model = build(method, ["data.views=[{size: 16, count: 4}]"]).method
    loss, _ = model.split_loss(model.compute_loss([torch.randn(32, 3, 16, 16) for _ in range(4)])[0])
    assert torch.isfinite(loss)


@pytest.mark.parametrize(
    "method, overrides, message",
    [
        ("cwrgp", ["method.groups=3"], "groups=3 does not divide the embedding dim 64"),
        ("wmse", ["method.w_size=12"], "w_size=12 does not divide the (global) batch of 32"),
        ("wmse", ["method.proj_out=64", "method.w_size=16"], "rank-deficient"),
        ("cwrgp", ["method.groups=8", "method.w_size=16"], "rank-deficient"),
    ],
)
def test_whitening_that_cannot_work_fails_before_training(method, overrides, message):
    with pytest.raises(ZooError, match=None) as info:
        build(method, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_weight_decay_excluded_from_biases_and_norms_when_asked():
    model = build("intl", ["optimizer.exclude_bias_and_norm=true"])
    groups = model.param_groups()
    no_decay = [g for g in groups if g["weight_decay"] == 0.0 and g["params"][0] is not model.classifier.weight]
    assert no_decay and all(p.ndim == 1 for p in no_decay[0]["params"])
    decayed = [p for g in groups if g["weight_decay"] > 0 for p in g["params"]]
    assert decayed and all(p.ndim > 1 for p in decayed)


def test_lr_schedule_warmup_then_cosine_to_the_final_factor():
    cfg = OmegaConf.create({"name": "cosine", "interval": "step", "warmup_epochs": 2, "warmup_steps": 0,
                            "warmup_rule": "next", "warmup_start_lr": 0.0, "final_factor": 0.001, "milestones": [], "gamma": 0.1})
    factor = lr_factor_schedule(cfg, steps_per_epoch=10, total_steps=100)
    assert factor(0) == pytest.approx(1 / 20) and factor(19) == pytest.approx(1.0)  # INTL: lr (s+1)/W
    assert factor(20) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.001 + 0.999 * 0.5)
    assert factor(100) == pytest.approx(0.001)
    cfg.name, cfg.milestones, cfg.warmup_epochs = "step", [6, 8], 0
    factor = lr_factor_schedule(cfg, steps_per_epoch=10, total_steps=100)
    assert [factor(s) for s in (0, 59, 60, 80)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def pretrain_plugin(tmp_path, source, *overrides):
    """Writes `source` to a method file outside the package and runs main_pretrain.py with it
    (ZOO_METHODS); returns (completed process, run_dir)."""
    (tmp_path / "plugin_method.py").write_text(textwrap.dedent(source))
    run_dir = tmp_path / "run"
    env = {**os.environ, "ZOO_METHODS": str(tmp_path / "plugin_method.py")}
    result = subprocess.run(
        [sys.executable, str(REPO / "main_pretrain.py"), "method.proj_hidden=[64]", "method.proj_out=32",
         "data.batch_size=16", "data.num_workers=0", "trainer.enable_progress_bar=false", "trainer.limit_val_batches=2",
         "data.eval_batch_size=32", *overrides, f"run_dir={run_dir}"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False,
    )
    return result, run_dir


def test_a_method_outside_the_package_trains_through_the_entry_point(tmp_path):
    """The walk-through of docs/adding_a_method.md: one file, no edit elsewhere."""
    result, run_dir = pretrain_plugin(tmp_path, '''
        from dataclasses import dataclass
        import torch.nn.functional as F
        from zoo.methods.base import Method, MethodConfig
        from zoo.registry import register_method

        @register_method("cosine_toy")
        class CosineToy(Method):
            """Negative cosine between the two views (collapses; a registry test only)."""

            @dataclass
            class Config(MethodConfig):
                temperature: float = 1.0

            def loss(self, views):
                z1, z2 = views
                return -F.cosine_similarity(z1, z2).mean() / self.mcfg.temperature
    ''', "method=cosine_toy", "method.temperature=0.5", "trainer.max_steps=2")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["method"] == "cosine_toy" and summary["steps"] == 2
    assert OmegaConf.load(run_dir / "config.yaml").method.temperature == 0.5


def test_a_loss_that_turns_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    result, run_dir = pretrain_plugin(tmp_path, '''
        from dataclasses import dataclass
        import torch.nn.functional as F
        from zoo.methods.base import Method, MethodConfig
        from zoo.registry import register_method

        @register_method("nan_after_two")
        class NanAfterTwo(Method):
            """A cosine loss that turns NaN at step 2."""

            @dataclass
            class Config(MethodConfig):
                pass

            def compute_loss(self, crops, state=None):
                features = self.encode(crops)
                z1, z2 = self.project(features)
                loss = -F.cosine_similarity(z1, z2).mean()
                return (loss * float("nan") if state is not None and state.step >= 2 else loss), features
    ''', "method=nan_after_two", "trainer.max_steps=10", "checkpoint_every_n_steps=1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "method nan_after_two diverged at step 2: non-finite loss (loss=nan)" in lines[0]
    assert "lower optimizer.lr" in lines[0] and str(run_dir / "divergence.pt") in lines[0]
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["finished"] is False and summary["stopped"].startswith("method nan_after_two diverged at step 2")
    # the capture: the weights the step started from (those of the checkpoint; BatchNorm's statistics are
    # those after the step's forward) and its batch
    capture = torch.load(run_dir / "divergence.pt", map_location="cpu", weights_only=False)
    assert capture["global_step"] == 2 and capture["losses"][0]["loss"] != capture["losses"][0]["loss"]  # nan
    weights = [k for k in ckpt["state_dict"] if "running_" not in k and "num_batches_tracked" not in k]
    assert {k.removeprefix("method.").split(".")[0] for k in weights} >= {"backbone", "projector"} and all(torch.equal(capture["state_dict"][k], ckpt["state_dict"][k]) for k in weights)
    crops, labels = capture["batch"]
    assert len(crops) == 2 and crops[0].shape == (16, 3, 16, 16) and labels.shape == (16,)


@pytest.mark.parametrize("method", ["intl", "vicreg", "barlow_twins"])
def test_a_digits_run_logs_the_loss_parts_that_sum_to_the_loss(method, tmp_path):
    from zoo.pretrain import pretrain

    run_dir = tmp_path / "run"
    cfg = compose_run([
        f"method={method}", *overrides(small_config(method)), "data.batch_size=16", "data.num_workers=0", "data.image_size=16",
        "trainer.max_steps=2", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false", f"run_dir={run_dir}",
        # the loss parts are training's: a validation of 64 images, not digits_m's 7,188 (35 s a run here)
        "trainer.limit_val_batches=2", "data.eval_batch_size=32",
    ])
    pretrain(cfg)
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("train/loss_step")]
    assert len(rows) == 2
    for row in rows:
        parts = [float(row[f"train/loss/{part}_step"]) for part in LOSS_PARTS[method]]
        assert sum(parts) == pytest.approx(float(row["train/loss_step"]), rel=1e-5)


@pytest.mark.parametrize("method, config", [
    ("vicreg", {"proj_hidden": [64], "proj_out": 32}),
    ("intl", {"proj_hidden": [64], "proj_out": 32}),
])
def test_a_method_is_built_and_stepped_without_a_run_config(method, config):
    torch.manual_seed(0)
    cls = get_method(method)
    model = cls(cls.Config(**config), **TINY)
    harness = Pretrainer(model, num_classes=10, optimizer={"name": "sgd", "lr": 0.1})
    assert harness.lr == pytest.approx(0.1 * 16 / 256) and model.crop_sizes == (16, 16)
    optimizer = harness.build_optimizer(steps_per_epoch=10, total_steps=100)["optimizer"]
    crops, labels = [torch.randn(16, 3, 16, 16) for _ in range(2)], torch.randint(0, 10, (16,))
    before = [p.detach().clone() for p in model.backbone.parameters()]
    loss, features = model.compute_loss(crops)
    loss, _ = model.split_loss(loss)
    probe_loss, probe_top1 = harness.probe_step(features, labels)
    (loss + probe_loss).backward()
    optimizer.step()
    assert torch.isfinite(loss) and torch.isfinite(probe_loss) and 0 <= probe_top1 <= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))
    # the same through the registry, timm-style, with the config as a dict of overrides
    same = create_method(method, config, **TINY)
    assert type(same) is cls and same.mcfg == model.mcfg


def test_explicit_arguments_default_to_the_papers_optimizer_and_the_batch_scaled_lr():
    model = Pretrainer(create_method("vicreg", {"proj_hidden": [32], "proj_out": 32}, **TINY), num_classes=10)
    assert model.optimizer_cfg.name == "lars_fb" and model.optimizer_cfg.exclude_bias_and_norm  # main_vicreg.py's LARS
    assert model.lr == pytest.approx(0.2 * 16 / 256) and model.probe_lr == pytest.approx(0.1 * 16 / 256)
    model = Pretrainer(create_method("wmse", {"proj_hidden": [32], "proj_out": 8, "w_size": 16}, **TINY), num_classes=10,
                       lr=0.01)
    assert model.optimizer_cfg.name == "adam" and model.lr == 0.01 and model.probe_lr == pytest.approx(3e-3)


def test_construction_checks_its_config_and_refuses_a_run_config():
    with pytest.raises(Exception, match="lambda_"):
        create_method("vicreg", {"lambda_": 1.0}, **TINY)  # a field VICReg does not declare
    with pytest.raises(Exception, match="proj_out"):
        create_method("vicreg", {"proj_out": "wide"}, **TINY)
    cfg = compose_run(["method=vicreg"])
    with pytest.raises(TypeError, match=r"zoo\.build\.build_method"):
        get_method("vicreg")(cfg)


def test_build_method_turns_the_run_config_into_the_explicit_arguments():
    cfg = compose_run(["method=intl_m", "data.batch_size=16", "data.views=[{size: 16, count: 2}, {size: 8, count: 3}]",
                          "optimizer.lr=0.4", "optimizer.probe_lr=0.2", "eval.knn_k=7", *overrides(small_config("intl_m"))])
    model = build_method(cfg, num_classes=10, world_size=4, accumulate_grad_batches=2)
    assert model.crop_sizes == (16, 16, 8, 8, 8) and model.global_batch_size == 64 and model.knn_k == 7
    assert model.lr == pytest.approx(0.4 * 128 / 256) == cfg.optimizer.lr_scaled  # the optimiser step's batch
    assert model.probe_lr == pytest.approx(0.2 * 64 / 256)  # the forward pass's batch
    assert model.method.mcfg.proj_out == 64 and model.method.mcfg.momentum_base == 0.996
    # what main_linear.py, main_knn.py and downstream/ read from a checkpoint
    assert model.hparams["cfg"]["data"]["batch_size"] == 16 and model.hparams["world_size"] == 4
    assert model.hparams["num_classes"] == 10


def test_a_method_composes_an_ema_target_with_its_own_config_fields():
    config = get_method("intl_m").Config()
    assert (config.momentum_base, config.momentum_final) == (0.996, 1.0)
    assert config.proj_hidden_bias is False  # INTL's defaults

    class EMACosine(Method):
        """A BYOL-shaped toy: the online crop 1 against the target's crop 0 (no Config-order rule: the fields
        are the method's own, the EMA a component it holds)."""

        from dataclasses import dataclass

        @dataclass
        class Config(MethodConfig):
            momentum_base: float = 0.996
            momentum_final: float = 1.0

        def build_modules(self):
            super().build_modules()
            m = self.mcfg
            self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)

        def compute_loss(self, crops, state=None):
            target = self.target(crops[0])
            features = [self.backbone(crops[1])]
            online = self.project(features)[0]
            return -torch.nn.functional.cosine_similarity(online, target).mean(), features

    model = EMACosine({"proj_hidden": [32], "proj_out": 16, "momentum_base": 0.5}, **TINY)
    assert model.target.momentum(0, 100) == pytest.approx(0.5) and model.target.momentum(100, 100) == pytest.approx(1.0)
    loss, _ = model.compute_loss([torch.randn(16, 3, 16, 16) for _ in range(2)])
    loss.backward()
    assert all(p.grad is None for p in model.target.backbone.parameters())


def save_checkpoint(model, path, hyper_parameters=None):
    """A checkpoint as Lightning writes it during training; `hyper_parameters` replaces the model's."""
    import lightning as L

    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    if hyper_parameters is not None:
        ckpt = torch.load(path, weights_only=False)
        torch.save(ckpt | {"hyper_parameters": hyper_parameters}, path)


def test_checkpoints_load_new_and_old(tmp_path):
    from zoo.build import load_method

    cfg = compose_run(["method=simsiam", "data.batch_size=16", *overrides(small_config("simsiam"))])
    torch.manual_seed(0)
    model = build_method(cfg, num_classes=10, world_size=2)
    new, old = tmp_path / "new.ckpt", tmp_path / "old.ckpt"
    save_checkpoint(model, new)
    # before the explicit arguments a checkpoint kept only the run config
    save_checkpoint(model, old, {"cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), "num_classes": 10,
                                 "world_size": 2})
    for path in (new, old):
        loaded, config = load_method(path)
        assert type(loaded) is type(model.method) and loaded.global_batch_size == 32 and config.method.name == "simsiam"
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.method.state_dict().items())
    # a new checkpoint is Lightning's too: the harness's and the method's own arguments are its hyper-parameters
    loaded = Pretrainer.load_from_checkpoint(new, map_location="cpu", weights_only=False)
    assert loaded.global_batch_size == 32 and loaded.method.mcfg == model.method.mcfg and loaded.lr == model.lr
    assert type(loaded.method) is type(model.method)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_a_checkpoint_holds_the_names_as_plain_strings(tmp_path):
    """The schema's names are zoo.names enum members in the process; what a checkpoint keeps (read by main_linear,
    downstream/, Lightning's hparams.yaml) is the plain string, and strings (every checkpoint before) load back."""
    import enum

    import yaml

    from zoo.build import load_method
    from zoo.names import Optimizer, WhiteningAxis

    cfg = compose_run(["method=intl", "method.axis=batch", "optimizer.name=lars", "scheduler.warmup_rule=endpoints",
                          "data.batch_size=16", *overrides(small_config("intl"))])
    assert cfg.method.axis is WhiteningAxis.batch and cfg.optimizer.name is Optimizer.lars
    model = build_method(cfg, num_classes=10, world_size=1)

    def leaves(tree):
        return [leaf for value in tree.values() for leaf in leaves(value)] if isinstance(tree, dict) else [tree]

    hparams = dict(model.hparams)
    assert not [leaf for leaf in leaves(hparams) if isinstance(leaf, enum.Enum)]
    assert type(hparams["cfg"]["method"]["axis"]) is str and type(hparams["config"]["axis"]) is str
    assert type(hparams["optimizer"]["name"]) is str and hparams["cfg"]["scheduler"]["warmup_rule"] == "endpoints"
    yaml.safe_dump(hparams)  # safe YAML refuses an enum member
    path = tmp_path / "intl.ckpt"
    save_checkpoint(model, path)
    loaded, config = load_method(path)
    assert loaded.mcfg.axis is WhiteningAxis.batch and config.optimizer.name is Optimizer.lars


def test_the_online_probe_accuracy_ignores_unlabelled_samples():
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]])
    labels = torch.tensor([1, 2, -1, 1])
    assert top_k_accuracy(scores, labels, 3).item() == pytest.approx(1 / 3)
    assert top_k_accuracy(scores, labels, 3, k=2).item() == pytest.approx(2 / 3)
    assert top_k_accuracy(scores, torch.full((4,), -1), 3).item() == 0.0


@pytest.mark.parametrize("device, size, nhwc", [("cpu", 16, False), ("cpu", 32, True), ("cuda", 16, True)])
def test_the_model_trains_channels_last_where_that_is_faster(device, size, nhwc):
    decided, forced = (build("intl", [f"data.views=[{{size: {size}, count: 2}}]"]) for _ in range(2))
    forced.channels_last = not nhwc  # a fixed setting wins over the device and crop size
    for model, expected in ((decided, nhwc), (forced, not nhwc)):
        model.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))
        model.setup("fit")
        conv = model.method.backbone.conv1.weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == expected and conv.shape[-1] > 1
        crop = model._prepare(torch.randn(4, 3, size, size))
        assert crop.is_contiguous(memory_format=torch.channels_last) == expected


# ---- how the crops are batched through backbone and projector ---------------------------------------------
# (joint backbone: one call per run of same-size crops; joint projector: one call on every crop's features), as the
# code each method's defaults follow batches them: every call's BatchNorm statistics cover the crops it holds.
CROP_BATCHING = {
    "mmcr": (True, True),  # mmcr/cifar_stl/train.py: "B N C H W -> (B N) C H W", then model(img_batch)
    "lejepa": (True, True),  # MINIMAL.md ViTEncoder.forward: backbone(x.flatten(0, 1)), then proj on every view
    "wmse": (False, True),  # htdt methods/w_mse.py: [model(x) for x in samples], head(torch.cat(h))
    "cwrgp": (False, True),  # CW-RGP base/methods/cwrgp.py: the same
    "shuffled_dbn": (False, True),  # the same file (--axis 1)
    "zero_cl": (False, False),  # Sherrylone/Zero-CL main.py (both scripts): projector(backbone(y1)), then y2; CW-RGP zero_icl.py alike
    "intl": (False, False),  # INTL methods/intl.py: projection(backbone(x)) for x in samples
    "intl_m": (False, False),  # INTL methods/intl_m.py: the same on samples[1:]
    "st": (False, False),  # INTL's forward
    "barlow_twins": (False, False),  # solo-learn (one base_training_step per crop); FB main.py: projector(backbone(y1)), (y2)
    "vicreg": (False, False),  # solo-learn; FB main_vicreg.py: projector(backbone(x)), projector(backbone(y))
    "simsiam": (False, False),  # solo-learn; FB simsiam builder.py: encoder(x1), encoder(x2)
    "byol": (False, False),  # solo-learn; htdt methods/byol.py: head(model(x)) for x in samples
    "mocov2plus": (False, False),  # solo-learn
    "mocov2": (False, False),  # facebookresearch/moco builder.py: encoder_q(im_q), one crop
    "simclr": (False, False),  # solo-learn
    "swav": (False, False),  # solo-learn (joint_forward: the official ResNet, below)
    "dino": (False, False),  # solo-learn
    "frossl": (False, False),  # FroSSL (solo-learn's training step, one forward per crop)
    "corinfomax": (False, False),  # corinfomax-ssl model_base_resnet.py: projector(backbone(y1)), then y2
    "mec": (False, False),  # MEC builder.py: predictor(encoder(x1)), predictor(encoder(x2))
    "msf": (False, False),  # UMBCvision/MSF train_msf.py: encoder_q(im_q), one crop
    "matrix_ssl": (False, False),  # Matrix-SSL mec/builder.py (MEC's): predictor(encoder(x1)), predictor(encoder(x2))
    "ssole": (True, True),  # husthuaan/ssole models/ssole_encoder.py: forward_backbone(img.reshape(B x crops, ...))
    "mix_bt": (False, False),  # wgcban/mix-bt main.py: net(pos_1), net(pos_2), then net(pos_m) (the mixed crop)
    "ivne": (True, "run"),  # CVPR23-VNE train_ivne_imagenet100.py: projector(model(torch.cat(data[:2]))), then data[2:]
    "dcl": (False, False),  # the default run's SimCLR settings (solo-learn); the class default joins them (below)
    "dclw": (False, False),  # the same
    "tico": (False, False),  # lightly benchmarks/imagenet/resnet50/tico.py: backbone(views[0]), one online crop
    "t_regs": (False, False),  # no official code read: VICReg's (FB main_vicreg.py), whose projector it takes
    "emp_ssl": (True, True),  # tsb0601/EMP-SSL main.py: net(torch.cat(data, dim=0)), every patch in one call
    "visreg": (True, True),  # no official code read (non-commercial): LeJEPA's MINIMAL.md batching, whose training it keeps
    "simdino": (True, True),  # RobinWu218/SimDINO simdino/utils.py MultiCropWrapper: backbone per size run, head on all
}
# Options that switch a method to another source's batching: (method, its config overrides) -> batching.
CROP_BATCHING_OPTIONS = {
    ("swav", "method.joint_forward=true"): (True, True),  # facebookresearch/swav src/resnet50.py forward
    ("simclr", "method.joint_projector=true"): (False, True),  # htdt methods/contrastive.py
    ("simclr", "method.joint_backbone=true,method.joint_projector=true"): (True, True),  # google-research/simclr model.py
    ("dcl", "method.joint_backbone=true,method.joint_projector=true"): (True, True),  # SimCLR's class default, as DCL's
}
BATCHING_CASES = [(m, "") for m in METHODS] + list(CROP_BATCHING_OPTIONS)


def batch_norm_state(module):
    return {f"{name}.{key}": value.clone() for name, bn in module.named_modules() if isinstance(bn, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)
            for key, value in bn.state_dict().items()}


@pytest.mark.parametrize("method, options", BATCHING_CASES, ids=[f"{m}{'-' + o if o else ''}" for m, o in BATCHING_CASES])
def test_the_crops_share_batchnorm_statistics_as_in_the_methods_source(method, options):
    """After one training forward, the running statistics of every BatchNorm of backbone and projector equal
    those of a reference forward written out here with the source's batching (see CROP_BATCHING)."""
    expected = CROP_BATCHING_OPTIONS.get((method, options)) or CROP_BATCHING.get(method)
    assert expected, f"{method}: add how its source batches the crops to CROP_BATCHING"
    joint_backbone, joint_projector = expected
    multi_crop = get_method(method).num_views is None
    views = "data.views=[{size: 16, count: 2}, {size: 8, count: 2}]" if multi_crop else "data.views=[{size: 16, count: 2}]"
    extra = [views, *(options.split(",") if options else [])]
    if method in ("simclr", "dcl", "dclw", "mocov2", "mocov2plus", "dino", "corinfomax", "ssole", "simdino"):
        extra.append("method.proj_hidden_bn=true")  # a projector with BatchNorm, so its batching shows
    torch.manual_seed(0)
    model = build(method, extra).method
    backbone, projector = copy.deepcopy(model.backbone), copy.deepcopy(model.projector)
    crops = [torch.randn(32, 3, size, size) for size in model.crop_sizes]
    if method == "mix_bt":  # a fixed draw: its mixed crop goes through both, after the two views (main.py net(pos_m))
        model.draw_mix = lambda n, device: (torch.arange(n).flip(0), 0.3)
    model.compute_loss(crops)
    if method == "mix_bt":
        crops = [*crops, 0.3 * crops[0] + 0.7 * crops[1].flip(0)]

    online = {"mocov2": [0], "msf": [0], "tico": [0], "intl_m": list(range(1, len(crops)))}.get(method, list(range(len(crops))))  # crops the online branch sees
    # The reference forward: the backbone on each crop, or on each run of same-size crops concatenated ...
    if joint_backbone:
        runs = [[i for i in online if crops[i].shape[-1] == size] for size in dict.fromkeys(crops[i].shape[-1] for i in online)]
    else:
        runs = [[i] for i in online]
    features = [backbone(torch.cat([crops[i] for i in run])) for run in runs]
    # ... then the projector on each crop's features, on each run's, or on all of them at once.
    if joint_projector == "run":
        for run_features in features:
            projector(run_features)
    elif joint_projector:
        projector(torch.cat(features))
    else:
        for run, run_features in zip(runs, features):
            for crop_features in run_features.split(32):
                projector(crop_features)

    for name, (built, reference) in {"backbone": (model.backbone, backbone), "projector": (model.projector, projector)}.items():
        stats, expected = batch_norm_state(built), batch_norm_state(reference)
        assert stats and stats.keys() == expected.keys(), f"the {name} has BatchNorms, so its batching shows"
        for key in stats:
            torch.testing.assert_close(stats[key], expected[key], rtol=1e-5, atol=1e-6, msg=f"{name} {key}")
    assert (bool(model.joint_backbone), bool(model.joint_projector)) == (joint_backbone, bool(joint_projector))  # as declared
