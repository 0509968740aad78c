"""T-REGS as a method (zoo/methods/t_regs.py): its loss is `t_regs_loss` of the two views' projections (checked against
the scipy oracle in tests/losses/test_ldreg_t_regs_losses.py), with the paper's beta, gamma, lambda as class defaults."""

import pytest
import torch

from zoo.config import FB_LARS
from zoo.losses.spanning_tree import t_regs_loss
from zoo.methods.t_regs import TREGS
from zoo.registry import create_method

TINY = {"crop_sizes": (16, 16), "global_batch_size": 8, "backbone": {"name": "test_resnet", "small_stem": False}}


def test_the_class_defaults_are_the_papers_weights_on_vicregs_projector_and_optimiser():
    config = TREGS.Config()
    assert (config.beta, config.gamma, config.lambd) == (10.0, 0.2, 8e-4)
    assert (config.proj_hidden, config.proj_out, config.proj_last_bias) == ([8192, 8192], 8192, False)
    assert TREGS.optimizer_defaults == FB_LARS


def test_the_step_loss_is_t_regs_of_the_two_projections():
    torch.manual_seed(0)
    model = create_method("t_regs", {"proj_hidden": [32], "proj_out": 16, "beta": 2.0, "lambd": 0.1}, **TINY).double()
    gen = torch.Generator().manual_seed(0)
    crops = [torch.randn(8, 3, 16, 16, generator=gen, dtype=torch.float64) for _ in range(2)]
    out = model.forward_loss(crops)
    total, parts = t_regs_loss(*model.project(out.features), beta=2.0, gamma=0.2, lambd=0.1, return_parts=True)
    assert out.total.item() == pytest.approx(total.item(), abs=1e-12)
    assert {k: v.item() for k, v in out.parts.items()} == pytest.approx({k: v.item() for k, v in parts.items()}, abs=1e-12)
    assert parts["length"].item() < 0 < parts["mse"].item()  # the tree's length is maximised
