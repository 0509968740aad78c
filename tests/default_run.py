"""The default run's config as `python main_pretrain.py [overrides]` composes it (no recipe: a method's
embedded settings, zoo/configs/embedded/<method>.yaml, on its class defaults)."""

from hydra import compose, initialize_config_module

from zoo.config import register_configs
from zoo.registry import method_names


def compose_run(overrides=(), hydra=False):
    register_configs()
    method_names()  # registers every method's config group entry
    with initialize_config_module("zoo.configs", version_base="1.3"):
        return compose("pretrain", overrides=list(overrides), return_hydra_config=hydra)


def default_run(method):
    """(method config, optimizer config) of `python main_pretrain.py method=<method>`."""
    cfg = compose_run([f"method={method}"])
    return cfg.method, cfg.optimizer
