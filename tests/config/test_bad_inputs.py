"""Bad input ends in one `error:` line (before torch is imported where the arguments alone show the
problem: the command line, NUM_GPUS / NUM_NODES / ZOO_METHODS), or runs as asked and says what changed:
never a traceback or a silently different run."""

import json
import math
import os
import re
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from pretrain_helpers import pretrain_in_process

from zoo.errors import ZooError

REPO = Path(__file__).resolve().parents[2]


def run_entry(command, env=None, timeout=120):
    """`command` ([script, *args]) run with its imports listed -> (exit status, error lines, imported module names)."""
    env = {**os.environ, **(env or {}), "PYTHONPROFILEIMPORTTIME": "1"}  # python -X importtime, through a script too
    argv = ["bash"] if command[0].endswith(".sh") else [sys.executable]
    argv += [str(REPO / command[0]), *command[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout, check=False)
    imports = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    errors = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("import time:")]
    return result.returncode, errors, set(imports)


DUPLICATE = 'from zoo.registry import register_method\n\n\n@register_method("simclr")\nclass Mine:\n    pass\n'

BEFORE_TORCH = [
    (["method=intll"], {}, "unknown method 'intll' (registered: "),
    (["trainer.devices=0"], {}, "trainer.devices=0 is not a number of devices"),
    (["optimizer.lr=nan"], {}, "optimizer.lr=nan must be positive and finite"),
    (["optimizer.probe_lr=inf"], {}, "optimizer.probe_lr=inf must be positive and finite"),
    (["trainer.max_epochs=0"], {}, "trainer.max_epochs=0 trains nothing"),
    (["trainer.max_steps=0"], {}, "trainer.max_steps=0 trains nothing"),
    (["trainer.precision=17"], {}, "trainer.precision=17 is not a precision Lightning knows"),
    (["data.name=cifar11"], {}, "unknown dataset data.name=cifar11"),
    (["data.loader=dallli"], {}, "data.loader=dallli is not one of: auto, dali, torchvision"),
    (["scheduler.name=cosin"], {}, "scheduler.name=cosin is not one of: cosine, step, constant"),
    (["scheduler.interval=epochs"], {}, "scheduler.interval=epochs is not one of: step, epoch"),
    (["scheduler.warmup_rule=linear"], {}, "scheduler.warmup_rule=linear is not one of: next, from_zero, endpoints"),
    (["backbone.whitening_layer=itrnorm"], {}, "backbone.whitening_layer=itrnorm is not one of: none, iternorm, zca"),
    (["data.batch_size=0"], {}, "data.batch_size=0 must be at least 1"),
    (["experiment=cifar10/simclrr"], {}, "unknown recipe experiment=cifar10/simclrr"),
    ([], {"NUM_GPUS": "abc"}, "NUM_GPUS=abc is not a number of devices"),
    ([], {"NUM_NODES": "0"}, "NUM_NODES=0 must be a number of nodes >= 1"),
    ([], {"ZOO_METHODS": "/nonexistent/my_method.py"}, "ZOO_METHODS names /nonexistent/my_method.py, which does not exist"),
    ([], {"ZOO_METHODS": "no_such_module_zoo"}, "ZOO_METHODS names module 'no_such_module_zoo', which cannot be imported"),
    ([], {"ZOO_METHODS": "DUPLICATE"}, "method 'simclr' is registered twice"),
]


@pytest.mark.parametrize("args, env, expected", BEFORE_TORCH, ids=[" ".join(c[0]) or str(c[1]) for c in BEFORE_TORCH])
def test_bad_argument_is_one_line_before_torch(args, env, expected, tmp_path):
    if env.get("ZOO_METHODS") == "DUPLICATE":
        (tmp_path / "mine.py").write_text(DUPLICATE)
        env = {"ZOO_METHODS": str(tmp_path / "mine.py")}
    code, errors, imported = run_entry(["main_pretrain.py", *args, f"run_dir={tmp_path / 'run'}"], env)
    assert code == 2 and len(errors) == 1 and errors[0].startswith("error: ") and expected in errors[0], errors
    assert "torch" not in imported and "lightning" not in imported


def test_the_schedule_names_checked_early_are_the_ones_the_schedule_computes():
    from zoo.arguments import NAMES
    from zoo.optim import WARMUP_RULES

    assert tuple(NAMES["scheduler.warmup_rule"]) == tuple(WARMUP_RULES)


def test_a_recipe_script_with_a_bad_num_gpus_is_one_line(tmp_path):
    """The scripts read NUM_GPUS into trainer.devices: `NUM_GPUS=abc bash scripts/...` names it."""
    code, errors, imported = run_entry(["scripts/pretrain/cifar10/simclr.sh", f"run_dir={tmp_path / 'run'}"],
                                       {"NUM_GPUS": "abc", "DATA_DIR": str(tmp_path)})
    assert code == 2 and errors == [errors[0]] and "NUM_GPUS=abc is not a number of devices" in errors[0], errors
    assert "torch" not in imported


def test_a_good_command_line_passes_the_early_checks():
    from zoo.arguments import check_pretrain_arguments

    check_pretrain_arguments(["method=simclr", "trainer.devices=2", "trainer.precision=bf16-mixed", "optimizer.lr=0.1",
                              "trainer.max_epochs=-1", "trainer.max_steps=5", "experiment=cifar10/simclr",
                              "data.name=folder", "trainer.devices=[0,1]", "method=${oc.env:MY_METHOD,intl}",
                              "trainer.devices=${oc.env:MY_GPUS,1}"], environ={"NUM_GPUS": "auto"})


def composed(*overrides):
    """The pretraining config as main_pretrain.py composes it."""
    from hydra import compose, initialize_config_module

    from zoo.config import register_configs
    from zoo.registry import discover_methods

    register_configs()
    discover_methods()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        return compose("pretrain", overrides=list(overrides))


@pytest.mark.parametrize("overrides, expected", [
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1 with trainer.max_steps=-1 never stops"),
    (["optimizer.lr=${optimizer.weight_decay}", "optimizer.weight_decay=0"], "optimizer.lr=0.0 must be positive"),
])
def test_the_composed_config_meets_the_same_checks(overrides, expected):
    """A value that only the composed config shows (a pair of keys, an interpolation) gets the same line."""
    from zoo.config import check_pretrain_config

    with pytest.raises(ZooError, match=re.escape(expected)):
        check_pretrain_config(composed(*overrides))


def test_num_gpus_reaches_the_composed_check(monkeypatch):
    from zoo.config import check_pretrain_config

    monkeypatch.setenv("NUM_GPUS", "0")
    with pytest.raises(ZooError, match=re.escape("trainer.devices=0 is not a number of devices")):
        check_pretrain_config(composed())


def test_download_offline_is_one_line(tmp_path, monkeypatch):
    """data.download=true without network: torchvision's URLError becomes the one line."""
    from zoo.data.datasets import Source, build_dataset

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    data = Source("cifar10", root=str(tmp_path / "cifar10"), download=True)
    with pytest.raises(ZooError, match=r"data.download=true could not fetch cifar10 into .*Temporary failure in name"):
        build_dataset(data, "train", None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_float16_asked_for_on_a_cpu_is_refused(tmp_path, capsys, monkeypatch):
    """Lightning would run bfloat16 instead (and the zoo then float32): refused, naming bf16-mixed."""
    from zoo.pretrain import main

    monkeypatch.setattr(sys, "argv", ["main_pretrain.py", "trainer.precision=16-mixed", f"run_dir={tmp_path}"])
    with pytest.raises(SystemExit) as stopped:
        main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2 and len(errors) == 1
    assert errors[0].startswith("error: trainer.precision=16-mixed (float16) needs a CUDA GPU") and "bf16-mixed" in errors[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_recipes_float16_on_a_cpu_trains_float32_and_says_so(tmp_path, capsys):
    from zoo.pretrain import trainer_for_this_machine

    cfg = composed("experiment=cifar10/simclr", "trainer.max_steps=1")
    assert cfg.trainer.precision == "16-mixed"
    trainer = trainer_for_this_machine(cfg, tmp_path)
    assert trainer.precision == "32-true" and cfg.trainer.precision == "32-true"
    assert "precision 32-true (16-mixed needs a GPU)" in capsys.readouterr().out


@pytest.mark.parametrize("total, world", [(450, 4), (10, 3), (12, 4), (7, 8)])
def test_validation_outputs_of_several_processes_count_each_sample_once(total, world):
    """What torch's DistributedSampler deals each process (padded to equal shares), stacked as all_gather
    stacks it, comes back as the data set in order: 450 k-NN samples on 4 processes stay 450."""
    from torch.utils.data import DistributedSampler

    from zoo.train.harness import in_dataset_order

    dataset = list(range(total))
    shares = [list(DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)) for rank in range(world)]
    gathered = torch.tensor(shares)  # (world, n): the sample indices each process saw
    assert gathered.numel() > total or total % world == 0
    assert in_dataset_order(gathered, total).tolist() == dataset
    features = torch.stack([gathered.float(), -gathered.float()], dim=-1)  # (world, n, 2) like features
    assert in_dataset_order(features, total)[:, 0].tolist() == dataset


def test_a_moved_checkpoint_is_evaluated_beside_itself(tmp_path):
    from zoo.eval.common import run_folder

    assert run_folder(tmp_path / "run" / "checkpoints" / "last.ckpt") == (tmp_path / "run").resolve()
    assert run_folder(tmp_path / "models" / "intl_ep100.ckpt") == (tmp_path / "models" / "intl_ep100").resolve()


def test_a_cifar_recipe_on_a_folder_keeps_its_32_px_crops(tmp_path, capsys):
    """Nothing sets the size in the CIFAR recipes (the data set's own): on data.name=folder that would be
    224 px through the CIFAR stem."""
    from zoo.data import eval_pipeline, resolved_views
    from zoo.pretrain import keep_the_recipes_image_size

    cfg = composed("experiment=cifar10/simclr", "data.name=folder", f"data.root={tmp_path}")
    assert {group.size for group in resolved_views(cfg.data)} == {224}  # what it trained before
    keep_the_recipes_image_size(cfg)
    assert {group.size for group in resolved_views(cfg.data)} == {32}
    crop = next(step for step in eval_pipeline(cfg.data).transforms if type(step).__name__ == "CenterCrop")
    assert list(crop.size) == [32, 32]
    assert "crops of 32 px as on cifar10" in capsys.readouterr().out
    own = composed("experiment=cifar10/simclr", "data.name=folder", "data.image_size=64")
    keep_the_recipes_image_size(own)
    assert own.data.image_size == 64


def test_bf16_mixed_trains_on_a_cpu(tmp_path, monkeypatch, capsys):
    """trainer.precision=bf16-mixed runs as asked on a CPU (bfloat16 autocast), whitening included (INTL).

    32-px crops: with 8 px, test_resnet's last stage takes a 1x1 map into a stride-2 convolution, whose bfloat16
    weight gradient torch's oneDNN kernel often returns as NaN on CPUs with AVX512-BF16 (a bare Conv2d reproduces
    it), which the divergence guard then reports."""
    tiny = ["data.batch_size=16", "data.num_workers=0", "data.image_size=32", "data.eval_batch_size=64",
            "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", "method.proj_hidden=[64]", "method.proj_out=32",
            "trainer.max_steps=2", "backbone.name=test_resnet", "backbone.small_stem=false"]
    code, _, err = pretrain_in_process(monkeypatch, capsys, *tiny, "trainer.precision=bf16-mixed", f"run_dir={tmp_path}")
    assert code == 0, err[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["provenance"]["precision"] == "bf16-mixed"
    assert summary["knn_top1"] is not None and math.isfinite(summary["effective_rank"])


def unlabelled_folder(root, count=40):
    """Random PNGs, flat and in a subfolder: no class folders, no train/ or val/."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "more").mkdir(parents=True)
    for index in range(count):
        image = Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8))
        image.save(root / ("more" if index % 4 == 0 else "") / f"{index}.png")
    return root


def test_an_unlabelled_folder_trains_and_reports_label_free_diagnostics_only(tmp_path, monkeypatch, capsys):
    """data.labels=false: no probe, no k-NN (never a k-NN of 1.0 from one fake class), the spectra of its images."""
    root = unlabelled_folder(tmp_path / "images")
    tiny = ["data.batch_size=16", "data.num_workers=0", "data.image_size=8", "data.eval_batch_size=64",
            "trainer.enable_progress_bar=false", "method.proj_hidden=[64]", "method.proj_out=32", "trainer.max_steps=2",
            "backbone.name=test_resnet", "backbone.small_stem=false"]
    code, _, err = pretrain_in_process(monkeypatch, capsys, *tiny, "data.name=folder", f"data.root={root}", "data.labels=false",
                                       f"run_dir={tmp_path / 'run'}")
    assert code == 0, err[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["labels"] is False and summary["steps"] == 2
    assert summary["knn_top1"] is None and summary["linear_top1"] is None
    assert summary["effective_rank"] > 1 and math.isfinite(summary["projector_effective_rank"])
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val/effective_rank" in header and not any("knn" in key or "probe" in key for key in header)
    assert math.isfinite(summary["rankme"]) and "val/rankme" in header  # label-free health metrics too


def test_an_unlabelled_folder_has_nothing_to_evaluate_with(tmp_path):
    from zoo.config import DataConfig
    from zoo.data import data_spec

    def data(**values):  # the data config as training composes it
        return data_spec(OmegaConf.merge(OmegaConf.structured(DataConfig), values))

    root = unlabelled_folder(tmp_path / "images", count=4)
    unlabelled = data(name="folder", root=str(root), labels=False)
    assert len(unlabelled.dataset("train", lambda image: image)) == 4
    with pytest.raises(ZooError, match="data.labels=false: .* holds no labels to evaluate with; pass data.labels=true"):
        unlabelled.dataset("val", None)
    with pytest.raises(ZooError, match="data.labels=false is for a folder of images"):
        data(name="cifar10", root=str(root), labels=False).dataset("train", None)
    with pytest.raises(ZooError, match="wrong folder layout: .* data.labels=false for a folder of unlabelled images"):
        data(name="folder", root=str(root), labels=True).dataset("train", None)


@pytest.mark.parametrize("script, flag", [("main_linear.py", ["--ckpt", "{}"]), ("main_knn.py", ["--ckpt={}"])])
def test_a_missing_checkpoint_is_one_line_before_torch(script, flag, tmp_path):
    missing = tmp_path / "moved" / "last.ckpt"
    code, errors, imported = run_entry([script, *(part.format(missing) for part in flag)])
    assert code == 2 and errors == [f"error: checkpoint not found: {missing} (pass the path to a .ckpt written by main_pretrain.py)"]
    assert "torch" not in imported


# ---- names (zoo.names): the schema's enums, the command-line check and the composed config say one line -------------
def enum_fields(schema, prefix=""):
    """{dotted key: enum} of a dataclass schema's fields typed with an enum (nested dataclasses followed, lists not)."""
    import dataclasses
    import enum
    import typing

    fields = {}
    for name, hint in typing.get_type_hints(schema).items():
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            fields[f"{prefix}{name}"] = hint
        elif dataclasses.is_dataclass(hint):
            fields.update(enum_fields(hint, f"{prefix}{name}."))
    return fields


def misspelt(names):
    return next(iter(names)).value[:-1]  # cosine -> cosin


def one_line(key, value, names):
    return f"{key}={value} is not one of: {', '.join(member.value for member in names)}"


def test_the_command_line_check_knows_every_name_the_schema_types():
    from zoo.arguments import NAMES
    from zoo.config import LinearRunConfig, PretrainConfig

    assert {**enum_fields(PretrainConfig), **enum_fields(LinearRunConfig)} == NAMES


def test_every_name_is_its_own_value():
    """OmegaConf reads a config's string by member name; checkpoints, config.yaml and summaries hold the value."""
    import enum

    import zoo.names

    enums = [item for item in vars(zoo.names).values() if isinstance(item, type) and issubclass(item, enum.Enum)
             and item.__module__ == "zoo.names"]
    assert len(enums) >= 12
    for names in enums:
        assert all(isinstance(member, str) and member.name == member.value for member in names), names


def method_enum_fields():
    """(method, key, enum) of every registered method's enum-typed Config fields (INTL's axis, ...)."""
    from zoo.registry import discover_methods, get_method, method_names

    discover_methods()
    return [(name, key, names) for name in sorted(method_names())
            for key, names in enum_fields(get_method(name).Config, "method.").items()]


def pretrain_name_cases():
    from zoo.arguments import NAMES

    cases = [([], key, names) for key, names in NAMES.items() if not key.startswith("linear.")]
    seen = set()
    for method, key, names in method_enum_fields():  # one method per field
        if key not in seen:
            seen.add(key)
            cases.append(([f"method={method}"], key, names))
    return cases


PRETRAIN_NAMES = pretrain_name_cases()


@pytest.mark.parametrize("selected, key, names", PRETRAIN_NAMES, ids=[case[1] for case in PRETRAIN_NAMES])
def test_a_misspelt_name_is_rejected_when_the_config_is_composed(selected, key, names, tmp_path, monkeypatch, capsys):
    """main_pretrain in this process, its command-line check skipped: Hydra composing the config rejects the
    value (the schema's enum), in the one line the command-line check gives (where it knows the key)."""
    import zoo.pretrain
    from zoo.arguments import NAMES, check_pretrain_arguments

    bad = misspelt(names)
    expected = one_line(key, bad, names)
    if key in NAMES:
        with pytest.raises(ZooError) as early:
            check_pretrain_arguments([*selected, f"{key}={bad}"])
        assert str(early.value) == expected
    monkeypatch.setattr(zoo.pretrain, "check_pretrain_arguments", lambda argv: None)
    monkeypatch.setattr(sys, "argv", ["main_pretrain.py", *selected, f"{key}={bad}", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as stopped:
        zoo.pretrain.main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2 and errors == [f"error: {expected}"]
    assert not (tmp_path / "run").exists()  # before anything is built or written


def test_a_misspelt_name_through_an_interpolation_is_one_line(tmp_path, monkeypatch, capsys):
    """A value Hydra composes unresolved is checked by check_pretrain_config, before any data or model."""
    import zoo.pretrain
    from zoo.names import Schedule

    monkeypatch.setenv("ZOO_TEST_SCHEDULE", "cosin")
    monkeypatch.setattr(sys, "argv", ["main_pretrain.py", "scheduler.name=${oc.env:ZOO_TEST_SCHEDULE}", f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as stopped:
        zoo.pretrain.main()
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2 and errors == [f"error: {one_line('scheduler.name', 'cosin', Schedule)}"]


def test_a_misspelt_method_name_is_one_line_from_hydra_in_a_new_process(tmp_path):
    """The real command: method fields are not on the command-line check's list, so Hydra's composition rejects it."""
    from zoo.names import WhiteningAxis

    code, errors, _ = run_entry(["main_pretrain.py", "method=intl", "method.axis=chanel", f"run_dir={tmp_path / 'run'}"])
    assert code == 2 and errors == [f"error: {one_line('method.axis', 'chanel', WhiteningAxis)}"], errors


LINEAR_NAMES = [(key, names) for key, names in __import__("zoo.arguments").arguments.NAMES.items()
                if key.startswith(("linear.", "data."))]


@pytest.mark.parametrize("key, names", LINEAR_NAMES, ids=[case[0] for case in LINEAR_NAMES])
def test_a_misspelt_name_is_one_line_in_main_linear(key, names, capsys):
    """main_linear in this process (its config composed, the data config merged): the line of its command-line check."""
    from zoo.arguments import check_evaluation_arguments
    from zoo.eval.cli import main_linear

    bad = misspelt(names)
    expected = one_line(key, bad, names)
    with pytest.raises(ZooError) as early:
        check_evaluation_arguments(["--cfg", "job", f"{key}={bad}"])
    assert str(early.value) == expected
    with pytest.raises(SystemExit) as stopped:
        main_linear(["--cfg", "job", f"{key}={bad}"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stopped.value.code == 2 and errors == [f"error: {expected}"]
