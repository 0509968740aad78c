"""The committed benchmarks run end to end at their CI sizes (subprocesses, as a user runs them) and print
a table row per method / item: benchmarks/step_time.py --tiny (and its solo-learn setting), benchmarks/gpu_check.py
in its CPU mode (and its GPU path's one-line errors for a missing piece), benchmarks/loss_scaling.py --tiny.
benchmarks/step_time_solo_learn.py needs solo-learn, which is not a dependency: here only its message when
solo-learn is missing, and its pairing of the two sides."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
# The methods the CI runs time (every method's step itself is tested in tests/methods/test_every_method.py): a whitening one, the
# multi-crop one and a four-crop one.
STEP_METHODS = ["intl", "cwrgp"]
CHECK_METHODS = ["intl", "intl_m", "cwrgp"]
LOADERS = ["dali_gpu", "dali_cpu", "torchvision"]
AUGMENTS = ["intl_imagenet", "intl_multicrop"]
SCALING_LOSSES = ["intl", "st", "wmse", "cwrgp", "barlow_twins", "vicreg"]


def run(script, *args, timeout=300):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=REPO, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{script} failed:\n{result.stderr[-4000:]}"
    return result.stdout


def rows_starting(text, first_cell):
    return [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]


def load_benchmark(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def benchmark_here(module, monkeypatch, capsys, *args):
    """A benchmark script's main() called in this process (the runs it starts are still processes of their own),
    with this process's torch threads put back afterwards -> stdout."""
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *args])
    try:
        module.main()
    finally:
        torch.set_num_threads(threads)
    return capsys.readouterr().out


def test_step_time_tiny_has_a_row_per_method_and_the_overheads(tmp_path, monkeypatch, capsys):
    out = benchmark_here(load_benchmark("step_time"), monkeypatch, capsys, "--tiny", "--methods", *STEP_METHODS, "--json",
                         str(tmp_path / "step_time.json"))
    assert out.startswith("step_time: ") and "Training" not in out  # the progress bar stays on stderr
    for method in STEP_METHODS:
        assert len(rows_starting(out, method)) == 1, method
    # 16 px on a CPU: the zoo trains NCHW (wants_channels_last), the overhead table sets NHWC beside it
    assert "| trainer.fit (the zoo), channels_last off |" in out and "| bare loop, channels_last on |" in out
    data = json.loads((tmp_path / "step_time.json").read_text())
    assert set(data["methods"]) == set(STEP_METHODS)
    for method, row in data["methods"].items():
        assert row["timed_steps"] == 2 and row["step"] > 0, method
        parts = sum(row[phase] for phase in ("data", "forward", "loss", "probe", "backward", "optimiser", "logging", "other"))
        assert parts == pytest.approx(row["step"], rel=1e-6), method  # the phases add up to the step
        assert row["forward"] > 0 and row["backward"] > 0 and row["optimiser"] > 0, method
    assert data["methods"]["intl"]["step_metrics_per_step"] == 5  # loss, probe loss, probe top-1, mse, trace
    overhead = data["overhead"]
    assert overhead["method"] == "intl" and overhead["bare"]["probe"] == 0 and overhead["bare"]["logging"] == 0


def test_step_time_as_solo_learn_prints_one_result_line_per_method(monkeypatch, capsys):
    out = benchmark_here(load_benchmark("step_time"), monkeypatch, capsys, "--as-solo-learn", "--methods", "barlow_twins", "wmse",
                         "--steps", "1", "--warmup", "1", "--batch", "8", "--size", "16", "--threads", "1",
                         "--overhead-method", "none")
    results = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("step_result ")]
    assert [r["method"] for r in results] == ["barlow_twins", "wmse"] and {r["driver"] for r in results} == {"zoo"}
    for result in results:
        assert result["timed_steps"] == 1 and result["threads"] == 1
        assert 0 < result["compute_s_per_step"] <= result["s_per_step"]
        assert result["img_per_s"] == pytest.approx(8 / result["s_per_step"], rel=1e-2)


@pytest.mark.skipif(importlib.util.find_spec("solo") is not None, reason="solo-learn is installed here")
def test_solo_learn_driver_without_solo_learn_says_where_to_run_it():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "step_time_solo_learn.py"), "--methods", "vicreg"],
                            cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith("error: solo-learn is not importable")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_solo_learn_pairs_run_at_once_on_two_cores_swapped_every_repeat():
    sys.path.insert(0, str(BENCHMARKS))
    from step_time_solo_learn import measure_pair

    cores = sorted(os.sched_getaffinity(0))[:2]
    report = ("import json, os, time; start = time.time(); time.sleep(1); "
              "print('step_result', json.dumps({'cores': sorted(os.sched_getaffinity(0)), 'start': start}))")
    side = [sys.executable, "-c", report]
    for repeat, (zoo_core, solo_core) in enumerate([cores, cores[::-1]]):
        pair = measure_pair(side, side, repeat, cores)
        assert pair["zoo"]["cores"] == [zoo_core] and pair["solo"]["cores"] == [solo_core]
        assert abs(pair["zoo"]["start"] - pair["solo"]["start"]) < 0.9  # at once, not one after the other


def test_gpu_check_cpu_mode_writes_a_row_per_item(tmp_path):
    out = run("gpu_check.py", "--out", str(tmp_path), "--cpu", "--methods", *CHECK_METHODS)
    assert out.splitlines()[0].startswith("gpu_check: CPU mode")
    table = json.loads((tmp_path / "table.json").read_text())
    markdown = (tmp_path / "table.md").read_text()
    assert markdown.splitlines()[0] == out.splitlines()[0]
    expected = {f"loader/{loader}/{augment}" for loader in LOADERS for augment in AUGMENTS}
    expected |= {f"method/{method}/channels_last={cl}/compile={compiled}"
                 for method in CHECK_METHODS for cl in ("off", "on") for compiled in ("off", "on")}
    rows = {row["item"]: row for row in table["rows"]}
    assert set(rows) == expected and len(table["rows"]) == len(expected)
    assert table["mode"] == "cpu-tiny"
    for augment in AUGMENTS:
        assert rows[f"loader/dali_gpu/{augment}"]["status"].startswith("skipped")
        assert rows[f"loader/torchvision/{augment}"]["status"] == "ok"
        assert rows[f"loader/torchvision/{augment}"]["images_per_s"] > 0
    multicrop = rows["loader/torchvision/intl_multicrop"]
    assert multicrop["crops"] == 6 and multicrop["crop_sizes"][0] > multicrop["crop_sizes"][-1]
    for key, row in rows.items():
        if key.startswith("method/"):
            assert row["status"] == "ok", (key, row["status"])
            assert row["s_per_step"] > 0 and 0 < row["loss_share"], key
    assert rows["method/cwrgp/channels_last=off/compile=off"]["crops"] == 4
    assert rows["method/intl_m/channels_last=off/compile=off"]["crops"] == 6
    # the markdown has the same rows: 6 loader rows and 4 per method
    for loader in LOADERS:
        assert len(rows_starting(markdown, loader)) == len(AUGMENTS)
    for method in CHECK_METHODS:
        assert len(rows_starting(markdown, method)) == 4


# gpu_check.py's GPU path on a machine that claims one GPU (torch.cuda patched) but lacks a piece that run needs:
# here each piece is really missing (DALI hidden from the import, no GPU for nvJPEG or NCCL to run on).
GPU_PATH = """
import sys
import torch
sys.path.insert(0, {benchmarks!r})
torch.cuda.is_available = lambda: True
torch.cuda.get_device_name = lambda *args: "a pretend GPU"
{hide}
import gpu_check
{patch}
gpu_check.exit_on_user_error(gpu_check.main)(["--out", {out!r}, "--images", "2", "--no-compile"])
"""
MISSING_PIECES = {
    "dali": ("sys.modules['nvidia.dali'] = None", "", "error: NVIDIA DALI is not installed"),
    "nvjpeg": ("", "", "error: DALI's GPU JPEG decoder (nvJPEG"),
    "nccl": ("", "gpu_check.check_nvjpeg = lambda jpeg: (375, 500, 3)",
             ("error: NCCL does not run on this GPU: ", "error: this torch has no NCCL backend")),  # CUDA / CPU wheel
}


@pytest.mark.parametrize("piece", MISSING_PIECES)
def test_gpu_check_gpu_path_stops_with_one_line_naming_the_missing_piece(tmp_path, piece):
    pytest.importorskip("nvidia.dali")
    hide, patch, message = MISSING_PIECES[piece]
    code = GPU_PATH.format(benchmarks=str(BENCHMARKS), hide=hide, patch=patch, out=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:") or "Traceback" in line]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), result.stderr[-3000:]


def test_loss_scaling_tiny_has_a_row_per_loss_and_a_plot(tmp_path, monkeypatch, capsys):
    png, numbers = tmp_path / "scaling.png", tmp_path / "scaling.json"
    out = benchmark_here(load_benchmark("loss_scaling"), monkeypatch, capsys, "--tiny", "--png", str(png), "--json", str(numbers))
    for loss in SCALING_LOSSES:
        assert len(rows_starting(out, loss)) == 2, loss  # one in the batch table, one in the dimension table
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(numbers.read_text())["losses"]
    assert set(data) == set(SCALING_LOSSES)
    assert data["st"]["dim"]["seconds"]["16"] == "rank-def."  # 16 channels cannot whiten 16 samples
    for loss, entry in data.items():
        measured = [t for t in entry["batch"]["seconds"].values() if isinstance(t, float)]
        assert measured and all(t > 0 for t in measured), loss


def digits_m_benchmark():
    return load_benchmark("digits_m_all_methods")


def test_digits_m_all_methods_runs_its_controls_and_resumes(tmp_path, monkeypatch, capsys):
    """INTL at two steps: the raw-pixel and untrained (3 steps) rows, INTL's row with the condition number of its
    whitened output (none for the pixels), the gap over the untrained control, the time in reference steps; a
    second call reads every finished run instead of training it again. On the plain digits (`--data digits`):
    the same script, a quarter of digits_m's evaluation images to embed (tests/data/test_digits_m.py builds those)."""
    benchmark = digits_m_benchmark()
    options = ["--methods", "intl", "--data", "digits", "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "rows.json"),
               "--linear-override", "linear.epochs=2"]
    overrides = ["trainer.max_steps=2", "trainer.limit_val_batches=1", "data.num_workers=0"]
    out = benchmark_here(benchmark, monkeypatch, capsys, *options, "--reference-steps", "1", *overrides)
    assert out.startswith("digits_m_all_methods: ") and "data digits, seeds 0" in out.splitlines()[0]
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    assert [r["row"] for r in rows] == ["raw pixels", "untrained", "intl"]
    _, untrained, intl = rows
    assert untrained["steps"] == 3 and intl["steps"] == 2 and intl["transformed_condition_number"] >= 1
    assert rows_starting(out, "raw pixels")[0].split(" | ")[4] == "-"
    assert rows_starting(out, "intl") == [f"| {' | '.join(benchmark.cells('intl', [intl]))} |"]
    for key, name in (("knn_top1", "k-NN"), ("linear_top1", "linear")):
        assert f"intl over the untrained control, {name} top-1: {100 * (intl[key] - untrained[key]):+.1f} points" in out
    reference = next(line for line in out.splitlines() if line.startswith("reference step (ResNet-18, 256 crops of 16 px"))
    seconds = float(reference.split(": ")[1].split(" s")[0])
    budget = next(line for line in out.splitlines() if line.startswith("intl: pretraining "))
    assert budget.startswith(f"intl: pretraining {intl['pretrain_seconds']:.0f} s = ") and budget.endswith(" reference steps")
    assert abs(int(budget.split(" = ")[1].split()[0]) - intl["pretrain_seconds"] / seconds) <= 1  # printed seconds are rounded
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/summary.json")}
    assert len(stamps) == 2
    again = benchmark_here(benchmark, monkeypatch, capsys, *options, "--", *overrides)  # no reference steps this time
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/summary.json")} == stamps
    assert rows_starting(again, "intl") == rows_starting(out, "intl")
    assert rows_starting(again, "untrained") == rows_starting(out, "untrained")


def test_a_failed_run_is_a_row_that_says_why_and_the_benchmark_goes_on(tmp_path):
    out = run("digits_m_all_methods.py", "--methods", "intl", "--no-controls", "--out", str(tmp_path / "runs"),
              "--", "optimizer.lr=-1", timeout=300)
    assert rows_starting(out, "intl")[0].endswith("| - | - | 0 failed |")
    assert "intl seed 0 failed: error: optimizer.lr=-1.0 must be positive" in out
    assert json.loads((tmp_path / "runs" / "intl-seed0" / "benchmark.json").read_text())["failed"].startswith("error: ")


def test_digits_m_rows_pool_seeds_as_mean_and_std_and_the_gap_uses_the_means():
    """Seeds pooled per row as mean +- std; a failed seed is named in the seeds column and left out of every
    number, the gap included."""
    bench = digits_m_benchmark()
    rows = [{"row": name, "seed": seed, "knn_top1": knn, "linear_top1": linear, "effective_rank": 10.0 + seed,
             "transformed_condition_number": None, "pretrain_seconds": 100.0 + seed, "load_average": 1.0, "failed": None}
            for name, knn, linear, seed in [("untrained", 0.2, 0.1, 0), ("intl", 0.5, 0.4, 0),
                                            ("untrained", 0.3, 0.2, 1), ("intl", 0.6, 0.6, 1)]]
    rows.append({**rows[-1], "seed": 2, "knn_top1": None, "linear_top1": None, "effective_rank": None,
                 "pretrain_seconds": 40.0, "failed": "error: the loss became nan at step 45"})
    pooled = bench.summarise(rows)
    assert list(pooled) == ["untrained", "intl"]
    assert bench.cells("intl", pooled["intl"]) == ["intl", "0.550 +- 0.071", "0.500 +- 0.141", "10.5 +- 0.7", "-",
                                                   "100 +- 1", "1.0 +- 0.0", "0,1,2 failed"]
    assert bench.gap_lines(pooled, "intl") == [
        "intl over the untrained control, k-NN top-1: +30.0 points (0.550 against 0.250)",
        "intl over the untrained control, linear top-1: +35.0 points (0.500 against 0.150)"]
    assert bench.gap_lines(pooled, "vicreg") == []


def test_digits_family_selection_names_registered_methods():
    """`--family` runs the whitening / spectral family of docs/spectral_family.md: every name a registered method."""
    module = digits_m_benchmark()
    from zoo.registry import method_names

    assert set(module.FAMILY) <= set(method_names()) and len(module.FAMILY) == 14
    assert all(f"({m})" in (REPO / "docs" / "spectral_family.md").read_text().replace("`", "") for m in module.FAMILY)


def test_precision_tiny_gives_each_methods_loss_in_float32_and_16_bit_autocast(tmp_path):
    out = run("precision.py", "--tiny", "--json", str(tmp_path / "precision.json"))
    assert out.startswith("precision: ") and "| method | float32 loss | bf16 autocast (rel. diff.) | fp16 autocast (rel. diff.) |" in out
    data = json.loads((tmp_path / "precision.json").read_text())
    assert list(data["losses"]) == ["intl", "simclr", "wmse"]
    for method, losses in data["losses"].items():
        assert len(rows_starting(out, method)) == 1, method
        assert set(losses) == {"float32", "bf16 autocast", "fp16 autocast"}
        reference = losses["float32"]
        # bfloat16 keeps 8 bits of mantissa: the same loss to about 1 %, but not bit for bit (autocast did run)
        assert losses["bf16 autocast"] != reference and abs(losses["bf16 autocast"] - reference) < 0.02 * abs(reference), method
        assert abs(losses["fp16 autocast"] - reference) < 0.01 * abs(reference), method
