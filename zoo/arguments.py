"""Checks of a command line that need neither data, a model nor torch.

A misspelt method or a bad value seen in the overrides (or in NUM_GPUS / NUM_NODES, which the
recipe scripts read) ends in its one `error:` line before torch and Lightning are imported, in
under a second instead of the ten of those imports. `check_values` is also what
`zoo.config.check_pretrain_config` runs on the composed config, so a value set by a recipe or
an interpolation meets the same rule with the same message.
"""

import math
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from zoo.catalog import dataset_info
from zoo.errors import ZooError
from zoo.names import (
    BackboneWhitening,
    CorruptImages,
    Interpolation,
    LinearOptimizer,
    LinearProtocol,
    LinearSchedule,
    Loader,
    Optimizer,
    Schedule,
    ScheduleInterval,
    WarmupRule,
    checked,
)
from zoo.registry import declared_method_names, declared_regularizer_names

# The enum of each key the schema types with one (zoo.config: main_pretrain.py's keys and main_linear.py's), for the
# command line before Hydra composes it; the composed config meets the same enums in the schema, with the same line.
NAMES = {"optimizer.name": Optimizer, "scheduler.name": Schedule, "scheduler.interval": ScheduleInterval,
         "scheduler.warmup_rule": WarmupRule, "data.loader": Loader, "data.corrupt_images": CorruptImages,
         "linear.protocol": LinearProtocol, "linear.optimizer": LinearOptimizer, "linear.schedule": LinearSchedule,
         "linear.crop_interpolation": Interpolation, "backbone.whitening_layer": BackboneWhitening}
# Lightning's precision names (lightning.fabric.connector's _PRECISION_INPUT)
PRECISIONS = ("64-true", "64", "32-true", "32", "16-mixed", "16", "16-true", "bf16-mixed", "bf16", "bf16-true",
              "transformer-engine", "transformer-engine-float16")
AT_LEAST = {"data.batch_size": 1, "data.eval_batch_size": 1, "data.num_workers": 0, "checkpoint_every_n_steps": 1,
            "divergence.skip_nonfinite_steps": 0, "eval.lidar_samples": 2, "eval.lidar_views": 0,
            "backbone.whitening_iters": 1, "backbone.whitening_groups": 1, "backbone.whitening_eps": 0}
# The keys `check_values` looks at in a composed config (whose NAMES the schema's types have checked).
CHECKED_KEYS = (*AT_LEAST, "optimizer.lr", "optimizer.probe_lr", "optimizer.weight_decay", "trainer.max_epochs",
                "trainer.max_steps", "trainer.devices", "trainer.num_nodes", "trainer.precision", "data.name")


def parse_value(text):
    """An override's value as Hydra reads a scalar: int, float (nan and inf too), bool, null, else the text."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def override_values(argv):
    """{key: value} of the `key=value` / `+key=value` / `++key=value` overrides (the last of a key wins), flags
    aside; a value that interpolates (${...}) is left to the composed config's checks."""
    values = {}
    for arg in argv:
        if arg.startswith(("-", "~")) or "=" not in arg:
            continue
        key, text = arg.split("=", 1)
        if "${" in text:
            values.pop(key.lstrip("+"), None)
            continue
        values[key.lstrip("+")] = parse_value(text)
    return values


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_devices(value, name="trainer.devices"):
    """Lightning's devices: auto, a count >= 1, -1 (every GPU), or a list of device indices ([0,1] or "0,1")."""
    if isinstance(value, str) and value != "auto":
        parts = [part.strip() for part in value.strip("[]").split(",") if part.strip()]
        if parts and all(part.isdigit() for part in parts):
            value = int(parts[0]) if len(parts) == 1 else [int(part) for part in parts]
    indices = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0 and all(isinstance(v, int) and v >= 0 for v in value)
    count = isinstance(value, int) and not isinstance(value, bool) and (value >= 1 or value == -1)
    if not (value == "auto" or indices or count):
        raise ZooError(f"{name}={value} is not a number of devices: use auto, a count >= 1 (e.g. {name}=2) or device "
                       "indices (e.g. [0,1])")


def check_values(values):
    """One `error:` line for a value of `values` ({dotted key: value}, any subset) that training cannot use."""
    for key, low in AT_LEAST.items():
        value = values.get(key)
        if is_number(value) and value < low:
            raise ZooError(f"{key}={value} must be at least {low}")
    for key in ("optimizer.lr", "optimizer.probe_lr"):
        value = values.get(key)
        if is_number(value) and not (math.isfinite(value) and value > 0):
            raise ZooError(f"{key}={float(value)} must be positive" + ("" if math.isfinite(value) else " and finite"))
    decay = values.get("optimizer.weight_decay")
    if is_number(decay) and not (decay >= 0 and math.isfinite(decay)):
        raise ZooError(f"optimizer.weight_decay={decay} must be >= 0")
    if values.get("eval.lidar_views") == 1:
        raise ZooError("eval.lidar_views=1: LiDAR compares views of an image, give at least 2 (0: no LiDAR)")
    epochs, steps = values.get("trainer.max_epochs"), values.get("trainer.max_steps")
    if epochs == 0 or (is_number(epochs) and epochs < -1):
        raise ZooError(f"trainer.max_epochs={epochs} trains nothing: give a number of epochs >= 1 (or -1 with "
                       "trainer.max_steps=N)")
    if steps == 0 or (is_number(steps) and steps < -1):
        raise ZooError(f"trainer.max_steps={steps} trains nothing: give a number of steps >= 1 (or -1: max_epochs decides)")
    if epochs == -1 and steps == -1:
        raise ZooError("trainer.max_epochs=-1 with trainer.max_steps=-1 never stops: set one of them")
    if "trainer.devices" in values:
        check_devices(values["trainer.devices"])
    nodes = values.get("trainer.num_nodes")
    if nodes is not None and not (isinstance(nodes, int) and not isinstance(nodes, bool) and nodes >= 1):
        raise ZooError(f"trainer.num_nodes={nodes} must be a number of nodes >= 1")
    precision = values.get("trainer.precision")
    if precision is not None and str(precision) not in PRECISIONS:
        raise ZooError(f"trainer.precision={precision} is not a precision Lightning knows: use 32-true, bf16-mixed or "
                       "16-mixed (a CUDA GPU)")
    check_names(values)
    if values.get("data.name") is not None:
        dataset_info(values["data.name"])


def check_names(values):
    """`values`' keys of NAMES hold one of their enum's names (the line OmegaConf's rejection becomes, zoo.config)."""
    for key, names in NAMES.items():
        if values.get(key) is not None:
            checked(key, values[key], names)


def check_environment(environ=os.environ):
    """NUM_GPUS and NUM_NODES, which the config (and so every recipe script) reads."""
    if environ.get("NUM_GPUS", "").strip():
        check_devices(parse_value(environ["NUM_GPUS"]), name="NUM_GPUS")
    if environ.get("NUM_NODES", "").strip():
        nodes = parse_value(environ["NUM_NODES"])
        if not (isinstance(nodes, int) and not isinstance(nodes, bool) and nodes >= 1):
            raise ZooError(f"NUM_NODES={environ['NUM_NODES']} must be a number of nodes >= 1")


def check_experiment(name, kind="pretrain"):
    """experiment=<dataset>/<recipe>: its config file exists."""
    folder = resources.files("zoo").joinpath("configs", *(["linear"] if kind == "linear" else []), "experiment")
    if not folder.joinpath(f"{name}.yaml").is_file():
        scripts = "scripts/pretrain" if kind == "pretrain" else "scripts/linear"
        raise ZooError(f"unknown recipe experiment={name} (the recipes are the files under {scripts}/<dataset>/)")


def check_pretrain_arguments(argv, environ=os.environ):
    """main_pretrain.py's overrides and environment, before the heavy imports."""
    check_environment(environ)
    values = override_values(argv)
    if isinstance(values.get("experiment"), str):
        check_experiment(values["experiment"])
    method = values.get("method")
    names = declared_method_names()  # also: ZOO_METHODS' files exist and add no taken name
    if isinstance(method, str) and method not in names and not environ.get("ZOO_METHODS", "").strip():
        raise ZooError(f"unknown method '{method}' (registered: {', '.join(sorted(names))})")
    regularizer = values.get("regularizer")
    if isinstance(regularizer, str) and regularizer not in (regularizers := declared_regularizer_names()):
        raise ZooError(f"unknown regularizer '{regularizer}' (registered: {', '.join(regularizers)})")
    check_values(values)


def check_checkpoint_file(path):
    """A --ckpt PATH that is a file (read_checkpoint then reads it)."""
    if not os.path.isfile(path):
        raise ZooError(f"checkpoint not found: {path} (pass the path to a .ckpt written by main_pretrain.py)")


def check_evaluation_arguments(argv):
    """main_linear.py / main_knn.py, before torch is imported: the overrides' names, the data a recipe names exists
    (unless only the config is printed), then `--ckpt PATH` (or --ckpt=PATH) names a file."""
    check_names(override_values(argv))
    if "--cfg" not in argv and not any(arg.startswith("--cfg=") for arg in argv):
        check_data_root([arg for arg in argv if not arg.startswith("-")])
    for index, arg in enumerate(argv):
        if arg == "--ckpt" and index + 1 < len(argv):
            check_checkpoint_file(argv[index + 1])
        elif arg.startswith("--ckpt="):
            check_checkpoint_file(arg.split("=", 1)[1])


def override_value(overrides, key):
    """The value of KEY=VALUE among the overrides (the last one, as Hydra takes it), or None."""
    values = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}=")]
    return values[-1] if values else None


def data_overrides(overrides):
    """The `data.*` overrides, led by data.root=$DATA_DIR/<dataset> for a recipe (experiment=<dataset>/
    <recipe>) when DATA_DIR is set and no data.root is given; else the data is the checkpoint's own."""
    given = [o for o in overrides if o.startswith("data.")]
    recipe = override_value(overrides, "experiment")
    if recipe and os.environ.get("DATA_DIR") and override_value(given, "data.root") is None:
        given.insert(0, f"data.root={os.environ['DATA_DIR']}/{recipe.split('/')[0]}")
    return given


def check_data_root(overrides):
    root = override_value(data_overrides(overrides), "data.root")
    if root and not Path(root).expanduser().exists():
        raise ZooError(f"data not found at {root} (set DATA_DIR or pass data.root=PATH)")
