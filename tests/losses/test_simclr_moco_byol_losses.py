"""SimCLR / MoCo / BYOL losses against the numbers solo-learn's own loss functions computed.

tests/fixtures/baseline_solo_learn_losses.json holds float64 inputs with the value and input
gradients that vturrisi/solo-learn's simclr_loss_func, mocov2plus_loss_func and byol_loss_func
gave on them (run outside the project; the file says how each was called). The cases differ
from the DDP and method tests' shapes: three views, another temperature, a queue longer than
the batch.
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from reference_inputs import rel_err

from zoo.errors import ZooError
from zoo.losses import byol_loss, info_nce_loss, nt_xent_loss
from zoo.methods.crops import target_pairs

SOLO_LEARN = json.loads((Path(__file__).parents[1] / "fixtures" / "baseline_solo_learn_losses.json").read_text())
LOSSES = {
    "simclr": lambda inputs, case: nt_xent_loss(*inputs, temperature=case["temperature"]),
    "info_nce": lambda inputs, case: info_nce_loss(*inputs, temperature=case["temperature"]),
    "byol": lambda inputs, case: byol_loss(*inputs),
}
CASES = [(name, i) for name in LOSSES for i in range(len(SOLO_LEARN[name]))]


@pytest.mark.parametrize("name, index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_value_and_gradient_equal_solo_learns_in_float64(name, index):
    case = SOLO_LEARN[name][index]
    inputs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in case["inputs"]]
    value = LOSSES[name](inputs, case)
    value.backward()
    assert value.dtype == torch.float64
    assert rel_err(value.detach(), torch.tensor(case["value"], dtype=torch.float64)) < 1e-7
    for given, expected in zip(inputs, case["grads"]):
        if expected is None:  # BYOL's stop-gradient target
            assert given.grad is None
        else:
            assert rel_err(given.grad, torch.tensor(expected, dtype=torch.float64)) < 1e-7


def test_two_view_nt_xent_is_the_2n_way_cross_entropy():
    """The textbook form (htdt/self-supervised methods/contrastive.py): each crop's logits against
    every other crop, the other view of its sample the class."""
    gen = torch.Generator().manual_seed(4)
    z1, z2 = (torch.randn(6, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T / 0.3).fill_diagonal_(float("-inf"))
    other_view = torch.arange(12).roll(6)
    assert torch.allclose(nt_xent_loss(z1, z2, temperature=0.3), F.cross_entropy(logits, other_view), rtol=1e-12)


def test_info_nce_needs_a_queue_of_keys_as_rows():
    q = torch.randn(4, 8)
    with pytest.raises(ZooError, match=r"needs a \(K, 8\) queue, got \(8, 16\)"):
        info_nce_loss(q, q, torch.randn(8, 16))
    with pytest.raises(ZooError, match="temperature > 0"):
        nt_xent_loss(q, q, temperature=0.0)


def test_float32_maths_under_autocast():
    views = [torch.randn(8, 4, dtype=torch.bfloat16) for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert nt_xent_loss(*views).dtype == torch.float32
        assert byol_loss(*views).dtype == torch.float32


def test_multi_crop_pairs_every_large_target_with_every_other_crop():
    assert target_pairs((16, 16)) == [(0, 1), (1, 0)]
    assert target_pairs((32, 32, 16, 16)) == [(0, 1), (0, 2), (0, 3), (1, 0), (1, 2), (1, 3)]
