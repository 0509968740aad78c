"""Mixed Barlow Twins: the loss against the official code's numbers (float64), on two gloo ranks, and the method.

tests/fixtures/mix_bt_reference.json holds what wgcban/mix-bt computed (the file names the commit and how each
function was called): main.py's training step on one batch (small_data) and main_imagenet.py's
BarlowTwins.forward on one and on two gloo processes (imagenet), each with a fixed permutation and mixing
coefficient. `_inputs` draws the same inputs again: the projector outputs of the two views and the mixed crop.
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from gloo_ranks import run_on_gloo_ranks
from method_settings import TEST_RESNET, TINY, crops, small_config
from reference_inputs import rel_err, scaled_views

from zoo.errors import ZooError
from zoo.losses import barlow_twins_loss, mixed_barlow_twins_loss
from zoo.methods.mix_bt import MixedBarlowTwins
from zoo.nn import StepState
from zoo.registry import create_method
from zoo.spectral import standardize

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "mix_bt_reference.json").read_text())
GRADS = ("grad_z1", "grad_z2", "grad_zm")
WORLD_SIZE = 2


def _tensor(values):
    return torch.tensor(values, dtype=torch.float64)


# ---- the official numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", OFFICIAL["small_data"], ids=lambda c: f"seed{c['seed']}")
def test_the_small_data_loss_and_its_gradients_are_the_official_main_py(case):
    z = scaled_views(case["seed"], 3, case["n"], case["d"])
    total, parts = mixed_barlow_twins_loss(*z, torch.tensor(case["perm"]), case["alpha"], case["lambd"], case["mix_weight"],
                                           return_parts=True)
    total.backward()
    assert total.dtype == torch.float64
    assert total.item() == pytest.approx(case["total"], rel=1e-12)
    assert (parts["on_diag"] + parts["off_diag"]).item() == pytest.approx(case["loss_bt"], rel=1e-12)
    assert parts["mix"].item() == pytest.approx(case["loss_mix"], rel=1e-10)
    for leaf, key in zip(z, GRADS):
        assert rel_err(leaf.grad, _tensor(case[key])) < 1e-10, key


def test_the_imagenet_loss_on_one_process_is_the_official_main_imagenet_py():
    (case,) = [c for c in OFFICIAL["imagenet"] if c["world_size"] == 1]
    z = scaled_views(case["seed"], 3, case["n"], case["d"])
    # the forward's lossm is 0.5 x lambd x (...); the script's lambda_mixup (1 here) multiplies it outside
    total, parts = mixed_barlow_twins_loss(*z, torch.tensor(case["perms"][0]), case["alphas"][0], case["lambd"], 0.5,
                                           normalize=False, imagenet_target=True, per_device_norm=True, return_parts=True)
    total.backward()
    assert (parts["on_diag"] + parts["off_diag"]).item() == pytest.approx(case["loss_bt"], rel=1e-12)
    assert parts["mix"].item() == pytest.approx(case["loss_reg"], rel=1e-10)
    for leaf, key in zip(z, GRADS):
        assert rel_err(leaf.grad, _tensor(case[key])) < 1e-10, key


def test_each_form_is_needed_to_meet_its_code():
    """The forms differ where the two official files do: main.py's second target and L2 normalisation are not
    main_imagenet.py's, and the standardisation is not `barlow_twins`' BatchNorm (biased variance + 1e-5)."""
    case = OFFICIAL["small_data"][0]
    z = scaled_views(case["seed"], 3, case["n"], case["d"])
    args = (torch.tensor(case["perm"]), case["alpha"], case["lambd"], case["mix_weight"])
    other_target = mixed_barlow_twins_loss(*z, *args, imagenet_target=True, return_parts=True)[1]["mix"]
    assert abs(other_target.item() - case["loss_mix"]) > 1e-3 * case["loss_mix"]
    unnormalised = mixed_barlow_twins_loss(*z, *args, normalize=False).item()
    assert abs(unnormalised - case["total"]) > 1e-3 * case["total"]
    normalised = [F.normalize(t, dim=-1) for t in z[:2]]
    batchnorm = barlow_twins_loss(*normalised, lambd=case["lambd"]).item()
    assert batchnorm != pytest.approx(case["loss_bt"], rel=1e-4)


def test_the_loss_refuses_views_of_different_shapes():
    z = scaled_views(0, 3, 6, 4)
    with pytest.raises(ZooError, match="mixed_barlow_twins_loss needs views of one shape"):
        mixed_barlow_twins_loss(z[0], z[1], z[2][:4], torch.arange(6), 0.5)


# ---- two gloo processes -----------------------------------------------------------------------------------
def _global_case():
    """The global form with a different permutation and coefficient on each rank: on one process, the same
    loss with the ranks' permutations offset and each row's own coefficient."""
    n, d = 12, 5
    perms = [torch.randperm(n // 2, generator=torch.Generator().manual_seed(40 + r)) for r in range(WORLD_SIZE)]
    alphas = [0.35, 0.8]
    z = scaled_views(7, 3, n, d)
    total = mixed_barlow_twins_loss(*z, torch.cat([p + r * n // 2 for r, p in enumerate(perms)]),
                                    torch.tensor(alphas, dtype=torch.float64).repeat_interleave(n // 2), 0.03, 3.0)
    total.backward()
    return z, perms, alphas, total.detach(), [t.grad for t in z]


def _worker(rank, single):
    z, perms, alphas, expected, grads = single
    n = z[0].shape[0] // WORLD_SIZE
    rows = slice(rank * n, (rank + 1) * n)
    local = [t.detach()[rows].clone().requires_grad_() for t in z]
    total = mixed_barlow_twins_loss(*local, perms[rank], alphas[rank], 0.03, 3.0)
    total.backward()
    assert total.item() == pytest.approx(expected.item(), rel=1e-12), rank
    for leaf, grad in zip(local, grads):  # world_size x the single process's, which DDP's mean undoes
        assert rel_err(leaf.grad, WORLD_SIZE * grad[rows]) < 1e-10, rank

    # main_imagenet.py on two GPUs: each rank standardises and mixes its own batch; its plain all_reduce passes
    # each rank 1/world_size of the gradient the exact loss has
    (case,) = [c for c in OFFICIAL["imagenet"] if c["world_size"] == WORLD_SIZE]
    n = case["n"] // WORLD_SIZE
    rows = slice(rank * n, (rank + 1) * n)
    local = [t.detach()[rows].clone().requires_grad_() for t in scaled_views(case["seed"], 3, case["n"], case["d"])]
    total, parts = mixed_barlow_twins_loss(*local, torch.tensor(case["perms"][rank]), case["alphas"][rank], case["lambd"],
                                           0.5, normalize=False, imagenet_target=True, per_device_norm=True, return_parts=True)
    total.backward()
    assert (parts["on_diag"] + parts["off_diag"]).item() == pytest.approx(case["loss_bt"], rel=1e-12), rank
    assert parts["mix"].item() == pytest.approx(case["loss_reg"], rel=1e-10), rank
    for leaf, key in zip(local, GRADS):
        assert rel_err(leaf.grad, WORLD_SIZE * _tensor(case[key])[rows]) < 1e-10, (rank, key)


def test_two_gloo_ranks_give_the_single_process_loss_and_the_official_per_device_one():
    run_on_gloo_ranks(_worker, WORLD_SIZE, before=_global_case)


# ---- the method -------------------------------------------------------------------------------------------
def test_the_defaults_are_the_official_small_data_code():
    config = MixedBarlowTwins.Config()
    assert (config.proj_hidden, config.proj_out, config.proj_hidden_bias, config.proj_last_bias) == ([512], 1024, False, True)
    assert (config.lambd, config.mix_weight, config.mix_alpha, config.mix_warmup_epochs) == (0.0078125, 4.0, 1.0, 0.0)
    assert config.normalize and not config.imagenet_target and not config.per_device_norm
    assert MixedBarlowTwins.optimizer_defaults | {} == {"name": "adam", "lr": 0.01, "scale_lr": True, "weight_decay": 1e-6,
                                                      "exclude_bias_and_norm": False, "bias_lr_factor": 1.0, "probe_lr": 0.01}
    model = create_method("mix_bt", small_config("mix_bt"), **TINY)
    layers = [type(layer).__name__ for layer in model.projector]
    assert layers == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert model.projector[0].bias is None and model.projector[-1].bias is not None


def test_a_step_is_the_loss_of_the_two_views_and_the_mixed_crop():
    """compute_loss with a fixed draw equals the loss of the projections of x1, x2 and mix x1 + (1 - mix) x2[perm],
    each through backbone and projector on its own, in that order (the BatchNorm running statistics show it)."""
    torch.manual_seed(0)
    model = create_method("mix_bt", small_config("mix_bt"), **TEST_RESNET).double()
    reference = create_method("mix_bt", small_config("mix_bt"), **TEST_RESNET).double()
    reference.load_state_dict(model.state_dict())
    x1, x2 = (c.double() for c in crops(batch=8))
    perm, mix = torch.randperm(8, generator=torch.Generator().manual_seed(3)), 0.27
    model.draw_mix = lambda n, device: (perm, mix)
    (total, parts), features = model.compute_loss([x1, x2])
    z = [reference.projector(reference.backbone(x)) for x in (x1, x2, mix * x1 + (1 - mix) * x2[perm])]
    expected = mixed_barlow_twins_loss(*z, perm, mix, lambd=0.0078125, mix_weight=4.0)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    assert set(parts) == {"on_diag", "off_diag", "mix"} and len(features) == 2
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        if "running" in name:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


def test_the_draws_are_a_permutation_and_a_uniform_coefficient():
    model = create_method("mix_bt", small_config("mix_bt"), **TINY)
    torch.manual_seed(5)
    draws = [model.draw_mix(16, torch.device("cpu")) for _ in range(400)]
    assert all(sorted(perm.tolist()) == list(range(16)) for perm, _ in draws)
    mixes = torch.tensor([mix for _, mix in draws])
    assert mixes.min() >= 0 and mixes.max() <= 1 and len(set(mixes.tolist())) == 400
    assert mixes.mean().item() == pytest.approx(0.5, abs=0.05) and mixes.var().item() == pytest.approx(1 / 12, abs=0.015)
    torch.manual_seed(5)
    again = model.draw_mix(16, torch.device("cpu"))
    assert torch.equal(again[0], draws[0][0]) and again[1] == draws[0][1]


def test_the_imagenet_weight_rises_over_ten_epochs_as_adjust_mixup_scale():
    model = create_method("mix_bt", {**small_config("mix_bt"), "mix_weight": 0.5, "mix_warmup_epochs": 10.0}, **TINY)
    spe = 7
    for step in (0, 1, 35, 69, 70, 71, 700):
        state = StepState(step=step, total_steps=700, epoch=step // spe, steps_per_epoch=spe)
        expected = 0.5 * step / (10 * spe) if step < 10 * spe else 0.5  # lambda_mixup x step / warmup_steps
        assert model.mix_weight_at(state) == pytest.approx(expected, rel=1e-12)
        assert model.step_logs(state) == {"train/mix_weight": model.mix_weight_at(state)}
    first = model.forward_loss(crops(), StepState(step=0, total_steps=700, steps_per_epoch=spe))
    assert first.parts["mix"].item() == 0.0
    assert create_method("mix_bt", small_config("mix_bt"), **TINY).step_logs(StepState(step=0, total_steps=1)) == {}


def test_bad_mixing_settings_are_refused():
    with pytest.raises(ZooError, match="mix_alpha > 0"):
        create_method("mix_bt", {**small_config("mix_bt"), "mix_alpha": 0.0}, **TINY)


def test_standardisation_is_the_official_unbiased_one():
    z = scaled_views(1, 3, 8, 3)[0].detach()
    official = (z - z.mean(dim=0)) / z.std(dim=0)
    torch.testing.assert_close(standardize(z, "batch"), official, rtol=1e-14, atol=1e-14)
