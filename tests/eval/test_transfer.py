"""main_transfer.py: ssl-transfer's logistic-regression search (its numbers from linear.py run with
scikit-learn 1.4.2, tests/fixtures/ssl_transfer_linear.json), the metrics, the 12 data sets read from fake
copies in their on-disk layouts, the few-shot and shift suites, resume after kill -9, bad roots."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import transfer_layouts as layouts
from pretrain_helpers import pretrain_tiny
from run_folders import make_run, rows
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

from zoo.data.transfer import CATALOG, SHIFTS, drawn_validation, list_file, open_split, transfer_transform
from zoo.errors import ZooError
from zoo.eval import transfer
from zoo.eval.transfer import (
    LogisticProbe,
    c_grid,
    few_shot_indices,
    grid_search,
    mean_per_class_accuracy,
    table,
    voc11_average_precision,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((REPO / "tests/fixtures/ssl_transfer_linear.json").read_text())
TINY_TRANSFER = ["transfer.image_size=16", "transfer.num_workers=0", "transfer.c_grid=4", "transfer.progress=false"]


def reference_splits(kind):
    splits = {s: (np.array(x, dtype=np.float32), np.array(y)) for s, (x, y) in REFERENCE["inputs"][kind].items()}
    splits["trainval"] = tuple(np.concatenate(pair) for pair in zip(splits["train"], splits["val"]))
    return splits


# ---- metrics -------------------------------------------------------------------------------------
def test_mean_per_class_accuracy_by_hand_by_sklearn_and_by_ssl_transfer():
    example = REFERENCE["mean_per_class_example"]
    by_hand = (2 / 4 + 1 / 2 + 3 / 4) / 3  # classes 0, 1, 2: 2 of 4, 1 of 2, 3 of 4 right
    assert mean_per_class_accuracy(example["y"], example["pred"]) == pytest.approx(by_hand)
    assert example["score"] == pytest.approx(by_hand)
    assert mean_per_class_accuracy(example["y"], example["pred"]) == pytest.approx(balanced_accuracy_score(example["y"], example["pred"]))


def voc_devkit_ap(positives, scores):
    """VOCevalcls.m's 11-point AP: images by descending score, cumulative precision and recall,
    for t = 0:0.1:1 the largest precision at recall >= t; and that largest precision at t = 0."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.asarray(positives, dtype=int)[order]
    tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
    recall, precision = tp / hits.sum(), tp / (tp + fp)
    return sum((precision[recall >= t].max() if (recall >= t).any() else 0) for t in np.linspace(0, 1, 11)) / 11, precision.max()


def test_eleven_point_average_precision_by_hand_by_voc_and_by_ssl_transfer():
    example = REFERENCE["voc_ap_example"]  # ranks: + - + + - - + -
    by_hand = (3 * 1 + 5 * 3 / 4 + 3 * 4 / 7) / 11  # t <= 0.2: 1; 0.3..0.7: 3/4 (at 3 of 4); 0.8..1: 4/7
    assert voc11_average_precision(example["y"], example["scores"]) == pytest.approx(by_hand)
    assert example["ap"] == pytest.approx(by_hand)
    # VOC's devkit differs at t = 0 only: scikit-learn's curve (ssl-transfer's) starts at recall 0 with
    # precision 1, so its first point is 1 where the devkit's is the largest precision of the ranking
    generator = np.random.RandomState(0)
    differed = 0
    for _ in range(20):
        positives = generator.rand(30) < 0.3
        positives[0] = True
        scores = generator.randn(30) + positives
        devkit, largest = voc_devkit_ap(positives, scores)
        assert voc11_average_precision(positives, scores) == pytest.approx(devkit + (1 - largest) / 11)
        differed += largest < 1
    assert 0 < differed < 20


# ---- the search and the refit -------------------------------------------------------------------
def test_the_c_grid_and_the_drawn_validation_split_are_ssl_transfers():
    assert np.allclose(c_grid(45), [1 / wd for wd in REFERENCE["wd_range"]], rtol=1e-12)
    split = REFERENCE["drawn_split"]
    assert drawn_validation(split["count"], 0.2, 0) == (split["train"], split["val"])


@pytest.mark.parametrize("metric, key", [("top1", "accuracy"), ("mean_per_class", "mean_per_class")])
def test_grid_search_and_refit_give_ssl_transfers_c_and_test_score(metric, key):
    """linear.py's validate() + evaluate() on the same features: the same C and test score."""
    data = reference_splits("single")
    result = grid_search(data["train"], data["val"], data["trainval"], data["test"], metric, c_grid(REFERENCE["grid"]))
    assert result["C"] == pytest.approx(REFERENCE[key]["C"], rel=1e-9)
    assert 100 * result["score"] == pytest.approx(REFERENCE[key]["score"])
    assert 0 < c_grid(REFERENCE["grid"]).index(result["C"]) < REFERENCE["grid"] - 1  # chosen inside the grid


def test_voc_per_label_search_is_close_to_ssl_transfer():
    """The binary fits at 2C stop at 100 L-BFGS iterations at a large C on a path that differs from
    scikit-learn 1.4's 2-class softmax (and its objective's scaling): close, not equal."""
    data = reference_splits("multi")
    result = grid_search(data["train"], data["val"], data["trainval"], data["test"], "map11", c_grid(REFERENCE["grid"]))
    assert abs(100 * result["score"] - REFERENCE["map"]["score"]) < 0.5


def test_two_class_softmax_is_the_binary_fit_at_twice_c():
    """scikit-learn 1.4's multi_class='multinomial' on two classes, converged, against a binary fit at 2C:
    the decision functions agree up to the factor 2 (ranking, hence AP, the same)."""
    reference = REFERENCE["two_class_softmax"]
    data = reference_splits("multi")
    binary = LogisticRegression(C=2 * reference["C"], max_iter=10000, tol=1e-10).fit(data["train"][0], data["train"][1][:, reference["label"]])
    assert np.allclose(binary.decision_function(data["test"][0]), 2 * np.array(reference["decision_test"]), rtol=1e-3, atol=1e-3)


def test_the_search_keeps_the_first_best_c_and_refits_it_on_train_plus_val():
    generator = np.random.RandomState(1)
    split = lambda n: (generator.randn(n, 4).astype(np.float32), np.arange(n) % 3)
    train, val, test = split(12), split(6), split(6)
    trainval = tuple(np.concatenate(pair) for pair in zip(train, val))
    grid = [10.0, 1.0, 0.1, 0.01]
    val_scores = iter([0.5, 0.8, 0.8, 0.2])  # C=1 and C=0.1 tie: the first wins
    fits = []
    original = LogisticProbe.fit

    def fit(self, C, x, y):
        fits.append((C, len(x)))
        return original(self, C, x, y)

    def score(self, fitted, x, y):
        return next(val_scores) if len(fits) <= len(grid) else 0.42

    with mock.patch.object(LogisticProbe, "fit", fit), mock.patch.object(LogisticProbe, "score", score):
        result = grid_search(train, val, trainval, test, "top1", grid)
    assert result["C"] == 1.0 and result["score"] == 0.42 and result["val_score"] == 0.8
    assert fits == [(10.0, 12), (1.0, 12), (0.1, 12), (0.01, 12), (1.0, 18)]  # the refit: C=1 on train + val


def test_few_shot_draws_k_images_per_class_with_a_seed():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 5)
    drawn = few_shot_indices(labels, 4, seed=3)
    assert [int(np.sum(labels[drawn] == c)) for c in range(3)] == [4, 3, 4]  # all 3 of the small class
    assert len(set(drawn.tolist())) == len(drawn)
    assert np.array_equal(drawn, few_shot_indices(labels, 4, seed=3))
    assert not np.array_equal(drawn, few_shot_indices(labels, 4, seed=4))


# ---- the data sets in their layouts -----------------------------------------------------------------
@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    for write in layouts.WRITERS.values():
        write(root)
    return root


def test_every_data_set_reads_from_its_layout(fake_root):
    """Each split of each of the 12 data sets: its images and labels, with the splits ssl-transfer uses."""
    transform = transfer_transform(8)
    expected = {"train": 18, "val": 9, "test": 9}
    counts = {"caltech101": {"train": 84, "test": 12}, "birdsnap": {"train": 18, "test": 8}}  # one test bird not downloaded
    with mock.patch("torchvision.datasets.cifar.check_integrity", return_value=True):  # fake batches, other md5 sums
        for name, spec in CATALOG.items():
            for split in ("train", "val", "test") if spec.has_val else ("train", "test"):
                dataset = open_split(name, fake_root, split, transform)
                assert len(dataset) == counts.get(name, expected)[split], (name, split)
                image, _ = dataset[len(dataset) - 1]
                assert image.shape == (3, 8, 8) and image.dtype == torch.float32
                labels = [dataset[i][1] for i in range(len(dataset))]
                if name == "voc2007":
                    assert np.asarray(labels).shape == (len(dataset), 20)
                    assert np.asarray(labels)[:, :3].sum(axis=1).tolist() == [1] * len(dataset)  # 'difficult' (0) is negative
                else:
                    assert sorted(set(labels)) == [0, 1, 2], (name, split)
    assert [spec.metric for spec in CATALOG.values()].count("mean_per_class") == 4 and CATALOG["voc2007"].metric == "map11"
    assert sorted(n for n, spec in CATALOG.items() if spec.has_val) == ["aircraft", "dtd", "flowers102", "voc2007"]


def test_caltech101_follows_ssl_transfers_split_lists():
    train, test = list_file("caltech101_train.txt.gz"), list_file("caltech101_test.txt.gz")
    assert (len(train), len(test)) == (2416, 6728) and not set(train) & set(test)
    assert len({line.rsplit(" ", 1)[1] for line in train}) == 102  # BACKGROUND_Google is class 0, as theirs
    assert list_file("imagenet_r_wnids.txt") == sorted(list_file("imagenet_r_wnids.txt"))
    assert len(set(list_file("imagenet_r_wnids.txt")) | set(list_file("imagenet_a_wnids.txt"))) > 200
    assert set(list_file("imagenet_a_wnids.txt")) <= set(list_file("imagenet_wnids.txt"))


@pytest.mark.parametrize("overrides", [["transfer.root={tmp}/nowhere"], ["transfer.root={tmp}", "transfer.datasets=[dtd]"],
                                       ["transfer.root={tmp}", "transfer.datasets=[cars]", "transfer.download=true"],
                                       ["transfer.root={tmp}", "suite=shift"]])
def test_a_missing_data_set_or_a_bad_root_is_one_error_line(overrides, tmp_path, capsys):
    """main_transfer.py's entry point, called in this process: exit status 2 and one `error:` line."""
    from zoo.eval.cli import main_transfer

    with pytest.raises(SystemExit) as stopped:
        main_transfer(["--ckpt", str(tmp_path / "none.ckpt"), *(o.format(tmp=tmp_path) for o in overrides)])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert "layout" in err and str(tmp_path) in err


def test_a_bad_root_is_one_error_line_of_the_real_command(tmp_path):
    """The same through `python main_transfer.py`: nothing else on stderr (no warning of an import)."""
    result = subprocess.run([sys.executable, str(REPO / "main_transfer.py"), "--ckpt", str(tmp_path / "none.ckpt"),
                             f"transfer.root={tmp_path}/nowhere"], capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert "layout" in result.stderr and str(tmp_path) in result.stderr


def test_a_folder_that_is_not_an_image_folder_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    with pytest.raises(ZooError, match="not an ImageFolder-style data set"):
        open_split("mine", tmp_path, "train", transfer_transform(8))


def test_a_custom_folder_without_validation_split_draws_one(tmp_path):
    layouts.image_folder(tmp_path, splits=("train", "test"))
    spec, _ = transfer.resolve("folder", tmp_path)
    assert not spec.has_val and spec.metric == "top1"
    assert len(open_split("folder", tmp_path, "test", transfer_transform(8))) == 9
    layouts.image_folder(tmp_path / "other", splits=("train", "val", "test"))
    assert transfer.resolve("other", tmp_path)[0].has_val


# ---- the suites end to end -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    """The tiny pretraining run of tests/eval/test_linear_protocols.py."""
    return pretrain_tiny(tmp_path_factory.mktemp("runs") / "digits") / "checkpoints" / "last.ckpt"


def test_many_shot_resumes_at_the_next_data_set_after_kill_minus_nine(digits_checkpoint, fake_root, tmp_path):
    """Killed after its first data set, the suite restarts at the second: the first's result and
    features are reused, not computed again; summary.json holds every row and the provenance."""
    names = ["aircraft", "pets", "voc2007", "dtd"]
    args = [sys.executable, str(REPO / "main_transfer.py"), "--ckpt", str(digits_checkpoint), f"transfer.root={fake_root}",
            f"transfer.datasets=[{','.join(names)}]", f"run_dir={tmp_path}", *TINY_TRANSFER]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first = tmp_path / "many_shot" / "aircraft.json"
    deadline = time.time() + 900  # a loaded 2-core machine
    while time.time() < deadline and not first.exists() and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists() and not (tmp_path / "summary.json").exists(), "the suite was not killed mid-way"
    cached = sorted(digits_checkpoint.parent.glob("last.ckpt.transfer/aircraft-*/*.pt"))
    assert [p.name for p in cached] == ["test.pt", "train.pt", "val.pt"]
    stamps = [p.stat().st_mtime_ns for p in cached]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"aircraft: taken from {first}" in result.stdout
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["suites"]["many_shot"]["datasets"]
    assert [row["dataset"] for row in rows] == names and summary["protocol"] == "transfer"
    assert all(0 <= row["score"] <= 1 and row["C"] in c_grid(4) for row in rows)
    assert summary["provenance"]["wall_seconds"] > 0 and summary["provenance"]["zoo"]["commit"]
    assert "| aircraft | mean per-class accuracy |" in result.stdout and "byol (paper)" in result.stdout
    assert {row["metric"] for row in rows} == {"top1", "mean_per_class", "map11"}
    assert (rows[0]["train_images"], rows[0]["val_images"], rows[0]["test_images"]) == (18, 9, 9)
    pets = rows[names.index("pets")]  # no validation split: 20% of its 18 training images drawn
    assert (pets["train_images"], pets["val_images"]) == (15, 3)


def test_few_shot_suite_reports_mean_and_std_over_draws(digits_checkpoint, fake_root, tmp_path):
    from zoo.eval.cli import transfer_eval

    summary = transfer_eval(str(digits_checkpoint), [f"transfer.root={fake_root}", "suite=few_shot", "transfer.datasets=[dtd]",
                                                     "few_shot.shots=[1,2]", "few_shot.draws=3", f"run_dir={tmp_path}", *TINY_TRANSFER])
    rows = summary["suites"]["few_shot"]["datasets"]
    for row in rows:
        for shot in row["shots"].values():
            assert len(shot["scores"]) == 3 and shot["mean"] == pytest.approx(np.mean(shot["scores"]))
            assert shot["std"] == pytest.approx(np.std(shot["scores"], ddof=1))
    assert "| dtd | top-1 |" in summary["suites"]["few_shot"]["table"] and "2-shot" in summary["suites"]["few_shot"]["table"]


class FakeCache:
    """Features chosen by the test: one-hot rows of the ImageNet index each image should get."""

    def __init__(self, labels, predicted):
        self.labels, self.predicted = torch.tensor(labels), predicted

    def features(self, dataset, split, build, key):
        build()
        return torch.nn.functional.one_hot(torch.tensor(self.predicted), 1000).float(), self.labels


def write_shift(root, name, wnids, per_class=2):
    wnid_list = list_file("imagenet_wnids.txt")
    for label, wnid in enumerate(wnids):
        folder = str(wnid_list.index(wnid)) if SHIFTS[name].index_folders else wnid
        for i in range(per_class):
            layouts.image(Path(root) / name / folder / f"{i}.jpg", label, i)


def test_shift_maps_folders_to_imagenet_and_predicts_among_the_subset(tmp_path):
    """ImageNet-R: a head over all 1000 classes, restricted to R's 200 (an image whose top logit lies
    outside them counts by its best class inside); ImageNet-V2's folders are class indices."""
    wnids = list_file("imagenet_wnids.txt")
    r = list_file("imagenet_r_wnids.txt")
    head = torch.nn.Linear(1000, 1000)
    with torch.no_grad():
        head.weight.copy_(torch.eye(1000) * 2)  # logits: 2 on the feature's class, 0 elsewhere
        head.bias.zero_()
    cfg = mock.Mock()
    cfg.transfer.root = str(tmp_path)
    write_shift(tmp_path, "imagenet-r", r[:2])
    outside = next(i for i, w in enumerate(wnids) if w not in r)
    index = [wnids.index(w) for w in r[:2]]
    # image 0 right, 1 wrong inside the 200, 2 right, 3 top logit outside the 200 (then class 0 among R's: ties -> first)
    cache = FakeCache([index[0], index[0], index[1], index[1]], [index[0], index[1], index[1], outside])
    data = {"name": "imagenet", "image_size": 8}
    result = transfer.shift(cache, "imagenet-r", cfg, (head, wnids, data))
    assert result["score"] == 0.5 and result["classes"] == 200 and result["test_images"] == 4
    write_shift(tmp_path, "imagenet-v2", [wnids[5], wnids[7]])
    result = transfer.shift(FakeCache([5, 5, 7, 7], [5, 5, 7, 5]), "imagenet-v2", cfg, (head, wnids, data))
    assert result["score"] == 0.75 and result["classes"] == 1000


def test_tables_name_the_metric_and_the_mean():
    rows = [{"dataset": "cifar10", "metric": "top1", "score": 0.9, "C": 0.1}, {"dataset": "pets", "metric": "mean_per_class", "score": 0.8, "C": 1.0}]
    text = table("many_shot", rows, [{"method": "byol", "protocol": "transfer-linear/cifar10", "top1": 93.26}])
    assert text.splitlines()[0] == "| dataset | metric | score | C | byol (paper) |"
    assert "| cifar10 | top-1 | 90.00 | 0.1 | 93.26 |" in text and "| pets | mean per-class accuracy | 80.00 | 1 | – |" in text
    assert text.splitlines()[-1] == "| mean |  | 85.00 |  |  |"


def test_report_shows_transfer_rows_beside_the_papers_numbers(tmp_path):
    from zoo.report import report

    run = make_run(tmp_path / "imagenet/byol", "byol", "imagenet", 300, 2, 4096)
    summary = {"checkpoint": str(run / "checkpoints/last.ckpt"), "protocol": "transfer", "suites": {
        "many_shot": {"datasets": [{"dataset": "cifar10", "metric": "top1", "score": 0.9, "C": 0.1}], "provenance": None},
        "few_shot": {"datasets": [{"dataset": "dtd", "metric": "top1", "shots": {"1": {"mean": 0.3, "std": 0.01}}}]}}}
    (run / "transfer").mkdir()
    (run / "transfer" / "summary.json").write_text(json.dumps(summary))
    table = {row["protocol"]: row for row in rows(report(tmp_path))}
    cifar = table["transfer-linear/cifar10 (top1)"]
    assert (cifar["top-1"], cifar["target top-1"], cifar["Δ top-1"]) == ("90.00", "93.26", "-3.26")
    assert "Ericsson" in cifar["target source"] and table["few-shot/dtd/1-shot (top1)"]["top-1"] == "30.00"
