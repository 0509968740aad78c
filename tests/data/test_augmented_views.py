"""zoo.data.views: LiDAR's augmented views are fixed by the seed and leave torch's global generator (training's
random stream) as it was."""

import torch
from default_run import compose_run

from zoo.data import data_spec
from zoo.data.views import AugmentedViews


def spec():
    return data_spec(compose_run(["data.name=digits", "augment=digits", "data.image_size=16", "data.num_workers=0"]).data)


def test_views_are_fixed_by_the_seed_whatever_the_chunks_and_leave_the_global_generator_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    views = AugmentedViews(spec(), samples=6, views=3, seed=0)
    first = torch.cat(list(views.batches(6)))  # two images per chunk
    assert torch.equal(torch.get_rng_state(), state)  # training draws what it would draw without them
    again = torch.cat(list(AugmentedViews(spec(), samples=6, views=3, seed=0).batches(100)))
    assert torch.equal(first, again)
    assert torch.equal(torch.cat(list(views.batches(6))), first)  # kept after the first call
    assert first.shape == (6, 3, 3, 16, 16)  # 6 images x 3 views of the training crop (16 px)
    assert not torch.equal(first[:, 0], first[:, 1])  # the views differ
    other = torch.cat(list(AugmentedViews(spec(), samples=6, views=3, seed=1).batches(6)))
    assert not torch.equal(other, first)


def test_more_samples_than_images_take_every_image_once():
    views = AugmentedViews(spec(), samples=10_000, views=2, seed=0)
    assert views.shape == (450, 2)  # the digits' validation images
