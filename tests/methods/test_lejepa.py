"""LeJEPA: new random directions every step, its step counter in the state dict."""

import functools

import torch
from method_settings import TINY_8, narrow_config
from method_settings import crops as crops_of_16

from zoo.losses.sigreg import lejepa_loss, random_slices
from zoo.registry import create_method

crops = functools.partial(crops_of_16, batch=TINY_8["global_batch_size"])


def test_lejepa_draws_new_directions_every_step_and_keeps_its_step_counter_in_the_state_dict():
    torch.manual_seed(0)
    model = create_method("lejepa", narrow_config("lejepa"), **TINY_8)
    with torch.no_grad():
        views = model.project([model.backbone(crop) for crop in crops()])
        for step in range(2):  # the same views, the directions of each step
            expected = lejepa_loss(*views, global_views=2, directions=random_slices(8, 16, step), lambd=0.02)
            assert torch.allclose(model.loss(views)[0], expected)
    assert model.slice_step.item() == 2 and not torch.equal(random_slices(8, 16, 0), random_slices(8, 16, 1))
    fresh = create_method("lejepa", narrow_config("lejepa"), **TINY_8)
    fresh.load_state_dict(model.state_dict())
    assert fresh.slice_step.item() == 2
