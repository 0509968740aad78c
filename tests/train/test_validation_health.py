"""The health metrics a validation adds during a fit: each backbone stage's spectra (metrics.csv, summary.json,
stage_spectra.png) and LiDAR of augmented views, the same number `zoo.metrics.health.lidar` gives on those views."""

import csv
import json

import pytest
import torch
from pretrain_helpers import PROBE_TINY, pretrain_here

from zoo.build import load_method
from zoo.data import data_spec
from zoo.data.views import AugmentedViews
from zoo.metrics.health import lidar

SAMPLES, VIEWS = 8, 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-step fit of the tiny digits run, validated once, with LiDAR on 8 images x 3 views."""
    run_dir = tmp_path_factory.mktemp("runs") / "health"
    args = [arg for arg in PROBE_TINY if not arg.startswith("trainer.limit_train_batches=")]
    code, _, err = pretrain_here(*args, "trainer.limit_train_batches=2", f"eval.lidar_samples={SAMPLES}",
                                 f"eval.lidar_views={VIEWS}", f"run_dir={run_dir}")
    assert code == 0, err[-3000:]
    return run_dir


def test_each_stage_is_logged_summarised_and_drawn(run):
    with open(run / "metrics.csv") as file:
        validations = [row for row in csv.DictReader(file) if row.get("val/effective_rank")]
    assert len(validations) == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stages"] == ["layer1", "layer2", "layer3", "layer4"]
    for stage in range(1, 5):
        for key in ("effective_rank", "rankme"):
            assert float(validations[0][f"val/stage{stage}/{key}"]) == pytest.approx(summary[f"stage{stage}/{key}"], rel=1e-6)
            assert summary[f"stage{stage}/{key}"] > 1
    # the last stage's pooled output is the backbone's features: the same spectrum
    assert summary["stage4/effective_rank"] == pytest.approx(summary["effective_rank"], rel=1e-6)
    assert summary["stage4/rankme"] == pytest.approx(summary["rankme"], rel=1e-6)
    assert (run / "stage_spectra.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_online_lidar_is_the_lidar_of_the_same_views(run):
    method, cfg = load_method(run / "checkpoints" / "last.ckpt")  # the weights the validation saw (step 2)
    views = AugmentedViews(data_spec(cfg.data), SAMPLES, VIEWS, cfg.seed)
    features, projections = [], []
    with torch.no_grad():
        for chunk in views.batches(4):
            h = method.backbone(chunk.flatten(0, 1))
            features.append(h.reshape(len(chunk), VIEWS, -1))
            projections.append(method.projector(h).reshape(len(chunk), VIEWS, -1))
    summary = json.loads((run / "summary.json").read_text())
    with open(run / "metrics.csv") as file:
        logged = [float(row["val/lidar"]) for row in csv.DictReader(file) if row.get("val/lidar")]
    assert logged == [pytest.approx(summary["lidar"], rel=1e-6)]
    assert lidar(torch.cat(features)).value == pytest.approx(summary["lidar"], rel=1e-5)
    assert lidar(torch.cat(projections)).value == pytest.approx(summary["projector_lidar"], rel=1e-5)
