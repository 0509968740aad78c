"""The default run (`python main_pretrain.py [method=<name>]`, no recipe) and the method classes' defaults.

A method class carries its official code's defaults; what the embedded default run changes for a method lives
in zoo/configs/embedded/<method>.yaml, which pretrain.yaml takes only when no recipe is selected.
tests/fixtures/default_run_snapshot.json holds the method and optimizer values the default run resolved to for
every method before the split (composed from the code of that time), so the split changed nothing it trains.
"""

import copy
import functools
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from default_run import compose_run
from omegaconf import OmegaConf

from zoo.config import NO_EMBEDDED_SETTINGS
from zoo.registry import create_method, method_names
from zoo.train.harness import Pretrainer

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = json.loads((REPO / "tests" / "fixtures" / "default_run_snapshot.json").read_text())
EMBEDDED = REPO / "zoo" / "configs" / "embedded"


def plain(node):
    """A config node as plain JSON values (an enum as its value), as the snapshot holds them."""
    return json.loads(json.dumps(OmegaConf.to_container(node, resolve=True), default=lambda value: value.value))


def trained_values(overrides):
    """The method's and optimizer's values the command resolves to."""
    values = _run_values(tuple(overrides))
    return copy.deepcopy({"method": values["method"], "optimizer": values["optimizer"]})


def run_values(overrides):
    """What an embedded file may move: the method's and optimizer's values, and the run's crops, schedule and length
    (EMP-SSL's file takes fewer patches and epochs)."""
    return copy.deepcopy(_run_values(tuple(overrides)))


@functools.cache  # several tests compose the same command
def _run_values(overrides):
    cfg = compose_run(overrides)
    method = plain(cfg.method)
    assert method.pop("regularizer") is None  # a field added since: no auxiliary regulariser unless one is selected
    return {"method": method, "optimizer": plain(cfg.optimizer), "views": plain(cfg.data.views),
            "scheduler": plain(cfg.scheduler), "trainer": plain(cfg.trainer)}


# Default runs changed on purpose since the snapshot, and why.
CHANGED_SINCE = {
    "zero_cl": "its class defaults became Sherrylone/Zero-CL's own (they were winci-ai/CW-RGP's re-implementation)",
    "visreg": "its loss and class defaults became the paper's (population sigma, eps on sg(sigma), lambd 0.9, 2048 slices, "
              "a 256-d GELU projector, lr 9e-4), as cited by number in lightly-ai/lightly; they were guesses from the abstract",
    "t_regs": "its default run takes beta 10 / 512 (it collapsed with the class's 10: zoo/configs/embedded/t_regs.yaml)",
    "mix_bt": "zoo/configs/embedded/mix_bt.yaml: a tenth of the official Adam lr and a quarter of its mixup weight (collapsed)",
}


@pytest.mark.parametrize("method", sorted(set(SNAPSHOT) - set(CHANGED_SINCE)))
def test_the_default_run_resolves_as_before_the_split(method):
    overrides = [] if method == "(default)" else [f"method={method}"]
    assert trained_values(overrides) == SNAPSHOT[method]


def test_every_method_of_the_snapshot_is_still_registered():
    assert set(SNAPSHOT) - {"(default)"} <= set(method_names())


def digits_m_benchmark():
    spec = importlib.util.spec_from_file_location("digits_m_all_methods", REPO / "benchmarks" / "digits_m_all_methods.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", ["swav", "vicreg"])
def test_the_all_methods_benchmark_trains_with_the_default_runs_values(method, tmp_path):
    """benchmarks/digits_m_all_methods.py's pretraining command takes the embedded settings, as before the split."""
    script, *arguments = digits_m_benchmark().pretrain_command(method, 0, tmp_path / "run", "digits_m", [])
    assert script == "main_pretrain.py"
    assert trained_values(arguments) == SNAPSHOT[method]


def test_every_embedded_file_belongs_to_a_registered_method_and_changes_its_defaults():
    """The group is optional (a method without a file trains with its class defaults), so a misspelt file name
    would be skipped without a word: each names a registered method and moves at least one value off it."""
    files = sorted(EMBEDDED.glob("*.yaml"))
    assert files and {path.stem for path in files} <= set(method_names())
    for path in files:
        recipe_free = run_values([f"method={path.stem}"])
        official = run_values([f"method={path.stem}", f"embedded={NO_EMBEDDED_SETTINGS}"])
        assert recipe_free != official, path.name


@pytest.mark.parametrize(("recipe", "method"), [("cifar10/swav", "swav"), ("imagenet/mocov2", "mocov2"),
                                                ("cifar10/vicreg", "vicreg")])
def test_a_recipe_takes_no_embedded_settings(recipe, method):
    cfg = compose_run([f"experiment={recipe}"], hydra=True)
    assert cfg.hydra.runtime.choices.method == method
    assert cfg.hydra.runtime.choices.embedded == NO_EMBEDDED_SETTINGS
    assert compose_run([], hydra=True).hydra.runtime.choices.embedded == "intl"
    # and a method named on the command line beside a recipe does not bring them back
    assert compose_run([f"experiment={recipe}", f"method={method}"], hydra=True).hydra.runtime.choices.embedded == \
        NO_EMBEDDED_SETTINGS


# ---- the official defaults ----------------------------------------------------------------------
# Each method's defaults as its official code sets them, read from the files named (the method's own
# repository; solo-learn's where the method is solo-learn's variant): (source, method config, optimizer).
FB_LARS = {"name": "lars_fb", "lr": 0.2, "weight_decay": 1e-6, "lars_eta": 0.001, "lars_clip": False,
           "exclude_bias_and_norm": True}
OFFICIAL = {
    "barlow_twins": ("facebookresearch/barlowtwins main.py",
                     {"proj_hidden": [8192, 8192], "proj_out": 8192, "proj_hidden_bias": False, "proj_last_bias": False,
                      "lambd": 0.0051, "scale_loss": 1.0},
                     {**FB_LARS, "bias_lr_factor": 0.024}),
    "vicreg": ("facebookresearch/vicreg main_vicreg.py",
               {"proj_hidden": [8192, 8192], "proj_out": 8192, "proj_hidden_bias": True, "proj_last_bias": False,
                "sim": 25.0, "var": 25.0, "cov": 1.0},
               FB_LARS),
    "byol": ("google-deepmind/deepmind-research byol/configs/byol.py (1000 epochs), utils/networks.py",
             {"proj_hidden": [4096], "proj_out": 256, "proj_last_bias": False, "pred_hidden": 4096,
              "momentum_base": 0.996, "momentum_final": 1.0},
             {**FB_LARS, "weight_decay": 1.5e-6}),
    "simclr": ("google-research/simclr run.py, model_util.py, README (ImageNet command)",
               {"proj_hidden": [2048, 2048], "proj_out": 128, "proj_hidden_bn": True, "temperature": 0.1,
                "joint_backbone": True, "joint_projector": True},
               {"name": "lars_google", "lr": 0.3, "weight_decay": 1e-4, "lars_eta": 0.001, "lars_clip": False,
                "exclude_bias_and_norm": True}),
    "simsiam": ("facebookresearch/simsiam main_simsiam.py, simsiam/builder.py, README (--fix-pred-lr)",
                {"proj_hidden": [2048, 2048], "proj_out": 2048, "proj_hidden_bias": False, "proj_last_bn": True,
                 "pred_hidden": 512, "pred_fixed_lr": True},
                {"name": "sgd", "lr": 0.05, "weight_decay": 1e-4, "momentum": 0.9}),
    "swav": ("facebookresearch/swav main_swav.py (queue: the README's runs)",
             {"proj_hidden": [2048], "proj_out": 128, "num_prototypes": 3000, "temperature": 0.1, "sk_epsilon": 0.05,
              "sk_iters": 3, "queue_size": 3840, "epoch_queue_starts": 15, "freeze_epochs": 0, "freeze_steps": 313,
              "joint_forward": True},
             {"name": "lars", "lr": 0.3, "weight_decay": 1e-6, "lars_eta": 0.001, "lars_clip": False,
              "exclude_bias_and_norm": False}),
    "dino": ("facebookresearch/dino main_dino.py, README (ResNet-50 optimizer)",
             {"proj_hidden": [2048, 2048], "proj_out": 256, "proj_hidden_bn": False, "num_prototypes": 65536,
              "norm_last_layer": True, "student_temperature": 0.1, "teacher_temperature": 0.04,
              "warmup_teacher_temperature": 0.04, "warmup_teacher_temperature_epochs": 0, "center_momentum": 0.9,
              "momentum_base": 0.996, "momentum_final": 1.0, "freeze_epochs": 1},
             {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4, "exclude_bias_and_norm": True}),
    "simdino": ("RobinWu218/SimDINO simdino/main_dino.py (argument defaults, MCRLoss), vision_transformer.py DINOHead",
                {"proj_hidden": [2048, 2048], "proj_out": 256, "proj_hidden_bn": False, "eps": 0.5, "coeff": 1.0,
                 "expa_type": 1, "reduce_cov": False, "momentum_base": 0.996, "momentum_final": 1.0},
                {"name": "adamw", "lr": 5e-4, "weight_decay": 0.04, "exclude_bias_and_norm": True}),
    "frossl": ("OFSkean/FroSSL scripts/pretrain/cifar/frossl.yaml",
               {"proj_hidden": [2048, 2048], "proj_out": 1024, "invariance_weight": 1.0},
               {"name": "lars", "lr": 0.3, "weight_decay": 1e-4, "lars_eta": 0.02, "lars_clip": True,
                "exclude_bias_and_norm": True}),
    "mocov2": ("facebookresearch/moco main_moco.py --mlp --moco-t 0.2, moco/builder.py",
               {"proj_hidden": [2048], "proj_out": 128, "proj_hidden_bn": False, "temperature": 0.2, "queue_size": 65536,
                "momentum_base": 0.999, "momentum_final": 0.999},
               {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4}),
    "mocov2plus": ("vturrisi/solo-learn scripts/pretrain/cifar/mocov2plus.yaml",
                   {"proj_hidden": [2048], "proj_out": 256, "proj_hidden_bn": False, "temperature": 0.2,
                    "queue_size": 32768, "momentum_base": 0.99, "momentum_final": 0.999},
                   {"name": "sgd", "lr": 0.3, "weight_decay": 1e-4, "probe_lr": 0.3}),
    "mix_bt": ("wgcban/mix-bt main.py, model.py, scripts-pretrain-resnet18/cifar10.sh",
               {"proj_hidden": [512], "proj_out": 1024, "lambd": 0.0078125, "mix_weight": 4.0, "normalize": True},
               {"name": "adam", "lr": 0.01, "scale_lr": True, "weight_decay": 1e-6}),
    "zero_cl": ("Sherrylone/Zero-CL ImageNet-100/main.py (its --mode fea default)",
                {"proj_hidden": [8192, 8192], "proj_out": 8192, "proj_hidden_bias": False, "proj_last_bias": False, "mode": "fea",
                 "whitening": True, "std_ddof": 1, "std_eps": 1e-4, "var_eps": 0.0, "cov_ddof": 0, "eps": 0.0, "ridge": 0.01,
                 "per_device_norm": True},
                {"name": "lars_fb", "lr": 0.3, "weight_decay": 1e-6, "lars_eta": 0.02, "lars_clip": False,
                 "exclude_bias_and_norm": True, "bias_lr_factor": pytest.approx(0.0048 / 0.3)}),
    # No authors' code: the paper's beta, rho and projector as lightly-ai/lightly quotes them (lightly/loss/tico_loss.py
    # TiCoLoss, lightly/models/modules/heads.py TiCoProjectionHead), the rest lightly's benchmark.
    "tico": ("lightly-ai/lightly lightly/loss/tico_loss.py, heads.py TiCoProjectionHead, benchmarks/imagenet/resnet50/tico.py",
             {"proj_hidden": [4096], "proj_out": 256, "proj_hidden_bias": False, "beta": 0.9, "rho": 8.0,
              "batch_cov_grad": False, "momentum_base": 0.99, "momentum_final": 1.0},
             {"name": "lars", "lr": 0.2, "weight_decay": 1.5e-6, "lars_eta": 0.001, "lars_clip": False,
              "exclude_bias_and_norm": True}),
    "wmse": ("htdt/self-supervised cfg.py and README (CIFAR)",
             {"proj_hidden": [1024], "proj_out": 64, "w_size": 128, "w_iter": 1},
             {"name": "adam", "lr": 3e-3, "scale_lr": False, "weight_decay": 1e-6}),
}


@pytest.mark.parametrize("method", sorted(OFFICIAL))
def test_create_method_builds_the_official_defaults(method):
    """What create_method(name) trains with, as the model holds it: its config, its optimizer and the widths of
    the projector it built (on the meta device: the official widths hold ~10^8 parameters)."""
    _, config, optimizer = OFFICIAL[method]
    with torch.device("meta"):
        model = create_method(method, crop_sizes=(16, 16), global_batch_size=256)
        harness = Pretrainer(model, num_classes=10)
    assert {key: model.mcfg[key] for key in config} == config
    assert {key: harness.optimizer_cfg[key] for key in optimizer} == optimizer
    widths = [layer.out_features for layer in model.projector.modules() if isinstance(layer, torch.nn.Linear)]
    assert widths[: len(config["proj_hidden"]) + 1] == [*config["proj_hidden"], config["proj_out"]]
