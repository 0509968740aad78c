"""Auxiliary regularisers: a term that any method adds to its loss by configuration.

    python main_pretrain.py method=simclr regularizer=ldreg method.regularizer.weight=0.01

`regularizer=<name>` selects one (a Hydra option, so a misspelt name fails when the config is composed); its values
sit in the method's config, `method.regularizer.*` (typed by the regulariser's `Config`: a misspelt key or a wrong type
fails there too), so checkpoints and resumed runs keep them. The method's loss becomes

    total = loss + weight x term,

logged as train/loss (the total), train/loss/<part> for the method's parts (a one-term loss: train/loss/<method>)
and train/loss/<regulariser name> (weight x term).

A regulariser is one file in this folder: a `Regularizer` subclass registered with
`@register_regularizer("<name>")` (zoo.registry), with its `Config` (fields beside `name` and `weight`) and its `term`,
a scalar of what one step of the method produced (`RegularizerInputs`); nothing else is edited to add one. The pure
loss functions live in zoo/losses/.
"""

from dataclasses import dataclass, field

import torch
from omegaconf import OmegaConf
from torch import Tensor

from zoo.errors import ZooError
from zoo.nn import EMA, StepState, components
from zoo.registry import get_regularizer

__all__ = ["Regularizer", "RegularizerConfig", "RegularizerInputs", "build_regularizer"]


@dataclass
class RegularizerConfig:
    """Fields every regulariser has; a regulariser's own `Config` subclasses this."""

    name: str = "?"
    weight: float = 1.0  # total = loss + weight x term


@dataclass
class RegularizerInputs:
    """What a regulariser reads of one step of a method, each a list of (N, D) tensors, one per crop batch:
    `features`: the online backbone's features of the crops the probe reads (the largest ones), with gradients;
    `embeddings`: the online projector's outputs, every crop batch it embedded during the loss, with gradients;
    `target_features`: the backbone features an EMA target (`zoo.nn.EMA` with a backbone copy) computed during the
    loss, without gradients (empty for a method without one)."""

    features: list = field(default_factory=list)
    embeddings: list = field(default_factory=list)
    target_features: list = field(default_factory=list)


class Regularizer:
    """A term added to a method's loss (see the module). Subclasses set `Config` and `term`, and say which inputs
    beyond the backbone features they read (`reads_embeddings`, `reads_target_features`: recorded only then)."""

    Config = RegularizerConfig
    name = "?"
    reads_embeddings = False
    reads_target_features = False

    def __init__(self, config=None):
        self.rcfg = OmegaConf.merge(OmegaConf.structured(self.Config), config or {})
        self.rcfg.name = self.name
        self.weight = float(self.rcfg.weight)

    def active(self, state: StepState) -> bool:
        """Whether the term counts at `state` (a warm-up may hold it back; it is then logged as 0)."""
        return True

    def term(self, inputs: RegularizerInputs, state: StepState) -> Tensor:
        """The unweighted term, a scalar."""
        raise NotImplementedError

    def apply(self, method, crops, state: StepState):
        """`method.compute_loss(crops, state)` with the weighted term added -> (total, parts, the probe's features)."""
        recorded = {"embeddings": [], "target_features": []}
        watched = [(method.projector, "embeddings")] if self.reads_embeddings else []
        if self.reads_target_features:
            watched += [(ema.backbone, "target_features") for ema in components(method)
                        if isinstance(ema, EMA) and "backbone" in ema.online]
        hooks = [module.register_forward_hook(lambda _m, _i, out, key=key: recorded[key].append(out))
                 for module, key in watched]
        try:
            loss, features = method.compute_loss(crops, state)
        finally:
            for hook in hooks:
                hook.remove()
        total, parts = method.split_loss(loss)
        batch = len(crops[0])
        inputs = RegularizerInputs(list(features), *(per_batch(recorded[key], batch) for key in recorded))
        weighted = self.weight * self.term(inputs, state) if self.active(state) else total.new_zeros(())
        return total + weighted, {**(parts or {method.name: total}), self.name: weighted}, features


def per_batch(outputs, batch):
    """Outputs of calls on one or several crop batches (concatenated, with `joint_projector`) -> one per crop batch."""
    return list(torch.cat(outputs).split(batch)) if outputs else []


def build_regularizer(config):
    """The regulariser a method's `regularizer` field names (a Config, dict or DictConfig), or None for none."""
    if config is None:
        return None
    name = config.get("name") if hasattr(config, "get") else getattr(config, "name", None)
    if not name or name == "?":
        raise ZooError(f"method.regularizer has no name: select one with regularizer=<name> ({config})")
    return get_regularizer(name)(config)
