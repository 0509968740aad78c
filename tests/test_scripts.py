"""The recipe scripts under scripts/: each resolves to its paper recipe, value for value; the data
check and the device split of scripts/_common.sh; the ImageNet INTL recipe and its linear probe end
to end on a tiny image folder.

Resolving a script: it runs under bash with PYTHON pointing at a shim that records the command
line, and the recorded overrides are composed here, as `--cfg job` would (one process for every
script instead of one Python start-up each); test_cfg_job_prints_the_resolved_config runs the
real thing.
"""

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from zoo.config import register_configs
from zoo.linear import build_config
from zoo.registry import method_names

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DATASETS = ["cifar10", "cifar100", "imagenet-100", "imagenet"]
METHODS = ["intl", "barlow_twins", "vicreg", "wmse", "cwrgp", "simsiam"]
ALL_SCRIPTS = sorted(str(p.relative_to(SCRIPTS))[:-3] for p in SCRIPTS.glob("*/*/*.sh"))

# ---- the recipes (../shared/reference/recipes.md), written out independently of the scripts ----


def pretrain(method, dataset, batch, optimizer, lr, wd, epochs, projector, views, **extra):
    """Key values of a pretraining recipe: global batch, optimiser, epochs, projector widths (hidden + out), views."""
    extra = {(k if "." in k else f"method.{k}"): v for k, v in extra.items()}
    return {"method.name": method, "data.name": dataset, "batch": batch, "optimizer.name": optimizer, "optimizer.lr": lr,
            "optimizer.weight_decay": wd, "trainer.max_epochs": epochs, "projector": projector, "views": views, **extra}


def small(method, dataset, batch, lr, epochs, projector, views, **extra):
    """The W-MSE / CW-RGP small-data recipe: Adam without batch scaling, 500-step warmup, x0.2 at E-50 and E-25."""
    return pretrain(method, dataset, batch, "adam", lr, 1e-6, epochs, projector, views, **{
        "optimizer.scale_lr": False, "scheduler.name": "step", "scheduler.warmup_steps": 500,
        "scheduler.milestones": [epochs - 50, epochs - 25], "scheduler.gamma": 0.2, **extra})


SOLO_LARS = {"optimizer.lars_eta": 0.02, "optimizer.lars_clip": True, "optimizer.exclude_bias_and_norm": True,
             "scheduler.warmup_epochs": 10, "scheduler.final_factor": 0.0}
FB_LARS = {"optimizer.lars_eta": 0.001, "optimizer.lars_clip": False, "optimizer.exclude_bias_and_norm": True,
           "scheduler.warmup_epochs": 10, "scheduler.final_factor": 0.001}
INTL_SCHEDULE = {"scheduler.name": "cosine", "scheduler.warmup_epochs": 2, "scheduler.final_factor": 0.001}
EPOCH_COSINE = {"scheduler.interval": "epoch", "scheduler.final_factor": 0.0}
WMSE_STEM = {"backbone.small_stem": "True", "backbone.small_stem_padding": 1, "backbone.zero_init_residual": False}
CW_STEM = {**WMSE_STEM, "backbone.zero_init_residual": True}
R50 = {"backbone.name": "resnet50", "backbone.zero_init_residual": True}
CIFAR_WMSE_STATS = {"cifar10": [0.2023, 0.1994, 0.2010], "cifar100": [0.2675, 0.2565, 0.2761]}

PRETRAIN = {}
for ds in ("cifar10", "cifar100"):
    stem = {"backbone.small_stem_padding": 2, "backbone.zero_init_residual": False}
    PRETRAIN |= {
        f"{ds}/intl": pretrain("intl", ds, 256, "sgd", 0.3, 1e-4, 1000, [2048, 2048, 2048], 2, trade_off=0.05, iters=4,
                               proj_hidden_bias=False, **{"optimizer.exclude_bias_and_norm": False}, **INTL_SCHEDULE, **stem),
        f"{ds}/barlow_twins": pretrain("barlow_twins", ds, 256, "lars", 0.3, 1e-4, 1000, [2048, 2048, 2048], 2,
                                       lambd=0.0051, scale_loss=0.1, **SOLO_LARS, **stem),
        f"{ds}/vicreg": pretrain("vicreg", ds, 256, "lars", 0.3, 1e-4, 1000, [2048, 2048, 2048], 2,
                                 sim=25.0, var=50.0, cov=1.0, **SOLO_LARS, **stem),  # solo-learn's summed variance terms
        f"{ds}/simsiam": pretrain("simsiam", ds, 256, "sgd", 0.5, 1e-5, 1000, [2048, 2048, 2048], 2, pred_hidden=512,
                                  pred_fixed_lr=True, **{"scheduler.warmup_epochs": 10}, **stem),
        f"{ds}/wmse": small("wmse", ds, 256, 3e-3, 1000, [1024, 64], 4, w_size=128, w_iter=1,
                            **{"data.std": CIFAR_WMSE_STATS[ds]}, **WMSE_STEM),
        f"{ds}/wmse_2views": small("wmse", ds, 512, 3e-3, 1000, [1024, 64], 2, w_size=128, w_iter=1, **WMSE_STEM),
        f"{ds}/cwrgp": small("cwrgp", ds, 256, 3e-3, 1000, [1024, 512], 4, w_size=64, groups=4, w_iter=1, **CW_STEM),
    }
PRETRAIN["cifar10/cwrgp_2views"] = small("cwrgp", "cifar10", 256, 3e-3, 1000, [1024, 512], 2, w_size=64, groups=4, w_iter=4, **CW_STEM)
PRETRAIN["cifar100/cwrgp_2views"] = small("cwrgp", "cifar100", 512, 3e-3, 1000, [1024, 512], 2, w_size=64, groups=4, w_iter=1, **CW_STEM)
for ds, name, epochs in (("stl10", "stl10", 2000), ("tiny-imagenet", "folder", 1000)):
    tiny = ds == "tiny-imagenet"
    size = {"data.image_size": 64, "data.eval_resize_ratio": 1.0} if tiny else {}
    cw_head = [2048, 1024] if tiny else [1024, 512]
    cw = {"w_size": 128, "groups": 2} if tiny else {"w_size": 64, "groups": 4}
    PRETRAIN |= {
        f"{ds}/wmse": small("wmse", name, 256, 2e-3, epochs, [1024, 128], 4, w_size=256, w_iter=1, **size, **WMSE_STEM),
        f"{ds}/wmse_2views": small("wmse", name, 512, 2e-3, epochs, [1024, 128], 2, w_size=256, w_iter=4, **size, **WMSE_STEM),
        f"{ds}/cwrgp": small("cwrgp", name, 256, 2e-3, epochs, cw_head, 4, w_iter=1, **cw, **size, **CW_STEM),
        f"{ds}/cwrgp_2views": small("cwrgp", name, 512, 2e-3, epochs, cw_head, 2, w_iter=1, **cw, **size, **CW_STEM),
    }
IN100_STEM = {"backbone.name": "resnet18", "backbone.small_stem": "False"}  # a str field: Hydra's bool, as text
PRETRAIN |= {
    "imagenet-100/intl": pretrain("intl", "imagenet100", 128, "sgd", 0.5, 2.5e-5, 400, [4096, 4096, 8192], 2, trade_off=0.04,
                                  **{"optimizer.exclude_bias_and_norm": True, "trainer.precision": "16-mixed"}, **INTL_SCHEDULE,
                                  **IN100_STEM),
    "imagenet-100/barlow_twins": pretrain("barlow_twins", "imagenet100", 256, "lars", 0.3, 1e-4, 400, [2048, 2048, 2048], 2,
                                          scale_loss=0.1, **SOLO_LARS, **IN100_STEM),
    "imagenet-100/vicreg": pretrain("vicreg", "imagenet100", 256, "lars", 0.3, 1e-4, 400, [2048, 2048, 2048], 2, var=50.0,
                                    **SOLO_LARS, **IN100_STEM),
    "imagenet-100/simsiam": pretrain("simsiam", "imagenet100", 256, "sgd", 0.5, 1e-5, 400, [2048, 2048, 2048], 2,
                                     **IN100_STEM),
    "imagenet-100/wmse": small("wmse", "imagenet100", 256, 2e-3, 240, [1024, 128], 4, w_size=256, w_iter=1, **IN100_STEM),
    "imagenet-100/wmse_2views": small("wmse", "imagenet100", 512, 2e-3, 240, [1024, 128], 2, w_size=256, **IN100_STEM),
    "imagenet-100/cwrgp": small("cwrgp", "imagenet100", 256, 2e-3, 240, [1024, 512], 4, w_size=64, groups=4, **IN100_STEM,
                                **{"backbone.zero_init_residual": True}),
    "imagenet-100/cwrgp_2views": small("cwrgp", "imagenet100", 512, 2e-3, 240, [1024, 512], 2, w_size=64, groups=4, **IN100_STEM,
                                       **{"backbone.zero_init_residual": True}),
    "imagenet/intl": pretrain("intl", "imagenet", 256, "sgd", 0.3, 1e-5, 800, [8192, 8192, 8192], 2, trade_off=0.05,
                              **{"optimizer.exclude_bias_and_norm": True}, **INTL_SCHEDULE, **R50),
    "imagenet/barlow_twins": pretrain("barlow_twins", "imagenet", 2048, "lars", 0.2, 1e-6, 1000, [8192, 8192, 8192], 2,
                                      scale_loss=1.0, proj_hidden_bias=False, proj_last_bias=False, **FB_LARS, **R50),
    "imagenet/barlow_twins_ep100": pretrain("barlow_twins", "imagenet", 256, "lars", 0.8, 1.5e-6, 100, [4096, 4096, 4096], 2,
                                            scale_loss=0.048, **{**FB_LARS, "scheduler.final_factor": 0.0}),
    "imagenet/vicreg": pretrain("vicreg", "imagenet", 2048, "lars", 0.2, 1e-6, 1000, [8192, 8192, 8192], 2, var=25.0,
                                proj_last_bias=False, **FB_LARS, **R50),
    "imagenet/simsiam": pretrain("simsiam", "imagenet", 512, "sgd", 0.05, 1e-4, 100, [2048, 2048, 2048], 2,
                                 **{"scheduler.warmup_epochs": 0}, **EPOCH_COSINE, **R50),
    "imagenet/cwrgp": pretrain("cwrgp", "imagenet", 512, "sgd", 0.05, 1e-4, 100, [2048, 2048, 1024], 4, w_size=128, groups=2,
                               cov_w=0.005, cov_stop=50, **{"scheduler.warmup_steps": 500}, **EPOCH_COSINE, **R50),
    "imagenet/cwrgp_ep200": pretrain("cwrgp", "imagenet", 512, "sgd", 0.05, 1e-4, 200, [2048, 2048, 1024], 4, w_size=128,
                                     groups=2, cov_w=0.01, cov_stop=100, **EPOCH_COSINE, **R50),
    "imagenet/wmse": pretrain("wmse", "imagenet", 512, "sgd", 0.05, 1e-4, 100, [2048, 2048, 128], 4, w_size=256,
                              **EPOCH_COSINE, **R50),
}
for epochs, lr in ((100, 0.5), (200, 0.4), (400, 0.4), (800, 0.3)):
    PRETRAIN[f"imagenet/intl_m_ep{epochs}"] = pretrain(
        "intl_m", "imagenet", 256, "sgd", lr, 1e-5, epochs, [8192, 8192, 8192], 6, trade_off=0.05, momentum_base=0.996,
        momentum_final=1.0, **INTL_SCHEDULE, **R50)


def probe(name, protocol, epochs, batch, optimizer, lr, wd, schedule, **extra):
    return {"linear.name": name, "linear.protocol": protocol, "linear.epochs": epochs, "linear.batch_size": batch,
            "linear.optimizer": optimizer, "linear.lr": lr, "linear.weight_decay": wd, "linear.schedule": schedule,
            **{f"linear.{k}": v for k, v in extra.items()}}


LP_SMALL = probe("LP-SMALL", "precomputed", 500, 1000, "adam", 1e-2, 5e-6, "exponential", final_lr=1e-6, knn_k=5)
LINEAR = {f"{ds}/{m}": LP_SMALL for ds in ("cifar10", "cifar100") for m in METHODS}
LINEAR |= {f"{ds}/{m}": LP_SMALL for ds in ("stl10", "tiny-imagenet", "imagenet-100") for m in ("wmse", "cwrgp")}
LINEAR |= {
    "imagenet-100/intl": probe("LP-INTL", "frozen", 100, 256, "sgd", 0.2, 0, "step", milestones=[60, 80], knn_k=5),
    "imagenet-100/barlow_twins": probe("LP-SOLO", "frozen", 100, 256, "sgd", 0.1, 0, "step", milestones=[60, 80]),
    "imagenet-100/vicreg": probe("LP-SOLO", "frozen", 100, 256, "sgd", 0.3, 0, "step", milestones=[60, 80]),
    "imagenet-100/simsiam": probe("LP-SOLO", "frozen", 100, 256, "sgd", 30.0, 0, "step", milestones=[60, 80]),
    "imagenet/intl": probe("LP-INTL", "frozen", 100, 256, "sgd", 0.2, 0, "step", milestones=[60, 80]),
    "imagenet/intl_m": probe("LP-INTL", "frozen", 100, 256, "sgd", 0.4, 0, "step", milestones=[60, 80]),
    "imagenet/barlow_twins": probe("LP-FB-BT", "frozen", 100, 256, "sgd", 0.3, 1e-6, "cosine"),
    "imagenet/barlow_twins_ep100": probe("LP-SOLO", "frozen", 100, 256, "sgd", 0.3, 1e-5, "step", milestones=[60, 80]),
    "imagenet/vicreg": probe("LP-FB-VIC", "frozen", 100, 256, "sgd", 0.02, 1e-6, "cosine"),
    "imagenet/simsiam": probe("LP-SS-LARS", "frozen", 90, 4096, "lars", 1.6, 0, "cosine", lars_eta=0.001),
    "imagenet/cwrgp": probe("LP-CW-LARS", "frozen", 100, 1024, "lars", 0.4, 0, "cosine", lars_eta=0.001),
    "imagenet/wmse": probe("LP-CW-LARS", "frozen", 100, 1024, "lars", 0.4, 0, "cosine", lars_eta=0.001),
    "imagenet/barlow_twins_semi_1pct": probe("SS-FB-BT-1pct", "finetune", 20, 256, "sgd", 0.5, 0, "cosine", backbone_lr=0.005,
                                             label_fraction=1),
    "imagenet/vicreg_semi_1pct": probe("SS-FB-VIC-1pct", "finetune", 20, 256, "sgd", 0.08, 0, "cosine", backbone_lr=0.03,
                                       label_fraction=1),
    "imagenet/vicreg_semi_10pct": probe("SS-FB-VIC-10pct", "finetune", 20, 256, "sgd", 0.1, 0, "cosine", backbone_lr=0.01,
                                        label_fraction=10),
}
for pct in (1, 10):
    for variant, backbone_lr in (("intl", 0.006), ("intl_m", 0.004)):
        LINEAR[f"imagenet/{variant}_semi_{pct}pct"] = probe(f"SS-INTL-{pct}pct", "finetune", 20, 256, "sgd", 0.2, 0, "constant",
                                                            backbone_lr=backbone_lr, label_fraction=pct)
RECIPES = {f"pretrain/{k}": v for k, v in PRETRAIN.items()} | {f"linear/{k}": v for k, v in LINEAR.items()}


# ---- running the scripts --------------------------------------------------------------------
def script_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "NUM_GPUS", "NUM_NODES", "RUN_DIR")}
    return {**env, **{k: str(v) for k, v in extra.items()}}


def bash(script, *args, env=None, timeout=30):
    return subprocess.run(["bash", str(SCRIPTS / f"{script}.sh"), *args], check=False, capture_output=True, text=True, cwd=REPO,
                          env=env or script_env(), timeout=timeout)


@pytest.fixture
def recorded(tmp_path):
    """Runs a script with PYTHON = a shim that records the command line; returns (python file, its arguments)."""
    out = tmp_path / "argv"
    shim = tmp_path / "python-shim"
    shim.write_text('#!/bin/sh\nfor arg in "$@"; do printf \'%s\\0\' "$arg"; done > "$ZOO_ARGV"\n')
    shim.chmod(0o755)

    def run(script, *args, **env):
        result = bash(script, *args, env=script_env(PYTHON=shim, ZOO_ARGV=out, **env))
        assert result.returncode == 0, result.stderr
        argv = out.read_text().split("\0")[:-1]
        return Path(argv[0]).name, argv[1:]

    return run


def resolve_pretrain(overrides):
    register_configs()
    method_names()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        return compose("pretrain", overrides=overrides)


def resolved(recorded, script, data_dir):
    """The config a script resolves to (`--cfg job`), from the overrides it passes on."""
    entry, argv = recorded(script, "--cfg", "job", DATA_DIR=data_dir)
    assert argv[:2] == ["--cfg", "job"], "Hydra's flags go before the overrides"
    overrides = argv[2:]
    if entry == "main_pretrain.py":
        return resolve_pretrain(overrides)
    assert entry == "main_linear.py"
    return build_config(None, overrides)


def recipe_value(cfg, key):
    if key == "batch":
        return cfg.data.batch_size * cfg.trainer.devices * cfg.trainer.num_nodes
    if key == "projector":
        return [*cfg.method.proj_hidden, cfg.method.proj_out]
    if key == "views":
        return sum(group.count for group in cfg.data.views)
    value = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def same_value(actual, expected):
    """Equal, floats to 1e-9 relative, through nested lists and dicts (pytest.approx takes no nesting)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            same_value(actual[k], v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, (list, tuple)) and len(actual) == len(expected) and all(
            same_value(a, e) for a, e in zip(actual, expected))
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(actual, numbers) and not isinstance(expected, bool) and not isinstance(actual, bool):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    return type(actual) is type(expected) and actual == expected


# ---- tests ----------------------------------------------------------------------------------------
def test_every_core_script_exists():
    core = {f"{kind}/{ds}/{m}" for kind in ("pretrain", "linear") for ds in DATASETS for m in METHODS}
    small_data = {f"{kind}/{ds}/{m}" for kind in ("pretrain", "linear") for ds in ("stl10", "tiny-imagenet") for m in ("wmse", "cwrgp")}
    assert len(core) == 48
    assert core | small_data <= set(ALL_SCRIPTS)
    assert set(ALL_SCRIPTS) == set(RECIPES), "every script has its row in the recipe table, and every row a script"


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_script_resolves_to_its_recipe(script, recorded, tmp_path):
    recipe = RECIPES[script]
    if recipe.get("method.name", "") not in ("", *method_names()):
        pytest.xfail(f"method {recipe['method.name']} is not registered yet")
    cfg = resolved(recorded, script, tmp_path)
    actual = {key: recipe_value(cfg, key) for key in recipe}
    mismatches = {key: (actual[key], value) for key, value in recipe.items() if not same_value(actual[key], value)}
    assert not mismatches, f"{script}: (resolved, recipe) {mismatches}"
    if script.startswith("pretrain/"):
        assert cfg.data.root == f"{tmp_path}/{script.split('/')[1]}", "data.root comes from DATA_DIR"
        assert (REPO / "scripts" / f"{script}.sh").read_text().startswith("#!/usr/bin/env bash\n# ")


def test_script_headers_name_source_protocol_and_target():
    for script in ALL_SCRIPTS:
        header = (SCRIPTS / f"{script}.sh").read_text().split("set -euo pipefail")[0]
        assert "# Source: " in header and "# Target: " in header, script
        assert script.startswith("linear/") or "# Protocol: " in header, script


def test_cfg_job_prints_the_resolved_config(tmp_path):
    """The real `--cfg job`, without any data: pretraining and linear."""
    env = script_env(DATA_DIR=tmp_path / "nothing-here", NUM_GPUS=2)
    result = bash("pretrain/imagenet/intl", "--cfg", "job", "trainer.max_steps=2", env=env, timeout=300)  # flags anywhere
    assert result.returncode == 0, result.stderr
    cfg = OmegaConf.create(result.stdout)
    assert cfg.method.name == "intl" and cfg.data.batch_size == 128 and cfg.trainer.devices == 2 and cfg.trainer.max_steps == 2
    assert cfg.data.root == f"{tmp_path}/nothing-here/imagenet"
    result = bash("linear/imagenet/intl", "linear.epochs=3", "--cfg", "job", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    cfg = OmegaConf.create(result.stdout)
    assert cfg.linear.name == "LP-INTL" and cfg.linear.epochs == 3 and cfg.trainer.max_epochs == 3


@pytest.mark.parametrize(
    "script, args, env, path",
    [
        ("pretrain/imagenet/intl", [], {"DATA_DIR": "{tmp}"}, "{tmp}/imagenet"),
        ("pretrain/cifar10/wmse", [], {}, "data/cifar10"),
        ("pretrain/imagenet/intl", ["data.root={tmp}/mine"], {"DATA_DIR": "/elsewhere"}, "{tmp}/mine"),
        ("linear/imagenet/intl", ["--ckpt", "x.ckpt", "data.root={tmp}/val-data"], {}, "{tmp}/val-data"),
        ("linear/imagenet-100/wmse", ["--ckpt", "x.ckpt"], {"DATA_DIR": "{tmp}"}, "{tmp}/imagenet-100"),
    ],
)
def test_missing_data_fails_in_one_line_naming_the_path(script, args, env, path, tmp_path):
    fill = lambda text: text.replace("{tmp}", str(tmp_path))
    result = bash(script, *map(fill, args), env=script_env(**{k: fill(v) for k, v in env.items()}))
    assert result.returncode == 2
    assert result.stderr == f"error: data not found at {fill(path)} (set DATA_DIR or pass data.root=PATH)\n"


def test_linear_scripts_take_the_checkpoint_first():
    result = bash("linear/imagenet/intl", "linear.epochs=1")
    assert result.returncode == 2
    assert result.stderr.startswith("error: usage: bash ") and "--ckpt PATH [overrides]" in result.stderr


def test_linear_scripts_pass_ckpt_and_keep_the_checkpoint_data(recorded):
    entry, argv = recorded("linear/imagenet/intl", "--ckpt", "some/run/last.ckpt", "linear.epochs=7")
    assert entry == "main_linear.py" and argv[:2] == ["--ckpt", "some/run/last.ckpt"]
    assert argv[-1] == "linear.epochs=7" and not any(a.startswith("data.root=") for a in argv)


@pytest.mark.parametrize(
    "gpus, nodes, per_device", [(None, None, 128), (8, 4, 64), (1, 1, 2048), (2, 1, 1024)]
)
def test_the_global_batch_stays_the_recipes_on_any_device_count(gpus, nodes, per_device, recorded, tmp_path):
    env = {k: v for k, v in {"NUM_GPUS": gpus, "NUM_NODES": nodes}.items() if v is not None}
    _, argv = recorded("pretrain/imagenet/barlow_twins", "--cfg", "job", DATA_DIR=tmp_path, **env)
    cfg = resolve_pretrain(argv[2:])
    assert cfg.data.batch_size == per_device
    assert cfg.data.batch_size * cfg.trainer.devices * cfg.trainer.num_nodes == 2048
    assert cfg.optimizer.lr == 0.2 and cfg.optimizer.scale_lr  # lr x global batch / 256: the recipe's


def test_a_batch_that_does_not_split_is_refused():
    result = bash("pretrain/imagenet/intl", "--cfg", "job", env=script_env(NUM_GPUS=3))
    assert result.returncode == 2
    assert result.stderr == "error: the recipe's global batch 256 does not split over NUM_GPUS=3 x NUM_NODES=1 devices\n"


def test_the_same_command_gets_the_same_run_dir(recorded, tmp_path):
    (tmp_path / "cifar10").mkdir()

    def run_dir(*args, **env):
        _, argv = recorded("pretrain/cifar10/intl", *args, DATA_DIR=tmp_path, **env)
        return next(a for a in argv if a.startswith("run_dir="))

    assert run_dir("trainer.max_epochs=5") == run_dir("trainer.max_epochs=5") != run_dir("trainer.max_epochs=6")
    assert run_dir().startswith("run_dir=runs/cifar10/intl-")
    assert run_dir(RUN_DIR="/shared/run") == "run_dir=/shared/run"


def test_a_variant_runs_its_base_as_itself(recorded, tmp_path):
    """A variant (pretrain_variant / linear_variant in _common.sh) keeps its own name, data folder,
    global batch and device split; its overrides follow its base's, the user's follow both."""
    text = (SCRIPTS / "pretrain/imagenet/intl_m_ep200.sh").read_text()
    assert "pretrain_variant intl_m_ep100.sh 256 4 1 " in text and "main_pretrain.py" not in text

    def argv(script, *args, **env):
        return recorded(script, "--cfg", "job", *args, DATA_DIR=tmp_path, **env)[1]

    def value(args, key):
        return next(a.split("=", 1)[1] for a in args if a.startswith(f"{key}="))

    ep200 = argv("pretrain/imagenet/intl_m_ep200", "trainer.max_steps=2")
    ep100 = argv("pretrain/imagenet/intl_m_ep100", "trainer.max_steps=2")
    assert value(ep200, "run_dir").startswith("runs/imagenet/intl_m_ep200-")
    # the run_dir id names the user's overrides only, not the variant's
    assert value(ep200, "run_dir").rsplit("-", 1)[1] == value(ep100, "run_dir").rsplit("-", 1)[1]
    cfg = resolve_pretrain(argv("pretrain/imagenet/intl_m_ep200", "optimizer.lr=9")[2:])
    assert cfg.optimizer.lr == 9 and cfg.trainer.max_epochs == 200

    # two levels: cifar100/cwrgp_2views -> cifar100/cwrgp -> cifar10/cwrgp
    args = argv("pretrain/cifar100/cwrgp_2views", NUM_GPUS=2)
    assert value(args, "run_dir").startswith("runs/cifar100/cwrgp_2views-") and value(args, "data.root") == f"{tmp_path}/cifar100"
    assert value(args, "data.batch_size") == "256" and value(args, "trainer.devices") == "2"  # 512 over 2 GPUs
    result = bash("pretrain/cifar100/cwrgp_2views", "--cfg", "job", env=script_env(NUM_GPUS=3))
    assert result.stderr == "error: the recipe's global batch 512 does not split over NUM_GPUS=3 x NUM_NODES=1 devices\n"

    (tmp_path / "cifar100").mkdir()
    entry, args = recorded("linear/cifar100/intl", "--ckpt", "run/last.ckpt", "linear.lr=5", DATA_DIR=tmp_path)
    assert entry == "main_linear.py" and args[:2] == ["--ckpt", "run/last.ckpt"] and args[-1] == "linear.lr=5"
    assert value(args, "data.root") == f"{tmp_path}/cifar100"
    result = bash("linear/cifar100/intl", "linear.epochs=1")
    assert result.returncode == 2 and "usage: bash " in result.stderr and "linear/cifar100/intl.sh --ckpt PATH" in result.stderr


def test_augmentation_presets_compose_and_keep_their_op_order():
    from zoo.data.augment import as_crop_group, torchvision_view

    presets = sorted(p.stem for p in (REPO / "zoo/configs/augment").glob("*.yaml"))
    assert {"intl_cifar", "intl_imagenet", "intl_multicrop", "wmse_small", "wmse_in100", "mocov2", "fb_asym", "solo_asym",
            "solo_vic", "solo_symw"} <= set(presets)
    groups = {}
    for preset in presets:
        cfg = resolve_pretrain([f"augment={preset}", "method=intl"])
        groups[preset] = [as_crop_group(g) for g in cfg.data.views]
        for group in groups[preset]:
            torchvision_view(group.__class__(**{**group.__dict__, "size": group.size or 32}), [0.5] * 3, [0.5] * 3)
    assert [g.size for g in groups["intl_multicrop"] for _ in range(g.count)] == [224, 224, 192, 160, 128, 96]
    assert groups["wmse_small"][0].order == ["jitter", "gray", "crop", "flip"]  # jitter before the crop
    assert groups["wmse_in100"][0].order[-1] == "blur"
    assert groups["fb_asym"][0].order[:2] == ["crop", "flip"]
    assert groups["mocov2"][0].interpolation == "bilinear" and groups["mocov2"][0].saturation == 0.4
    assert [g.solarize_p for g in groups["intl_imagenet"]] == [0.0, 0.2] and [g.blur_p for g in groups["intl_imagenet"]] == [1.0, 0.1]


# ---- end to end: the ImageNet INTL recipe and its linear probe on a tiny folder ----------------------
@pytest.fixture(scope="module")
def tiny_imagenet(tmp_path_factory):
    """An ImageFolder with train/ and val/, two classes of small JPEGs."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny-imagenet")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for label, colour in enumerate(((200, 40, 40), (40, 40, 200))):
            folder = root / split / f"n0000000{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(colour, 40, size=(40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"n0000000{label}_{i}.JPEG")
    return root


TINY_RUN = ["data.image_size=32", "data.batch_size=8", "data.num_workers=0", "data.loader=torchvision", "backbone.name=resnet18",
            "method.proj_hidden=[64,64]", "method.proj_out=64", "trainer.max_steps=2", "trainer.precision=32-true",
            "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_imagenet_intl_recipe_and_its_linear_probe_run_end_to_end(tiny_imagenet, tmp_path):
    env = script_env(NUM_GPUS=1)
    run_dir = tmp_path / "run"
    result = bash("pretrain/imagenet/intl", f"data.root={tiny_imagenet}", *TINY_RUN, f"run_dir={run_dir}", env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["method"] == "intl" and summary["steps"] == 2 and summary["global_batch_size"] == 8
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    # No data.root: the checkpoint's own data is used.
    result = bash("linear/imagenet/intl", "--ckpt", str(ckpt), "linear.epochs=1", "linear.batch_size=8", "data.num_workers=0",
                  "trainer.enable_progress_bar=false", env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    linear = json.loads((run_dir / "linear" / "summary.json").read_text())
    assert linear["protocol"] == "LP-INTL" and linear["procedure"] == "frozen" and linear["method"] == "intl"
    assert 0.0 <= linear["linear_top1"] <= 1.0 and linear["train_images"] == 16


def test_scripts_are_valid_bash():
    for script in [*ALL_SCRIPTS, "_common"]:
        path = SCRIPTS / f"{script}.sh"
        result = subprocess.run(["bash", "-n", str(path)], check=False, capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {result.stderr}"


def test_sbatch_launches_a_recipe_with_one_task_per_gpu(tmp_path):
    """Under a fake srun: the allocation's tasks per node and node count become NUM_GPUS and NUM_NODES."""
    srun = tmp_path / "srun"
    srun.write_text('#!/bin/sh\necho "NUM_GPUS=$NUM_GPUS NUM_NODES=$NUM_NODES $*"\n')
    srun.chmod(0o755)
    env = script_env(PATH=f"{tmp_path}:{os.environ['PATH']}", SLURM_NTASKS_PER_NODE=4, SLURM_JOB_NUM_NODES=2)
    result = subprocess.run(["bash", str(SCRIPTS / "slurm" / "pretrain.sbatch"), "scripts/pretrain/imagenet/intl.sh", "a=1"],
                            check=False, capture_output=True, text=True, env=env, cwd=REPO)
    assert result.stdout == "NUM_GPUS=4 NUM_NODES=2 bash scripts/pretrain/imagenet/intl.sh a=1\n", result.stderr
    assert subprocess.run(["bash", "-n", str(SCRIPTS / "slurm" / "pretrain.sbatch")], check=False).returncode == 0
