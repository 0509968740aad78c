"""`python -m zoo.report RUNS_DIR` on generated runs: each evaluation next to its paper target."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pretrain_helpers import TINY, pretrain_in_process
from run_folders import make_run, rows

from zoo.report import SWEEP_BEST, load_targets, main, report

REPO = Path(__file__).resolve().parents[2]


def add_evaluation(run, protocol, folder=None, **values):
    folder = folder or run / "linear"
    folder.mkdir(parents=True)
    summary = {"checkpoint": str(run / "checkpoints/last.ckpt"), "protocol": protocol, **values}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_a_run_sits_next_to_its_target_with_the_difference(tmp_path):
    run = make_run(tmp_path / "cifar10/intl", "intl", "cifar10", 1000, 2, 256, online={"linear_top1": 0.9, "knn_top1": 0.85})
    add_evaluation(run, "LP-SMALL", linear_top1=0.9, linear_top5=0.995, knn5_top1=0.88)
    online, small = rows(report(tmp_path))
    assert online["protocol"] == "online (probe, 20-nn)" and online["target top-1"] == "–" and online["top-1"] == "90.00"
    assert small["protocol"] == "LP-SMALL (5-nn)" and small["run"] == "cifar10/intl" and small["eff. rank"] == "123.4"
    assert (small["top-1"], small["target top-1"], small["Δ top-1"]) == ("90.00", "92.60", "-2.60")
    assert (small["k-NN"], small["target k-NN"], small["Δ k-NN"]) == ("88.00", "90.03", "-2.03")
    assert small["top-5"] == "99.50" and small["target source"] == "INTL README"


def test_rankme_alpha_req_and_lidar_sit_beside_the_effective_rank_where_summaries_have_them(tmp_path):
    with_health = make_run(tmp_path / "a", "intl", "cifar10", 1000, 2, 256, online={"rankme": 98.76, "alpha_req": 1.234, "lidar": 12.34})
    older = make_run(tmp_path / "b", "byol", "cifar10", 1000, 2, 256)
    for run in (with_health, older):
        add_evaluation(run, "LP-SMALL", linear_top1=0.9, knn5_top1=0.88)
    table = {row["run"]: row for row in rows(report(tmp_path)) if row["protocol"].startswith("LP-SMALL")}
    assert (table["a"]["eff. rank"], table["a"]["RankMe"], table["a"]["α-ReQ"], table["a"]["LiDAR"]) == ("123.4", "98.8", "1.23", "12.3")
    assert (table["b"]["RankMe"], table["b"]["α-ReQ"], table["b"]["LiDAR"]) == ("–", "–", "–")  # a summary from before these metrics


def test_every_row_names_its_protocol_and_targets_follow_the_protocol(tmp_path):
    run = make_run(tmp_path / "bt", "barlow_twins", "cifar10", 1000, 2, 256, online={"linear_top1": 0.91})
    add_evaluation(run, "LP-SMALL", linear_top1=0.88, knn5_top1=0.86)
    online, small = rows(report(tmp_path))
    assert online["target top-1"] == "92.10" and online["target source"] == "solo-learn README"  # solo-learn's numbers are online
    assert small["target top-1"] == "88.51" and "CW-RGP table" in small["target source"]
    assert all(row["protocol"] not in ("", "–") for row in (online, small))


def test_recipe_details_tell_two_recipes_of_one_method_apart(tmp_path):
    official = make_run(tmp_path / "official", "wmse", "cifar10", 1000, 2, 512, online={"linear_top1": 0.9},
                        config={"optimizer.scale_lr": False})
    add_evaluation(official, "LP-SMALL", linear_top1=0.9, knn5_top1=0.88)
    make_run(tmp_path / "solo", "wmse", "cifar10", 1000, 2, 256, online={"linear_top1": 0.88})
    by_run = {(r["run"], r["protocol"]): r for r in rows(report(tmp_path))}
    assert by_run[("official", "online (probe, 20-nn)")]["target top-1"] == "–"
    assert by_run[("official", "LP-SMALL (5-nn)")]["target top-1"] == "91.55"
    assert by_run[("solo", "online (probe, 20-nn)")]["target top-1"] == "88.67"


def test_views_epochs_and_the_tiny_imagenet_folder(tmp_path):
    run = make_run(tmp_path / "tiny", "cwrgp", "folder", 1000, 4, 256, done=2, root="/data/tiny-imagenet-200")
    add_evaluation(run, "LP-SMALL", linear_top1=0.5, knn5_top1=0.36)
    _, small = rows(report(tmp_path))
    assert small["dataset"] == "tiny-imagenet" and small["epochs"] == "2/1000" and small["views"] == "4"
    assert small["target top-1"] == "50.24" and small["Δ top-1"] == "-0.24"


def test_evaluations_written_elsewhere_follow_their_checkpoint(tmp_path):
    run = make_run(tmp_path / "runs/imagenet/intl_m_ep100", "intl_m", "imagenet", 100, 6, 256)
    add_evaluation(run, "LP-INTL", folder=tmp_path / "evals/lp", linear_top1=0.73, linear_top5=0.91)
    add_evaluation(run, "SS-INTL-1pct", folder=tmp_path / "evals/semi", linear_top1=0.55, label_fraction=1)
    table = rows(report(tmp_path))
    lp = next(r for r in table if r["protocol"] == "LP-INTL")
    assert lp["run"] == "runs/imagenet/intl_m_ep100" and lp["target top-1"] == "73.50" and lp["Δ top-1"] == "-0.50"
    assert lp["k-NN"] == "–" and lp["target k-NN"] == "–"
    assert any(r["protocol"] == "SS-INTL-1pct, 1% labels" and r["target top-1"] == "–" for r in table)


def test_targets_file_is_well_formed():
    keys = {"method", "dataset", "epochs", "views", "batch", "protocol", "top1", "top5", "knn", "source", "match"}
    protocols = {"online", "LP-SMALL", "LP-INTL", "LP-CW-LARS", "LP-SS-LARS", "LP-FB-BT", "LP-FB-VIC", "LP-SOLO", "LP-SWAV",
                 "LP-CIM", "LP-CIM-IN", "LP-MEC-LARS", "LP-MIXBT", "LP-IVNE", "LP-EMP", "LP-ZEROCL",
                 "LP-DINO"}
    targets = load_targets()
    assert len(targets) > 40
    for target in targets:
        if target["protocol"] == "coco_R_50_C4_2x":  # COCO transfer (downstream/detection): box and mask AP
            assert set(target) <= keys - {"top1", "top5", "knn"} | {"box_ap", "mask_ap"}, target
            assert 0 < target["box_ap"] < 100 and 0 < target["mask_ap"] < 100, target
            continue
        many_shot = target["protocol"].startswith("transfer-linear/")  # main_transfer.py's suite, per data set
        assert set(target) <= keys and (target["protocol"] in protocols or many_shot) and 0 < target["top1"] < 100, target


def test_no_runs_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main([str(tmp_path)])
    assert exit_code.value.code == 2
    assert capsys.readouterr().err == f"error: no runs under {tmp_path} (a run is a folder with the summary.json and config.yaml of main_pretrain.py)\n"


def test_command_line(tmp_path):
    make_run(tmp_path / "run", "vicreg", "imagenet100", 400, 2, 256, online={"linear_top1": 0.79})
    result = subprocess.run([sys.executable, "-m", "zoo.report", str(tmp_path)], check=False, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "| run | vicreg | imagenet100 | 400 | 2 | 256 | online (probe, 20-nn) | 1 | – | 79.00 |" in result.stdout


def test_a_recipe_run_takes_its_own_recipes_targets(tmp_path):
    """Every paper number lives once: in its recipe's config (recipe.targets) or, without a recipe, in
    zoo/targets.yaml; a recipe run's config.yaml carries its recipe's targets."""
    targets = load_targets()
    # all of the reference tables' rows, none lost or repeated in the move: 60, + 21 of SimCLR, MoCo v2+ and BYOL,
    # + 18 of SwAV, DINO, MoCo v2, Zero-CL and Shuffled-DBN, + 1 of SwAV multi-crop, + 8 of the family's READMEs
    # (CorInfoMax 6, MEC 1, FroSSL 1; MMCR's and LeJEPA's recipes state why they have none), + 2 COCO transfers
    # (INTL's and CW-RGP's 200-epoch models), + 32 many-shot transfer rows of Ericsson et al. (4 models x 8 data sets),
    # + 15 of the second wave (Matrix-SSL, Mixed Barlow Twins, I-VNE+, DCL: recipes and zoo/targets.yaml), + 10 of EMP-SSL's
    # README tables (its three recipes and zoo/targets.yaml's Tiny ImageNet rows), + 3 of Zero-CL's official README
    # (its */zero_cl_official recipes), + 2 of SimDINO's README (ViT-B/16 in its recipe,
    # ViT-L/16 in zoo/targets.yaml)
    assert len(targets) == 172
    assert len({json.dumps(t, sort_keys=True) for t in targets}) == 172
    own = [{"method": "cwrgp", "protocol": "LP-SMALL", "top1": 91.0, "knn": 89.0, "source": "its recipe"}]
    run = make_run(tmp_path / "cifar10/cwrgp", "cwrgp", "cifar10", 1000, 4, 256,
                   config={"recipe.name": "cifar10/cwrgp", "recipe.targets": own})
    add_evaluation(run, "LP-SMALL", linear_top1=0.9, knn5_top1=0.88)
    small = rows(report(tmp_path))[1]
    assert (small["target top-1"], small["target k-NN"], small["target source"]) == ("91.00", "89.00", "its recipe")


def seeded_runs(root, seeds, top1s, **config):
    """Runs of one recipe that differ in their seed (and folder), each with a linear evaluation."""
    runs = []
    for seed, top1 in zip(seeds, top1s):
        provenance = {"wall_seconds": 60.0 * (seed + 1), "peak_host_rss_mib": 1024.0 * (seed + 1), "peak_cuda_mib": None}
        run = make_run(root / f"wmse-{seed}", "wmse", "cifar10", 1000, 2, 256, online={"linear_top1": top1, "provenance": provenance},
                       config={"seed": seed, "run_dir": str(root / f"wmse-{seed}"), "optimizer.scale_lr": False, **config})
        add_evaluation(run, "LP-SMALL", linear_top1=top1 + 0.01, knn5_top1=top1, provenance={**provenance, "wall_seconds": 6.0})
        runs.append(run)
    return runs


def test_minutes_of_a_run_of_seconds_keep_two_significant_digits():
    from zoo.report import minutes

    assert minutes([{"wall_seconds": 2.4}]) == "0.04" and minutes([{"wall_seconds": 6.0}]) == "0.1"
    assert minutes([{"wall_seconds": 150.0}]) == "2.5" and minutes([{}]) == "–"


def test_runs_differing_only_in_seed_are_one_row_with_mean_and_std(tmp_path):
    seeded_runs(tmp_path, [0, 1, 2], [0.90, 0.91, 0.92])
    online, small = rows(report(tmp_path))
    assert online["run"] == "wmse-0 (+2)" and online["n"] == "3" and online["seeds"] == "0,1,2"
    assert online["top-1"] == "91.00 ± 1.00"  # sample standard deviation
    assert online["minutes"] == "2.0" and online["peak memory"] == "3.00 GiB host"  # mean time, largest peak
    assert small["n"] == "3" and small["top-1"] == "92.00 ± 1.00" and small["k-NN"] == "91.00 ± 1.00"
    assert small["target top-1"] == "91.55" and small["Δ top-1"] == "+0.45" and small["minutes"] == "0.1"


def test_any_other_difference_is_another_row(tmp_path):
    seeded_runs(tmp_path / "a", [0, 1], [0.90, 0.92])
    seeded_runs(tmp_path / "b", [0], [0.80], **{"optimizer.lr": 0.5})
    table = rows(report(tmp_path))
    assert [(r["run"], r["n"], r["top-1"]) for r in table if r["protocol"].startswith("online")] == [
        ("a/wmse-0 (+1)", "2", "91.00 ± 1.41"), ("b/wmse-0", "1", "80.00")]


def test_three_digits_seeds_are_one_row_of_the_report(tmp_path, monkeypatch, capsys):
    """Real runs: main_pretrain.py's entry point with seed=0/1/2 (in this process: a new one per seed would spend
    most of its time importing torch), then `python -m zoo.report` as a user runs it."""
    one_step = [o for o in TINY if not o.startswith(("trainer.limit_", "data.batch_size="))]
    one_step += ["data.batch_size=16", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "trainer.max_epochs=1"]
    for seed in range(3):
        code, _, err = pretrain_in_process(monkeypatch, capsys, *one_step, f"seed={seed}", f"run_dir={tmp_path / f'seed{seed}'}")
        assert code == 0, err[-2000:]
    result = subprocess.run([sys.executable, "-m", "zoo.report", str(tmp_path)], check=True, capture_output=True, text=True,
                            cwd=REPO)
    (online,) = rows(result.stdout.strip())
    assert online["run"] == "seed0 (+2)" and online["n"] == "3" and online["seeds"] == "0,1,2"
    summaries = [json.loads((tmp_path / f"seed{seed}" / "summary.json").read_text()) for seed in range(3)]
    assert [s["steps"] for s in summaries] == [1, 1, 1]  # trainer.limit_train_batches=1 is one batch, not all of them
    ranks = [s["effective_rank"] for s in summaries]
    assert len(set(ranks)) == 3  # the seeds gave different runs
    mean, std = (float(part) for part in online["k-NN"].split(" ± "))
    assert 0 <= mean <= 100 and std >= 0 and online["top-1"].count("±") == 1
    assert float(online["minutes"]) > 0 and online["peak memory"].endswith("GiB host" if not torch.cuda.is_available() else "GiB GPU")


def test_collapsed_diverged_and_interrupted_runs_are_flagged(tmp_path):
    make_run(tmp_path / "fine", "simclr", "cifar10", 100, 2, 256, online={"finished": True, "collapsed": None})
    make_run(tmp_path / "collapsed", "vicreg", "cifar10", 100, 2, 256,
             online={"finished": True, "collapsed": "backbone effective rank 1.50 < 2", "skipped_nonfinite_steps": [7, 90]})
    make_run(tmp_path / "diverged", "intl", "cifar10", 100, 2, 256, done=3,
             online={"finished": False, "stopped": "method intl diverged at step 1234: non-finite loss (loss=nan)"})
    make_run(tmp_path / "stopped", "byol", "cifar10", 100, 2, 256, done=40, online={"finished": False, "stopped": "stopped by SIGTERM"})
    by_run = {row["run"]: row for row in rows(report(tmp_path))}
    assert by_run["fine"]["flags"] == "–"
    assert by_run["collapsed"]["flags"] == "collapsed, 2 non-finite steps skipped"
    assert by_run["diverged"]["flags"] == "diverged" and by_run["diverged"]["epochs"] == "3/100"
    assert by_run["stopped"]["flags"] == "unfinished (stopped by SIGTERM)"


def test_runs_of_one_seed_count_once(tmp_path):
    """Runs that differ only in their logger are one seed, not several: 5 runs of seeds 2,0,1,0,0 are n = 3."""
    seeded_runs(tmp_path, [0, 1, 2], [0.90, 0.91, 0.92])
    for logger, top1 in (("wandb", 0.94), ("tensorboard", 0.92)):  # seed 0 again: its mean is 0.92
        make_run(tmp_path / f"wmse-0-{logger}", "wmse", "cifar10", 1000, 2, 256, online={"linear_top1": top1},
                 config={"seed": 0, "logger": logger, "run_dir": str(tmp_path / logger), "optimizer.scale_lr": False})
    online = next(row for row in rows(report(tmp_path)) if row["protocol"].startswith("online"))
    assert online["n"] == "3" and online["seeds"] == "0 (3 runs),1,2"
    assert online["top-1"] == "91.67 ± 0.58"  # mean ± std of 92 (seed 0's three runs), 91 and 92


def test_a_knn_sweeps_best_has_its_own_column(tmp_path):
    """main_knn.py's best of its settings is picked on the split it is scored on: never in the k-NN column."""
    run = make_run(tmp_path / "run", "intl", "cifar10", 1000, 2, 256, online={"knn_top1": 0.85})
    add_evaluation(run, "kNN-sweep", folder=run / "knn", best_top1=0.973, settings=144, results=[])
    online, sweep = rows(report(tmp_path))
    assert online["k-NN"] == "85.00" and online[SWEEP_BEST] == "–"
    assert sweep["protocol"] == "kNN-sweep" and sweep["k-NN"] == "–" and sweep["top-1"] == "–"
    assert sweep[SWEEP_BEST] == "97.30 (best of 144)"
    assert "picked on the eval split" in SWEEP_BEST


def test_folders_left_out_are_listed_with_the_reason(tmp_path):
    make_run(tmp_path / "done", "intl", "cifar10", 1000, 2, 256, online={"knn_top1": 0.85})
    (tmp_path / "failed" / "checkpoints").mkdir(parents=True)
    (tmp_path / "failed" / "config.yaml").write_text("method: {name: intl}\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text('{"method": "intl", ')
    add_evaluation(tmp_path / "gone", "LP-SMALL", folder=tmp_path / "orphan", linear_top1=0.5)
    table, notes = report(tmp_path).split("\n\n")
    assert [row["run"] for row in rows(table)] == ["done"]
    assert notes.splitlines() == [
        "Not in the table (3):",
        "- broken/summary.json: unreadable summary.json (JSONDecodeError)",
        "- failed: no summary.json: the run failed, was stopped or is still running",
        f"- orphan: LP-SMALL of {tmp_path / 'gone/checkpoints/last.ckpt'}, whose run is not found",
    ]


def test_a_coco_transfer_sits_beside_the_papers_box_and_mask_ap(tmp_path):
    """downstream/detection's metrics.json (percent) is two rows of its checkpoint's run, each beside the
    AP its recipe states (intl_m_ep200: the INTL README's 41.2 box / 35.7 mask)."""
    targets = [t for t in load_targets() if t["protocol"] == "coco_R_50_C4_2x" and t["method"] == "intl_m"]
    run = make_run(tmp_path / "imagenet/intl_m_ep200", "intl_m", "imagenet", 200, 6, 256,
                   config={"recipe.name": "imagenet/intl_m_ep200", "recipe.targets": targets})
    (run / "coco").mkdir()
    metrics = {"bbox_AP": 40.0, "segm_AP": 36.0, "bbox_AP50": 60.0, "config": "coco_R_50_C4_2x",
               "ckpt": str(run / "checkpoints/last.ckpt")}
    (run / "coco" / "metrics.json").write_text(json.dumps(metrics))
    box, mask = [r for r in rows(report(tmp_path)) if r["protocol"].startswith("coco_R_50_C4_2x")]
    assert (box["protocol"], box["top-1"], box["target top-1"], box["Δ top-1"]) == ("coco_R_50_C4_2x (box AP)", "40.00", "41.20", "-1.20")
    assert (mask["protocol"], mask["top-1"], mask["target top-1"], mask["Δ top-1"]) == ("coco_R_50_C4_2x (mask AP)", "36.00", "35.70", "+0.30")


def test_a_recipe_run_with_other_epochs_finds_the_published_number_of_that_length(tmp_path):
    """The INTL table's 100-epoch, batch-512 row is the 2-view recipe at that length (zoo/targets.yaml)."""
    own = [{"method": "intl", "dataset": "imagenet", "epochs": 800, "protocol": "LP-INTL", "top1": 73.1, "source": "INTL README"}]
    run = make_run(tmp_path / "imagenet/intl", "intl", "imagenet", 100, 2, 512,
                   config={"recipe.name": "imagenet/intl", "recipe.targets": own})
    add_evaluation(run, "LP-INTL", linear_top1=0.69)
    lp = next(r for r in rows(report(tmp_path)) if r["protocol"] == "LP-INTL")
    assert (lp["target top-1"], lp["target source"]) == ("69.50", "INTL table (copy)")
