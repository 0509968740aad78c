"""BYOL: the loss summed over every target and other crop."""

import torch
from method_settings import TINY, crops, small_config

from zoo.losses import byol_loss
from zoo.registry import create_method
from zoo.train.harness import Pretrainer


def test_byol_sums_the_loss_over_every_target_and_other_crop():
    torch.manual_seed(0)
    model = create_method("byol", small_config("byol"), **{**TINY, "crop_sizes": (16, 16, 8)})
    batch = crops(2) + crops(1, size=8, seed=1)
    torch.manual_seed(1)
    loss, _ = model.compute_loss(batch)
    with torch.no_grad():
        torch.manual_seed(1)
        predictions = [model.predictor(model.projector(model.backbone(c))) for c in batch]
        targets = [model.target.projector(model.target.backbone(c)) for c in batch[:2]]
    expected = sum(byol_loss(predictions[v], targets[t]) for t, v in [(0, 1), (0, 2), (1, 0), (1, 2)])
    assert torch.allclose(loss, expected, rtol=1e-5)
    groups = Pretrainer(model, num_classes=10).param_groups()
    assert any(p is next(model.predictor.parameters()) for g in groups for p in g["params"])  # trained, at the method lr
