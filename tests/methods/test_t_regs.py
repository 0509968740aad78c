"""T-REGS as a method (zoo/methods/t_regs.py): its loss is `t_regs_loss` of the two views' projections (checked against
the scipy oracle in tests/losses/test_ldreg_t_regs_losses.py), with the project page's beta, gamma, lambda as class defaults."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

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


def _best_spread(beta, gamma=0.2):
    """The scale s that minimises beta x invariance + tree length for a batch whose two views are as far apart as two
    images (the state at initialisation): L(s) = s^2 mse + s length for the unit-scale batch's parts (the sphere term,
    1/n sum (||z|| - 1)^2, only places the batch), so s* = -length / (2 mse)."""
    gen = torch.Generator().manual_seed(0)
    z1, z2 = (torch.randn(64, 512, generator=gen, dtype=torch.float64) / 512**0.5 for _ in range(2))  # norms ~1
    _, parts = t_regs_loss(z1, z2, beta=beta, gamma=gamma, lambd=0.0, return_parts=True)
    return (-parts["length"] / (2 * parts["mse"])).item()


def test_the_default_runs_invariance_weight_spreads_the_batch_the_class_weight_shrinks_it():
    """Why zoo/configs/embedded/t_regs.yaml lowers beta: with the class's 10 on the summed squared distance the best
    spread of an uninformative batch is about 1% of the sphere's radius (one point, to the probe), with the default
    run's weight several radii (the norms of about 6 its run reaches)."""
    embedded = OmegaConf.load(Path(__file__).resolve().parents[2] / "zoo" / "configs" / "embedded" / "t_regs.yaml")
    assert _best_spread(TREGS.Config().beta) < 0.02
    assert _best_spread(embedded.method.beta) > 3.0
