"""Name -> method class, filled by a decorator (like timm's `register_model`); name -> auxiliary regulariser, the same
way (`register_regularizer`: a term any method adds to its loss, selected with `regularizer=<name>`).

Every module in `zoo/methods/` and `zoo/regularizers/` is imported on first use, so a new method (or regulariser) is
one file there and no edit elsewhere. A method file kept outside the package
is named in the environment variable `ZOO_METHODS` (comma-separated module
names or .py paths) and is imported the same way; or import it yourself
before calling `zoo.pretrain.main()`. `create_method(name, config, **arguments)` builds
one without a run config.
"""

import importlib
import importlib.util
import os
import pkgutil
import re
import sys
from pathlib import Path

from hydra.core.config_store import ConfigStore

from zoo.errors import ZooError

_METHODS = {}
_REGULARIZERS = {}
METHODS_FOLDER = Path(__file__).resolve().parent / "methods"
REGULARIZERS_FOLDER = Path(__file__).resolve().parent / "regularizers"
# A registration as the method (regulariser) files write it: the decorator at the start of a line.
_REGISTRATION = re.compile(r"""^@register_method\(\s*["']([^"']+)["']\s*\)""", re.MULTILINE)
_REGULARIZER_REGISTRATION = re.compile(r"""^@register_regularizer\(\s*["']([^"']+)["']\s*\)""", re.MULTILINE)


def register_method(name):
    """Class decorator: register a method and its `Config` dataclass under `name`.

    The config becomes the Hydra option `method=<name>`; its `name` field is
    set to the registered name. A class attribute `optimizer_defaults` (a dict
    of `optimizer.*` values) travels with it.
    """

    def decorator(cls):
        if name in _METHODS and _METHODS[name] is not cls:
            raise ZooError(f"method '{name}' is registered twice ({_METHODS[name].__module__} and {cls.__module__}): rename one "
                           "(ZOO_METHODS adds methods, it does not replace one)")
        cls.name = name
        _METHODS[name] = cls
        # `method=<name>` selects the method's config and, where the method states them, the
        # optimizer settings of its paper (recipes and the command line still override both).
        node = {"method": cls.Config(name=name), "optimizer": dict(getattr(cls, "optimizer_defaults", {}))}
        ConfigStore.instance().store(group="method", name=name, node=node, package="_global_")
        return cls

    return decorator


def register_regularizer(name):
    """Class decorator: register an auxiliary regulariser (a `zoo.regularizers.Regularizer`) and its `Config` dataclass
    under `name`. The config becomes the Hydra option `regularizer=<name>`, placed at `method.regularizer` (every
    method's config has the field), where its values are set: `method.regularizer.weight=0.01`."""

    def decorator(cls):
        if name in _REGULARIZERS and _REGULARIZERS[name] is not cls:
            raise ZooError(f"regularizer '{name}' is registered twice ({_REGULARIZERS[name].__module__} and "
                           f"{cls.__module__}): rename one")
        cls.name = name
        _REGULARIZERS[name] = cls
        ConfigStore.instance().store(group="regularizer", name=name, node=cls.Config(name=name),
                                     package="method.regularizer")
        return cls

    return decorator


def user_method_entries():
    return [entry for entry in (e.strip() for e in os.environ.get("ZOO_METHODS", "").split(",")) if entry]


def discover_methods():
    """Import every module of the `zoo.methods` and `zoo.regularizers` packages and of `ZOO_METHODS` (idempotent). The
    files are found by their folder and imported by name, as plug-ins: the registry sits below what fills it."""
    for module in pkgutil.iter_modules([str(METHODS_FOLDER)]):
        importlib.import_module(f"zoo.methods.{module.name}")
    for module in pkgutil.iter_modules([str(REGULARIZERS_FOLDER)]):
        importlib.import_module(f"zoo.regularizers.{module.name}")
    for entry in user_method_entries():
        import_user_module(entry)


def user_module_path(entry):
    """The file of a ZOO_METHODS entry: a .py path, or a module name found (not imported) on sys.path."""
    if entry.endswith(".py"):
        path = Path(entry).resolve()
        if not path.is_file():
            raise ZooError(f"ZOO_METHODS names {entry}, which does not exist (give a .py file path or a module name)")
        return path
    try:
        spec = importlib.util.find_spec(entry)
    except (ImportError, ValueError) as err:
        spec, reason = None, f"{type(err).__name__}: {err}"
    else:
        reason = f"no module named '{entry}'"
    if spec is None or not spec.origin:
        raise ZooError(f"ZOO_METHODS names module '{entry}', which cannot be imported ({reason})")
    return Path(spec.origin)


def import_user_module(entry):
    """A module name (`mypkg.mymethod`) or a file path (`path/to/mymethod.py`)."""
    if not entry.endswith(".py"):
        try:
            return importlib.import_module(entry)
        except ModuleNotFoundError as err:
            raise ZooError(f"ZOO_METHODS names module '{entry}', which cannot be imported ({err})") from None
    path = user_module_path(entry)
    name = f"zoo_user_methods.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def declared_method_names():
    """{name: file} of the methods that zoo/methods/ and ZOO_METHODS' files register, read from their
    source without importing them (and torch): a misspelt `method=` is refused in a second. A name
    registered twice is refused here as `register_method` refuses it."""
    files = sorted(METHODS_FOLDER.glob("*.py")) + [user_module_path(entry) for entry in user_method_entries()]
    names = {}
    for path in files:
        for name in _REGISTRATION.findall(path.read_text(errors="replace")):
            if name in names and names[name] != path:
                raise ZooError(f"method '{name}' is registered twice ({names[name]} and {path}): rename one "
                               "(ZOO_METHODS adds methods, it does not replace one)")
            names[name] = path
    return names


def declared_regularizer_names():
    """The regularisers zoo/regularizers/ registers, read from its files without importing them (and torch)."""
    return sorted({name for path in REGULARIZERS_FOLDER.glob("*.py")
                   for name in _REGULARIZER_REGISTRATION.findall(path.read_text(errors="replace"))})


def method_names():
    discover_methods()
    return sorted(_METHODS)


def regularizer_names():
    discover_methods()
    return sorted(_REGULARIZERS)


def get_regularizer(name):
    discover_methods()
    if name not in _REGULARIZERS:
        raise ZooError(f"unknown regularizer '{name}' (registered: {', '.join(sorted(_REGULARIZERS))})")
    return _REGULARIZERS[name]


def get_method(name):
    discover_methods()
    if name not in _METHODS:
        raise ZooError(f"unknown method '{name}' (registered: {', '.join(sorted(_METHODS))})")
    return _METHODS[name]


def create_method(name, config=None, **kwargs):
    """The method registered as `name`, built from its config and explicit arguments (like timm's
    `create_model`): `config` is its `Config` or a dict of its fields on the paper's defaults;
    `kwargs` are `zoo.methods.base.Method`'s arguments (crop_sizes, global_batch_size, backbone), e.g.

        create_method("vicreg", {"proj_out": 64}, crop_sizes=(16, 16), global_batch_size=16)

    The harness that trains it (`zoo.train.harness.Pretrainer`) takes the optimiser, probe and k-NN arguments;
    from a run config, `zoo.build.build_method(cfg, num_classes, world_size)` builds both."""
    return get_method(name)(config, **kwargs)
