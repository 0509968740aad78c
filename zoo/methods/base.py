"""The shared training stack: every method is a subclass with a projector and a loss.

The base owns the backbone, projector construction, optimiser and schedule,
the online linear probe, online k-NN and spectrum statistics; an EMA target,
a feature queue or early freezing are components the method holds (`zoo.nn`),
which the one training step (`zoo.train.step`) finds and calls. A method file
only says what is particular to it.

A method is built from its own config plus explicit arguments, like timm's
`create_model(name, **kwargs)`; no run config is needed:

    VICReg(VICReg.Config(proj_out=64), num_classes=10, crop_sizes=(16, 16), global_batch_size=16)

`zoo.build.build_method(cfg, num_classes, world_size)` is the one place that turns
a run config into these arguments.
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torchmetrics.functional.classification import multiclass_accuracy

from zoo.backbones import build_mlp, create_backbone, wants_channels_last
from zoo.config import BackboneConfig, EvalConfig, OptimizerConfig, SchedulerConfig, plain_values
from zoo.errors import ZooError
from zoo.metrics.health import collapse_indicator, health
from zoo.metrics.knn import knn_predict
from zoo.metrics.spectrum import attainable_eigenvalues, condition_number, covariance_eigenvalues, effective_rank
from zoo.names import Schedule, ScheduleInterval, WarmupRule
from zoo.nn import EMA, StepState, components
from zoo.nn.legacy import rename_old_layout_keys
from zoo.optim import make_optimizer
from zoo.spectral import covariance
from zoo.train.step import after_optimizer_step, before_optimizer_step, forward_step


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


def typed_config(schema, *nodes):
    """`nodes` (dataclass instances, dicts or DictConfigs; None skipped) merged in order onto the
    dataclass `schema`: a typed DictConfig, so a misspelled key or a wrong type fails here."""
    return OmegaConf.merge(OmegaConf.structured(schema), *[node for node in nodes if node is not None])


def batch_scaled(lr, scale_lr, global_batch_size):
    """The lr applied: `lr` x global batch / 256 when `scale_lr` (the linear scaling rule), else `lr`."""
    return lr * (global_batch_size / 256 if scale_lr else 1.0)


def in_dataset_order(gathered, total):
    """(world, n, ...) outputs of a validation loader under DistributedSampler (no shuffling), as
    `all_gather` stacks them, back in the data set's order without the padding: the sampler deals
    sample i to process i % world and pads the last round with the first samples again, so
    450 images on 4 processes would otherwise count 452 (two twice)."""
    return gathered.transpose(0, 1).flatten(0, 1)[:total]


class BaseMethod(L.LightningModule):
    """A self-supervised method: backbone + projector + loss, with an online probe and k-NN.

    Arguments (everything the method reads; the checkpoint's hyper-parameters keep them):
      config: the method's `Config` (a dataclass instance, or a dict / DictConfig of its fields
        on top of the defaults; None = the paper's defaults).
      num_classes: classes of the online probe and k-NN.
      crop_sizes: the size of each training crop, in crop order, e.g. (224, 224, 96, 96, 96, 96):
        their number is the views the loss takes, the largest decides the backbone's stem.
      global_batch_size: samples per training step over all devices (what whitening sees).
      backbone: a timm model name or a `BackboneConfig` (dataclass, dict or DictConfig).
      optimizer, scheduler: `OptimizerConfig` / `SchedulerConfig` (or dicts of their fields);
        the optimizer's defaults are the method's `optimizer_defaults` on the schema's.
      lr, probe_lr: the lrs actually applied; None = optimizer.lr / optimizer.probe_lr scaled by
        global_batch_size / 256 when optimizer.scale_lr (pretraining passes them, with gradient
        accumulation in the lr's batch).
      knn_k, knn_temperature: the online k-NN of validation.
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
    # `optimizer.*` values of the method's paper (applied under the optimizer argument, and by Hydra
    # when `method=<name>` is selected).
    optimizer_defaults: ClassVar[dict] = {}

    def __init__(
        self,
        config: MethodConfig | Mapping | None = None,
        *,
        num_classes: int,
        crop_sizes: Sequence[int] = (224, 224),
        global_batch_size: int = 256,
        backbone: str | BackboneConfig | Mapping = "resnet18",
        optimizer: OptimizerConfig | Mapping | None = None,
        scheduler: SchedulerConfig | Mapping | None = None,
        lr: float | None = None,
        probe_lr: float | None = None,
        knn_k: int = EvalConfig.knn_k,
        knn_temperature: float = EvalConfig.knn_temperature,
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
        self.optimizer_cfg = typed_config(OptimizerConfig, self.optimizer_defaults, optimizer)
        self.scheduler_cfg = typed_config(SchedulerConfig, scheduler)
        self.num_classes = int(num_classes)
        self.crop_sizes = tuple(int(size) for size in crop_sizes)
        self._nhwc = False  # NHWC during fit: decided in setup("fit") from `channels_last`
        self.global_batch_size = int(global_batch_size)
        opt = self.optimizer_cfg
        self.lr = float(batch_scaled(opt.lr, opt.scale_lr, self.global_batch_size) if lr is None else lr)
        self.probe_lr = float(batch_scaled(opt.probe_lr, opt.scale_lr, self.global_batch_size) if probe_lr is None else probe_lr)
        self.knn_k, self.knn_temperature = int(knn_k), float(knn_temperature)
        # Plain values, so that `Method.load_from_checkpoint(path)` rebuilds the method as it was.
        self.save_hyperparameters({
            "config": plain_values(self.mcfg),
            "num_classes": self.num_classes,
            "crop_sizes": list(self.crop_sizes),
            "global_batch_size": self.global_batch_size,
            "backbone": plain_values(self.backbone_cfg),
            "optimizer": plain_values(self.optimizer_cfg),
            "scheduler": plain_values(self.scheduler_cfg),
            "lr": self.lr,
            "probe_lr": self.probe_lr,
            "knn_k": self.knn_k,
            "knn_temperature": self.knn_temperature,
        })
        self.check_views(len(self.crop_sizes))
        self.backbone = create_backbone(self.backbone_cfg, max(self.crop_sizes))
        self.feature_dim = self.backbone.num_features
        self.projector = self.build_projector()
        self.classifier = nn.Linear(self.feature_dim, self.num_classes)
        self.build_modules()
        # checkpoints of the layout before components (target_backbone.*, queue, ...) load under today's names
        self.register_load_state_dict_pre_hook(rename_old_layout_keys)
        self.check_global_batch(self.mcfg, self.global_batch_size)
        self._val_outputs = {}
        self.last_eval = {}
        self._said_missing = set()  # (metric, reason) pairs already printed: one line each per run
        self.trained_steps = 0  # in this process: 0 after resuming a finished run

    # ---- what a method may override -------------------------------------------------
    def build_projector(self):
        m = self.mcfg
        return build_mlp(self.feature_dim, m.proj_hidden, m.proj_out, m.proj_hidden_bias, m.proj_last_bias, m.proj_last_bn,
                         m.proj_hidden_bn)

    def build_modules(self):
        """Modules beyond backbone, projector and probe (a predictor; components such as an EMA target,
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

    def compute_loss(self, crops):
        """Loss of one training batch -> (loss, backbone features for the online probe)."""
        features = self.encode(crops)
        return self.loss(self.project(features)), largest_crops(features, crops)

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
        and "fixed_lr" (True: not scheduled).
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

    # NHWC (channels_last) model and crops during fit; None: where it is faster (`wants_channels_last`: CUDA,
    # or CPU crops from 32 px), True / False force it.
    channels_last: bool | None = None

    def setup(self, stage):
        # before the strategy moves (strides kept) and wraps the model: DDP's gradient buckets follow the
        # parameters' strides, so converting after the wrap would copy every gradient each step
        if stage == "fit":
            nhwc = self.channels_last
            if nhwc is None:
                nhwc = wants_channels_last(self.trainer.strategy.root_device.type, max(self.crop_sizes))
            self._nhwc = nhwc
            if nhwc:
                self.to(memory_format=torch.channels_last)

    def _prepare(self, crop):
        return crop.contiguous(memory_format=torch.channels_last) if self._nhwc else crop

    def on_train_start(self):
        self._fit_steps = self.fit_steps()  # fixed for the fit: read once, not three times per step

    def fit_steps(self):
        """(optimiser steps of the whole fit, optimiser steps per epoch)."""
        return max(int(self.trainer.estimated_stepping_batches), 1), self.steps_per_epoch()

    def step_state(self):
        """Where training is, for the step's hooks (`zoo.nn.StepState`): Lightning's optimiser steps done, total
        steps and epoch, which a checkpoint keeps; the first step of one when there is no trainer."""
        if self._trainer is None:
            return StepState(step=0, total_steps=1)
        total, per_epoch = getattr(self, "_fit_steps", None) or self.fit_steps()
        return StepState(step=self.global_step, total_steps=total, epoch=self.current_epoch, steps_per_epoch=per_epoch)

    def training_step(self, batch, batch_idx):
        crops, labels = batch
        crops = [self._prepare(crop) for crop in crops]
        out = forward_step(self, crops, labels, self.step_state())  # EMA "before_forward" at a step's first batch
        self.log_component_values(out.logs)
        # what zoo.callbacks.DivergenceGuard checks (before the optimiser step) and names when one is not finite
        self.step_losses = {"loss": out.loss.detach(), **{name: part.detach() for name, part in out.parts.items()},
                            "probe": out.probe_loss.detach()}
        self.trained_steps += 1
        metrics = ({"train/loss": out.loss, "train/probe_loss": out.probe_loss, "train/probe_top1": out.probe_top1}
                   if self.labelled else {"train/loss": out.loss})
        metrics |= {f"train/loss/{name}": part for name, part in out.parts.items()}
        self.log_train_metrics(metrics)
        return out.total

    def on_before_optimizer_step(self, optimizer):
        # once per optimiser step, after every accumulated backward (and AMP's unscaling), before clipping
        self.log_component_values(before_optimizer_step(self, self.step_state()))

    def optimizer_step(self, *args, **kwargs):
        state = self.step_state()  # optimiser steps completed before this one (Lightning counts it after the hook)
        result = super().optimizer_step(*args, **kwargs)  # the closure inside runs training_step and backward
        # inside optimizer_step: only on batches that step (not while accumulating), before any callback of the
        # batch (a checkpoint saved every n steps holds the moved EMA target)
        self.log_component_values(after_optimizer_step(self, state))
        return result

    def log_component_values(self, values):
        """What the components' hooks returned to log (e.g. train/momentum), as step values."""
        for name, value in values.items():
            self.log(name, value)

    def log_train_metrics(self, metrics):
        """{name: 0-d tensor} of this step -> <name>_step, averaged over the ranks in one all-reduce (what
        `sync_dist=True` does with one barrier + all-reduce per metric per step), and its epoch mean
        <name>_epoch, averaged over the ranks once at the epoch's end; as they are on one process."""
        metrics = {name: value.detach() for name, value in metrics.items()}
        step_values = metrics
        if self.trainer.world_size > 1:
            stacked = torch.stack([value.float() for value in metrics.values()])
            step_values = dict(zip(metrics, self.trainer.strategy.reduce(stacked, reduce_op="mean").unbind()))
        self.log_dict({f"{name}_step": value for name, value in step_values.items()}, prog_bar=True, on_step=True,
                      on_epoch=False)
        self.log_dict({f"{name}_epoch": value for name, value in metrics.items()}, on_step=False, on_epoch=True,
                      sync_dist=True)

    @staticmethod
    def split_loss(loss):
        """What `loss()` / `compute_loss` gave -> (total, {part name: tensor}): a method may return
        the total alone or (total, its named parts); the parts are logged as train/loss/<part>."""
        return (loss, {}) if isinstance(loss, torch.Tensor) else loss

    @property
    def labelled(self):
        """False for a run on unlabelled images (num_classes 0, data.labels=false): no probe, no k-NN."""
        return self.num_classes > 0

    @property
    def evaluated_loader(self):
        """The validation loader whose images are evaluated: 1 (0 is the k-NN bank); 0 without labels, whose
        one loader holds the images of the label-free diagnostics."""
        return 1 if self.labelled else 0

    def probe_step(self, features, labels):
        """Online linear probe on detached backbone features (labels -1 = unlabelled) -> (loss, top-1);
        (0, None) on unlabelled images."""
        if not self.labelled:
            return features[0].new_zeros(()), None
        feats = torch.cat([f.detach() for f in features])
        targets = labels.repeat(len(features))
        logits = self.classifier(feats)
        loss = F.cross_entropy(logits, targets, ignore_index=-1)
        return loss, top_k_accuracy(logits.detach(), targets, self.num_classes)

    # ---- validation: online probe, k-NN, spectrum --------------------------------------
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        images, labels = batch
        features = self.backbone(self._prepare(images))
        store = self._val_outputs.setdefault(dataloader_idx, {"features": [], "labels": [], "projections": []})
        store["features"].append(features.float())
        store["labels"].append(labels)
        if dataloader_idx == self.evaluated_loader:
            store["projections"].append(self.projector(features).float())

    def _gathered(self, index, key):
        """Every process's outputs of validation loader `index`, in the data set's order, each sample once."""
        local = torch.cat(self._val_outputs[index][key])
        gathered = self.all_gather(local)
        if gathered.dim() == local.dim():  # one process
            return gathered
        return in_dataset_order(gathered, len(self.trainer.val_dataloaders[index].dataset))

    def on_validation_epoch_end(self):
        evaluated = self.evaluated_loader
        if evaluated not in self._val_outputs or (self.labelled and 0 not in self._val_outputs):
            self._val_outputs = {}
            return
        feats, labels = self._gathered(evaluated, "features"), self._gathered(evaluated, "labels")
        projections = self._gathered(evaluated, "projections")
        accuracies = dict.fromkeys(("knn_top1", "knn_top5", "linear_top1", "linear_top5"))  # None without labels
        if self.labelled:
            bank, bank_labels = self._gathered(0, "features"), self._gathered(0, "labels")
            known = bank_labels >= 0
            scores = knn_predict(bank[known], bank_labels[known], feats, self.num_classes, self.knn_k, self.knn_temperature)
            logits = self.classifier(feats)
            top5 = min(5, self.num_classes)
            accuracies["knn_top1"], accuracies["knn_top5"] = (
                top_k_accuracy(scores, labels, self.num_classes, k).item() for k in (1, top5))
            accuracies["linear_top1"], accuracies["linear_top5"] = (
                top_k_accuracy(logits, labels, self.num_classes, k).item() for k in (1, top5))
        self._val_outputs = {}
        backbone_eigs, projector_eigs = covariance_eigenvalues(feats), covariance_eigenvalues(projections)
        self.last_eval = {
            **accuracies,
            "evaluated_images": len(feats),  # each validation image once, whatever the number of processes
            "effective_rank": effective_rank(backbone_eigs),
            "projector_effective_rank": effective_rank(projector_eigs),
            "backbone_condition_number": condition_number(backbone_eigs),
            "projector_condition_number": condition_number(projector_eigs),
            "output_std": collapse_indicator(projections).value,
            "backbone_eigenvalues": backbone_eigs.cpu(),
            "projector_eigenvalues": projector_eigs.cpu(),
        }
        self.last_eval.update(self.transform_diagnostics(projections))
        self.last_eval.update(self.health_values(feats, projections, backbone_eigs, projector_eigs))
        self.last_eval_step = self.global_step
        scalars = {f"val/{k}": v for k, v in self.last_eval.items() if isinstance(v, float)}
        if self.labelled:
            self.log("val/knn_top1", scalars.pop("val/knn_top1"), prog_bar=True)
        self.log_dict(scalars)

    def health_values(self, feats, projections, backbone_eigs, projector_eigs):
        """`zoo.metrics.health.health` by name, None where a metric cannot be computed; its reason is printed
        once per run (a float is logged to metrics.csv, a None is not: summary.json holds null)."""
        values = {}
        for name, (value, reason) in health(feats, projections, backbone_eigs, projector_eigs).items():
            values[name] = value
            if value is None and (name, reason) not in self._said_missing and self.global_rank == 0:
                self._said_missing.add((name, reason))
                print(f"warning: step {self.global_step}: val/{name} not computed: {reason}")
        return values

    @torch.no_grad()
    def transform_diagnostics(self, projections):
        """Spectrum of the transformed output on the first training-sized batch of validation
        projections, and how far its covariance (on the whitening axis) is from the identity."""
        if len(projections) < self.global_batch_size:
            return {}
        transformed = self.transform(projections[: self.global_batch_size])
        if transformed is None:
            return {}
        white, axis = transformed
        if not torch.isfinite(white).all():
            return {}  # the transform overflowed on this batch (e.g. lambda^-p of a ~0 eigenvalue): no diagnostics
        cov = covariance(white.double(), axis)
        eigs = attainable_eigenvalues(cov, observations=white.shape[-2] if axis == "batch" else white.shape[-1])
        identity = torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
        return {
            "transformed_identity_distance": float(torch.linalg.matrix_norm(cov - identity) / len(cov) ** 0.5),
            "transformed_effective_rank": effective_rank(eigs),
            "transformed_condition_number": condition_number(eigs),
            "transformed_eigenvalues": eigs.cpu(),
        }

    # ---- optimiser and schedule --------------------------------------------------------
    def param_groups(self):
        opt = self.optimizer_cfg
        extra = self.extra_param_groups()
        taken = {id(p) for group in extra for p in group["params"]}
        taken |= {id(p) for p in self.classifier.parameters()}
        trained = [(n, p) for n, p in self.named_parameters() if p.requires_grad and id(p) not in taken]
        if opt.exclude_bias_and_norm:
            groups = [
                {"params": [p for _, p in trained if p.ndim > 1]},
                {"params": [p for _, p in trained if p.ndim <= 1], "weight_decay": 0.0, "lr_factor": opt.bias_lr_factor,
                 "lars_adapt": False},
            ]
        else:
            groups = [{"params": [p for _, p in trained]}]
        groups += extra
        probe_lr = self.probe_lr
        # Under LARS every group is adapted, whatever its weight decay (solo-learn's and FB's LARS), except
        # the 1-D parameters under exclude_bias_and_norm: so the probe's weight is adapted, its bias is not.
        groups.append({"params": [self.classifier.weight], "lr": probe_lr, "weight_decay": 0.0})
        groups.append({"params": [self.classifier.bias], "lr": probe_lr, "weight_decay": 0.0,
                       "lars_adapt": not opt.exclude_bias_and_norm})
        for group in groups:
            group.setdefault("lr", self.lr * group.pop("lr_factor", 1.0))
            group.setdefault("weight_decay", opt.weight_decay)
            group.setdefault("fixed_lr", False)
            group["always_adapt"] = group.pop("lars_adapt", True)  # timm's Lars: adapt with weight decay or always_adapt
        return [group for group in groups if group["params"]]

    def configure_optimizers(self):
        return self.build_optimizer(self.steps_per_epoch(), self.trainer.estimated_stepping_batches)

    def build_optimizer(self, steps_per_epoch, total_steps):
        """The optimiser and per-step lr schedule training uses (Lightning's configure_optimizers format)."""
        opt = self.optimizer_cfg
        groups = self.param_groups()
        # torch's fused kernels: one pass over all parameters (on a CPU 2.6x faster than the per-tensor loop for
        # SGD, 3.3x for Adam: benchmarks/step_time.py's optimiser column); not on the meta device of the tests.
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for g in groups for p in g["params"])
        # torch's fused SGD creates a group's momentum buffers only while none of its parameters has one, and stops
        # with a TypeError on a parameter whose first gradient comes later; the per-parameter loop creates each
        # buffer at its parameter's first gradient, as the official SwAV and DINO optimisers and solo-learn's do.
        optimizer = make_optimizer(opt, groups, self.lr, fused_sgd=fused and not self.gradients_start_late, fused=fused)
        lambdas = [(lambda step: 1.0) if g["fixed_lr"] else lr_factor_schedule(self.scheduler_cfg, steps_per_epoch, total_steps, g["lr"])
                   for g in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def steps_per_epoch(self):
        batches = self.trainer.num_training_batches
        if not math.isfinite(batches):
            batches = self.trainer.estimated_stepping_batches / max(self.trainer.max_epochs or 1, 1)
        return max(int(batches) // self.trainer.accumulate_grad_batches, 1)


def top_k_accuracy(scores, labels, num_classes, k=1):
    """The fraction of `labels` (-1 = unlabelled, not counted) within the top-k of `scores` (N, C),
    a 0-d tensor; 0 without labelled samples."""
    return multiclass_accuracy(scores, labels, num_classes, average="micro", top_k=k, ignore_index=-1, validate_args=False)


def largest_crops(features, crops):
    """The features of the crops at the largest size (the probe skips small multi-crops)."""
    size = max(crop.shape[-1] for crop in crops)
    return [f for f, crop in zip(features, crops) if crop.shape[-1] == size]


WARMUP_RULES = {  # scheduler.warmup_rule
    WarmupRule.next: lambda step, warmup: (step + 1) / warmup,
    WarmupRule.from_zero: lambda step, warmup: step / warmup,
    WarmupRule.endpoints: lambda step, warmup: step / max(warmup - 1, 1),
}


def lr_factor_schedule(cfg, steps_per_epoch, total_steps, base_lr=1.0):
    """Per-step lr multiplier: linear warmup, then cosine / step / constant.

    A LambdaLR factor rather than timm's schedulers: it keeps each parameter
    group's own lr ratio (probe, biases) and lets fixed-lr groups opt out.
    `base_lr` is the group's lr, for the absolute `warmup_start_lr`.
    """
    warmup = cfg.warmup_steps if cfg.warmup_steps > 0 else round(cfg.warmup_epochs * steps_per_epoch)
    total = max(int(total_steps), 1)
    warmup_fraction = WARMUP_RULES[cfg.warmup_rule]

    def factor(step):
        if step < warmup:
            start = cfg.warmup_start_lr / base_lr if base_lr else 0.0
            return start + (1 - start) * warmup_fraction(step, warmup)
        if cfg.name == Schedule.constant:
            return 1.0
        if cfg.name == Schedule.step:
            epoch = step // steps_per_epoch
            return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        if cfg.interval == ScheduleInterval.epoch:  # per-epoch cosine (SimSiam, CW-RGP ImageNet)
            progress = (step // steps_per_epoch) / max(total // steps_per_epoch, 1)
        else:
            progress = (step - warmup) / max(total - warmup, 1)
        progress = min(progress, 1.0)
        return cfg.final_factor + (1 - cfg.final_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
