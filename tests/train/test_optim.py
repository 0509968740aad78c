"""The LARS variants against their sources' optimisers, and the optimizer names a config may give.

tests/fixtures/lars_reference.json holds what each source's own LARS class computed (run outside the project on float64
tensors: facebookresearch/barlowtwins main.py, facebookresearch/vicreg main_vicreg.py, ThomasYerxa/mmcr
mmcr/imagenet/misc.py, vturrisi/solo-learn solo/utils/lars.py, google-research/simclr lars_optimizer.py (TensorFlow),
google-deepmind/deepmind-research byol/utils/optimizers.py (optax); the file says how each was called): six steps
with weight decay, gradients small enough that it matters in the trust ratio, and a changing lr.
"""

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from zoo.config import OptimizerConfig, check_optimizer
from zoo.errors import ZooError
from zoo.optim import make_optimizer

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "lars_reference.json").read_text())["cases"]
# The variant each source's recipes select (optimizer.name).
VARIANT = {"barlowtwins": "lars_fb", "vicreg": "lars_fb", "mmcr": "lars_fb", "solo-learn": "lars", "simclr": "lars_google", "byol": "lars_fb"}


def zoo_steps(case, name):
    """The parameters after each step of the optimiser `name` builds over the zoo's groups (Pretrainer.param_groups
    with exclude_bias_and_norm: weights; 1-D at lr x bias_lr_factor, neither decayed nor adapted; the probe)."""
    values = case["zoo"]
    opt = OmegaConf.structured(OptimizerConfig(name=name, weight_decay=values["weight_decay"], lars_eta=values["lars_eta"],
                                               lars_clip=name == "lars" and values.get("lars_clip", False), momentum=values["momentum"]))
    params = {key: torch.nn.Parameter(torch.tensor(value, dtype=torch.float64)) for key, value in case["init"].items()}
    groups = [
        {"params": [params["weight"]], "weight_decay": values["weight_decay"], "always_adapt": True, "lr_factor": 1.0},
        {"params": [params["bias"], params["norm"]], "weight_decay": 0.0, "always_adapt": False, "lr_factor": values["bias_lr_factor"]},
        {"params": [params["probe_weight"]], "weight_decay": 0.0, "always_adapt": True, "lr_factor": 1.0},
        {"params": [params["probe_bias"]], "weight_decay": 0.0, "always_adapt": False, "lr_factor": 1.0},
    ]
    optimizer = make_optimizer(opt, groups, lr=case["lrs"][0])
    after = []
    for lr, grads in zip(case["lrs"], case["grads"], strict=True):
        for group in optimizer.param_groups:  # what the LambdaLR schedule does between steps
            group["lr"] = lr * group["lr_factor"]
        for key, param in params.items():
            param.grad = torch.tensor(grads[key], dtype=torch.float64)
        optimizer.step()
        after.append({key: param.detach().clone() for key, param in params.items()})
    return after


@pytest.mark.parametrize("case", REFERENCE, ids=lambda case: case["name"])
def test_each_lars_variant_steps_as_its_sources_optimiser(case):
    for step, (zoo, source) in enumerate(zip(zoo_steps(case, VARIANT[case["name"]]), case["after"], strict=True)):
        for key, value in source.items():
            torch.testing.assert_close(zoo[key], torch.tensor(value, dtype=torch.float64), rtol=1e-12, atol=1e-15,
                                       msg=f"{case['name']} step {step} {key}")


@pytest.mark.parametrize("case", REFERENCE, ids=lambda case: case["name"])
def test_the_other_variant_differs_on_the_same_steps(case):
    """The two formulas are told apart by these numbers: the weights after the last step differ (the recipes'
    choice of variant: test_recipe_values, test_family_recipes_a)."""
    other = {"lars": "lars_fb", "lars_fb": "lars", "lars_google": "lars_fb"}[VARIANT[case["name"]]]
    last = zoo_steps(case, other)[-1]["weight"]
    expected = torch.tensor(case["after"][-1]["weight"], dtype=torch.float64)
    assert not torch.allclose(last, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name, clip, message", [
    ("lars_fb", True, "lars_fb has no clipping"),
    ("lars_google", True, "lars_google has no clipping"),
])
def test_an_optimizer_no_source_uses_is_one_clear_error(name, clip, message):
    with pytest.raises(ZooError, match=message):
        check_optimizer(OmegaConf.structured(OptimizerConfig(name=name, lars_clip=clip)))
