"""Per-method test settings, in one place: the small configs the tests build each method with.

`small_config(name)`: the method's config for the tests parametrised over every registered method
(tests/methods/test_every_method.py, a global batch of 32) and for its own tests (tests/methods/test_<name>.py,
tests/losses/); a method not listed gets {} (its class defaults), so a newly registered method still gets the
generic tests without an entry here. `narrow_config(name)`: narrower widths, for the tests that fit or step a
method many times (EMA timing, the AMP step, the frozen-early parameters). The other tables are settings a
group of tests checks, on top of one of those two.
`build(name)` builds a method from `method=<name>` at its small config, as training does; `crops` draws the
random crops the methods' own tests step on.
"""

import copy

import torch
from default_run import compose_run

from zoo.build import build_method
from zoo.config import SOLO_LARS

# Small projectors every method can whiten with a batch of 32; the queues hold 40 keys, so that a batch of 16
# keys wraps around them (the queue tests).
SMALL = {
    "intl": {"proj_hidden": [128], "proj_out": 64},
    "intl_m": {"proj_hidden": [128], "proj_out": 64},
    "st": {"proj_hidden": [128], "proj_out": 64, "p": 0.25},
    "barlow_twins": {"proj_hidden": [128], "proj_out": 64},
    "vicreg": {"proj_hidden": [128], "proj_out": 64},
    "wmse": {"proj_hidden": [128], "proj_out": 8, "w_size": 16},
    "cwrgp": {"proj_hidden": [128], "proj_out": 64, "groups": 2, "w_size": 16},
    "simsiam": {"proj_hidden": [128], "proj_out": 64, "pred_hidden": 32},
    "swav": {"proj_hidden": [128], "proj_out": 64, "num_prototypes": 100, "queue_size": 64},
    "dino": {"proj_hidden": [128, 128], "proj_out": 64, "num_prototypes": 100},
    "zero_cl": {"proj_hidden": [128], "proj_out": 64},
    "shuffled_dbn": {"proj_hidden": [128], "proj_out": 64, "groups": 8},
    "mocov2": {"proj_hidden": [64], "proj_out": 32, "queue_size": 40},
    "corinfomax": {"proj_hidden": [64], "proj_out": 16},
    "mmcr": {"proj_hidden": [64], "proj_out": 32},
    "frossl": {"proj_hidden": [64], "proj_out": 32},
    "mec": {"proj_hidden": [64, 64], "proj_out": 32, "pred_hidden": 16},
    "lejepa": {"proj_hidden": [64], "proj_out": 16},
    "simclr": {"proj_hidden": [64], "proj_out": 32},
    "mocov2plus": {"proj_hidden": [64], "proj_out": 32, "queue_size": 40},
    "byol": {"proj_hidden": [64], "proj_out": 32, "pred_hidden": 48},
    "msf": {"proj_hidden": [64], "proj_out": 32, "pred_hidden": 48, "queue_size": 40, "topk": 3},
    "matrix_ssl": {"proj_hidden": [64, 64], "proj_out": 32, "pred_hidden": 16},
    "ssole": {"proj_hidden": [64, 64], "proj_out": 32},
    "mix_bt": {"proj_hidden": [64], "proj_out": 32},
    "ivne": {"proj_hidden": [64, 64], "proj_out": 16},
    "dcl": {"proj_hidden": [64], "proj_out": 32},
    "dclw": {"proj_hidden": [64], "proj_out": 32},
    "tico": {"proj_hidden": [64], "proj_out": 32},
    "t_regs": {"proj_hidden": [64], "proj_out": 32},
    "emp_ssl": {"proj_hidden": [64, 64], "proj_out": 32},
    "visreg": {"proj_hidden": [64], "proj_out": 16},
    "simdino": {"proj_hidden": [64, 64], "proj_out": 32},
}
NARROW = {
    "byol": {"proj_hidden": [32], "proj_out": 16, "pred_hidden": 24},
    "mocov2": {"proj_hidden": [32], "proj_out": 16, "queue_size": 40},
    "mocov2plus": {"proj_hidden": [32], "proj_out": 16, "queue_size": 40},
    "dino": {"proj_hidden": [32, 32], "proj_out": 16, "num_prototypes": 24},
    "swav": {"proj_hidden": [32], "proj_out": 16, "num_prototypes": 24, "queue_size": 40},
    "intl_m": {"proj_hidden": [32], "proj_out": 16},
    "mec": {"proj_hidden": [32, 32], "proj_out": 16, "pred_hidden": 8},
    "lejepa": {"proj_hidden": [32, 32], "proj_out": 8, "num_slices": 16},
    "matrix_ssl": {"proj_hidden": [32, 32], "proj_out": 16, "pred_hidden": 8},
    "ssole": {"proj_hidden": [32, 32], "proj_out": 16},
    "tico": {"proj_hidden": [32], "proj_out": 16},
    "visreg": {"proj_hidden": [32, 32], "proj_out": 8, "num_slices": 16},
    "simdino": {"proj_hidden": [32, 32], "proj_out": 16},
}
# The named parts of each method's loss (logged as train/loss/<part>); none for one-term losses. A method
# not listed (a new one) is checked for finite parts only.
LOSS_PARTS = {
    "intl": {"mse", "trace"},
    "intl_m": {"mse", "trace"},
    "st": {"mse", "trace"},
    "barlow_twins": {"on_diag", "off_diag"},
    "vicreg": {"invariance", "variance", "covariance"},
    "wmse": set(),
    "cwrgp": set(),
    "simsiam": set(),
    "swav": set(),
    "dino": set(),
    "zero_cl": set(),
    "shuffled_dbn": set(),
    "mocov2": set(),
    "corinfomax": {"invariance", "log_det"},
    "mmcr": {"centroid_nuclear", "view_nuclear"},
    "frossl": {"invariance", "log_frobenius"},
    "mec": set(),
    "lejepa": {"prediction", "sigreg"},
    "simclr": set(),
    "mocov2plus": set(),
    "byol": set(),
    "msf": set(),
    "matrix_ssl": {"uniformity", "alignment"},
    "ssole": {"low_rank", "high_rank"},
    "mix_bt": {"on_diag", "off_diag", "mix"},
    "ivne": {"invariance", "entropy"},
    "dcl": set(),
    "dclw": set(),
    "tico": {"invariance", "covariance"},
    "t_regs": {"mse", "length", "sphere"},
    "emp_ssl": {"invariance", "tcr"},
    "visreg": {"prediction", "scale", "shape", "centre"},
    "simdino": {"compression", "expansion"},
}

# create_method's arguments for a method's own tests (the harness, `Pretrainer`, takes num_classes=10): 16 px crops
# of a batch of 16 (8: the multi-crop methods' and MEC's / LeJEPA's tests), or timm's tiny test ResNet, whose float64
# steps take milliseconds.
TINY = {"crop_sizes": (16, 16), "global_batch_size": 16, "backbone": "resnet18"}
TINY_8 = {**TINY, "global_batch_size": 8}
TEST_RESNET = {**TINY_8, "backbone": {"name": "test_resnet", "small_stem": False}}

# solo-learn's settings where the default run takes them (the class defaults are the official code's): SimCLR's
# projector and temperature, SwAV's queue, freezing and separate crop batches, DINO's teacher; their optimisers.
SOLO_LEARN = {
    "simclr": {"proj_hidden_bn": False, "joint_projector": False, "joint_backbone": False, "temperature": 0.2},
    "swav": {"queue_size": 24, "epoch_queue_starts": 50, "freeze_epochs": 2, "freeze_steps": 0, "joint_forward": False},
    "dino": {"teacher_temperature": 0.07, "momentum_base": 0.9995},
}
SOLO_OPTIMIZER = {"swav": {**SOLO_LARS, "lr": 0.6, "weight_decay": 1e-6}, "dino": {**SOLO_LARS, "weight_decay": 1e-6}}


def small_config(name):
    """The method's small config (a copy); {} for a method not listed: its class defaults."""
    return copy.deepcopy(SMALL.get(name, {}))


def narrow_config(name):
    """The method's narrow config (a copy); {} for a method not listed."""
    return copy.deepcopy(NARROW.get(name, {}))


def overrides(config):
    """A method config as the command line's `method.<field>=<value>` overrides."""
    return [f"method.{key}={value}" for key, value in config.items()]


def crops(count=2, size=16, batch=TINY["global_batch_size"], seed=0):
    """`count` crops of `batch` seeded random images at `size` px."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, size, size, generator=gen) for _ in range(count)]


def build(method, extra=()):
    """What training fits (the harness, `Pretrainer`; `.method` the method), built from `method=<name>` at its small
    config, a batch of 32 and `extra` overrides."""
    cfg = compose_run([f"method={method}", "data.batch_size=32", *overrides(small_config(method)), *extra])
    return build_method(cfg, num_classes=10, world_size=1)


def solo_learn_small(name):
    """The small config with solo-learn's settings of the method (where it has any)."""
    return {**small_config(name), **SOLO_LEARN.get(name, {})}


def solo_learn_narrow(name):
    """The narrow config with solo-learn's settings of the method (where it has any)."""
    return {**narrow_config(name), **SOLO_LEARN.get(name, {})}
