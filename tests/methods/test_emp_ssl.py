"""EMP-SSL: the loss and the total coding rate against the official code's numbers (float64), the method's defaults
and step, and the patches its presets draw. Two gloo ranks: tests/losses/test_dcl_tico_losses_ddp.py (its "emp_ssl" case).

tests/fixtures/emp_ssl_reference.json holds what tsb0601/EMP-SSL computed (the file names the commit and how it was
called): main.py's loss lines (Similarity_Loss, cal_TCR, chunk_avg) with loss.py's TotalCodingRate on the
L2-normalised projector outputs of model/model.py, its value, parts and gradient per patch, and -R of each patch.
`reference_inputs.scaled_views` draws the same inputs again.
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from default_run import compose_run
from method_settings import TEST_RESNET, small_config
from reference_inputs import rel_err, scaled_views

from zoo.config import NO_EMBEDDED_SETTINGS
from zoo.data import resolved_views
from zoo.errors import ZooError
from zoo.losses.coding_rate import emp_ssl_loss, total_coding_rate
from zoo.methods.emp_ssl import EMPSSL
from zoo.registry import create_method

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "emp_ssl_reference.json").read_text())
CASES = OFFICIAL["cases"]


# ---- the official numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['views']}patches-{c['n']}x{c['d']}")
def test_the_loss_and_its_gradients_are_the_official_training_step(case):
    patches = scaled_views(case["seed"], case["views"], case["n"], case["d"])
    total, parts = emp_ssl_loss(*patches, patch_sim=case["patch_sim"], tcr=case["tcr"], eps=case["eps"], return_parts=True)
    total.backward()
    assert total.dtype == torch.float64
    assert total.item() == pytest.approx(case["loss"], rel=1e-12)
    assert parts["invariance"].item() == pytest.approx(case["patch_sim"] * case["loss_contract"], rel=1e-12)
    assert parts["tcr"].item() == pytest.approx(case["tcr"] * case["loss_tcr"], rel=1e-12)
    assert -parts["invariance"].item() / case["patch_sim"] == pytest.approx(case["cos_sim"], rel=1e-12)
    for patch, grad in zip(patches, case["grads"]):
        assert rel_err(patch.grad, torch.tensor(grad, dtype=torch.float64)) < 1e-10


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['views']}patches-{c['n']}x{c['d']}")
def test_the_coding_rate_is_the_official_one_on_either_gram_matrix(case):
    """The reference cases have N < D and N > D: the N x N Gram matrix where it is the smaller gives the official
    D x D one's rate."""
    z = F.normalize(torch.stack([p.detach() for p in scaled_views(case["seed"], case["views"], case["n"], case["d"])]), dim=-1)
    official = torch.tensor(case["tcr_per_patch"], dtype=torch.float64)
    torch.testing.assert_close(-total_coding_rate(z, case["eps"]), official, rtol=1e-12, atol=0)


def test_the_loss_refuses_a_single_patch_and_a_bad_eps():
    with pytest.raises(ZooError, match="emp_ssl_loss needs at least 2 views"):
        emp_ssl_loss(torch.randn(4, 3))
    with pytest.raises(ZooError, match="eps > 0"):
        total_coding_rate(torch.randn(4, 3), eps=0.0)


# ---- the method -------------------------------------------------------------------------------------------
def test_the_defaults_are_the_official_code():
    """main.py's argument defaults and optimiser, model/model.py's projector (the width of the backbone's features in)."""
    config = EMPSSL.Config()
    assert (config.proj_hidden, config.proj_out, config.patch_sim, config.tcr, config.eps) == ([4096, 4096], 1024, 200.0, 1.0, 0.2)
    assert EMPSSL.optimizer_defaults == {"name": "lars", "lr": 0.3, "scale_lr": False, "weight_decay": 1e-4, "momentum": 0.9,
                                         "lars_eta": 0.005, "lars_clip": True, "exclude_bias_and_norm": True,
                                         "bias_lr_factor": 1.0}
    assert EMPSSL.num_views is None and EMPSSL.joint_backbone and EMPSSL.joint_projector
    with torch.device("meta"):
        model = create_method("emp_ssl", {}, crop_sizes=(32,) * 20, global_batch_size=100)
    layers = [(type(layer).__name__, getattr(layer, "out_features", None)) for layer in model.projector]
    assert layers == [("Linear", 4096), ("BatchNorm1d", None), ("ReLU", None), ("Linear", 4096), ("BatchNorm1d", None),
                      ("ReLU", None), ("Linear", 1024)]
    assert model.projector[0].in_features == 512
    assert all(layer.bias is not None for layer in model.projector if isinstance(layer, torch.nn.Linear))


def test_a_step_is_the_loss_of_every_patch_through_one_call():
    """Three patches: one backbone and one projector call on all of them, the loss of the outputs, every patch's
    features for the probe."""
    torch.manual_seed(0)
    config = small_config("emp_ssl")
    model = create_method("emp_ssl", config, **{**TEST_RESNET, "crop_sizes": (16, 16, 16)}).double()
    reference = create_method("emp_ssl", config, **{**TEST_RESNET, "crop_sizes": (16, 16, 16)}).double()
    reference.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(1)
    crops = [torch.randn(8, 3, 16, 16, generator=gen, dtype=torch.float64) for _ in range(3)]
    (total, parts), features = model.compute_loss(crops)
    projections = reference.projector(reference.backbone(torch.cat(crops))).split(8)
    assert total.item() == pytest.approx(emp_ssl_loss(*projections).item(), rel=1e-12)
    assert set(parts) == {"invariance", "tcr"} and len(features) == 3


@pytest.mark.parametrize("preset, size, ratio, interpolation", [("emp_ssl_cifar", 32, [1.0, 1.0], "bilinear"),
                                                                ("emp_ssl_imagenet", 224, [0.75, 4 / 3], "bicubic")])
def test_the_presets_draw_the_official_patches(preset, size, ratio, interpolation):
    """dataset/aug.py (CIFAR) and aug4img.py (ImageNet) ContrastiveLearningViewGenerator: 20 patches by default, each
    a quarter of the image, then flip, jitter (0.4, 0.4, 0.4, 0.2) p 0.8, grayscale 0.2, blur 0.1, solarization 0.1."""
    cfg = compose_run(["method=emp_ssl", f"augment={preset}", "data.name=cifar10", f"embedded={NO_EMBEDDED_SETTINGS}"])
    (group,) = resolved_views(cfg.data)
    assert (group.count, group.size, group.scale, group.ratio, group.interpolation) == (20, size, [0.25, 0.25], ratio, interpolation)
    assert (group.brightness, group.contrast, group.saturation, group.hue, group.jitter_p) == (0.4, 0.4, 0.4, 0.2, 0.8)
    assert (group.flip_p, group.gray_p, group.blur_p, group.blur_sigma, group.solarize_p) == (0.5, 0.2, 0.1, [0.1, 2.0], 0.1)
    assert group.order == ["crop", "flip", "jitter", "gray", "blur", "solarize"]
    cfg.data.num_views = 200  # main.py --num_patches
    assert resolved_views(cfg.data)[0].count == 200
