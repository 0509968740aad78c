"""Zero-CL: the loss of the method's settings against the numbers Sherrylone/Zero-CL's own code computed (float64).

tests/fixtures/zero_cl_official_reference.json holds two sets of seeded inputs (8 x 12: fewer samples than features;
12 x 6: more) with the value and input gradients of ImageNet-100/main.py's fea_loss and ins_loss, cifar/main.py's
whitened_barlow_twins_loss with and without --whiten (backbone and projector the identity, so z = whiten_bn(y)), and
winci-ai/CW-RGP's ZeroICL.ins_loss (the zoo's former loss), each run outside the project (the file says how), and
the two-rank official values of the ImageNet-100 losses (checked on gloo ranks in
tests/losses/test_zero_cl_shuffled_dbn_losses.py). `settings` are the method's fields, through `ZeroCL.loss`.
"""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from reference_inputs import rel_err

from zoo.config import FB_LARS
from zoo.errors import ZooError
from zoo.losses import zero_cl_loss
from zoo.methods.zero_cl import ZeroCL

OFFICIAL = json.loads((Path(__file__).parents[1] / "fixtures" / "zero_cl_official_reference.json").read_text())
# The fields each piece of code sets, read in it (the recipes set them: tests/recipes/test_baseline_method_recipes.py).
CIFAR = {"std_ddof": 0, "var_eps": 1e-5, "std_eps": 0.0, "cov_ddof": 1, "eps": 0.1, "ridge": 1e-5, "per_device_norm": False}
CW_RGP = {"mode": "ins", "std_eps": 0.0, "cov_ddof": 1, "eps": 0.1, "ridge": 1e-5, "per_device_norm": False}
SETTINGS = {
    "imagenet100_fea": {},  # the class defaults
    "imagenet100_ins": {"mode": "ins"},
    "cifar_fea_whiten": CIFAR,
    "cifar_fea_plain": {**CIFAR, "whitening": False},
    "cwrgp_ins": CW_RGP,
}
CASES = [(s, name) for s in OFFICIAL["sets"] for name in SETTINGS]


def method_loss(settings, z1, z2):
    """`ZeroCL.loss` with the method's typed config of `settings` (no backbone or projector is built)."""
    mcfg = OmegaConf.structured(ZeroCL.Config(**settings))
    return ZeroCL.loss(SimpleNamespace(mcfg=mcfg), [z1, z2])


def leaves(entry):
    return [torch.tensor(entry[k], dtype=torch.float64, requires_grad=True) for k in ("z1", "z2")]


@pytest.mark.parametrize(("inputs", "name"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_value_and_input_gradient_are_the_official_codes(inputs, name):
    entry = OFFICIAL["sets"][inputs]
    expected = entry["losses"][name]
    z1, z2 = leaves(entry)
    value = method_loss(SETTINGS[name], z1, z2)
    value.backward()
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(expected["value"], rel=1e-10)
    for leaf, grad in zip((z1, z2), expected["grads"]):
        assert rel_err(leaf.grad, torch.tensor(grad, dtype=torch.float64)) < 1e-10


def test_each_setting_is_needed_to_meet_its_code():
    """Dropping any one of a variant's settings (back to the class default) moves the value off the official number;
    per_device_norm is the same on one process, and without whitening its settings do nothing."""
    entry = OFFICIAL["sets"]["few_samples"]
    for name, settings in SETTINGS.items():
        inert = {"per_device_norm"} | ({"cov_ddof", "eps", "ridge"} if settings.get("whitening") is False else set())
        for key in set(settings) - inert:
            changed = {k: v for k, v in settings.items() if k != key}
            value = method_loss(changed, *leaves(entry)).item()
            assert value != pytest.approx(entry["losses"][name]["value"], rel=1e-8), (name, key)


def test_the_class_defaults_are_the_imagenet_100_code():
    config = ZeroCL.Config()
    assert (config.proj_hidden, config.proj_out, config.proj_hidden_bias, config.proj_last_bias) == ([8192, 8192], 8192, False, False)
    assert (config.mode, config.whitening, config.std_ddof, config.std_eps, config.var_eps) == ("fea", True, 1, 1e-4, 0.0)
    assert (config.cov_ddof, config.eps, config.ridge, config.per_device_norm) == (0, 0.0, 0.01, True)
    assert ZeroCL.optimizer_defaults == {**FB_LARS, "lr": 0.3, "lars_eta": 0.02, "bias_lr_factor": pytest.approx(0.0048 / 0.3)}
    assert not ZeroCL.joint_backbone and not ZeroCL.joint_projector  # projector(backbone(y1)), then y2


def test_the_batch_check_follows_the_mode():
    ZeroCL.check_batch(OmegaConf.structured(ZeroCL.Config(proj_out=64)), 8)  # the ridge keeps 8 x 64 invertible
    with pytest.raises(ZooError, match="rank-deficient"):
        ZeroCL.check_batch(OmegaConf.structured(ZeroCL.Config(proj_out=64, ridge=0.0)), 32)
    with pytest.raises(ZooError, match="axis='channel'"):
        ZeroCL.check_batch(OmegaConf.structured(ZeroCL.Config(proj_out=16, mode="ins", ridge=0.0)), 32)
    ZeroCL.check_batch(OmegaConf.structured(ZeroCL.Config(proj_out=16, ridge=0.0, whitening=False)), 2)
    with pytest.raises(ZooError, match="mode='x'"):
        zero_cl_loss(*(torch.randn(4, 6) for _ in range(2)), mode="x")
