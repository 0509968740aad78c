"""MSF (zoo/methods/msf.py), the worked example of docs/adding_a_method.md: its loss and memory bank against the
official code's numbers, its step's order (target moved before the forward, this step's targets in the bank before
the loss), and the docs' copy of the file.

tests/fixtures/msf_reference.json holds float64 inputs with what UMBCvision/MSF's MeanShift.forward computed from
them (its encoders and predictor replaced by identities: the loss, the query's gradient, the bank after the step)."""

import copy
import json
import re
from pathlib import Path

import torch
import torch.nn.functional as F

from zoo.methods.msf import msf_loss
from zoo.nn import EMA, FeatureQueue, StepState, components
from zoo.registry import create_method
from zoo.train.harness import Pretrainer
from zoo.train.step import train_step

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = json.loads((REPO / "tests" / "fixtures" / "msf_reference.json").read_text())["cases"]
SMALL = {"proj_hidden": [32], "proj_out": 16, "pred_hidden": 32, "queue_size": 40, "topk": 3}
TINY = {"crop_sizes": (16, 16), "global_batch_size": 8, "backbone": {"name": "test_resnet", "small_stem": False}}


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


def test_the_loss_and_the_bank_are_the_official_codes():
    for case in OFFICIAL:
        bank = tensor(case["bank"])
        queue = FeatureQueue(count=1, size=len(bank), dim=bank.shape[1]).double()
        queue.keys[0], queue.ptr = bank, torch.tensor(case["ptr"])
        query, target = tensor(case["query"]).requires_grad_(), tensor(case["target"])
        queue.enqueue(F.normalize(target, dim=1))
        loss = msf_loss(query, target, queue.keys[0], case["topk"])
        loss.backward()
        assert abs(loss.item() - case["loss"]) < 1e-12
        assert torch.allclose(query.grad, tensor(case["query_grad"]), rtol=0, atol=1e-12)
        assert torch.equal(queue.keys[0], tensor(case["bank_after"]))


def test_a_step_moves_the_target_first_and_banks_its_targets_before_the_loss():
    """Only the first crop goes through the online branch (its backbone features feed the probe); the target, at a
    constant momentum, moves at the start of each step; the step's normalised targets are in the bank when the loss
    reads it (k = 1 regresses each sample's own target: BYOL's loss)."""
    torch.manual_seed(0)
    model = create_method("msf", {**SMALL, "topk": 1}, **TINY)
    (target,) = [c for c in components(model) if isinstance(c, EMA)]
    assert (target.timing, target.base, target.final) == ("before_forward", 0.99, 0.99)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    gen = torch.Generator().manual_seed(0)
    for step in range(2):
        crops = [torch.randn(8, 3, 16, 16, generator=gen) for _ in range(2)]
        online = [p.detach().clone() for p in model.backbone.parameters()]
        before = [p.detach().clone() for p in target.backbone.parameters()]
        expected = copy.deepcopy(model)  # the step by hand: move the target, bank its targets, then the loss
        expected.target.update(0.99)
        with torch.no_grad():
            targets = F.normalize(expected.target(crops[1]), dim=1)
            expected.queue.enqueue(targets)
            query = expected.predictor(expected.projector(expected.backbone(crops[0])))
            loss = msf_loss(query, targets, expected.queue.keys[0], topk=1)
        out = train_step(model, (crops, torch.zeros(8, dtype=torch.long)), optimizer, None, StepState(step, 2))
        moved = [0.99 * b + 0.01 * o for b, o in zip(before, online)]
        assert all(torch.allclose(p, m, atol=1e-6) for p, m in zip(target.backbone.parameters(), moved))
        assert torch.allclose(model.queue.keys[0, 8 * step : 8 * step + 8], targets, atol=1e-6)
        assert model.queue.ptr.item() == 8 * (step + 1)
        assert torch.allclose(out.loss, loss, atol=1e-6)
        assert torch.allclose(loss, (2 - 2 * F.cosine_similarity(query, targets)).mean(), atol=1e-6)  # k = 1: BYOL's
        assert len(out.features) == 1 and out.features[0].shape == (8, model.feature_dim)


def test_its_defaults_are_the_official_codes():
    """Widths from the backbone's F features (ResNet-50: 2048 -> 4096 -> 512, ResNet-18: 512 -> 1024 -> 128), a
    bank of 128,000 targets, k = 10, momentum 0.99, SGD lr 0.05 unscaled, weight decay 1e-4."""
    for backbone, features in (("resnet50", 2048), ("resnet18", 512)):
        model = create_method("msf", crop_sizes=(224, 224), global_batch_size=256, backbone=backbone)
        linears = [tuple(layer.weight.shape) for layer in (*model.projector, *model.predictor)
                   if isinstance(layer, torch.nn.Linear)]
        hidden, out = 2 * features, features // 4
        assert linears == [(hidden, features), (out, hidden), (hidden, out), (out, hidden)]
        assert [type(layer).__name__ for layer in model.predictor] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
        assert model.queue.keys.shape == (1, 128000, out)
    assert model.mcfg.topk == 10 and model.target.base == model.target.final == 0.99
    optimizer = Pretrainer(model, num_classes=0).optimizer_cfg
    assert (optimizer.name, optimizer.lr, optimizer.scale_lr, optimizer.weight_decay) == ("sgd", 0.05, False, 1e-4)


def test_the_worked_example_in_the_docs_is_the_method_file():
    docs = (REPO / "docs" / "adding_a_method.md").read_text()
    (shown,) = re.findall(r"```python\n# zoo/methods/msf\.py\n(.*?)```", docs, re.DOTALL)
    assert shown == (REPO / "zoo" / "methods" / "msf.py").read_text()
