"""python -m zoo.export: the backbone of a zoo checkpoint loads strictly into timm and torchvision
and gives the zoo backbone's features; the detectron2 pickle is downstream/detection's; a checkpoint
or backbone the target cannot take is one line."""

import hashlib
import json
import pickle
import shutil

import numpy as np
import pytest
import timm
import torch
import torchvision
from default_run import compose_run
from detection_helpers import detectron2_match, detectron2_r50_c4_pretrained_keys
from safetensors.torch import load_file

from downstream.detection import convert
from zoo.build import build_method
from zoo.catalog import dataset_info
from zoo.checkpoint import read_checkpoint
from zoo.eval.common import load_backbone
from zoo.export import main as export_main

# name -> (run config overrides, input size of the feature check). The digits default (16 px crops)
# gives ResNets the small-image stem; small_stem=false keeps timm's and torchvision's own stem.
BACKBONES = {
    "resnet18": (["backbone.name=resnet18", "backbone.small_stem=false"], 32),
    "resnet50": (["backbone.name=resnet50", "backbone.small_stem=false"], 64),
    "resnet18_small_stem": (["backbone.name=resnet18", "backbone.small_stem_padding=0"], 16),
    "resnet18d": (["backbone.name=resnet18d", "backbone.small_stem=false"], 32),  # timm only
    "efficientnet_b0": (["backbone.name=efficientnet_b0"], 32),  # both libraries, different layouts
}


def write_zoo_checkpoint(path, overrides):
    """A pretraining checkpoint as Lightning writes it (the module's state_dict and hyper-parameters,
    the run config among them), from the method training builds; BN statistics and affine weights
    drawn at random so that the feature check sees them."""
    model = build_method(compose_run(["data.batch_size=8", "method.proj_hidden=[32]", "method.proj_out=16", *overrides]),
                         num_classes=10, world_size=1)
    generator = torch.Generator().manual_seed(0)
    for module in model.method.backbone.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.2, 0.2), (module.running_var, 0.5, 1.5),
                                      (module.weight.data, 0.5, 1.5), (module.bias.data, -0.2, 0.2)):
                tensor.copy_(torch.empty(tensor.shape).uniform_(low, high, generator=generator))
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    made = {}

    def checkpoint(name):
        if name not in made:
            made[name] = write_zoo_checkpoint(root / name / "checkpoints" / "last.ckpt", BACKBONES[name][0])
        return made[name]

    yield checkpoint
    shutil.rmtree(root, ignore_errors=True)


def export(ckpt, target, out, capsys):
    export_main(["--ckpt", str(ckpt), "--to", target, "--out", str(out)])
    return capsys.readouterr().out


def zoo_features(ckpt, size):
    torch.manual_seed(1)
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        return images, load_backbone(read_checkpoint(ckpt)).eval()(images)


def built_from_the_recorded_lines(record, out, monkeypatch):
    """The model the JSON's `load` lines build and load (strict=True among them), run as a user would."""
    monkeypatch.chdir(out)
    namespace = {}
    exec("\n".join(record["load"]), namespace)  # noqa: S102 (the export's own instructions are what is tested)
    return namespace["model"].eval()


@pytest.mark.parametrize("target", ["timm", "torchvision"])
@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_export_loads_strictly_and_gives_the_zoo_features(name, target, checkpoints, tmp_path, capsys, monkeypatch):
    ckpt = checkpoints(name)
    printed = export(ckpt, target, tmp_path, capsys)
    weights_path = tmp_path / f"{name}-{target}.safetensors"
    record = json.loads((tmp_path / f"{name}-{target}.json").read_text())
    assert f"wrote {weights_path}" in printed and "note:" not in printed  # a standard stem needs no change

    if target == "timm":
        model = timm.create_model(name, num_classes=0)
    else:
        model = getattr(torchvision.models, name)(weights=None)
        model.fc = torch.nn.Identity()  # the backbone has no classifier
    model.load_state_dict(load_file(weights_path), strict=True)
    images, expected = zoo_features(ckpt, BACKBONES[name][1])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(images), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(built_from_the_recorded_lines(record, tmp_path, monkeypatch)(images), expected,
                                   atol=1e-5, rtol=1e-5)

    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    assert record["sha256"] == digest and record["file"] == weights_path.name
    assert (tmp_path / f"{weights_path.name}.sha256").read_text() == f"{digest}  {weights_path.name}\n"
    assert record["stem"] == "standard" and record["stem_changes"] == [] and record["tensors"] == len(model.state_dict())
    trained = record["trained"]
    assert record["feature_dim"] == expected.shape[1] and record["input"]["mean"] == list(dataset_info(trained["dataset"]).mean)
    assert trained["method"]["name"] == "intl" and trained["dataset"] == "digits_m" and trained["global_batch_size"] == 8
    assert trained["checkpoint"] == str(ckpt.resolve())


@pytest.mark.parametrize("target", ["timm", "torchvision"])
def test_a_small_stem_backbone_says_which_stem_it_needs(target, checkpoints, tmp_path, capsys, monkeypatch):
    ckpt = checkpoints("resnet18_small_stem")
    printed = export(ckpt, target, tmp_path, capsys)
    conv1 = "model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), bias=False)"  # padding 0: the repr omits it
    assert f"note: the backbone has the small-image stem; set {conv1}; model.maxpool = torch.nn.Identity()" in printed
    record = json.loads((tmp_path / f"resnet18-{target}.json").read_text())
    assert record["stem"] == "small-image" and record["stem_changes"] == [conv1, "model.maxpool = torch.nn.Identity()"]
    images, expected = zoo_features(ckpt, BACKBONES["resnet18_small_stem"][1])
    with torch.no_grad():
        torch.testing.assert_close(built_from_the_recorded_lines(record, tmp_path, monkeypatch)(images), expected,
                                   atol=1e-5, rtol=1e-5)


def test_detectron2_pickle_is_downstream_detections_and_fills_r50_c4(checkpoints, tmp_path, capsys):
    ckpt = checkpoints("resnet50")
    printed = export(ckpt, "detectron2", tmp_path, capsys)
    assert "MODEL.RESNETS.DEPTH 50" in printed and "MODEL.RESNETS.STRIDE_IN_1X1 False" in printed
    exported = pickle.loads((tmp_path / "resnet50-detectron2.pkl").read_bytes())
    convert.main([str(ckpt), "--detectron2", str(tmp_path / "convert.pkl")])
    converted = pickle.loads((tmp_path / "convert.pkl").read_bytes())
    assert {k: v for k, v in exported.items() if k != "model"} == {k: v for k, v in converted.items() if k != "model"}
    assert exported["model"].keys() == converted["model"].keys()
    for key, value in converted["model"].items():
        np.testing.assert_array_equal(exported["model"][key], value, err_msg=key)
    matches = detectron2_match(detectron2_r50_c4_pretrained_keys(), exported["model"].keys())
    assert sorted(matches) == sorted(detectron2_r50_c4_pretrained_keys())
    assert sorted(matches.values()) == sorted(exported["model"])  # every array used once
    backbone = read_checkpoint(ckpt)["backbone"]
    assert exported["model"]["res2.0.shortcut.norm.running_var"].shape == tuple(backbone["layer1.0.downsample.1.running_var"].shape)
    np.testing.assert_array_equal(exported["model"]["stem.conv1.weight"], backbone["conv1.weight"].numpy())


@pytest.mark.parametrize(
    "name, target, expected",
    [
        (None, "timm", "is not a zoo pretraining checkpoint"),
        ("resnet18d", "torchvision", "torchvision has no classification model 'resnet18d'"),
        ("resnet18d", "detectron2", "backbone is 'resnet18d'; detectron2 builds only resnet18, resnet34, resnet50"),
        ("efficientnet_b0", "torchvision", "backbone keys do not match torchvision's efficientnet_b0: missing features"),
        ("resnet18_small_stem", "detectron2", "resnet18 has the small-image stem (model.conv1 = torch.nn.Conv2d(3, 64"),
        ("resnet18_small_stem", "hf", "resnet18 has the small-image stem (model.conv1 = torch.nn.Conv2d(3, 64"),
    ],
)
def test_what_the_target_cannot_take_is_one_line(name, target, expected, checkpoints, tmp_path, capsys):
    if name is None:
        ckpt = tmp_path / "plain.pt"
        torch.save({"weights": torch.zeros(3)}, ckpt)
    else:
        ckpt = checkpoints(name)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        export(ckpt, target, out, capsys)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert name is None or "--to timm" in lines[0]  # the export that does work
    assert not out.exists()


# ---- --to hf: timm's Hugging Face Hub layout -----------------------------------------------------------
@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """A run of the ImageNet-100 Barlow Twins recipe (ResNet-18, 32 px) as main_pretrain.py leaves it:
    the checkpoint, config.yaml and a summary.json with its online evaluation and provenance."""
    from omegaconf import OmegaConf

    run = tmp_path_factory.mktemp("hf") / "run"
    ckpt = write_zoo_checkpoint(run / "checkpoints" / "last.ckpt", ["experiment=imagenet-100/barlow_twins", "backbone.name=resnet18",
                                                                  "data.image_size=32", "data.global_batch_size=null"])
    config = read_checkpoint(ckpt)["config"]
    (run / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    provenance = {"wall_seconds": 60.0, "zoo": {"commit": "abc123", "dirty": False}, "training": {"images_per_second": 12.5}}
    summary = {"method": "barlow_twins", "dataset": "imagenet100", "epochs": 400, "global_batch_size": 8, "knn_top1": 0.5,
               "linear_top1": 0.75, "effective_rank": 3.0, "checkpoint": str(ckpt), "provenance": provenance}
    (run / "summary.json").write_text(json.dumps(summary))
    return ckpt


def test_hf_export_loads_in_timm_from_the_folder_strictly_with_its_card(recipe_run, tmp_path, capsys):
    out = tmp_path / "hub"
    printed = export(recipe_run, "hf", out, capsys)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert f"timm.create_model('local-dir:{out.resolve()}', pretrained=True)" in printed
    config = json.loads((out / "config.json").read_text())
    cfg = config["pretrained_cfg"]
    assert config["architecture"] == "resnet18" and config["num_features"] == 512 and config["num_classes"] == 0
    assert cfg["input_size"] == [3, 32, 32] and cfg["mean"] == [0.485, 0.456, 0.406] and cfg["std"] == [0.229, 0.224, 0.225]
    assert cfg["crop_pct"] == pytest.approx(224 / 256) and cfg["interpolation"] == "bilinear"
    assert cfg["tag"] == "barlow_twins_imagenet100" and "license" not in cfg and "paper_ids" not in cfg  # not timm's weights

    # offline, from the folder: timm builds the architecture from config.json and loads the weights strictly
    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    plain = timm.create_model("resnet18", num_classes=0)
    plain.load_state_dict(load_file(out / "model.safetensors"), strict=True)
    images, expected = zoo_features(recipe_run, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(plain.eval()(images), expected, atol=1e-5, rtol=1e-5)
    data = timm.data.resolve_data_config({}, model=model)
    assert data["input_size"] == (3, 32, 32) and tuple(data["mean"]) == (0.485, 0.456, 0.406)

    card = (out / "README.md").read_text()
    assert "library_name: timm" in card and "license: other" in card
    assert "- **Recipe:** imagenet-100/barlow_twins: Barlow Twins on ImageNet-100" in card
    assert "- **Method:** barlow_twins" in card and "- **Dataset:** imagenet100" in card and "- **Epochs:** 400 of 400" in card
    # the run's online evaluation beside the recipe's published number, and where the weights came from
    assert "| online (probe, 20-nn) | 50.00 | 75.00 | – | 80.38 | -5.38 | solo-learn README |" in card
    assert '"commit": "abc123"' in card and '"images_per_second": 12.5' in card


def test_hf_push_without_a_token_or_a_network_is_one_line(recipe_run, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored login
    out = tmp_path / "hub"
    with pytest.raises(SystemExit):
        export_main(["--ckpt", str(recipe_run), "--to", "hf", "--out", str(out), "--push", "someone/resnet18-bt"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --push someone/resnet18-bt: not logged in") and "HF_TOKEN" in err[0]
    assert not out.exists()  # refused before anything was written

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: no network
    with pytest.raises(SystemExit):
        export_main(["--ckpt", str(recipe_run), "--to", "hf", "--out", str(out), "--push", "someone/resnet18-bt"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --push someone/resnet18-bt: ") and f"the folder {out} is written" in err[0]
    assert (out / "model.safetensors").is_file()
