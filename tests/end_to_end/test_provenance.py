"""Every entry point's summary carries its provenance with real values: a tiny digits pretraining,
main_linear.py's three protocols, main_knn.py and COCO detection (metrics.json), their entry points called
in this process."""

import json
import subprocess

import lightning
import pytest
import timm
import torch
from detection_helpers import train_coco_here
from pretrain_helpers import REPO, TINY, pretrain_here

from zoo.eval.cli import main_knn, main_linear
from zoo.provenance import TrainingMeter, provenance


def git(*args):
    return subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def check_provenance(record, trained=True):
    """The fields every summary holds, with values that can only come from a real run."""
    assert record["wall_seconds"] > 0
    assert record["peak_host_rss_mib"] > 100  # a process with torch loaded
    assert record["memory_per_process"][0]["host_rss_mib"] == record["peak_host_rss_mib"]
    if torch.cuda.is_available():
        assert record["peak_cuda_mib"] > 0 and record["accelerator"].startswith("cuda (")
    else:
        assert record["peak_cuda_mib"] is None and record["accelerator"].startswith("cpu (")
    assert record["devices"] == 1 and record["nodes"] == 1 and record["precision"] == "32-true"
    assert record["zoo"]["commit"] == git("rev-parse", "HEAD")
    assert record["zoo"]["dirty"] == bool(git("status", "--porcelain", "--untracked-files=no"))
    assert record["zoo"]["version"] and record["versions"]["torch"] == torch.__version__
    assert record["versions"]["lightning"] == lightning.__version__ and record["versions"]["timm"] == timm.__version__
    assert "dali" in record["versions"] and isinstance(record["deterministic"], bool)
    if not trained:
        assert record["training"] is None and record["lr_per_group"] == [] and record["batch"] is None
        return
    training = record["training"]
    assert training["steps"] > 0 and training["images"] > 0 and training["seconds"] > 0
    assert training["images_per_second"] > 0 and training["steps_per_second"] > 0
    # both kept to 4 significant digits: at most 5e-4 relative each
    assert training["images_per_second"] == pytest.approx(training["images"] / training["seconds"], rel=1.1e-3)
    assert record["batch"]["global"] == record["batch"]["per_device"] > 0
    assert record["lr_per_group"] and all(group["lr"] > 0 and group["parameters"] > 0 for group in record["lr_per_group"])


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("provenance") / "run"
    code, _, err = pretrain_here(*TINY, "trainer.max_epochs=1", "seed=3", "trainer.deterministic=true", f"run_dir={run_dir}")
    assert code == 0, err[-3000:]
    return run_dir


def test_pretraining_summary(pretrained):
    summary = json.loads((pretrained / "summary.json").read_text())
    record = summary["provenance"]
    check_provenance(record)
    assert record["seed"] == 3 and record["deterministic"] is True  # trainer.deterministic passed through to Lightning
    assert record["training"]["steps"] == 3 and record["training"]["images"] == 3 * 32
    assert record["batch"] == {"global": 32, "per_device": 32}
    # the backbone + projector group trains at the scaled lr (0.3 x 32 / 256), the probe at its own
    assert record["lr_per_group"][0]["lr"] == pytest.approx(summary["lr"]) == pytest.approx(0.3 * 32 / 256)
    assert record["training"]["seconds"] < record["wall_seconds"]


@pytest.mark.parametrize("protocol, args", [
    ("precomputed", ["linear.epochs=3"]),
    ("frozen", ["linear.protocol=frozen", "linear.epochs=1", "linear.batch_size=64", "linear.knn_k=0",
                "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false"]),
    ("finetune", ["linear.protocol=finetune", "linear.epochs=1", "linear.batch_size=32", "linear.backbone_lr=0.01",
                  "linear.knn_k=0", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                  "trainer.enable_progress_bar=false"]),
])
def test_linear_summaries(pretrained, tmp_path, protocol, args):
    out = tmp_path / protocol
    main_linear(["--ckpt", str(pretrained / "checkpoints" / "last.ckpt"), *args, "data.num_workers=0", "seed=5", f"run_dir={out}"])
    record = json.loads((out / "summary.json").read_text())["provenance"]
    check_provenance(record)
    assert record["seed"] == 5
    if protocol == "precomputed":  # 3 epochs over digits' 1,347 training images in batches of up to 1000
        assert record["training"]["images"] == 3 * 1347 and record["training"]["steps"] == 6
        assert record["batch"]["per_device"] == 1000 and record["lr_per_group"][0]["lr"] == pytest.approx(1e-2)
    else:
        batch = int(next(a for a in args if a.startswith("linear.batch_size=")).split("=")[1])
        assert record["training"]["steps"] == 2 and record["batch"]["per_device"] == batch
    if protocol == "finetune":  # the classifier's lr and the backbone's
        assert [group["lr"] for group in record["lr_per_group"]] == pytest.approx([1e-2, 1e-2])
        assert record["lr_per_group"][1]["parameters"] > 10**6


def test_knn_sweep_summary(pretrained, tmp_path):
    main_knn(["--ckpt", str(pretrained / "checkpoints" / "last.ckpt"), "--k", "5", "--temperatures", "0.1",
              "--features", "backbone", "--out", str(tmp_path / "knn"), "data.num_workers=0"])
    record = json.loads((tmp_path / "knn" / "summary.json").read_text())["provenance"]
    check_provenance(record, trained=False)  # a sweep trains nothing


def test_detection_metrics(workdir, coco_root, r50_checkpoint, capsys):
    output = workdir / "provenance-run"
    code, _, err = train_coco_here(capsys, "--ckpt", r50_checkpoint[0], "--coco-root", coco_root, "--config", "cpu_smoke",
                                   "--output", output, "--max-iter", 2)
    assert code == 0, err
    record = json.loads((output / "metrics.json").read_text())["provenance"]
    check_provenance(record)
    assert record["training"]["steps"] == 2 and record["seed"] == 0
    assert {group["weight_decay"] for group in record["lr_per_group"]} == {1e-4, 0.0}  # convs, and norms (decay 0)


def test_the_meter_times_training_and_not_what_lies_between(monkeypatch):
    clock = iter([10.0, 10.5, 11.0, 20.0, 20.25])
    monkeypatch.setattr("zoo.provenance.time.perf_counter", lambda: next(clock))
    meter = TrainingMeter()
    meter.start(torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.5), "cpu")  # 10.0
    meter.step(8), meter.step(8)  # 10.5, 11.0
    meter._restart_clock()  # 20.0: e.g. after a validation
    meter.step(4, world_size=2)  # 20.25
    assert (meter.steps, meter.images, meter.seconds) == (3, 24, 1.25)
    record = provenance(0.0, seed=1, meter=meter)
    assert record["training"]["images_per_second"] == pytest.approx(24 / 1.25)
    assert record["lr_per_group"] == [{"group": 0, "lr": 0.5, "weight_decay": 0, "parameters": 3}]
