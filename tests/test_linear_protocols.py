"""main_linear.py's protocols (precomputed, frozen, finetune on SimCLR's label subsets), its LARS
and schedules; main_knn.py's sweep and zoo.report on a digits run."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from zoo.backbones import create_backbone
from zoo.config import BackboneConfig, LinearConfig
from zoo.errors import ZooError
from zoo.eval import finetune
from zoo.eval.cli import main_linear
from zoo.eval.finetune import label_subset
from zoo.eval.linear import LinearProbe, epoch_lr_factor, make_optimizer
from zoo.eval.transfer import load_head

# The plain digits (not the default digits_m): a few steps already separate them, which the checks rely on.
TINY = ["data.name=digits", "augment=digits", "data.batch_size=32", "data.num_workers=0", "data.image_size=16", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2", "trainer.check_val_every_n_epoch=1", "trainer.enable_progress_bar=false",
        "method.proj_hidden=[64]", "method.proj_out=32"]
QUIET = ["data.num_workers=0", "trainer.enable_progress_bar=false"]


def linear_config(**values):
    return OmegaConf.structured(LinearConfig(**values))


def pretrain_tiny(run_dir):
    """A tiny pretraining run (TINY) into `run_dir`, through the entry point (called in this process)."""
    from test_pretrain import pretrain_here

    code, _, err = pretrain_here(*TINY, f"run_dir={run_dir}")
    assert code == 0, err[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return pretrain_tiny(tmp_path_factory.mktemp("runs") / "digits")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """train/ and val/ of two classes of 16 px JPEGs, named like ImageNet files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    for split, count in (("train", 6), ("val", 2)):
        for label in (0, 1):
            folder = root / split / f"n0{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (16, 16), (200 * label, 50, 100)).save(folder / f"n0{label}_{i}.JPEG")
    return root


# ---- schedules and optimisers ---------------------------------------------------------------
def test_epoch_schedules():
    step = epoch_lr_factor(linear_config(schedule="step", milestones=[60, 80], epochs=100))
    assert [step(e) for e in (0, 59, 60, 79, 80, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cosine = epoch_lr_factor(linear_config(schedule="cosine", epochs=100))
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0)
    exponential = epoch_lr_factor(linear_config(schedule="exponential", lr=1e-2, final_lr=1e-6, epochs=500))
    assert exponential(0) == 1.0 and exponential(500) == pytest.approx(1e-4)
    assert epoch_lr_factor(linear_config(schedule="constant"))(19) == 1.0


def test_lars_probe_adapts_every_parameter_without_clipping():
    """apex LARC (trust 0.001, clip off), as the CW-RGP and SimSiam probes: with no weight decay the
    step is lr x 0.001 x |w| / |g| x g, on biases too."""
    weight = torch.nn.Parameter(torch.ones(4))
    weight.grad = torch.full((4,), 2.0)
    optimizer = make_optimizer([weight], linear_config(optimizer="lars", lr=1.0, weight_decay=0.0, momentum=0.0))
    optimizer.step()
    assert torch.allclose(weight.detach(), torch.full((4,), 1 - 0.001 * (2 / 4) * 2))


# ---- the frozen and finetune probes -------------------------------------------------------------
def fit_probe(protocol):
    torch.manual_seed(0)
    backbone_cfg = OmegaConf.merge(OmegaConf.structured(BackboneConfig),
                                   {"name": "resnet18", "small_stem": "true", "small_stem_padding": 1})
    backbone = create_backbone(backbone_cfg, 16)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    images, labels = torch.randn(16, 3, 16, 16), torch.arange(16) % 2
    loader = DataLoader(TensorDataset(images, labels), batch_size=8)
    model = LinearProbe(backbone, 2, linear_config(protocol=protocol, optimizer="sgd", lr=0.1, backbone_lr=0.1, epochs=2))
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, loader, loader)
    changed = [k for k, v in backbone.state_dict().items() if not torch.equal(v, before[k])]
    return model, changed


def test_frozen_probe_leaves_weights_and_batchnorm_statistics_alone():
    model, changed = fit_probe("frozen")
    assert changed == []
    assert [h["epoch"] for h in model.history] == [0, 1] and all(0 <= h["top1"] <= h["top5"] <= 1 for h in model.history)


def test_finetune_trains_the_backbone_too():
    _, changed = fit_probe("finetune")
    assert any(k.endswith("weight") for k in changed) and any(k.endswith("running_mean") for k in changed)


# ---- SimCLR's label subsets ----------------------------------------------------------------
def test_label_subset_keeps_the_listed_files(image_folder, tmp_path):
    from torchvision.datasets import ImageFolder

    (tmp_path / "1percent.txt").write_text("n00_0.JPEG\nn01_3.JPEG\nn01_99.JPEG\n")
    subset = label_subset(ImageFolder(image_folder / "train"), 1, tmp_path)
    assert sorted(Path(subset.dataset.samples[i][0]).name for i in subset.indices) == ["n00_0.JPEG", "n01_3.JPEG"]


def test_offline_subset_download_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(finetune, "SUBSET_URL", "http://127.0.0.1:9/{percent}percent.txt")
    with pytest.raises(ZooError) as error:
        finetune.label_subset_names(10, tmp_path / "cache")
    message = str(error.value)
    assert "\n" not in message and message.startswith("cannot download http://127.0.0.1:9/10percent.txt")
    assert f"put that file at {tmp_path / 'cache' / '10percent.txt'}" in message


# ---- main_linear.py, main_knn.py and the report on a digits run -----------------------------------
def run_linear(*args):
    main_linear([*args, *QUIET])


def test_precomputed_protocol(digits_run):
    run_linear("--ckpt", str(digits_run / "checkpoints/last.ckpt"), "linear.epochs=20")
    summary = json.loads((digits_run / "linear" / "summary.json").read_text())
    assert summary["protocol"] == "LP-SMALL" and summary["procedure"] == "precomputed"
    assert summary["linear_top1"] > 0.3 and summary["knn5_top1"] > 0.5
    head = torch.load(digits_run / "linear" / "linear_head.pt", weights_only=False)  # for main_transfer.py's shift suite
    assert head["weight"].shape == (10, 512) and head["data"]["name"] == "digits" and head["classes"] is None
    with pytest.raises(ZooError, match="no class names"):
        load_head(digits_run / "linear" / "linear_head.pt")


def test_frozen_lars_probe(digits_run, tmp_path):
    run_linear("--ckpt", str(digits_run / "checkpoints/last.ckpt"), "linear.name=LP-CW-LARS", "linear.protocol=frozen",
               "linear.optimizer=lars", "linear.lr=0.4", "linear.schedule=cosine", "linear.epochs=1", "linear.batch_size=128",
               "linear.knn_k=5", "trainer.limit_train_batches=3", f"run_dir={tmp_path}")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["protocol"] == "LP-CW-LARS" and summary["procedure"] == "frozen" and summary["best_epoch"] == 0
    assert 0 <= summary["linear_top1"] <= summary["linear_top5"] <= 1 and summary["knn5_top1"] > 0.5
    assert torch.load(tmp_path / "linear_head.pt", weights_only=False)["bias"].shape == (10,)


def test_finetune_on_a_label_subset(digits_run, image_folder, tmp_path):
    (tmp_path / "1percent.txt").write_text("n00_0.JPEG\nn00_1.JPEG\nn01_0.JPEG\nn01_1.JPEG\n")
    run_linear("--ckpt", str(digits_run / "checkpoints/last.ckpt"), "data.name=folder", f"data.root={image_folder}",
               "linear.protocol=finetune", "linear.label_fraction=1", f"linear.subset_dir={tmp_path}", "linear.optimizer=sgd",
               "linear.lr=0.1", "linear.backbone_lr=0.01", "linear.schedule=constant", "linear.epochs=1", "linear.batch_size=4",
               "linear.knn_k=0")
    summary = json.loads((digits_run / "semi-1pct" / "summary.json").read_text())
    assert summary["procedure"] == "finetune" and summary["label_fraction"] == 1 and summary["train_images"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["linear.protocol=nope"], "linear.protocol=nope is not one of: precomputed, frozen, finetune"),
        (["linear.label_fraction=1"], "linear.label_fraction is 1 or 10"),
        (["data.nope=1"], "Key 'nope' not in 'DataConfig'"),
    ],
)
def test_bad_linear_config_is_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main_linear(["--cfg", "job", *args])
    assert exit_code.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_knn_sweep_prints_a_table_and_feeds_the_report(digits_run, capsys):
    from zoo.eval.cli import main_knn as knn_main
    from zoo.report import report

    knn_main(["--ckpt", str(digits_run / "checkpoints/last.ckpt"), "--k", "1,5", "--temperatures", "0.1,0.5", "data.num_workers=0"])
    out = capsys.readouterr().out
    assert "| features | distance | T | k=1 | k=5 |" in out
    for row in ("| backbone | cosine | 0.1 |", "| backbone | euclidean | - |", "| projector | cosine | 0.5 |"):
        assert row in out
    summary = json.loads((digits_run / "knn" / "summary.json").read_text())
    assert len(summary["results"]) == 2 * (2 * 2 + 2) and summary["best_top1"] > 0.5 and "knn_top1" not in summary

    table = report(digits_run.parent)
    rows = [line for line in table.splitlines() if line.startswith("| digits ")]
    protocols = {row.split(" | ")[6] for row in rows}
    assert {"online (probe, 20-nn)", "kNN-sweep"} <= protocols
    assert all(" intl | digits | 1 | 2 | 32 |" in row for row in rows)


def test_euclidean_5nn_breaks_ties_toward_the_smallest_label():
    """The LP-SMALL 5-nn (htdt/self-supervised eval/knn.py): majority label of the 5 nearest, a tie
    going to the smallest label (sorted `unique` counts, first argmax). Random labels tie often."""
    from zoo.metrics.knn import knn_predict, topk_accuracy

    generator = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(500, 8, generator=generator), torch.randn(2000, 8, generator=generator)
    bank_labels, labels = torch.randint(0, 10, (500,), generator=generator), torch.randint(0, 10, (2000,), generator=generator)
    nearest = bank_labels[torch.cdist(queries, bank).topk(5, dim=1, largest=False).indices]
    expected = []
    for row in nearest.tolist():
        counts = {label: row.count(label) for label in row}
        expected.append(min(label for label, count in counts.items() if count == max(counts.values())))
    expected = torch.tensor(expected)
    scores = knn_predict(bank, bank_labels, queries, 10, k=5, distance="euclidean")
    counts = torch.stack([torch.bincount(row, minlength=10) for row in nearest])
    ties = ((counts == counts.max(dim=1, keepdim=True).values).sum(dim=1) > 1).sum()
    assert ties > 300, "the case needs many ties"
    assert torch.equal(scores.argmax(1), expected) and torch.equal(scores.topk(1, dim=1).indices[:, 0], expected)
    assert topk_accuracy(scores, labels)[0] == pytest.approx((expected == labels).float().mean().item())


def test_cosine_knn_at_temperature_001_matches_float64():
    """exp(similarity / 0.01) overflows float32 above a similarity of 0.887, tying every class at inf (the
    smallest label wins): the vote must rank the classes as float64 does. Ten close classes, k = 200."""
    from zoo.metrics.knn import knn_predict, topk_accuracy

    generator = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(1, 64, generator=generator) + 0.25 * torch.randn(10, 64, generator=generator), dim=1)

    def sample(n):
        labels = torch.arange(n) % 10
        return centres[labels] + 0.03 * torch.randn(n, 64, generator=generator), labels

    (bank, bank_labels), (queries, labels) = sample(2000), sample(300)
    similarity, index = (F.normalize(queries.double(), dim=1) @ F.normalize(bank.double(), dim=1).T).topk(200, dim=1)
    assert similarity.min() > 0.887  # every weight of the float32 formula would be inf
    reference = torch.zeros(300, 10, dtype=torch.float64).scatter_add_(1, bank_labels[index], (similarity / 0.01).exp())
    scores = knn_predict(bank, bank_labels, queries, 10, k=200, temperature=0.01)
    assert torch.isfinite(scores).all()
    assert torch.equal(scores.topk(5, dim=1).indices, reference.topk(5, dim=1).indices)
    assert topk_accuracy(scores, labels) == topk_accuracy(reference, labels)
