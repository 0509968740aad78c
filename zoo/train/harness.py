"""The Lightning module that trains any method: `Pretrainer` wraps a `zoo.methods.base.Method` with the optimiser,
the lr schedule, the online linear probe, logging and the validation pass.

    method = create_method("vicreg", {"proj_out": 64}, crop_sizes=(16, 16), global_batch_size=16)
    model = Pretrainer(method, num_classes=10)          # the optimizer: VICReg's paper's, lr scaled by the batch
    trainer.fit(model, train_loader, [knn_bank_loader, val_loader])

Each training step is the one of `zoo.train.step` (the method's loss, its components' hooks, the probe). The
validation collects backbone features, labels and projector outputs; `validation_output()` gathers them once per
validation epoch for the callbacks that read them (`zoo.callbacks.ValidationMetrics`: k-NN, probe accuracy,
spectra, health; the spectrum and embedding pictures). `zoo.build.build_method(cfg, ...)` builds it from a run
config; `Pretrainer.load_from_checkpoint(path)` rebuilds it from a checkpoint of any layout.
"""

import contextlib
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.classification import multiclass_accuracy

from zoo.backbones import wants_channels_last
from zoo.config import BackboneConfig, EvalConfig, OptimizerConfig, SchedulerConfig, plain_values
from zoo.methods.base import Method, MethodConfig, typed_config
from zoo.metrics.stages import StageTaps
from zoo.nn import StepState
from zoo.nn.legacy import rename_harness_layout_keys
from zoo.optim import batch_scaled, lr_factor_schedule, make_optimizer
from zoo.registry import get_method
from zoo.train.step import after_optimizer_step, before_optimizer_step, forward_step


def in_dataset_order(gathered, total):
    """(world, n, ...) outputs of a validation loader under DistributedSampler (no shuffling), as
    `all_gather` stacks them, back in the data set's order without the padding: the sampler deals
    sample i to process i % world and pads the last round with the first samples again, so
    450 images on 4 processes would otherwise count 452 (two twice)."""
    return gathered.transpose(0, 1).flatten(0, 1)[:total]


def top_k_accuracy(scores, labels, num_classes, k=1):
    """The fraction of `labels` (-1 = unlabelled, not counted) within the top-k of `scores` (N, C),
    a 0-d tensor; 0 without labelled samples."""
    return multiclass_accuracy(scores, labels, num_classes, average="micro", top_k=k, ignore_index=-1, validate_args=False)


@dataclass
class ValidationOutput:
    """One validation epoch's outputs, gathered from every process in the data set's order, each sample once:
    the evaluated images' backbone `features`, `labels` (-1 = unlabelled) and projector outputs (`projections`),
    and the k-NN bank's features and labels (None without labels); `stages`: [(name, `zoo.metrics.spectrum.Moments`)]
    of the backbone's stages' pooled outputs on the evaluated images (`zoo.metrics.stages`), summed over the
    processes, each image once (the sampler's padding left out)."""

    features: torch.Tensor
    labels: torch.Tensor
    projections: torch.Tensor
    bank_features: torch.Tensor | None = None
    bank_labels: torch.Tensor | None = None
    stages: list = dataclasses.field(default_factory=list)


class Pretrainer(L.LightningModule):
    """Trains a method: optimiser, schedule, online probe, logging, validation outputs.

    Arguments (a checkpoint's hyper-parameters keep them, so `Pretrainer.load_from_checkpoint(path)` rebuilds it):
      method: a `Method`, or a registered method's name built here from `config`, `crop_sizes`,
        `global_batch_size` and `backbone` (the Method's arguments; None = the name in `config`).
      num_classes: classes of the online probe and k-NN (0: unlabelled images, no probe).
      optimizer, scheduler: `OptimizerConfig` / `SchedulerConfig` (or dicts of their fields);
        the optimizer's defaults are the method's `optimizer_defaults` on the schema's.
      lr, probe_lr: the lrs actually applied; None = optimizer.lr / optimizer.probe_lr scaled by
        global_batch_size / 256 when optimizer.scale_lr (pretraining passes them, with gradient
        accumulation in the lr's batch).
      knn_k, knn_temperature: the online k-NN of validation.
    """

    # NHWC (channels_last) model and crops during fit; None: where it is faster (`wants_channels_last`: CUDA,
    # or CPU crops from 32 px), True / False force it.
    channels_last: bool | None = None

    def __init__(
        self,
        method: Method | str | None = None,
        *,
        num_classes: int,
        config: MethodConfig | Mapping | None = None,
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
        if not isinstance(method, Method):
            # checkpoints written before the harness name the method in its config only
            name = method or (config.get("name") if isinstance(config, Mapping) else getattr(config, "name", None))
            method = get_method(name)(config, crop_sizes=crop_sizes, global_batch_size=global_batch_size, backbone=backbone)
        self.method = method
        self.optimizer_cfg = typed_config(OptimizerConfig, method.optimizer_defaults, optimizer)
        self.scheduler_cfg = typed_config(SchedulerConfig, scheduler)
        self.num_classes = int(num_classes)
        self._nhwc = False  # NHWC during fit: decided in setup("fit") from `channels_last`
        opt, batch = self.optimizer_cfg, method.global_batch_size
        self.lr = float(batch_scaled(opt.lr, opt.scale_lr, batch) if lr is None else lr)
        self.probe_lr = float(batch_scaled(opt.probe_lr, opt.scale_lr, batch) if probe_lr is None else probe_lr)
        self.knn_k, self.knn_temperature = int(knn_k), float(knn_temperature)
        # Plain values, so that `Pretrainer.load_from_checkpoint(path)` rebuilds the harness and its method as they were.
        self.save_hyperparameters({
            "method": method.name,
            "config": plain_values(method.mcfg),
            "crop_sizes": list(method.crop_sizes),
            "global_batch_size": method.global_batch_size,
            "backbone": plain_values(method.backbone_cfg),
            "num_classes": self.num_classes,
            "optimizer": plain_values(self.optimizer_cfg),
            "scheduler": plain_values(self.scheduler_cfg),
            "lr": self.lr,
            "probe_lr": self.probe_lr,
            "knn_k": self.knn_k,
            "knn_temperature": self.knn_temperature,
        })
        self.classifier = nn.Linear(method.feature_dim, self.num_classes)
        # checkpoints of the layout before the harness (the method's keys without "method.") load under today's names
        self.register_load_state_dict_pre_hook(rename_harness_layout_keys)
        self._val_outputs = {}
        self._validation_output = None
        self._stage_taps = None  # this validation's per-stage moments (zoo.metrics.stages), from its first batch
        self.trained_steps = 0  # in this process: 0 after resuming a finished run

    @property
    def name(self):
        return self.method.name

    @property
    def global_batch_size(self):
        return self.method.global_batch_size

    @property
    def crop_sizes(self):
        return self.method.crop_sizes

    # ---- fit set-up ------------------------------------------------------------------
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
        """Where training is, for the method and its components (`zoo.nn.StepState`): Lightning's optimiser steps
        done, total steps and epoch, which a checkpoint keeps; the first step of one when there is no trainer."""
        if self._trainer is None:
            return StepState(step=0, total_steps=1)
        total, per_epoch = getattr(self, "_fit_steps", None) or self.fit_steps()
        return StepState(step=self.global_step, total_steps=total, epoch=self.current_epoch, steps_per_epoch=per_epoch)

    # ---- training ----------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        crops, labels = batch
        crops = [self._prepare(crop) for crop in crops]
        # the components' "before_forward" at a step's first batch, the method's loss, the probe
        out = forward_step(self.method, crops, labels, self.step_state(), probe=self.probe_step)
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
        self.log_component_values(before_optimizer_step(self.method, self.step_state()))

    def optimizer_step(self, *args, **kwargs):
        state = self.step_state()  # optimiser steps completed before this one (Lightning counts it after the hook)
        result = super().optimizer_step(*args, **kwargs)  # the closure inside runs training_step and backward
        # inside optimizer_step: only on batches that step (not while accumulating), before any callback of the
        # batch (a checkpoint saved every n steps holds the moved EMA target)
        self.log_component_values(after_optimizer_step(self.method, state))
        return result

    def log_component_values(self, values):
        """What the method and its components returned to log (e.g. train/momentum), as step values."""
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

    @property
    def labelled(self):
        """False for a run on unlabelled images (num_classes 0, data.labels=false): no probe, no k-NN."""
        return self.num_classes > 0

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

    # ---- validation: what the callbacks read -------------------------------------------
    @property
    def evaluated_loader(self):
        """The validation loader whose images are evaluated: 1 (0 is the k-NN bank); 0 without labels, whose
        one loader holds the images of the label-free diagnostics."""
        return 1 if self.labelled else 0

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        images, labels = batch
        evaluated = dataloader_idx == self.evaluated_loader
        if evaluated and self._stage_taps is None:
            total = len(self.trainer.val_dataloaders[dataloader_idx].dataset) if self.trainer.world_size > 1 else None
            self._stage_taps = StageTaps(self.method.backbone, self.global_rank, self.trainer.world_size, total)
        # the evaluated images' stage outputs are read by forward hooks that exist during this forward only
        with self._stage_taps.recording() if evaluated else contextlib.nullcontext():
            features = self.method.backbone(self._prepare(images))
        store = self._val_outputs.setdefault(dataloader_idx, {"features": [], "labels": [], "projections": []})
        store["features"].append(features.float())
        store["labels"].append(labels)
        if evaluated:
            store["projections"].append(self.method.projector(features).float())

    @torch.no_grad()
    def evaluate_images(self, images):
        """(backbone features, projector outputs) of `images` as validation computes them (on this module's device,
        in its memory layout), float32: what the callbacks' extra views (LiDAR's) go through."""
        features = self.method.backbone(self._prepare(images.to(self.device)))
        return features.float(), self.method.projector(features).float()

    def _gathered(self, index, key):
        """Every process's outputs of validation loader `index`, in the data set's order, each sample once."""
        local = torch.cat(self._val_outputs[index][key])
        gathered = self.all_gather(local)
        if gathered.dim() == local.dim():  # one process
            return gathered
        return in_dataset_order(gathered, len(self.trainer.val_dataloaders[index].dataset))

    def validation_output(self):
        """This validation epoch's `ValidationOutput`, gathered from every process at its first call (a collective:
        every process calls it, in its on_validation_epoch_end) and kept until the epoch ends; None when a
        loader it needs gave nothing."""
        if self._validation_output is None:
            evaluated = self.evaluated_loader
            if evaluated not in self._val_outputs or (self.labelled and 0 not in self._val_outputs):
                return None
            bank = (self._gathered(0, "features"), self._gathered(0, "labels")) if self.labelled else (None, None)
            reduce_sum = (lambda t: self.trainer.strategy.reduce(t, reduce_op="sum")) if self.trainer.world_size > 1 else None
            self._validation_output = ValidationOutput(
                self._gathered(evaluated, "features"), self._gathered(evaluated, "labels"),
                self._gathered(evaluated, "projections"), *bank, stages=self._stage_taps.reduced(reduce_sum))
        return self._validation_output

    def on_validation_epoch_end(self):
        # after the callbacks' (Lightning calls theirs first): their outputs are read, free them
        self._val_outputs, self._validation_output, self._stage_taps = {}, None, None

    # ---- optimiser and schedule --------------------------------------------------------
    def param_groups(self):
        """The method's parameter groups (backbone + projector, with biases and norms apart under
        exclude_bias_and_norm, then its `extra_param_groups`), then the probe's, with their lrs."""
        opt = self.optimizer_cfg
        extra = self.method.extra_param_groups()
        taken = {id(p) for group in extra for p in group["params"]}
        trained = [(n, p) for n, p in self.method.named_parameters() if p.requires_grad and id(p) not in taken]
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
        optimizer = make_optimizer(opt, groups, self.lr, fused_sgd=fused and not self.method.gradients_start_late,
                                   fused=fused)
        lambdas = [(lambda step: 1.0) if g["fixed_lr"] else lr_factor_schedule(self.scheduler_cfg, steps_per_epoch, total_steps, g["lr"])
                   for g in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def steps_per_epoch(self):
        batches = self.trainer.num_training_batches
        if not math.isfinite(batches):
            batches = self.trainer.estimated_stepping_batches / max(self.trainer.max_epochs or 1, 1)
        return max(int(batches) // self.trainer.accumulate_grad_batches, 1)
