"""backbone.whitening_layer (zoo.backbones.WhiteningLayer): a whitening layer after the backbone's pooled features,
for any method (Kalapos & Gyires-Toth, 2024). Its IterNorm against the official layer's numbers, exact ZCA against a
numpy eigendecomposition, train vs eval mode, its running statistics through a checkpoint into every evaluation and
the export, two methods stepping with it, its batch limits and typos (two gloo ranks:
tests/losses/test_whitening_layer_ddp.py).

tests/fixtures/whitening_layer_reference.json: what kaland313/SSL-Whitening's IterNormBackBoneWrapper / IterNorm
(models/iterative_normalization.py, run unmodified in float64) computed on seeded inputs: two training forwards
(output, input gradient, running statistics after each) and one eval-mode forward per case."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from default_run import compose_run
from method_settings import small_config

from zoo.backbones import WhiteningLayer, create_backbone, whitening_layer
from zoo.build import build_method, load_method
from zoo.checkpoint import read_checkpoint
from zoo.config import BackboneConfig
from zoo.errors import ZooError
from zoo.eval.common import load_backbone
from zoo.export import main as export_main
from zoo.methods.base import typed_config
from zoo.nn import EMA, StepState, components
from zoo.registry import create_method
from zoo.train.step import train_step

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "whitening_layer_reference.json").read_text())
TINY = {"name": "test_resnet", "small_stem": False, "whitening_layer": "iternorm"}  # 96 features


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[case["name"].split(" (")[0] for case in FIXTURE["cases"]])
def test_iternorm_is_the_official_layer_in_training_and_eval(case):
    layer = WhiteningLayer(case["d"], "iternorm", case["iters"], case["eps"], case["momentum"], case["groups"]).double()
    assert (layer.iters, layer.eps, layer.momentum, layer.groups) == (5, 1e-5, 0.1, 1) or case["groups"] == 2
    for step in case["train_steps"]:
        x = tensor(step["x"]).requires_grad_()
        y = layer(x)
        (y * tensor(step["cotangent"])).sum().backward()
        assert torch.allclose(y, tensor(step["y"]), rtol=0, atol=1e-12)
        assert torch.allclose(x.grad, tensor(step["x_grad"]), rtol=0, atol=1e-12)
        assert torch.allclose(layer.running_mean, tensor(step["running_mean_after"]), rtol=0, atol=1e-14)
        assert torch.allclose(layer.running_matrix, tensor(step["running_wm_after"]), rtol=0, atol=1e-14)
    layer.eval()
    assert torch.allclose(layer(tensor(case["eval"]["x"])), tensor(case["eval"]["y"]), rtol=0, atol=1e-12)


def test_the_defaults_are_the_official_layers():
    """IterNormBackBoneWrapper: IterNorm(num_features, affine=False): T=5, eps=1e-5, momentum 0.1, one group."""
    cfg = typed_config(BackboneConfig)
    assert (cfg.whitening_layer, cfg.whitening_iters, cfg.whitening_eps, cfg.whitening_momentum,
            cfg.whitening_groups) == ("none", 5, 1e-5, 0.1, 1)
    assert not list(WhiteningLayer(8).parameters())  # no affine weight and bias


def zca_oracle(x, eps, groups):
    """ZCA of each group of consecutive features by numpy's eigendecomposition, covariance over N, eps added."""
    x = x.numpy()
    out = np.empty_like(x)
    for cols in np.split(np.arange(x.shape[1]), groups):
        centred = x[:, cols] - x[:, cols].mean(axis=0)
        values, vectors = np.linalg.eigh(centred.T @ centred / len(x) + eps * np.eye(len(cols)))
        out[:, cols] = centred @ (vectors * values ** -0.5) @ vectors.T
    return torch.from_numpy(out)


def test_zca_whitens_each_group_exactly_and_its_gradient_is_autograds_through_the_oracle():
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(20, 6, generator=gen, dtype=torch.float64) * torch.tensor([3.0, 1, 0.5, 2, 1, 4])).requires_grad_()
    layer = WhiteningLayer(6, "zca", eps=1e-5, groups=2).double()
    y = layer(x)
    assert torch.allclose(y, zca_oracle(x.detach(), 1e-5, 2), rtol=0, atol=1e-12)
    for block in y.detach().chunk(2, dim=1):  # the identity, less eps's shrinkage
        assert torch.allclose(block.T @ block / 20, torch.eye(3, dtype=torch.float64), atol=1e-4)
    cotangent = torch.randn(20, 6, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((y * cotangent).sum(), x)
    x64 = x.detach().requires_grad_()
    groups = [x64[:, :3], x64[:, 3:]]  # the oracle's maths in torch, for autograd
    white = []
    for part in groups:
        centred = part - part.mean(0)
        values, vectors = torch.linalg.eigh(centred.T @ centred / 20 + 1e-5 * torch.eye(3, dtype=torch.float64))
        white.append(centred @ (vectors * values.rsqrt()) @ vectors.T)
    (expected,) = torch.autograd.grad((torch.cat(white, 1) * cotangent).sum(), x64)
    assert torch.allclose(grad, expected, rtol=0, atol=1e-10)


def test_training_whitens_the_batch_and_eval_applies_the_running_statistics_sample_by_sample():
    gen = torch.Generator().manual_seed(4)
    layer = WhiteningLayer(4, "zca", eps=0.0, momentum=0.5).double()
    batches = [torch.randn(16, 4, generator=gen, dtype=torch.float64) * 2 + 1 for _ in range(2)]
    first = layer(batches[0])
    assert torch.allclose(first.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(first.T @ first / 16, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert not torch.allclose(copy.deepcopy(layer)(batches[0][:8]), first[:8])  # training: the batch's statistics
    layer(batches[1])
    mean = 0.25 * batches[0].mean(0) + 0.5 * batches[1].mean(0)  # running from 0 at momentum 0.5, two steps
    assert torch.allclose(layer.running_mean, mean, rtol=0, atol=1e-14)
    running = (layer.running_mean.clone(), layer.running_matrix.clone())
    layer.eval()
    out = layer(batches[0])
    assert torch.allclose(out, (batches[0] - running[0]) @ running[1][0], rtol=0, atol=1e-12)
    assert torch.allclose(layer(batches[0][:1]), out[:1])  # eval: each sample alone gives its row
    assert torch.equal(layer.running_mean, running[0]) and torch.equal(layer.running_matrix, running[1])


def test_autocast_leaves_the_layer_in_float32():
    """bf16 autocast on the CPU: the whitening runs in float32, as without autocast."""
    x = torch.randn(12, 8, generator=torch.Generator().manual_seed(5))
    plain, autocast = WhiteningLayer(8), WhiteningLayer(8)
    expected = plain(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = autocast(x)
    assert got.dtype == torch.float32 and torch.equal(got, expected)
    assert torch.equal(autocast.running_matrix, plain.running_matrix)


def crops(seed, n=8):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, 16, 16, generator=gen) for _ in range(2)], torch.zeros(n, dtype=torch.long)


@pytest.mark.parametrize("name", ["barlow_twins", "byol"])
def test_two_methods_step_with_the_layer_in_their_backbone(name):
    """The layer sits in the classifier's place of the timm backbone, so the method's every forward, its probe
    features and (BYOL) its EMA target's copy go through it; the target's copy keeps running statistics of its own."""
    torch.manual_seed(0)
    model = create_method(name, small_config(name), crop_sizes=(16, 16), global_batch_size=8, backbone=TINY)
    layer = whitening_layer(model.backbone)
    assert model.backbone.fc is layer and model.feature_dim == 96
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.backbone.parameters()]
    out = train_step(model, crops(0), optimizer, None, StepState(0, 2))
    assert torch.isfinite(out.total) and not torch.equal(layer.running_mean, torch.zeros(96))
    features = out.features[0]  # what the probe reads: this crop's whitened features, centred over the batch
    assert features.shape == (8, 96) and features.mean(0).abs().max() < 1e-5
    assert any(not torch.equal(b, p) for b, p in zip(before, model.backbone.parameters()))
    targets = [c for c in components(model) if isinstance(c, EMA)]
    if targets:
        target_layer = whitening_layer(targets[0].backbone)
        assert target_layer is not layer and not torch.equal(target_layer.running_mean, torch.zeros(96))
        assert torch.equal(target_layer.running_mean, layer.running_mean)  # step 0: the same weights and crops
        train_step(model, crops(1), optimizer, None, StepState(1, 2))
        assert not torch.equal(target_layer.running_mean, layer.running_mean)  # then its own (averaged) weights'


def write_checkpoint(path, *overrides):
    model = build_method(compose_run(["method=barlow_twins", "data.batch_size=8", "method.proj_hidden=[32]",
                                      "method.proj_out=16", "backbone.name=test_resnet", "backbone.small_stem=false",
                                      "backbone.whitening_layer=iternorm", *overrides]), num_classes=10, world_size=1)
    model.method.train()
    with torch.no_grad():
        for seed in range(2):  # running statistics away from their initial values
            model.method.backbone(torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(seed)))
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path, model.method.eval()


def test_the_running_statistics_reach_every_evaluation_and_the_export(tmp_path, capsys):
    """Resuming (the method's state dict), main_knn / zoo.health (load_method) and main_linear / transfer
    (load_backbone) rebuild the layer from the run config and restore its running statistics, so they read the
    eval-mode whitened features, as the official evaluation does; --to timm folds the layer into a Linear that
    loads strictly into plain timm and gives the same features; --to hf is refused in one line."""
    ckpt, trained = write_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    images = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = trained.backbone(images)
    layer = whitening_layer(trained.backbone)
    assert not torch.equal(layer.running_matrix, torch.eye(96)[None])
    resumed, _ = load_method(ckpt)
    backbone = load_backbone(read_checkpoint(ckpt)).eval()
    for restored in (whitening_layer(resumed.backbone), whitening_layer(backbone)):
        assert torch.equal(restored.running_mean, layer.running_mean)
        assert torch.equal(restored.running_matrix, layer.running_matrix)
    with torch.no_grad():
        assert torch.equal(resumed.backbone(images), expected) and torch.equal(backbone(images), expected)

    export_main(["--ckpt", str(ckpt), "--to", "timm", "--out", str(tmp_path / "export")])
    assert "note: the whitening layer: iternorm, folded into fc = Linear(96, 96)" in capsys.readouterr().out
    record = json.loads((tmp_path / "export" / "test_resnet-timm.json").read_text())
    assert "model.fc = torch.nn.Linear(96, 96)" in "\n".join(record["load"])
    import timm
    from safetensors.torch import load_file

    plain = timm.create_model("test_resnet", num_classes=0)
    plain.fc = torch.nn.Linear(96, 96)
    plain.load_state_dict(load_file(tmp_path / "export" / record["file"]), strict=True)
    with torch.no_grad():
        assert torch.allclose(plain.eval()(images), expected, rtol=0, atol=1e-5)
    with pytest.raises(SystemExit) as stopped:
        export_main(["--ckpt", str(ckpt), "--to", "hf", "--out", str(tmp_path / "hf")])
    errors = capsys.readouterr().err.splitlines()
    assert stopped.value.code == 2 and len(errors) == 1 and errors[0].startswith("error: ")
    assert "ends in a whitening layer (backbone.whitening_layer)" in errors[0] and "--to timm" in errors[0]


def test_batch_limits_and_bad_settings_are_one_line():
    with pytest.raises(ZooError, match=r"whitening_layer=zca cannot whiten 96 features per group from batches of 8"):
        create_method("barlow_twins", small_config("barlow_twins"), crop_sizes=(16, 16), global_batch_size=8,
                      backbone={**TINY, "whitening_layer": "zca"})
    zca = {**TINY, "whitening_layer": "zca", "whitening_groups": 16}  # 6 features per group: a batch of 8 serves
    create_method("barlow_twins", small_config("barlow_twins"), crop_sizes=(16, 16), global_batch_size=8, backbone=zca)
    for bad, line in (({"whitening_groups": 5}, "whitening_groups=5 does not divide the backbone's 96 features"),
                      ({"whitening_momentum": 0.0}, "whitening_momentum=0.0 must be in (0, 1]")):
        with pytest.raises(ZooError, match=line.replace("(", r"\(").replace(")", r"\)")):
            create_backbone(typed_config(BackboneConfig, {**TINY, **bad}), 16)
    with pytest.raises(Exception, match="Invalid value 'itrnorm', expected one of \\[none, iternorm, zca\\]"):
        typed_config(BackboneConfig, {"whitening_layer": "itrnorm"})
