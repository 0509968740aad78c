"""`python -m zoo.health --ckpt PATH`: every health metric of a checkpoint in health.json, with the spectrum
pictures; a bad checkpoint is one `error:` line, a metric that cannot be computed a null with its reason."""

import json
import subprocess
import sys

import pytest
import torch
from default_run import compose_run
from pretrain_helpers import REPO

from zoo.build import build_method
from zoo.eval.health import main

TINY = ["data.name=digits", "augment=digits", "data.image_size=16", "data.num_workers=0", "data.eval_batch_size=128",
        "method.proj_hidden=[64]", "method.proj_out=32"]


def write_checkpoint(path, broken=False):
    """An untrained tiny INTL checkpoint (as a run writes it: the harness's state and hyper-parameters); `broken`:
    a backbone weight NaN, as after a diverged step."""
    torch.manual_seed(0)
    model = build_method(compose_run(TINY), num_classes=10, world_size=1)
    if broken:
        with torch.no_grad():
            model.method.backbone.conv1.weight[0, 0, 0, 0] = float("nan")
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return path


def no_nan(text):
    return json.loads(text, parse_constant=lambda constant: pytest.fail(f"{constant} in the JSON"))


def test_writes_every_metric_and_the_pictures_beside_the_checkpoint(tmp_path, capsys):
    checkpoint = write_checkpoint(tmp_path / "last.ckpt")
    main(["--ckpt", str(checkpoint), "--samples", "6", "--views", "3"])
    folder = tmp_path / "last-health"
    report = no_nan((folder / "health.json").read_text())
    assert report["evaluated_images"] == 450 and report["lidar_samples"] == 6 and report["lidar_views"] == 3
    assert report["stages"] == ["layer1", "layer2", "layer3", "layer4"]
    metrics = report["metrics"]
    expected = {"effective_rank", "rankme", "alpha_req", "projector_rankme", "projector_offdiag_correlation", "output_std",
                "lidar", "projector_lidar", "transformed_effective_rank",
                *(f"stage{i}/{key}" for i in range(1, 5) for key in ("effective_rank", "rankme"))}
    assert expected <= set(metrics) and all(metrics[key] is not None for key in expected), report["not_computed"]
    assert metrics["stage4/effective_rank"] == pytest.approx(metrics["effective_rank"], rel=1e-6)
    assert 1 < metrics["lidar"] < 6  # at most n - 1 directions separate 6 images
    for picture in ("spectrum.png", "stage_spectra.png"):
        assert (folder / picture).read_bytes()[:4] == b"\x89PNG"
    assert "health metrics written to" in capsys.readouterr().out


def test_a_diverged_checkpoint_gives_reasons_not_nan(tmp_path, capsys):
    checkpoint = write_checkpoint(tmp_path / "diverged.ckpt", broken=True)
    main(["--ckpt", str(checkpoint), "--out", str(tmp_path / "out"), "--samples", "4", "--views", "2"])
    report = no_nan((tmp_path / "out" / "health.json").read_text())
    assert report["metrics"]["effective_rank"] is None and report["metrics"]["stage1/rankme"] is None
    assert report["metrics"]["lidar"] is None and "non-finite" in report["not_computed"]["lidar"]
    assert set(report["not_computed"]) == {key for key, value in report["metrics"].items() if value is None}
    assert "warning: effective_rank not computed: non-finite values in the embedding" in capsys.readouterr().out


@pytest.mark.parametrize("args, line", [
    (["--ckpt", "missing.ckpt"], "error: checkpoint not found: missing.ckpt"),
    (["--ckpt", "{ckpt}", "--views", "1"], "error: --samples 1000 --views 1: LiDAR needs at least 2 images"),
])
def test_bad_input_is_one_error_line(tmp_path, args, line):
    checkpoint = tmp_path / "x.ckpt"
    checkpoint.write_bytes(b"")
    result = subprocess.run([sys.executable, "-m", "zoo.health", *(a.format(ckpt=checkpoint) for a in args)],
                            capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert result.returncode == 2 and result.stderr.startswith(line) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
