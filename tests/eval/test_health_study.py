"""The spectral-health study (benchmarks/spectral_health_study.py): its plan, its rank statistics and its
selection losses on runs whose numbers are known, and the report it writes from a folder of finished runs."""

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "end_to_end"))
from test_benchmarks import benchmark_here, load_benchmark


@pytest.fixture(scope="module")
def study():
    return load_benchmark("spectral_health_study")


def row(method, linear, seed=0, variant="default", collapsed=False, **metrics):
    return {"method": method, "variant": variant, "seed": seed, "failed": None, "linear_top1": linear,
            "collapsed": collapsed, **metrics}


def by_key(table, key):
    return next(t for t in table if t["key"] == key)


def test_every_variant_names_a_registered_method_and_a_field_of_its_config(study):
    from zoo.registry import get_method

    for method, variants in study.VARIANTS.items():
        fields = {f.name for f in dataclasses.fields(get_method(method).Config)}
        for overrides in variants:
            for override in overrides:
                key = override.split("=", 1)[0]
                assert key.startswith("method.") and key.removeprefix("method.") in fields, (method, override)


def test_every_variant_passes_its_methods_checks_on_the_default_runs_config(study):
    """A variant the method refuses (CW-RGP's groups too narrow for its whitening size) would be a planned run that
    never trains: main_pretrain.py's checks on each composed variant, before any data or model."""
    from zoo.data import data_spec
    from zoo.pretrain import check_batch_config
    from zoo.registry import get_method

    for method, variants in study.VARIANTS.items():
        for overrides in variants:
            cfg = study.compose_config([f"method={method}", *overrides])
            method_cls = get_method(method)
            method_cls.check_views(len(data_spec(cfg.data).crops))
            check_batch_config(cfg, method_cls, world_size=1)


def test_rank_statistics_and_selection_loss_of_known_runs(study):
    # a: rises with accuracy (Spearman 1); b: falls with it (-1); alpha: 1 at the best run
    rows = [row("m", 0.5, rankme=10.0, lidar=1.0, alpha_req=1.0), row("m", 0.3, variant="a", rankme=5.0, lidar=2.0, alpha_req=1.4),
            row("m", 0.1, variant="b", rankme=1.0, lidar=3.0, alpha_req=0.2, collapsed=True),
            row("n", 0.4, rankme=float("nan"), lidar=1.0, alpha_req=0.9), row("n", 0.2, variant="a", rankme=None, lidar=2.0, alpha_req=3.0),
            row("n", 0.9, seed=1, rankme=0.0, lidar=0.0, alpha_req=9.0)]  # another seed: not a hyper-parameter to pick
    table = study.analyse(rows[:-1])
    assert study.analyse(rows)[1:] != table[1:]  # the last run counts in the correlations ...
    assert [t["selection_loss"] for t in study.analyse(rows)] == [t["selection_loss"] for t in table]  # ... not in a pick
    rankme, lidar, alpha = by_key(table, "rankme"), by_key(table, "lidar"), by_key(table, "alpha_req")
    assert (rankme["runs"], rankme["missing"]) == (3, 2)  # a NaN and a None are missing, never a number
    assert rankme["spearman"] == pytest.approx(1.0) and rankme["kendall"] == pytest.approx(1.0)
    assert rankme["selection_loss"] == 0.0 and rankme["groups"] == 1  # n has one finite value: no choice to make
    assert rankme["random_pick_loss"] == pytest.approx(100 * (0.5 - 0.3))
    assert lidar["spearman"] == pytest.approx(-9 / math.sqrt(90)) and lidar["runs"] == 5  # tied ranks (1.5,3.5,5,1.5,3.5) against (5,3,1,4,2)
    assert lidar["selection_loss"] == pytest.approx(100 * ((0.5 - 0.1) + (0.4 - 0.2)) / 2)  # picks each method's worst
    assert alpha["selection_loss"] == 0.0  # the closest to 1 is the best in both methods
    assert alpha["spearman"] == pytest.approx(0.9)
    assert rankme["collapsed_runs"] == 1 and rankme["spearman_collapsed"] is None  # one run has no ranking


def test_the_plan_runs_every_methods_variants_of_one_seed_before_the_next_seed(study):
    runs = study.plan(["intl", "st"], [0, 1])
    first = 2 * (1 + len(study.LR_FACTORS)) + len(study.VARIANTS["intl"]) + len(study.VARIANTS["st"])
    assert {seed for *_, seed in runs[:first]} == {0} and {seed for *_, seed in runs[first:]} == {1}
    assert ("intl", "lr0.9", ["optimizer.lr=0.9"], 0) in runs and ("st", "p0.25", ["method.p=0.25"], 1) in runs  # INTL's lr 0.3 x 3
    assert len(runs) == 2 * first


def test_the_default_shares_the_embedded_benchmarks_folder_and_variants_have_their_own(study, tmp_path):
    assert study.run_dir(tmp_path, "intl", "default", 1) == tmp_path / "intl-seed1"
    assert study.run_dir(tmp_path, "intl", "iters8", 0) == tmp_path / "intl@iters8-seed0"
    assert study.slug(["method.proj_out=512", "method.proj_hidden=[512,512]"]) == "proj_out512_proj_hidden512-512"


def fake_run(folder, linear, **summary):
    (folder / "linear").mkdir(parents=True)
    (folder / "benchmark.json").write_text(json.dumps({"pretrain_seconds": 1.0, "load_average": 0.0, "failed": None}))
    (folder / "summary.json").write_text(json.dumps({"steps": 105, "knn_top1": linear + 0.1, "effective_rank": 10.0,
                                                     "collapsed": None, **summary}))
    (folder / "linear" / "summary.json").write_text(json.dumps({"linear_top1": linear}))


def test_analyse_only_reads_finished_runs_and_writes_the_report(study, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    fake_run(runs / "intl-seed0", 0.40, rankme=50.0)
    fake_run(runs / "intl@lr0.03-seed0", 0.20, rankme=20.0)
    fake_run(runs / "intl@iters8-seed0", 0.30, rankme=30.0, collapsed="backbone effective rank 1.2 < 2")
    (runs / "intl@lr0.9-seed0").mkdir()
    (runs / "intl@lr0.9-seed0" / "benchmark.json").write_text(
        json.dumps({"pretrain_seconds": 1.0, "load_average": 0.0, "failed": "error: the loss became nan at step 3"}))
    out = benchmark_here(study, monkeypatch, capsys, "--out", str(runs), "--methods", "intl", "--seeds", "0",
                         "--analyse-only", "--report", str(tmp_path / "report"))
    assert "3 finished runs of 7 planned (1 failed), 1 methods, 1 collapsed" in out
    line = next(line for line in out.splitlines() if line.startswith("| RankMe, backbone |"))
    assert line.split(" | ")[1:4] == ["3", "1.00", "1.00"]
    report = json.loads((tmp_path / "report" / "rows.json").read_text())
    assert sorted(r["variant"] for r in report["rows"]) == ["default", "iters8", "lr0.03", "lr0.9"]
    assert (tmp_path / "report" / "scatter.png").stat().st_size > 10_000
    assert "| k-NN top-1 (uses labels) |" in (tmp_path / "report" / "table.md").read_text()
    assert not any(math.isnan(t["spearman"]) for t in report["table"] if t["spearman"] is not None)


def test_each_methods_picks_name_the_run_the_labels_and_each_metric_keep(study):
    rows = [row("m", 0.5, projector_rankme=10.0, alpha_req=3.0), row("m", 0.3, variant="lr0.03", projector_rankme=20.0, alpha_req=1.1),
            row("m", 0.1, variant="iters8", projector_rankme=5.0, alpha_req=None), row("m", 0.6, seed=1, projector_rankme=1.0),
            row("n", 0.4, projector_rankme=1.0)]
    (m,) = study.picks(rows)  # m's seed 1 and n have one run each: nothing to pick from
    assert (m["method"], m["seed"], m["runs"], m["best"]) == ("m", 0, 3, ("default", 0.5))
    assert m["projector_rankme"] == ("lr0.03", 0.3) and m["alpha_req"] == ("lr0.03", 0.3)
    assert m["offline_lidar"] is None  # measured on no run
    assert "| m | 0 | 3 | default: 0.500 | lr0.03: 0.300 |" in study.picks_markdown([m])


def test_offline_lidar_measures_at_most_n_runs_with_the_papers_setting_and_is_read_back(study, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for seed, linear in ((0, 0.4), (1, 0.2)):
        fake_run(runs / f"intl-seed{seed}", linear, rankme=10.0, lidar=3.0)
    calls = []

    def zoo_health(script, *args):
        calls.append((script, *args))
        out = Path(args[args.index("--out") + 1])
        out.mkdir()
        (out / "health.json").write_text(json.dumps({"metrics": {"lidar": 50.0, "projector_lidar": 70.0}}))

    monkeypatch.setattr(study, "run", zoo_health)
    plan = [("intl", "default", [], 0), ("intl", "default", [], 1)]
    rows = study.collect(runs, plan, ["data.root=/cache", "trainer.max_steps=2"], max_new=0, max_offline=1)
    assert calls == [("-m zoo.health", "--ckpt", str(runs / "intl-seed0" / "checkpoints" / "last.ckpt"), "--out",
                      str(runs / "intl-seed0" / "health"), "data.root=/cache")]  # no --samples/--views: its defaults, 1000 x 50
    assert (rows[0]["offline_lidar"], rows[0]["offline_projector_lidar"], rows[0]["lidar"]) == (50.0, 70.0, 3.0)
    assert rows[1]["offline_lidar"] is None  # the second run is over the budget: missing, not measured
    again = study.collect(runs, plan, ["data.root=/cache"], max_new=0, max_offline=0)
    assert again[0]["offline_lidar"] == 50.0 and len(calls) == 1
