"""python -m zoo.tables (scripts/tables/<paper>/<table>.sh): every table's plan resolves every command;
a two-row table runs every step of its chains on the CPU, resumes after kill -9 without redoing a finished
step and prints its table; the submitit launcher's SLURM jobs (to a stand-in sbatch) depend on each other."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from detection_helpers import write_tiny_coco
from recipe_helpers import TINY_RUN

from zoo.tables import TRAIN_IMAGES, chains, load_table, main, split_overrides, table_names

REPO = Path(__file__).resolve().parents[2]
PAPER_TABLES = ["intl/imagenet_linear", "intl/imagenet_semi", "intl/coco", "cwrgp/small_datasets", "cwrgp/imagenet",
                "solo-learn/cifar", "solo-learn/imagenet100", "spectral/family"]


def test_every_table_of_the_issue_is_a_config_with_its_script():
    assert table_names() == sorted(PAPER_TABLES)
    for name in PAPER_TABLES:
        script = REPO / "scripts" / "tables" / f"{name}.sh"
        assert script.is_file() and name in script.read_text()
        assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert subprocess.run(["bash", "-n", str(REPO / "scripts" / "tables" / "_table.sh")], check=False).returncode == 0


@pytest.mark.parametrize("name", PAPER_TABLES)
def test_the_plan_of_every_table_resolves_every_command(name, tmp_path, capsys):
    """--plan composes every pretraining command as main_pretrain.py's --cfg job does and every protocol
    as main_linear.py's --cfg job does (a command that does not resolve is an error), and runs nothing."""
    main([name, "--plan", "--runs", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    table = load_table(name)
    assert out.count(" pretrain [to run]: ") == len(table["rows"])
    for row in table["rows"]:
        assert f"main_pretrain.py experiment={row['recipe']} " in out
        for protocol in row["protocols"]:
            assert f"linear {protocol} [to run]" in out and f"experiment={protocol} " in out
    assert out.count("detection coco_R_50_C4_2x [to run]: 8 GPU(s) x 1 node(s)") == sum(bool(r.get("detection")) for r in table["rows"])
    assert "GPU-hours in all" in out
    assert not (tmp_path / "runs").exists()


def test_plan_commands_are_what_the_entry_points_resolve(tmp_path, monkeypatch, capsys):
    """The plan's pretraining and protocol commands, run with --cfg job through their entry points (called in
    this process), resolve (exit 0) to the run folder the plan names."""
    from pretrain_helpers import pretrain_in_process

    from zoo.eval.cli import main_linear

    table = load_table("intl/coco")
    chain = chains(table, split_overrides([]), tmp_path, tmp_path / "coco")[0]
    pretrain, linear = chain.steps[0], chain.steps[1]
    for name in ("DATA_DIR", "RUN_DIR", "NUM_GPUS", "NUM_NODES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(REPO)
    assert pretrain.argv[:2] == [sys.executable, str(REPO / "main_pretrain.py")]
    code, out, err = pretrain_in_process(monkeypatch, capsys, *pretrain.argv[2:], "--cfg", "job")
    assert code == 0, err[-2000:]
    assert yaml.safe_load(out)["run_dir"] == str(chain.run_dir)
    assert linear.argv[:2] == [sys.executable, str(REPO / "main_linear.py")]
    at = linear.argv.index("--ckpt")
    main_linear([*linear.argv[2:at], *linear.argv[at + 2:], "--cfg", "job"])
    assert yaml.safe_load(capsys.readouterr().out)["linear"]["name"] == "LP-INTL"


def test_the_plan_takes_the_images_per_second_an_earlier_run_measured(tmp_path, capsys):
    earlier = tmp_path / "runs" / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "config.yaml").write_text(yaml.safe_dump({"recipe": {"name": "imagenet/intl_m_ep200"}}))
    provenance = {"training": {"images_per_second": 2000.0}, "devices": 4, "nodes": 1, "peak_cuda_mib": 30000.0}
    (earlier / "summary.json").write_text(json.dumps({"provenance": provenance}))
    main(["intl/coco", "--plan", "--runs", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    hours = TRAIN_IMAGES["imagenet"] * 200 / (2000.0 / 4) / 3600
    assert f"~{hours:.1f} GPU-hours (measured: 500 images/s per GPU in {earlier})" in out
    assert "imagenet/cwrgp_ep200" in out and "(assumed rate)" in out  # no earlier run of that recipe


def test_seeds_are_a_sweep_each_its_own_run(tmp_path):
    """seed=0,1 gives every row one chain per seed, in folders that differ only by the seed's id (zoo.report
    puts runs that differ only in `seed` into one row, mean ± std)."""
    table = load_table("intl/coco")
    found = chains(table, split_overrides(["seed=0,1", "trainer.max_epochs=3"]), tmp_path, tmp_path / "coco")
    assert [(c.recipe, c.seed) for c in found] == [(r["recipe"], seed) for r in table["rows"] for seed in (0, 1)]
    assert len({c.run_dir for c in found}) == 4
    for chain in found:
        assert f"seed={chain.seed}" in chain.steps[0].argv and "trainer.max_epochs=3" in chain.steps[0].argv
        assert f"seed={chain.seed}" in chain.steps[1].argv  # each protocol runs with its chain's seed


@pytest.mark.parametrize("args, expected", [
    (["nopaper/table", "--plan"], "unknown table 'nopaper/table'"),
    (["intl/coco", "--plan", "seed=a"], "seeds are integers"),
    (["intl/coco", "--plan", "trainer.max_epochs"], "'trainer.max_epochs' is not an override"),
    (["intl/coco", "--plan", "trainer.no_such_key=1"], "trainer.no_such_key"),
    (["intl/coco", "--plan", "scheduler.name=cosin"], "scheduler.name=cosin is not one of: cosine, step, constant"),
    (["intl/coco", "--plan", "hydra/launcher=joblib"], "hydra/launcher=joblib"),
    (["intl/coco", "--plan", "hydra.launcher.partition=gpu"], "needs a submitit launcher: add hydra/launcher=submitit_slurm"),
    (["intl/coco", "hydra/launcher=submitit_slurm"], 'Could not detect "srun"'),  # no cluster on this PATH
])
def test_bad_input_is_one_line(args, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun or sbatch, whatever the machine has
    with pytest.raises(SystemExit):
        main([*args, "--runs", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and expected in err[0], err


def test_a_table_naming_a_missing_protocol_is_one_line(tmp_path, capsys):
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump({"rows": [{"recipe": "cifar10/intl", "protocols": ["cifar10/nope"]}]}))
    with pytest.raises(SystemExit):
        main([str(path), "--plan"])
    assert "protocol 'cifar10/nope' (row cifar10/intl) is not in zoo/configs/linear/experiment" in capsys.readouterr().err


# ---- SLURM through the submitit launcher, without a cluster ---------------------------------------------
FAKE_SBATCH = """#!/usr/bin/env bash
n=$(( $(ls "{log}" | wc -l) + 100 ))
cp "$1" "{log}/$n.sh"
echo "Submitted batch job $n"
"""
FAKE_SACCT = """#!/usr/bin/env bash
echo "JobID|State|NodeList"
for id in $(seq 100 120); do echo "$id|RUNNING|node1"; done
"""


def test_submitit_slurm_submits_each_chain_as_dependent_requeueable_jobs(tmp_path, monkeypatch, capsys):
    """hydra/launcher=submitit_slurm composes the plugin's SlurmQueueConf with the command's settings;
    each step is an sbatch job with its recipe's GPUs (one task per GPU for Lightning), after the step
    before it; run again while they are queued, nothing is submitted twice."""
    bin_dir, log = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH.format(log=log)), ("sacct", FAKE_SACCT), ("srun", "#!/bin/sh\nexit 1\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    args = ["intl/coco", "--runs", str(tmp_path / "runs"), "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
            "hydra.launcher.account=lab"]
    main(args)
    out = capsys.readouterr().out
    jobs = {int(path.stem): path.read_text() for path in log.iterdir()}
    assert sorted(jobs) == list(range(100, 106)) and "submitted 6 jobs" in out
    assert "| run |" not in out  # the table is printed once the jobs are done
    pretrain, linear, detection = jobs[100], jobs[101], jobs[102]
    for job in jobs.values():
        assert "#SBATCH --partition=gpu" in job and "#SBATCH --account=lab" in job and "--signal=USR2@120" in job
    assert "#SBATCH --gpus-per-node=4" in pretrain and "#SBATCH --ntasks-per-node=4" in pretrain and "--dependency" not in pretrain
    assert "#SBATCH --dependency=afterok:100" in linear and "#SBATCH --gpus-per-node=4" in linear
    assert "#SBATCH --dependency=afterok:101" in detection and "#SBATCH --gpus-per-node=8" in detection
    assert "#SBATCH --ntasks-per-node=1" in detection  # run.sh starts its own processes (torchrun)
    assert "--dependency" not in jobs[103]  # the next chain starts on its own
    main(args)
    out = capsys.readouterr().out
    assert len(list(log.iterdir())) == 6 and out.count("already queued as job") == 6


# ---- a two-row table, end to end on the CPU ------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    """A two-row table on a fake ImageNet folder and a fake COCO: row 1 the INTL ResNet-50 recipe with
    LP-INTL and detection (cpu_smoke), row 2 Barlow Twins' ImageNet-100 recipe (ResNet-18) with LP-SOLO."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for label, colour in enumerate(((200, 40, 40), (40, 40, 200))):
            folder = root / "images" / split / f"n0000000{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(colour, 40, size=(40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.JPEG")
    write_tiny_coco(root / "coco", "train", [(96, 64)] * 3, first_image_id=1)
    write_tiny_coco(root / "coco", "val", [(96, 72), (64, 96)], first_image_id=101)
    rows = [{"recipe": "imagenet/intl", "protocols": ["imagenet/intl"], "detection": "cpu_smoke"},
            {"recipe": "imagenet-100/barlow_twins", "overrides": ["backbone.name=resnet18"], "protocols": ["imagenet-100/barlow_twins"]}]
    (root / "table.yaml").write_text(yaml.safe_dump({"title": "two rows", "rows": rows}))
    yield root
    shutil.rmtree(root, ignore_errors=True)  # the table's runs: about 0.7 GB, kept only while the module runs


def tiny_arguments(root, *extra):
    pretrain = [o for o in TINY_RUN if not o.startswith(("backbone.", "method.proj_hidden"))]
    linear = ["linear.epochs=1", "linear.batch_size=8", "data.num_workers=0", "trainer.max_steps=2", "trainer.enable_progress_bar=false"]
    return [str(root / "table.yaml"), "--runs", str(root / "runs"), "--coco", str(root / "coco"), f"data.root={root / 'images'}",
            "method.proj_hidden=[64]", *pretrain, *(f"linear:{o}" for o in linear), "detection:--max-iter=2", *extra]


@pytest.mark.slow
def test_a_two_row_table_runs_every_step_resumes_after_kill_and_prints_its_table(tiny_table, monkeypatch, capsys):
    for name in ("DATA_DIR", "RUN_DIR", "NUM_GPUS", "NUM_NODES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.chdir(REPO)
    runs = tiny_table / "runs"
    # Killed (-9, the whole process group) once row 1 is pretrained: its linear probe is under way.
    first = subprocess.Popen([sys.executable, "-m", "zoo.tables", *tiny_arguments(tiny_table)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 1800
    while not list(runs.glob("imagenet/intl-*/summary.json")) and time.time() < deadline and first.poll() is None:
        time.sleep(1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    summary = next(runs.glob("imagenet/intl-*/summary.json"))
    before = summary.stat().st_mtime_ns
    assert not list(runs.glob("imagenet-100/*/summary.json"))  # row 2 never started

    # The same command continues, here through submitit's local executor (hydra/launcher=submitit_local); its
    # entry point is called in this process (each step still runs in a process of its own).
    main(tiny_arguments(tiny_table, "hydra/launcher=submitit_local"))
    out = capsys.readouterr().out
    assert f"[imagenet/intl seed 0] pretrain: done ({summary}), skipped" in out
    assert summary.stat().st_mtime_ns == before
    assert "submitted as local job" in out
    run_dir = summary.parent
    assert json.loads((run_dir / "eval" / "imagenet-intl" / "summary.json").read_text())["protocol"] == "LP-INTL"
    assert json.loads((run_dir / "detection-cpu_smoke" / "metrics.json").read_text())["iteration"] == 2
    row2 = next(runs.glob("imagenet-100/barlow_twins-*"))
    assert json.loads((row2 / "summary.json").read_text())["steps"] == 2
    assert json.loads((row2 / "eval" / "imagenet-100-barlow_twins" / "summary.json").read_text())["protocol"] == "LP-SOLO"
    table = out[out.index("two rows"):]
    for label in ("online (probe, 20-nn)", "LP-INTL", "cpu_smoke (box AP)", "cpu_smoke (mask AP)", "LP-SOLO"):
        assert f"| {label} |" in table
    assert "| 80.16 |" in table  # the LP-SOLO row beside solo-learn's number (the recipe's target)

    # Once more: every step is skipped and the table printed again.
    main(tiny_arguments(tiny_table))
    out = capsys.readouterr().out
    assert out.count("skipped") == 5 and "| LP-SOLO |" in out
