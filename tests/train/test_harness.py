"""The method apart from its Lightning harness: a `Method` trains without Lightning (`forward_loss`, the one training
step), `Pretrainer` wraps any method and rebuilds itself from its checkpoint, and `ValidationMetrics` computes the
validation's numbers from the harness's public validation output."""

import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from zoo.callbacks import ValidationMetrics
from zoo.metrics.knn import knn_predict
from zoo.metrics.spectrum import covariance_eigenvalues, effective_rank
from zoo.nn import StepState
from zoo.registry import create_method, method_names
from zoo.train.harness import Pretrainer, top_k_accuracy
from zoo.train.step import train_step

REPO = Path(__file__).resolve().parents[2]
TINY = {"crop_sizes": (16, 16), "global_batch_size": 8, "backbone": {"name": "test_resnet", "small_stem": False}}
SMALL = {"proj_hidden": [32], "proj_out": 16}


def crops(seed=0, batch=8):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 16, 16, generator=gen) for _ in range(2)], torch.randint(0, 10, (batch,), generator=gen)


def test_no_method_module_imports_lightning():
    """Every method file, imported alone in a fresh process, leaves Lightning unimported."""
    names = [name for name in method_names()]
    code = ("import sys, importlib\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(f'zoo.methods.{name}')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                            env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert result.stdout.strip() == "[]"


def test_a_method_takes_a_step_without_lightning():
    """forward_loss (no state: the first step), backward and an optimiser step; then the one training step."""
    torch.manual_seed(0)
    method = create_method("byol", {**SMALL, "pred_hidden": 24}, **TINY)
    out = method.forward_loss(crops()[0])
    assert out.total.ndim == 0 and torch.isfinite(out.total) and out.parts == {} and len(out.features) == 2
    out.total.backward()
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
    before = [p.detach().clone() for p in method.backbone.parameters()]
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, method.backbone.parameters()))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    step = train_step(method, crops(1), optimizer, scheduler, StepState(step=1, total_steps=4))
    assert torch.isfinite(step.total) and step.probe_top1 is None and "train/momentum" in step.logs


def test_a_method_returns_what_its_schedule_logs():
    """DINO's teacher temperature and MEC's 1 / lambda come back in the output's logs, read from the state."""
    dino = create_method("dino", {**SMALL, "proj_hidden": [32, 32], "num_prototypes": 24, "warmup_teacher_temperature": 0.01,
                                  "teacher_temperature": 0.05, "warmup_teacher_temperature_epochs": 3}, **TINY)
    batch = crops()[0]
    assert dino.forward_loss(batch).logs == {"train/teacher_temperature": pytest.approx(0.01)}
    later = StepState(step=40, total_steps=100, epoch=2, steps_per_epoch=20)
    assert dino.forward_loss(batch, later).logs == {"train/teacher_temperature": pytest.approx(0.05)}
    mec = create_method("mec", {**SMALL, "pred_hidden": 24}, **TINY)
    assert mec.forward_loss(batch, later).logs["train/lambda_inverse"] == pytest.approx(mec.lambda_inverse(40, 20))


def test_the_harness_rebuilds_itself_from_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    harness = Pretrainer(create_method("vicreg", SMALL, **TINY), num_classes=10, optimizer={"name": "sgd", "lr": 0.1})
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(harness)
    trainer.save_checkpoint(tmp_path / "vicreg.ckpt")
    loaded = Pretrainer.load_from_checkpoint(tmp_path / "vicreg.ckpt", map_location="cpu")
    assert type(loaded.method) is type(harness.method) and loaded.method.mcfg == harness.method.mcfg
    assert (loaded.lr, loaded.probe_lr, loaded.num_classes, loaded.crop_sizes) == (
        harness.lr, harness.probe_lr, 10, (16, 16))
    assert loaded.optimizer_cfg == harness.optimizer_cfg and loaded.name == "vicreg"
    assert loaded.state_dict().keys() == harness.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in harness.state_dict().items())
    assert {key.split(".")[0] for key in harness.state_dict()} == {"method", "classifier"}
    # by name, as the checkpoint's hyper-parameters rebuild it
    named = Pretrainer("vicreg", config=SMALL, **TINY, num_classes=10)
    assert type(named.method) is type(harness.method) and named.method.mcfg == harness.method.mcfg


def test_validation_metrics_are_the_direct_computation_on_a_tiny_fit():
    """ValidationMetrics' k-NN, probe accuracy and effective rank after a fit equal those computed here from the
    weights the fit ended with."""
    torch.manual_seed(0)
    harness = Pretrainer(create_method("vicreg", SMALL, **TINY), num_classes=10, optimizer={"name": "sgd", "lr": 0.1})
    gen = torch.Generator().manual_seed(1)
    train = [([torch.randn(3, 16, 16, generator=gen) for _ in range(2)], i % 10) for i in range(16)]
    bank = [(torch.randn(3, 16, 16, generator=gen), i % 10) for i in range(40)]
    val = [(torch.randn(3, 16, 16, generator=gen), i % 10) for i in range(24)]
    metrics = ValidationMetrics()
    trainer = L.Trainer(max_steps=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[metrics])
    trainer.fit(harness, DataLoader(train, batch_size=8), [DataLoader(bank, batch_size=16), DataLoader(val, batch_size=16)])
    assert metrics.step == 2 and metrics.latest["evaluated_images"] == 24
    harness.eval()
    with torch.no_grad():
        bank_x, bank_y = torch.stack([x for x, _ in bank]), torch.tensor([y for _, y in bank])
        val_x, val_y = torch.stack([x for x, _ in val]), torch.tensor([y for _, y in val])
        bank_f, val_f = harness.method.backbone(bank_x), harness.method.backbone(val_x)
        scores = knn_predict(bank_f, bank_y, val_f, 10, harness.knn_k, harness.knn_temperature)
        knn = top_k_accuracy(scores, val_y, 10).item()
        probe = top_k_accuracy(harness.classifier(val_f), val_y, 10).item()
        rank = effective_rank(covariance_eigenvalues(val_f))
    assert metrics.latest["knn_top1"] == pytest.approx(knn) and metrics.latest["linear_top1"] == pytest.approx(probe)
    assert metrics.latest["effective_rank"] == pytest.approx(rank, rel=1e-4)
    assert harness.validation_output() is None  # freed at the epoch's end
