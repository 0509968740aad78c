"""The method: an `nn.Module` (no Lightning) with a backbone, a projector and a loss; every method subclasses it.

A method file says only what is particular to it: its `Config`, its heads (`build_projector`, `build_modules`) and
its loss (`loss(views)`, or `compute_loss(crops, state)` for more than projector outputs). An EMA target, a feature
queue or early freezing are components the method holds (`zoo.nn`), which the one training step (`zoo.train.step`)
finds and calls. The optimiser, schedule, online probe, logging and validation belong to the harness that wraps
any method for training (`zoo.train.harness.Pretrainer`).

A method is built from its own config plus explicit arguments, like timm's `create_model(name, **kwargs)`; no run
config is needed, and its loss runs without a trainer:

    model = VICReg(VICReg.Config(proj_out=64), crop_sizes=(16, 16), global_batch_size=16)
    out = model.forward_loss([crop_a, crop_b])   # MethodOutput: total, parts, features, logs
    out.total.backward()

`forward_loss(crops, state)` takes where training is (`zoo.nn.StepState`: step, total steps, epoch, steps per
epoch; by default the first step, `FIRST_STEP`) for methods whose loss follows the schedule (DINO's teacher
temperature).
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from zoo.backbones import build_mlp, check_whitening_layer, create_backbone
from zoo.config import BackboneConfig
from zoo.errors import ZooError
from zoo.nn import EMA, StepState, components
from zoo.nn.legacy import rename_old_layout_keys
from zoo.regularizers import build_regularizer

FIRST_STEP = StepState(step=0, total_steps=1)  # where a method stands without a training loop


@dataclass
class MethodConfig:
    """Fields every method has; a method's own `Config` subclasses this."""

    name: str = "?"
    proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
    proj_out: int = 2048
    proj_hidden_bias: bool = True
    proj_last_bias: bool = True
    proj_last_bn: bool = False  # BatchNorm without affine after the last layer (SimSiam)
    proj_hidden_bn: bool = True  # BatchNorm after each hidden Linear (SimCLR's and MoCo's projectors have none)
    # An auxiliary regulariser added to the loss (zoo/regularizers/): selected with regularizer=<name>, which puts its
    # typed Config here (method.regularizer.weight=...); None: none.
    regularizer: Any = None


@dataclass
class MethodOutput:
    """One forward of a method's loss: `total` (what backward takes), its named `parts` (logged as
    train/loss/<part>; empty for a one-term loss), the backbone `features` the online probe reads (the largest
    crops'), and `logs`: values of this step to log (e.g. DINO's teacher temperature), {name: number}."""

    total: torch.Tensor
    parts: dict = field(default_factory=dict)
    features: list = field(default_factory=list)
    logs: dict = field(default_factory=dict)


def typed_config(schema, *nodes):
    """`nodes` (dataclass instances, dicts or DictConfigs; None skipped) merged in order onto the
    dataclass `schema`: a typed DictConfig, so a misspelled key or a wrong type fails here."""
    return OmegaConf.merge(OmegaConf.structured(schema), *[node for node in nodes if node is not None])


class Method(nn.Module):
    """A self-supervised method: backbone + projector + loss.

    Arguments (everything the method reads; a checkpoint's hyper-parameters keep them):
      config: the method's `Config` (a dataclass instance, or a dict / DictConfig of its fields
        on top of the defaults; None = the paper's defaults).
      crop_sizes: the size of each training crop, in crop order, e.g. (224, 224, 96, 96, 96, 96):
        their number is the views the loss takes, the largest decides the backbone's stem.
      global_batch_size: samples per training step over all devices (what whitening sees).
      backbone: a timm model name or a `BackboneConfig` (dataclass, dict or DictConfig).
    """

    Config = MethodConfig
    name = "?"
    # How many crops the loss takes: 2 for two-view losses, None for any number (multi-crop).
    num_views = 2
    # How the training forward batches the crops, as the method's source does (each call's BatchNorm
    # statistics cover the crops it holds); `encode` and `project` honour it, and so every method's forward:
    #   joint_backbone: True = one backbone call per run of consecutive crops of one size, concatenated
    #     (MMCR, LeJEPA, the official SwAV); False = one backbone call per crop (solo-learn);
    #   joint_projector: True = one projector call on every crop's features, concatenated (W-MSE, CW-RGP,
    #     MMCR, LeJEPA, the official SwAV); False = one projector call per crop.
    # A method whose recipes follow sources that differ makes them properties of its config (SwAV, SimCLR).
    joint_backbone = False
    joint_projector = False
    # `optimizer.*` values of the method's paper: the harness applies them under its optimizer argument, and
    # Hydra when `method=<name>` is selected.
    optimizer_defaults: ClassVar[dict] = {}

    def __init__(
        self,
        config: MethodConfig | Mapping | None = None,
        *,
        crop_sizes: Sequence[int] = (224, 224),
        global_batch_size: int = 256,
        backbone: str | BackboneConfig | Mapping = "resnet18",
    ):
        super().__init__()
        if isinstance(config, DictConfig | Mapping) and {"method", "data"} <= set(config):
            raise TypeError(
                f"{type(self).__name__} takes its method config and explicit arguments, not a run config: "
                "build it from a run config with zoo.build.build_method(cfg, num_classes, world_size)"
            )
        self.mcfg = typed_config(self.Config, config)
        self.mcfg.name = self.name
        self.backbone_cfg = typed_config(BackboneConfig, {"name": backbone} if isinstance(backbone, str) else backbone)
        self.crop_sizes = tuple(int(size) for size in crop_sizes)
        self.global_batch_size = int(global_batch_size)
        self.check_views(len(self.crop_sizes))
        self.backbone = create_backbone(self.backbone_cfg, max(self.crop_sizes))
        self.feature_dim = self.backbone.num_features
        check_whitening_layer(self.backbone_cfg, self.global_batch_size, self.feature_dim)
        self.projector = self.build_projector()
        self.build_modules()
        self.regularizer = build_regularizer(self.mcfg.regularizer)  # None, or a zoo.regularizers.Regularizer
        # checkpoints of the layout before components (target_backbone.*, queue, ...) load under today's names
        self.register_load_state_dict_pre_hook(rename_old_layout_keys)
        self.check_global_batch(self.mcfg, self.global_batch_size)

    # ---- what a method may override -------------------------------------------------
    def build_projector(self):
        m = self.mcfg
        return build_mlp(self.feature_dim, m.proj_hidden, m.proj_out, m.proj_hidden_bias, m.proj_last_bias, m.proj_last_bn,
                         m.proj_hidden_bn)

    def build_modules(self):
        """Modules beyond backbone and projector (a predictor; components such as an EMA target,
        `zoo.nn`), built once those exist; an override calls `super().build_modules()`."""

    @property
    def momentum_target(self):
        """True for a method with an EMA target branch (an `zoo.nn.EMA` component)."""
        return any(isinstance(c, EMA) for c in components(self))

    @property
    def gradients_start_late(self):
        """True where a trained parameter may get its first gradient after other parameters have stepped (a
        component freezing some early: SwAV's prototypes, DINO's last layer), so SGD cannot use torch's fused kernel."""
        return any(c.gradients_start_late for c in components(self))

    def loss(self, views):
        """Projector outputs, one per crop, in crop order -> scalar loss, or (loss, {part name: tensor})."""
        raise NotImplementedError

    @classmethod
    def check_batch(cls, config, global_batch_size):
        """Raise ZooError when the global batch cannot serve this method with `config` (its typed Config), beyond
        the rule every method shares (`check_global_batch`): e.g. a whitening too large for it, a queue smaller."""

    @classmethod
    def check_global_batch(cls, config, global_batch_size):
        """Every method's batch limits: run when the run config is composed, before data or model
        (`zoo.pretrain.check_batch_config`), and at construction. Every loss here takes statistics or negatives
        over the batch, so one sample serves none (VICReg's variance is NaN, Barlow Twins' standardised batch
        has no gradient, BatchNorm stops); then the method's own `check_batch`."""
        if global_batch_size < 2:
            raise ZooError(
                f"method {cls.name} needs a global batch of at least 2 samples (its loss and BatchNorm take statistics "
                f"over the batch), got {global_batch_size}: raise data.batch_size (or data.global_batch_size)"
            )
        cls.check_batch(config, global_batch_size)

    def transform(self, z):
        """Whitening methods: (output, axis) of their transform applied to one training-sized batch
        of projector outputs, on one whitening unit (sub-batch, group) so that a perfect whitening
        gives the identity; None for methods without a transform. For the spectrum diagnostics:
        `z` is already gathered from every rank, so call `whiten(..., distributed=False)`."""

    def compute_loss(self, crops, state: StepState = FIRST_STEP):
        """The override point of the loss: one training batch (crops in crop order) at `state` (by default the
        first step) -> (loss or (loss, {part: tensor}), backbone features for the online probe)."""
        features = self.encode(crops)
        return self.loss(self.project(features)), largest_crops(features, crops)

    def step_logs(self, state: StepState) -> dict:
        """{metric name: number} to log at `state`, beyond the loss (e.g. a temperature the schedule moves)."""
        return {}

    def forward_loss(self, crops, state: StepState = FIRST_STEP) -> MethodOutput:
        """The loss of one training batch at `state` (by default the first step), as training takes it: with a
        regulariser (`mcfg.regularizer`), its weighted term added (`zoo.regularizers.Regularizer.apply`)."""
        if self.regularizer is not None:
            total, parts, features = self.regularizer.apply(self, crops, state)
        else:
            loss, features = self.compute_loss(crops, state)
            total, parts = self.split_loss(loss)
        return MethodOutput(total, parts, features, self.step_logs(state))

    def encode(self, crops):
        """Backbone features of every crop, in crop order, batched as `joint_backbone` declares."""
        if not self.joint_backbone:
            return [self.backbone(crop) for crop in crops]
        features = []
        for _, run in itertools.groupby(crops, key=lambda crop: tuple(crop.shape[1:])):
            run = list(run)
            features += self.backbone(torch.cat(run)).split([len(crop) for crop in run])
        return features

    def project(self, features):
        """Projector outputs of every crop's features, in crop order, batched as `joint_projector` declares."""
        if self.joint_projector:
            return list(self.projector(torch.cat(features)).split([len(f) for f in features]))
        return [self.projector(f) for f in features]

    def extra_param_groups(self):
        """Parameter groups beyond backbone + projector, e.g. a predictor with a fixed lr.

        Each is a dict with "params" and optionally "lr_factor" (x the method lr)
        and "fixed_lr" (True: not scheduled). The harness puts every other trained parameter in the
        backbone + projector groups; parameters with requires_grad False (frozen for good) are in none.
        """
        return []

    # ---- shared machinery -------------------------------------------------------
    @classmethod
    def check_views(cls, num_crops):
        wanted = cls.num_views or 2
        if num_crops < 2 or (cls.num_views is not None and num_crops != wanted):
            raise ZooError(
                f"method {cls.name} takes {wanted if cls.num_views else 'at least 2'} views but data.views gives "
                f"{num_crops} crops: change data.views (or pick a multi-crop method)"
            )

    @staticmethod
    def split_loss(loss):
        """What `loss()` / `compute_loss` gave -> (total, {part name: tensor}): a method may return
        the total alone or (total, its named parts); the parts are logged as train/loss/<part>."""
        return (loss, {}) if isinstance(loss, torch.Tensor) else loss


def largest_crops(features, crops):
    """The features of the crops at the largest size (the probe skips small multi-crops)."""
    size = max(crop.shape[-1] for crop in crops)
    return [f for f, crop in zip(features, crops) if crop.shape[-1] == size]
