"""Name -> method class, filled by a decorator (like timm's `register_model`).

Every module in `zoo/methods/` is imported on first use, so a new method is
one file there and no edit elsewhere; a method defined anywhere else
registers itself the moment its module is imported.
"""

import importlib
import pkgutil

from hydra.core.config_store import ConfigStore

from zoo.errors import ZooError

_METHODS = {}


def register_method(name):
    """Class decorator: register a method and its `Config` dataclass under `name`.

    The config becomes the Hydra option `method=<name>`; its `name` field is
    set to the registered name.
    """

    def decorator(cls):
        if name in _METHODS and _METHODS[name] is not cls:
            raise ZooError(f"method '{name}' is registered twice ({_METHODS[name].__module__} and {cls.__module__})")
        cls.name = name
        _METHODS[name] = cls
        ConfigStore.instance().store(group="method", name=name, node=cls.Config(name=name))
        return cls

    return decorator


def discover_methods():
    """Import every module of the `zoo.methods` package (idempotent)."""
    import zoo.methods

    for module in pkgutil.iter_modules(zoo.methods.__path__):
        importlib.import_module(f"zoo.methods.{module.name}")


def method_names():
    discover_methods()
    return sorted(_METHODS)


def get_method(name):
    discover_methods()
    if name not in _METHODS:
        raise ZooError(f"unknown method '{name}' (registered: {', '.join(sorted(_METHODS))})")
    return _METHODS[name]
