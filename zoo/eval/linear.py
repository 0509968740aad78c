"""The linear probe of a pretrained backbone, and its optimisers and schedules.

`linear.protocol` chooses how (`linear.name` names the paper protocol in summaries and reports):

- precomputed: the W-MSE / CW-RGP / INTL-CIFAR protocol (LP-SMALL). Backbone features
  (eval mode, no augmentation) computed once, a linear layer trained on them with Adam,
  the lr decayed exponentially from `linear.lr` to `linear.final_lr` (W-MSE trains on full
  batches only; the official data sets divide into batches of 1000, so this is the same);
  plus the k-NN accuracy (`linear.knn_k`, Euclidean, majority vote).
- frozen: a linear layer on the frozen backbone (eval mode) trained on augmented images
  (random resized crop + flip), validated each epoch on resized, centre-cropped images; the
  best top-1 is reported (LP-INTL, LP-FB-BT, LP-FB-VIC, LP-SOLO; with linear.optimizer=lars,
  LP-CW-LARS and LP-SS-LARS). Runs under Lightning, so `trainer.devices` / `num_nodes` /
  `precision` apply; `linear.batch_size` is the global batch.
- finetune (zoo/eval/finetune.py): as frozen, but the backbone trains too.
"""

import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from zoo.build import build_trainer
from zoo.config import CropGroup, EvalConfig
from zoo.data import data_spec
from zoo.data.augment import torchvision_view
from zoo.data.datasets import class_count
from zoo.data.loaders import make_loader
from zoo.errors import ZooError
from zoo.eval.features import default_device, encoder, labelled_features
from zoo.metrics.knn import knn_predict, knn_result, topk_accuracy
from zoo.names import LinearOptimizer, LinearSchedule
from zoo.provenance import TrainingMeter


# ---- optimiser and schedule, shared by every protocol ----------------------------------
def make_optimizer(groups, cfg):
    """linear.optimizer's optimiser (a zoo.names.LinearOptimizer)."""
    if cfg.optimizer == LinearOptimizer.adam:
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == LinearOptimizer.sgd:
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    from timm.optim import Lars

    # The official LARS probes wrap SGD in apex's LARC: every parameter adapted (wd 0 too), no clipping.
    return Lars(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                trust_coeff=cfg.lars_eta, trust_clip=False, always_adapt=True)


def epoch_lr_factor(cfg):
    """The lr multiplier of epoch e (0-based), stepped once per epoch."""
    epochs = max(cfg.epochs, 1)
    schedules = {  # one for each zoo.names.LinearSchedule
        LinearSchedule.exponential: lambda e: (cfg.final_lr / cfg.lr) ** (e / epochs),
        LinearSchedule.step: lambda e: cfg.gamma ** sum(e >= m for m in cfg.milestones),
        LinearSchedule.cosine: lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)),
        LinearSchedule.constant: lambda e: 1.0,
    }
    return schedules[cfg.schedule]


# ---- the precomputed protocol -------------------------------------------------------------
def train_precomputed(train_x, train_y, num_classes, cfg, seed, meter=None):
    """A linear layer on fixed features, a fresh random order each epoch (timed by `meter`, a TrainingMeter)."""
    torch.manual_seed(seed)
    classifier = nn.Linear(train_x.shape[1], num_classes).to(train_x.device)
    optimizer = make_optimizer(classifier.parameters(), cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, epoch_lr_factor(cfg))
    if meter:
        meter.start(optimizer, train_x.device)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(train_x), device=train_x.device)
        for start in range(0, len(order), cfg.batch_size):
            index = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(classifier(train_x[index]), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if meter:
                meter.step(len(index))
        scheduler.step()
    return classifier


def precomputed_eval(backbone, cfg, features=None):
    """The precomputed protocol on `features` (`labelled_features` of the backbone, computed when not given)."""
    device = default_device()
    backbone.to(device).eval()
    if features is None:
        features = labelled_features(encoder(backbone), data_spec(cfg.data), device)
    classes = features.num_classes
    meter = TrainingMeter()
    classifier = train_precomputed(features.train[0], features.train_labels, classes, cfg.linear, cfg.seed, meter)
    with torch.no_grad():
        top1, top5 = topk_accuracy(classifier(features.val[0]), features.val_labels, (1, min(5, classes)))
    return {"linear_top1": top1, "linear_top5": top5, **knn_result(features, cfg.linear.knn_k), "training_meter": meter,
            "classifier": classifier}


def pixel_control(cfg, knn_k=EvalConfig.knn_k, knn_temperature=EvalConfig.knn_temperature):
    """The raw-pixel control of a data set: the precomputed protocol (LP-SMALL: linear layer and
    `linear.knn_k`-nn) on the flattened evaluation images, plus the online k-NN of pretraining (cosine,
    `knn_k` neighbours weighted by exp(similarity / `knn_temperature`)) as `knn_top1`."""
    features = labelled_features(encoder(nn.Flatten()), data_spec(cfg.data), default_device())
    result = precomputed_eval(nn.Flatten(), cfg, features)
    scores = knn_predict(features.train[0], features.train_labels, features.val[0], features.num_classes, knn_k, knn_temperature)
    return {**result, "knn_top1": topk_accuracy(scores, features.val_labels)[0]}


# ---- the frozen protocol (and finetune's training) under Lightning ------------------------------
class LinearProbe(L.LightningModule):
    """A linear classifier on a backbone that is frozen (eval mode, no gradient) or finetuned.
    Keeps the top-1 / top-5 of every validation and the best epoch."""

    def __init__(self, backbone, num_classes, cfg):
        super().__init__()
        self.backbone, self.cfg = backbone, cfg
        self.finetune = cfg.protocol == "finetune"
        self.backbone.requires_grad_(self.finetune)
        self.classifier = nn.Linear(backbone.num_features, num_classes)
        nn.init.normal_(self.classifier.weight, std=0.01)  # as the official probes
        nn.init.zeros_(self.classifier.bias)
        self.top_k = min(5, num_classes)
        self.history = []

    def forward(self, images):
        with torch.set_grad_enabled(self.finetune and self.training):
            features = self.backbone(images)
        return self.classifier(features)

    def on_train_epoch_start(self):
        if not self.finetune:
            self.backbone.eval()  # Lightning sets train mode each epoch; frozen BN keeps its statistics

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = F.cross_entropy(self(images), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_validation_epoch_start(self):
        self.hits = torch.zeros(3, device=self.device)  # top-1 hits, top-k hits, images

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        match = self(images).topk(self.top_k, dim=1).indices == labels[:, None]
        self.hits += torch.stack([match[:, 0].sum(), match.any(dim=1).sum(), labels.new_tensor(len(labels))]).float()

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        hits = self.all_gather(self.hits).reshape(-1, 3).sum(dim=0)
        top1, top5 = (hits[:2] / hits[2].clamp_min(1)).tolist()
        self.history.append({"epoch": self.current_epoch, "top1": top1, "top5": top5})
        self.log_dict({"val/top1": top1, "val/top5": top5}, prog_bar=True)

    def configure_optimizers(self):
        groups = [{"params": list(self.classifier.parameters()), "lr": self.cfg.lr}]
        if self.finetune:
            groups.append({"params": list(self.backbone.parameters()), "lr": self.cfg.backbone_lr})
        optimizer = make_optimizer(groups, self.cfg)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, epoch_lr_factor(self.cfg))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def probe_train_transform(data, linear_cfg):
    """The probe's training augmentation on `data` (a `zoo.data.DataSpec`): random resized crop and flip."""
    crop_and_flip = CropGroup(size=data.image_size, scale=list(linear_cfg.crop_scale),
                              interpolation=linear_cfg.crop_interpolation, order=["crop", "flip"])
    return torchvision_view(crop_and_flip, data.mean, data.std)


def lightning_eval(backbone, cfg, run_dir, select_images=None):
    """The frozen protocol, or finetune's training (`linear.protocol` decides whether the backbone
    trains; `select_images` maps the training set to the images trained on) -> (result, is this
    the process that reports)."""
    data = data_spec(cfg.data)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    meter = TrainingMeter()
    trainer = build_trainer(cfg.trainer, run_dir, enable_checkpointing=False, callbacks=[meter])
    if cfg.linear.batch_size % trainer.world_size:
        raise ZooError(f"linear.batch_size={cfg.linear.batch_size} does not split over {trainer.world_size} devices")
    train_set = data.dataset("train_labeled", probe_train_transform(data, cfg.linear))
    classes = class_count(data.source, train_set)
    if select_images:
        train_set = select_images(train_set)
    train = make_loader(train_set, cfg.linear.batch_size // trainer.world_size, data.workers, shuffle=True)
    val = make_loader(data.dataset("val", data.eval_transform()), data.eval_batch_size, data.workers)
    model = LinearProbe(backbone, classes, cfg.linear)
    trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
    if not model.history:
        raise ZooError("no validation ran: give linear.epochs >= 1 (and trainer.limit_val_batches > 0)")
    best = max(model.history, key=lambda h: h["top1"])
    result = {"linear_top1": best["top1"], "linear_top5": best["top5"], "best_epoch": best["epoch"],
              "linear_top1_last": model.history[-1]["top1"], "train_images": len(train_set), "training_meter": meter}
    if cfg.linear.protocol == "frozen":  # the head of a frozen backbone (main_transfer.py's shift suite uses it)
        result["classifier"] = model.classifier
    if trainer.is_global_zero and cfg.linear.knn_k > 0:
        backbone.eval()
        result.update(knn_result(labelled_features(encoder(backbone), data, model.device), cfg.linear.knn_k))
    return result, trainer.is_global_zero
