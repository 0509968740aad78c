"""The recipe scripts under scripts/: each resolves to its paper recipe, value for value; the data
check and the device split; the ImageNet INTL recipe and its linear probe end to end on a tiny
image folder.

Resolving a script: it runs under bash with PYTHON pointing at a shim that records the command
line, and the recorded overrides are composed here, as `--cfg job` would (one process for every
script instead of one Python start-up each); test_cfg_job_prints_the_resolved_config runs the
real thing.
"""

import dataclasses
import json
import os
import subprocess

import pytest
import torch
from default_run import compose_run
from omegaconf import OmegaConf
from pretrain_helpers import pretrain_in_process
from recipe_helpers import (
    ALL_SCRIPTS,
    DATASETS,
    EXPERIMENTS,
    METHODS,
    PRETRAIN_RECIPES,
    RECIPES,
    REPO,
    SCRIPTS,
    TINY_RUN,
    bash,
    compose_linear,
    compose_recipe,
    recipe_value,
    resolved,
    same_value,
    script_env,
)

from zoo.backbones import wants_small_stem
from zoo.data import resolved_views
from zoo.pretrain import pretrain, split_global_batch


# ---- tests ----------------------------------------------------------------------------------------
def test_every_core_script_exists():
    core = {f"{kind}/{ds}/{m}" for kind in ("pretrain", "linear") for ds in DATASETS for m in METHODS}
    small_data = {f"{kind}/{ds}/{m}" for kind in ("pretrain", "linear") for ds in ("stl10", "tiny-imagenet") for m in ("wmse", "cwrgp")}
    assert len(core) == 48
    assert core | small_data <= set(ALL_SCRIPTS)
    assert {s for s in ALL_SCRIPTS if s.startswith("linear/")} == set(RECIPES), "every linear script has its row, every row a script"
    assert {s for s in ALL_SCRIPTS if s.startswith("pretrain/")} == {f"pretrain/{r}" for r in PRETRAIN_RECIPES}


@pytest.mark.parametrize("script", sorted(RECIPES))
def test_linear_script_resolves_to_its_protocol(script, recorded, tmp_path):
    recipe = RECIPES[script]
    cfg = resolved(recorded, script, tmp_path)
    actual = {key: recipe_value(cfg, key) for key in recipe}
    mismatches = {key: (actual[key], value) for key, value in recipe.items() if not same_value(actual[key], value)}
    assert not mismatches, f"{script}: (resolved, recipe) {mismatches}"


SNAPSHOT = json.loads((REPO / "tests" / "fixtures" / "recipe_snapshot.json").read_text())
# The recipes that existed before the move; those added since have no snapshot.
SNAPSHOT_PRETRAIN = sorted(k.removeprefix("pretrain/") for k in SNAPSHOT if k.startswith("pretrain/"))
SNAPSHOT_LINEAR = sorted(k for k in SNAPSHOT if k.startswith("linear/"))


@pytest.mark.parametrize("recipe", SNAPSHOT_PRETRAIN)
def test_recipe_config_resolves_as_the_script_did_before_the_move(recipe, recorded):
    """tests/fixtures/recipe_snapshot.json: every script's resolved config before recipes became Hydra configs
    (DATA_DIR=/data, the published GPU count), fidelity fixes included. The config now carries the global
    batch and the recipe's facts; training derives the per-device batch (split_global_batch) and the views."""
    paper = compose_recipe([f"experiment={recipe}"])
    gpus, nodes = paper.recipe.paper_gpus, paper.recipe.paper_nodes
    cfg = resolved(recorded, f"pretrain/{recipe}", "/data", NUM_GPUS=gpus, NUM_NODES=nodes)
    assert cfg.data.root == f"/data/{recipe.split('/')[0]}" and cfg.recipe.name == recipe
    cfg.data.batch_size = split_global_batch(cfg.data.global_batch_size, gpus * nodes)
    before = SNAPSHOT[f"pretrain/{recipe}"]
    crops = lambda data: [dataclasses.asdict(group) for group in resolved_views(data)]
    assert crops(cfg.data) == crops(OmegaConf.create({**before["data"], "num_views": None}))
    largest_crop = max(group["size"] for group in crops(cfg.data))
    actual = OmegaConf.to_container(cfg)
    for key in ("recipe", "run_dir", "logger", "wandb"):  # the last two: trackers, added since
        actual.pop(key)
    for key in ("global_batch_size", "num_views", "views"):
        actual["data"].pop(key)
    before["data"].pop("views")
    # fields added since, at their defaults: divergence and collapse checks, corrupt images skipped, labelled data
    assert actual.pop("divergence") == {"collapse_effective_rank": 2.0, "collapse_output_std": 0.1, "skip_nonfinite_steps": 0}
    assert actual["data"].pop("corrupt_images") == "skip" and actual["data"].pop("labels") is True
    assert actual["method"].pop("proj_hidden_bn")  # a field added since, true: the BatchNorm every hidden layer had
    assert actual["method"].pop("regularizer") is None  # a field added since: no auxiliary regulariser
    # LiDAR's augmented views at every validation, added since at their defaults (zoo.config.EvalConfig)
    assert (actual["eval"].pop("lidar_samples"), actual["eval"].pop("lidar_views")) == (16, 2)
    # the whitening layer after the backbone (backbone.whitening_layer), added since: none, at the official IterNorm's settings
    assert [actual["backbone"].pop(f"whitening_{key}") for key in ("layer", "iters", "eps", "momentum", "groups")] == [
        "none", 5, 1e-5, 0.1, 1]
    for config in (actual, before):  # warmup_epochs is unused under an iteration count of warmup (W-MSE's 500 steps)
        if config["scheduler"]["warmup_steps"] > 0:
            config["scheduler"].pop("warmup_epochs")
        if not wants_small_stem(config["backbone"]["small_stem"], largest_crop):  # the padding of a stem not built
            config["backbone"].pop("small_stem_padding")
    assert actual == before


def test_recipes_state_source_protocol_and_target_once():
    for recipe in PRETRAIN_RECIPES:
        cfg = compose_recipe([f"experiment={recipe}"])
        assert cfg.recipe.source and cfg.recipe.protocol and (cfg.recipe.targets or cfg.recipe.no_target), recipe
        script = (SCRIPTS / "pretrain" / f"{recipe}.sh").read_text()
        assert len(script.splitlines()) <= 5 and f"_launch.sh\" pretrain {recipe} \"$@\"" in script, recipe
    for script in RECIPES:
        recipe = script.removeprefix("linear/")
        cfg = compose_linear([f"experiment={recipe}"])
        assert cfg.recipe.name == recipe and cfg.recipe.source and cfg.recipe.title, recipe
        text = (SCRIPTS / f"{script}.sh").read_text()
        assert len(text.splitlines()) <= 5 and f"_launch.sh\" linear {recipe} \"$@\"" in text, recipe


@pytest.mark.parametrize("script", SNAPSHOT_LINEAR)
def test_linear_recipe_resolves_as_the_script_did_before_the_move(script, recorded):
    """tests/fixtures/recipe_snapshot.json holds each linear script's config before the protocols became
    Hydra configs (DATA_DIR=/data, one device, as the scripts defaulted to)."""
    cfg = OmegaConf.to_container(resolved(recorded, script, "/data", NUM_GPUS=1))
    assert cfg.pop("recipe")["name"] == script.removeprefix("linear/")
    cfg["linear"].pop("data")  # the protocol's data values, now merged into cfg.data
    assert cfg.pop("run_dir") is None  # <checkpoint's run>/linear, as before
    for key in ("global_batch_size", "num_views"):  # pretraining keys added since (None without a checkpoint)
        assert cfg["data"].pop(key) is None
    assert cfg["data"].pop("corrupt_images") == "skip" and cfg["data"].pop("labels") is True  # added since, at their defaults
    before = SNAPSHOT[script]
    assert before["trainer"]["max_epochs"] == "${linear.epochs}"  # kept unresolved then
    before["trainer"]["max_epochs"] = before["linear"]["epochs"]
    assert cfg == before


def test_cfg_job_prints_the_recipe_config(tmp_path):
    """The real `--cfg job`, without any data, flags anywhere among the overrides: pretraining and linear."""
    env = script_env(DATA_DIR=tmp_path / "nothing-here", NUM_GPUS=2)
    result = bash("pretrain/imagenet/intl", "trainer.max_steps=2", "--cfg", "job", "--resolve", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    cfg = OmegaConf.create(result.stdout)
    assert cfg.method.name == "intl" and cfg.data.global_batch_size == 256 and cfg.trainer.devices == 2
    assert cfg.trainer.max_steps == 2 and cfg.data.root == f"{tmp_path}/nothing-here/imagenet"
    assert cfg.run_dir.startswith("runs/imagenet/intl-")
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
    result = bash(script, *map(fill, args), env=script_env(**{k: fill(v) for k, v in env.items()}), timeout=120)
    assert result.returncode == 2
    assert result.stderr == f"error: data not found at {fill(path)} (set DATA_DIR or pass data.root=PATH)\n"


def test_linear_scripts_take_the_checkpoint_first():
    result = bash("linear/imagenet/intl", "linear.epochs=1")
    assert result.returncode == 2
    assert result.stderr.startswith("error: usage: bash ") and "--ckpt PATH [overrides]" in result.stderr


def test_linear_scripts_pass_ckpt_and_keep_the_checkpoint_data(recorded):
    entry, argv = recorded("linear/imagenet/intl", "--ckpt", "some/run/last.ckpt", "linear.epochs=7")
    assert entry == "main_linear.py" and argv == ["experiment=imagenet/intl", "--ckpt", "some/run/last.ckpt", "linear.epochs=7"]
    cfg = compose_linear([a for a in argv if a.startswith(("experiment=", "linear."))])
    assert cfg.linear.epochs == 7 and cfg.data.root is None  # no DATA_DIR: the checkpoint's own data (none here)


@pytest.mark.parametrize("gpus, nodes, per_device", [(None, None, 2048), (8, 4, 64), (1, 1, 2048), (2, 1, 1024)])
def test_the_global_batch_stays_the_recipes_on_any_device_count(gpus, nodes, per_device, tmp_path):
    """On this CPU machine NUM_GPUS defaults to one process; the global batch (so the lr) stays the recipe's."""
    env = {k: v for k, v in {"NUM_GPUS": gpus, "NUM_NODES": nodes}.items() if v is not None}
    cfg = compose_recipe(["experiment=imagenet/barlow_twins"], DATA_DIR=tmp_path, **env)
    world = 1 if gpus is None else gpus * (nodes or 1)
    assert cfg.trainer.devices == (gpus or "auto") and split_global_batch(cfg.data.global_batch_size, world) == per_device
    assert cfg.optimizer.lr == 0.2 and cfg.optimizer.scale_lr  # lr x global batch / 256: the recipe's


def test_a_batch_that_does_not_split_or_a_per_device_batch_is_refused(tiny_imagenet, monkeypatch, capsys):
    """What the script runs (main_pretrain.py experiment=imagenet/intl ..., as `recorded` shows), in this process."""
    from pretrain_helpers import pretrain_in_process

    for name in ("DATA_DIR", "NUM_GPUS", "NUM_NODES", "RUN_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NUM_GPUS", "3")
    code, _, err = pretrain_in_process(monkeypatch, capsys, "experiment=imagenet/intl", f"data.root={tiny_imagenet}",
                                       "trainer.accelerator=cpu")
    assert code == 2 and err.strip().splitlines()[-1] == (
        "error: data.global_batch_size=256 does not split over 3 processes: set NUM_GPUS / NUM_NODES "
        "(trainer.devices / trainer.num_nodes) to a divisor of it, or change data.global_batch_size")
    monkeypatch.delenv("NUM_GPUS")
    code, _, err = pretrain_in_process(monkeypatch, capsys, "experiment=imagenet/intl", f"data.root={tiny_imagenet}",
                                       "data.batch_size=8")
    assert code == 2 and "pass data.global_batch_size=N instead of data.batch_size" in err


def test_the_same_command_gets_the_same_run_dir(tmp_path, monkeypatch, capsys):
    """What the script runs (main_pretrain.py experiment=cifar10/intl), in this process; the script itself
    once, with RUN_DIR."""
    (tmp_path / "cifar10").mkdir()
    monkeypatch.setenv("DATA_DIR", str(tmp_path))

    def run_dir(*args):
        code, out, err = pretrain_in_process(monkeypatch, capsys, "experiment=cifar10/intl", "--cfg", "job", "--resolve", *args)
        assert code == 0, err
        return OmegaConf.create(out).run_dir

    assert run_dir("trainer.max_epochs=5") == run_dir("trainer.max_epochs=5") != run_dir("trainer.max_epochs=6")
    assert run_dir().startswith("runs/cifar10/intl-")
    result = bash("pretrain/cifar10/intl", "--cfg", "job", "--resolve", env=script_env(DATA_DIR=tmp_path, RUN_DIR="/shared/run"),
                  timeout=120)
    assert OmegaConf.create(result.stdout).run_dir == "/shared/run"


def test_a_variant_inherits_its_base_and_states_what_differs(recorded, tmp_path):
    variant = (EXPERIMENTS / "imagenet" / "intl_m_ep200.yaml").read_text()
    assert "defaults: [/experiment/imagenet/intl_m_ep100, _self_]" in variant
    ep200 = compose_recipe(["experiment=imagenet/intl_m_ep200", "optimizer.lr=9"], DATA_DIR=tmp_path)
    assert ep200.optimizer.lr == 9 and ep200.trainer.max_epochs == 200 and ep200.recipe.name == "imagenet/intl_m_ep200"
    assert ep200.run_dir.startswith("runs/imagenet/intl_m_ep200-") and ep200.method.name == "intl_m"
    # two levels: cifar100/cwrgp_2views -> cifar100/cwrgp -> cifar10/cwrgp
    cfg = compose_recipe(["experiment=cifar100/cwrgp_2views"], DATA_DIR=tmp_path, NUM_GPUS=2)
    assert cfg.run_dir.startswith("runs/cifar100/cwrgp_2views-") and cfg.data.root == f"{tmp_path}/cifar100"
    assert cfg.data.global_batch_size == 512 and cfg.data.num_views == 2 and cfg.method.name == "cwrgp"

    # linear, two levels: cifar100/intl -> cifar10/intl (CIFAR-10 statistics) -> cifar10/wmse (LP-SMALL)
    linear = compose_linear(["experiment=cifar100/intl", "linear.lr=5"], DATA_DIR=tmp_path)
    assert linear.recipe.name == "cifar100/intl" and linear.data.root == f"{tmp_path}/cifar100"
    assert linear.linear.name == "LP-SMALL" and linear.linear.lr == 5 and linear.data.mean == [0.4914, 0.4822, 0.4465]
    assert "defaults: [/experiment/cifar10/intl, _self_]" in (REPO / "zoo/configs/linear/experiment/cifar100/intl.yaml").read_text()
    result = bash("linear/cifar100/intl", "linear.epochs=1")
    assert result.returncode == 2 and "usage: bash " in result.stderr and "linear/cifar100/intl.sh --ckpt PATH" in result.stderr


def test_augmentation_presets_compose_and_keep_their_op_order():
    from zoo.data.augment import as_crop_group, torchvision_view

    presets = sorted(p.stem for p in (REPO / "zoo/configs/augment").glob("*.yaml"))
    assert {"intl_cifar", "intl_imagenet", "intl_multicrop", "wmse_small", "wmse_in100", "mocov2", "fb_asym", "solo_asym",
            "solo_vic", "solo_symw", "solo_sym", "swav"} <= set(presets)
    groups = {}
    for preset in presets:
        cfg = compose_run([f"augment={preset}", "method=intl"])
        groups[preset] = [as_crop_group(g) for g in cfg.data.views]
        for group in groups[preset]:
            torchvision_view(group.__class__(**{**group.__dict__, "size": group.size or 32}), [0.5] * 3, [0.5] * 3)
    assert [g.size for g in groups["intl_multicrop"] for _ in range(g.count)] == [224, 224, 192, 160, 128, 96]
    assert groups["wmse_small"][0].order == ["jitter", "gray", "crop", "flip"]  # jitter before the crop
    assert groups["wmse_in100"][0].order[-1] == "blur"
    assert groups["fb_asym"][0].order[:2] == ["crop", "flip"]
    assert groups["mocov2"][0].interpolation == "bilinear" and groups["mocov2"][0].saturation == 0.4
    assert [g.solarize_p for g in groups["intl_imagenet"]] == [0.0, 0.2] and [g.blur_p for g in groups["intl_imagenet"]] == [1.0, 0.1]
    assert groups["swav"][0].order == ["crop", "flip", "jitter", "gray", "blur"] and groups["swav"][0].interpolation == "bilinear"
    assert (groups["solo_sym"][0].count, groups["solo_sym"][0].saturation, groups["solo_sym"][0].blur_p) == (2, 0.8, 0.5)


# ---- end to end: the ImageNet INTL recipe and its linear probe on a tiny folder ----------------------


@pytest.mark.slow
def test_imagenet_intl_recipe_and_its_linear_probe_run_end_to_end(tiny_imagenet, tmp_path):
    env = script_env()  # no NUM_GPUS: the machine's devices (one CPU process here)
    run_dir = tmp_path / "run"
    result = bash("pretrain/imagenet/intl", f"data.root={tiny_imagenet}", *TINY_RUN, f"run_dir={run_dir}", env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    if not torch.cuda.is_available():
        assert "zoo: recipe imagenet/intl was run on 4 GPUs x 1 node(s); here 1 x cpu: global batch 8 kept (8 per process), " \
               "SyncBN off" in result.stdout
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


# One run per baseline method: their ImageNet-100 recipes differ from a run already here only in values
# (widths, lrs, queue size, freezing) that test_recipe_values and test_baseline_method_recipes check on the built method.
# Zero-CL's official ImageNet-100 recipe trains as imagenet/barlow_twins does (FB LARS, SyncBN, fb_asym views, a
# projector without biases), its loss on a training step in tests/methods/test_every_method.py; SimDINO's ViT-B/16 recipe
# differs from imagenet/simdino in its backbone (replaced here), eps and local crop count.
COVERED_BY_ANOTHER_RUN = {"imagenet-100/simclr", "imagenet-100/byol", "imagenet-100/swav", "imagenet-100/zero_cl_official",
                          "imagenet/simdino_vit_base"}
FOLDER_RECIPES = [r for r in PRETRAIN_RECIPES if r.startswith(("imagenet/", "imagenet-100/")) and r not in COVERED_BY_ANOTHER_RUN]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", FOLDER_RECIPES)
def test_every_imagenet_recipe_runs_two_steps_on_this_machine(recipe, tiny_imagenet, tmp_path):
    """Each ImageNet / ImageNet-100 recipe as it is (its trainer, precision, SyncBN, optimiser, views),
    only smaller (32 px, ResNet-18, 64-wide projector, global batch 8), with no NUM_GPUS: on a
    machine without GPUs it runs as one CPU process."""
    cfg = compose_recipe([f"experiment={recipe}", f"data.root={tiny_imagenet}", *TINY_RUN, f"run_dir={tmp_path}",
                          "checkpoint_every_n_steps=100"])
    if any(v.size for v in cfg.data.views):  # multi-crop sizes: the recipe's 224 .. 96, scaled down
        cfg.data.views = [{**v, "size": v["size"] // 7} for v in OmegaConf.to_container(cfg.data.views)]
    if "w_size" in cfg.method:  # whitening sub-batches that fit 8 samples (W-MSE: fewer dimensions than samples)
        cfg.method.w_size = 8
        cfg.method.proj_out = 4 if cfg.method.name == "wmse" else cfg.method.proj_out
    model = pretrain(cfg)
    assert model.trained_steps == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["global_batch_size"] == 8


def test_scripts_are_valid_bash():
    for script in [*ALL_SCRIPTS, "_launch"]:
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
