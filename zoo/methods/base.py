"""The shared training stack: every method is a subclass with a projector and a loss.

The base owns the backbone, projector construction, optimiser and schedule,
the optional momentum (EMA) target, the online linear probe, online k-NN and
spectrum statistics. A method file only says what is particular to it.
"""

import copy
import math
from dataclasses import dataclass, field

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from zoo.backbones import build_mlp, create_backbone
from zoo.data import resolved_views
from zoo.data.augment import expand_crops
from zoo.errors import ZooError
from zoo.eval.knn import knn_predict, topk_accuracy
from zoo.eval.spectrum import attainable_eigenvalues, condition_number, covariance_eigenvalues, effective_rank
from zoo.spectral import covariance

# solo-learn's LARS setting for Barlow Twins and VICReg: eta 0.02, clipped, no LARS or weight decay on 1-D params.
SOLO_LARS = {"name": "lars", "lr": 0.3, "weight_decay": 1e-4, "lars_eta": 0.02, "lars_clip": True, "exclude_bias_and_norm": True}
# The official W-MSE and CW-RGP optimizer: Adam 3e-3, not scaled with the batch, L2 weight decay 1e-6.
WMSE_ADAM = {"name": "adam", "lr": 3e-3, "scale_lr": False, "weight_decay": 1e-6, "probe_lr": 3e-3}


@dataclass
class MethodConfig:
    """Fields every method has; a method's own `Config` subclasses this."""

    name: str = "?"
    proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])
    proj_out: int = 2048
    proj_hidden_bias: bool = True
    proj_last_bias: bool = True
    proj_last_bn: bool = False  # BatchNorm without affine after the last layer (SimSiam)


class BaseMethod(L.LightningModule):
    Config = MethodConfig
    name = "?"
    # How many crops the loss takes: 2 for two-view losses, None for any number (multi-crop).
    num_views = 2
    # True for methods with an EMA target branch (backbone + projector copies, parameters only).
    momentum_target = False
    # True: the projector sees all crops as one batch (BN statistics over every view), as the
    # official W-MSE and CW-RGP code does; False: one projector call per crop.
    joint_projector = False

    def __init__(self, cfg, num_classes, world_size=1):
        super().__init__()
        cfg = OmegaConf.create(cfg)
        self.save_hyperparameters({"cfg": OmegaConf.to_container(cfg, resolve=True), "num_classes": num_classes, "world_size": world_size})
        self.cfg, self.mcfg = cfg, cfg.method
        self.num_classes = num_classes
        self.global_batch_size = cfg.data.batch_size * world_size
        crops = expand_crops(resolved_views(cfg.data))
        self.check_views(len(crops))
        self.backbone = create_backbone(cfg.backbone, max(crop.size for crop in crops))
        self.feature_dim = self.backbone.num_features
        self.projector = self.build_projector()
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        if self.momentum_target:
            self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
            self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.check_batch(self.global_batch_size)
        self._val_outputs = {}
        self.last_eval = {}
        self.trained_steps = 0  # in this process: 0 after resuming a finished run

    # ---- what a method may override -------------------------------------------------
    def build_projector(self):
        m = self.mcfg
        return build_mlp(self.feature_dim, m.proj_hidden, m.proj_out, m.proj_hidden_bias, m.proj_last_bias, m.proj_last_bn)

    def loss(self, views):
        """Projector outputs, one per crop, in crop order -> scalar loss, or (loss, {part name: tensor})."""
        raise NotImplementedError

    def check_batch(self, global_batch_size):
        """Raise ZooError when the batch cannot serve this method (e.g. a whitening too large for it)."""

    def transform(self, z):
        """Whitening methods: (output, axis) of their transform applied to one training-sized batch
        of projector outputs, on one whitening unit (sub-batch, group) so that a perfect whitening
        gives the identity; None for methods without a transform. For the spectrum diagnostics:
        `z` is already gathered from every rank, so call `whiten(..., distributed=False)`."""

    def compute_loss(self, crops):
        """Loss of one training batch -> (loss, backbone features for the online probe)."""
        features = [self.backbone(crop) for crop in crops]
        return self.loss(self.project(features)), largest_crops(features, crops)

    def project(self, features):
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

    def on_fit_start(self):
        if self.device.type == "cuda":  # tensor cores prefer NHWC convolutions
            self.to(memory_format=torch.channels_last)

    def _prepare(self, crop):
        return crop.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else crop

    def training_step(self, batch, batch_idx):
        crops, labels = batch
        crops = [self._prepare(crop) for crop in crops]
        loss, features = self.compute_loss(crops)
        loss, parts = self.split_loss(loss)
        if not torch.isfinite(loss):
            raise ZooError(
                f"method {self.name}: the loss became {loss.item()} at step {self.global_step}; training stopped "
                "with the last good checkpoint kept (lower optimizer.lr, or raise method.eps for whitening methods)"
            )
        probe_loss, probe_acc = self.probe_step(features, labels)
        self.trained_steps += 1
        metrics = {"train/loss": loss, "train/probe_loss": probe_loss, "train/probe_top1": probe_acc}
        metrics |= {f"train/loss/{name}": part.detach() for name, part in parts.items()}
        self.log_dict(metrics, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss + probe_loss

    @staticmethod
    def split_loss(loss):
        """What `loss()` / `compute_loss` gave -> (total, {part name: tensor}): a method may return
        the total alone or (total, its named parts); the parts are logged as train/loss/<part>."""
        return (loss, {}) if isinstance(loss, torch.Tensor) else loss

    def probe_step(self, features, labels):
        """Online linear probe on detached backbone features (labels -1 = unlabelled)."""
        feats = torch.cat([f.detach() for f in features])
        targets = labels.repeat(len(features))
        logits = self.classifier(feats)
        loss = F.cross_entropy(logits, targets, ignore_index=-1)
        known = targets >= 0
        acc = (logits.argmax(1)[known] == targets[known]).float().mean() if known.any() else torch.zeros((), device=self.device)
        return loss, acc

    # ---- momentum target ----------------------------------------------------------
    def momentum(self, step=None, total_steps=None):
        """EMA momentum at `step` of `total_steps` (default: this trainer's): a cosine schedule from
        momentum_base to momentum_final over training (BYOL, INTL-M)."""
        step = self.global_step if step is None else step
        total = max(self.trainer.estimated_stepping_batches if total_steps is None else total_steps, 1)
        progress = min(step / total, 1.0)
        base, final = self.mcfg.momentum_base, self.mcfg.momentum_final
        return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2

    @torch.no_grad()
    def on_train_batch_start(self, batch, batch_idx):
        if not self.momentum_target:
            return
        tau = self.momentum()
        for online, target in ((self.backbone, self.target_backbone), (self.projector, self.target_projector)):
            # Parameters only: BN buffers are not averaged (official INTL_M).
            torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1 - tau)
        self.log("train/momentum", tau)

    def target_forward(self, crop):
        with torch.no_grad():
            return self.target_projector(self.target_backbone(crop))

    # ---- validation: online probe, k-NN, spectrum --------------------------------------
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        images, labels = batch
        features = self.backbone(self._prepare(images))
        store = self._val_outputs.setdefault(dataloader_idx, {"features": [], "labels": [], "projections": []})
        store["features"].append(features.float())
        store["labels"].append(labels)
        if dataloader_idx == 1:
            store["projections"].append(self.projector(features).float())

    def _gathered(self, index, key):
        local = torch.cat(self._val_outputs[index][key])
        gathered = self.all_gather(local)
        return gathered.flatten(0, 1) if gathered.dim() > local.dim() else gathered

    def on_validation_epoch_end(self):
        if 0 not in self._val_outputs or 1 not in self._val_outputs:
            self._val_outputs = {}
            return
        bank, bank_labels = self._gathered(0, "features"), self._gathered(0, "labels")
        feats, labels = self._gathered(1, "features"), self._gathered(1, "labels")
        projections = self._gathered(1, "projections")
        self._val_outputs = {}
        known = bank_labels >= 0
        scores = knn_predict(bank[known], bank_labels[known], feats, self.num_classes, self.cfg.eval.knn_k, self.cfg.eval.knn_temperature)
        knn_top1, knn_top5 = topk_accuracy(scores, labels, (1, min(5, self.num_classes)))
        probe_top1, probe_top5 = topk_accuracy(self.classifier(feats), labels, (1, min(5, self.num_classes)))
        backbone_eigs, projector_eigs = covariance_eigenvalues(feats), covariance_eigenvalues(projections)
        self.last_eval = {
            "knn_top1": knn_top1,
            "knn_top5": knn_top5,
            "linear_top1": probe_top1,
            "linear_top5": probe_top5,
            "effective_rank": effective_rank(backbone_eigs),
            "projector_effective_rank": effective_rank(projector_eigs),
            "backbone_condition_number": condition_number(backbone_eigs),
            "projector_condition_number": condition_number(projector_eigs),
            "backbone_eigenvalues": backbone_eigs.cpu(),
            "projector_eigenvalues": projector_eigs.cpu(),
        }
        self.last_eval.update(self.transform_diagnostics(projections))
        scalars = {f"val/{k}": v for k, v in self.last_eval.items() if isinstance(v, float)}
        self.log("val/knn_top1", scalars.pop("val/knn_top1"), prog_bar=True)
        self.log_dict(scalars)

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
        opt = self.cfg.optimizer
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
        probe_lr = opt.probe_lr * (self.global_batch_size / 256 if opt.scale_lr else 1.0)
        # Under LARS every group is adapted, whatever its weight decay (solo-learn's and FB's LARS), except
        # the 1-D parameters under exclude_bias_and_norm: so the probe's weight is adapted, its bias is not.
        groups.append({"params": [self.classifier.weight], "lr": probe_lr, "weight_decay": 0.0})
        groups.append({"params": [self.classifier.bias], "lr": probe_lr, "weight_decay": 0.0,
                       "lars_adapt": not opt.exclude_bias_and_norm})
        for group in groups:
            group.setdefault("lr", opt.lr_scaled * group.pop("lr_factor", 1.0))
            group.setdefault("weight_decay", opt.weight_decay)
            group.setdefault("fixed_lr", False)
            group["always_adapt"] = group.pop("lars_adapt", True)  # timm's Lars: adapt with weight decay or always_adapt
        return [group for group in groups if group["params"]]

    def configure_optimizers(self):
        return self.build_optimizer(self.steps_per_epoch(), self.trainer.estimated_stepping_batches)

    def build_optimizer(self, steps_per_epoch, total_steps):
        """The optimiser and per-step lr schedule training uses (Lightning's configure_optimizers format)."""
        opt = self.cfg.optimizer
        groups = self.param_groups()
        if opt.name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=opt.lr_scaled, momentum=opt.momentum)
        elif opt.name == "lars":
            from timm.optim import Lars

            optimizer = Lars(groups, lr=opt.lr_scaled, momentum=opt.momentum, trust_coeff=opt.lars_eta, trust_clip=opt.lars_clip)
        elif opt.name in ("adam", "adamw"):
            cls = torch.optim.Adam if opt.name == "adam" else torch.optim.AdamW
            optimizer = cls(groups, lr=opt.lr_scaled, betas=tuple(opt.betas))
        else:
            raise ZooError(f"optimizer.name must be sgd, lars, adam or adamw, not '{opt.name}'")
        lambdas = [(lambda step: 1.0) if g["fixed_lr"] else lr_factor_schedule(self.cfg.scheduler, steps_per_epoch, total_steps, g["lr"])
                   for g in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def steps_per_epoch(self):
        batches = self.trainer.num_training_batches
        if not math.isfinite(batches):
            batches = self.trainer.estimated_stepping_batches / max(self.trainer.max_epochs or 1, 1)
        return max(int(batches) // self.trainer.accumulate_grad_batches, 1)


def largest_crops(features, crops):
    """The features of the crops at the largest size (the probe skips small multi-crops)."""
    size = max(crop.shape[-1] for crop in crops)
    return [f for f, crop in zip(features, crops) if crop.shape[-1] == size]


WARMUP_RULES = {
    "next": lambda step, warmup: (step + 1) / warmup,
    "from_zero": lambda step, warmup: step / warmup,
    "endpoints": lambda step, warmup: step / max(warmup - 1, 1),
}


def lr_factor_schedule(cfg, steps_per_epoch, total_steps, base_lr=1.0):
    """Per-step lr multiplier: linear warmup, then cosine / step / constant.

    A LambdaLR factor rather than timm's schedulers: it keeps each parameter
    group's own lr ratio (probe, biases) and lets fixed-lr groups opt out.
    `base_lr` is the group's lr, for the absolute `warmup_start_lr`.
    """
    warmup = cfg.warmup_steps if cfg.warmup_steps > 0 else round(cfg.warmup_epochs * steps_per_epoch)
    total = max(int(total_steps), 1)
    if cfg.warmup_rule not in WARMUP_RULES:
        raise ZooError(f"scheduler.warmup_rule must be {', '.join(WARMUP_RULES)}, not '{cfg.warmup_rule}'")
    warmup_fraction = WARMUP_RULES[cfg.warmup_rule]

    def factor(step):
        if step < warmup:
            start = cfg.warmup_start_lr / base_lr if base_lr else 0.0
            return start + (1 - start) * warmup_fraction(step, warmup)
        if cfg.name == "constant":
            return 1.0
        if cfg.name == "step":
            epoch = step // steps_per_epoch
            return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
        if cfg.name != "cosine":
            raise ZooError(f"scheduler.name must be cosine, step or constant, not '{cfg.name}'")
        if cfg.interval == "epoch":  # per-epoch cosine (SimSiam, CW-RGP ImageNet)
            progress = (step // steps_per_epoch) / max(total // steps_per_epoch, 1)
        else:
            progress = (step - warmup) / max(total - warmup, 1)
        progress = min(progress, 1.0)
        return cfg.final_factor + (1 - cfg.final_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
