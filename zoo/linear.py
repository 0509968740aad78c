"""`python main_linear.py --ckpt PATH [overrides]`: evaluation of a pretrained backbone.

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
- finetune: as frozen, but the backbone trains too (train mode, `linear.backbone_lr`) on
  `linear.label_fraction` % of ImageNet's labels, from SimCLR's subset lists (semi-supervised).
"""

import argparse
import json
import math
import sys
import urllib.request
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn
from torch.utils.data import DataLoader, Subset

from zoo.backbones import create_backbone
from zoo.callbacks import atomic_write_bytes
from zoo.checkpoint import complete_config, read_checkpoint
from zoo.config import DataConfig, LinearRunConfig
from zoo.data import eval_pipeline, normalisation, resolved_views, worker_count
from zoo.data.augment import CropGroup, torchvision_view
from zoo.data.datasets import build_dataset, dataset_info, num_classes
from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.knn import knn_predict, topk_accuracy
from zoo.pretrain import write_json

PROTOCOLS = ("precomputed", "frozen", "finetune")
OPTIMIZERS = ("adam", "sgd", "lars")
SCHEDULES = ("exponential", "step", "cosine", "constant")
# SimCLR's ImageNet label subsets (12,811 and 128,116 file names), the standard semi-supervised split.
SUBSET_URL = "https://raw.githubusercontent.com/google-research/simclr/master/imagenet_subsets/{percent}percent.txt"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="a checkpoint written by main_pretrain.py (e.g. RUN/checkpoints/last.ckpt)")
    parser.add_argument("--cfg", choices=["job"], help="print the resolved config and exit (as Hydra's --cfg job)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. linear.epochs=100 data.root=PATH")
    args = parser.parse_intermixed_args(argv)
    if args.ckpt is None and args.cfg is None:
        raise ZooError("--ckpt PATH is required (a checkpoint written by main_pretrain.py)")
    return args


# Hydra's and OmegaConf's own messages name the key: their first line becomes the ZooError.
CONFIG_ERRORS = (HydraException, OmegaConfBaseException)


def data_config(pretrain_cfg, overrides):
    """The checkpoint's data config (or the defaults without one), with `data.KEY=VALUE` overrides on top."""
    try:
        data = OmegaConf.merge(OmegaConf.structured(DataConfig), pretrain_cfg["data"] if pretrain_cfg else {})
        data.merge_with_dotlist([o[len("data.") :] for o in overrides])
    except CONFIG_ERRORS as err:
        raise ZooError(str(err).splitlines()[0]) from None
    return data


def build_config(pretrain_cfg, overrides):
    """The evaluation config: linear.yaml with the overrides, and `data` as `data_config` gives it."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="linear_schema", node=LinearRunConfig)
    try:
        with initialize_config_module("zoo.configs", version_base="1.3"):
            cfg = compose("linear", overrides=[o for o in overrides if not o.startswith("data.")])
    except CONFIG_ERRORS as err:
        raise ZooError(str(err).splitlines()[0]) from None
    OmegaConf.set_struct(cfg, False)
    cfg.data = data_config(pretrain_cfg, [o for o in overrides if o.startswith("data.")])
    check_linear_config(cfg.linear)
    return cfg


def check_linear_config(cfg):
    for key, allowed in (("protocol", PROTOCOLS), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
        if cfg[key] not in allowed:
            raise ZooError(f"linear.{key} must be one of {', '.join(allowed)}, not '{cfg[key]}'")
    if cfg.label_fraction is not None and (cfg.protocol != "finetune" or cfg.label_fraction not in (1, 10)):
        raise ZooError("linear.label_fraction is 1 or 10 (percent of ImageNet's labels) and needs linear.protocol=finetune")


# ---- optimiser and schedule, shared by every protocol ----------------------------------
def make_optimizer(groups, cfg):
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    from timm.optim import Lars

    # The official LARS probes wrap SGD in apex's LARC: every parameter adapted (wd 0 too), no clipping.
    return Lars(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                trust_coeff=cfg.lars_eta, trust_clip=False, always_adapt=True)


def epoch_lr_factor(cfg):
    """The lr multiplier of epoch e (0-based), stepped once per epoch."""
    epochs = max(cfg.epochs, 1)
    schedules = {
        "exponential": lambda e: (cfg.final_lr / cfg.lr) ** (e / epochs),
        "step": lambda e: cfg.gamma ** sum(e >= m for m in cfg.milestones),
        "cosine": lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)),
        "constant": lambda e: 1.0,
    }
    return schedules[cfg.schedule]


# ---- features, k-NN and the precomputed protocol ----------------------------------------
@torch.no_grad()
def extract_features(encode, dataset, batch_size, num_workers, device):
    """`encode` (images -> features, or a tuple of them) over `dataset`: float32 features and labels."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    outputs, labels = [], []
    for images, targets in loader:
        encoded = encode(images.to(device))
        outputs.append(encoded if isinstance(encoded, tuple) else (encoded,))
        labels.append(torch.as_tensor(targets, device=device))
    features = tuple(torch.cat(parts).float() for parts in zip(*outputs))
    return (features if len(features) > 1 else features[0]), torch.cat(labels)


def labelled_features(backbone, data_cfg, device):
    """Backbone features of the labelled training and validation images (eval transform)."""
    transform = eval_pipeline(data_cfg)

    def extract(split):
        dataset = build_dataset(data_cfg, split, transform)
        return extract_features(backbone, dataset, data_cfg.eval_batch_size, worker_count(data_cfg), device)

    train_x, train_y = extract("train_labeled")
    val_x, val_y = extract("val")
    labelled = train_y >= 0  # STL-10's unlabelled images carry -1
    return train_x[labelled], train_y[labelled], val_x, val_y


def class_count(*labels):
    return int(max(y.max() for y in labels)) + 1


def knn_result(train_x, train_y, val_x, val_y, k):
    if k <= 0:
        return {}
    scores = knn_predict(train_x, train_y, val_x, class_count(train_y, val_y), k=k, distance="euclidean")
    return {f"knn{k}_top1": topk_accuracy(scores, val_y)[0]}


def train_precomputed(train_x, train_y, num_classes, cfg, seed):
    """A linear layer on fixed features, a fresh random order each epoch."""
    torch.manual_seed(seed)
    classifier = nn.Linear(train_x.shape[1], num_classes).to(train_x.device)
    optimizer = make_optimizer(classifier.parameters(), cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, epoch_lr_factor(cfg))
    for _ in range(cfg.epochs):
        order = torch.randperm(len(train_x), device=train_x.device)
        for start in range(0, len(order), cfg.batch_size):
            index = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(classifier(train_x[index]), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return classifier


def precomputed_eval(backbone, cfg):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    backbone.to(device).eval()
    train_x, train_y, val_x, val_y = labelled_features(backbone, cfg.data, device)
    classes = class_count(train_y, val_y)
    classifier = train_precomputed(train_x, train_y, classes, cfg.linear, cfg.seed)
    with torch.no_grad():
        top1, top5 = topk_accuracy(classifier(val_x), val_y, (1, min(5, classes)))
    return {"linear_top1": top1, "linear_top5": top5, **knn_result(train_x, train_y, val_x, val_y, cfg.linear.knn_k)}


# ---- the frozen and finetune protocols (Lightning) -------------------------------------
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


def probe_train_transform(data_cfg, linear_cfg):
    size = data_cfg.image_size or dataset_info(data_cfg.name).image_size
    crop_and_flip = CropGroup(size=size, scale=list(linear_cfg.crop_scale), interpolation=linear_cfg.crop_interpolation,
                              order=["crop", "flip"])
    return torchvision_view(crop_and_flip, *normalisation(data_cfg))


def label_subset_names(percent, cache_dir):
    """The file names of SimCLR's `<percent>percent.txt`, downloaded once into `cache_dir`."""
    cache_dir = Path(cache_dir).expanduser()
    path = cache_dir / f"{percent}percent.txt"
    if not path.is_file():
        url = SUBSET_URL.format(percent=percent)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                atomic_write_bytes(path, response.read())
        except OSError as err:  # URLError, timeouts, refused connections
            raise ZooError(f"cannot download {url} ({getattr(err, 'reason', err)}): put that file at {path} "
                           "(or set linear.subset_dir)") from None
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def label_subset(dataset, percent, cache_dir):
    """The images of an ImageFolder whose file names are in SimCLR's subset list."""
    names = label_subset_names(percent, cache_dir)
    if not hasattr(dataset, "samples"):
        raise ZooError("linear.label_fraction needs an ImageFolder data set (ImageNet: data.name=imagenet)")
    kept = [i for i, (path, _) in enumerate(dataset.samples) if Path(path).name in names]
    if not kept:
        raise ZooError(f"none of the {len(names)} files of {percent}percent.txt is in the training folder {dataset.root}")
    return Subset(dataset, kept)


def build_trainer(cfg, run_dir):
    trainer_args = OmegaConf.to_container(cfg.trainer, resolve=True)
    return L.Trainer(
        default_root_dir=run_dir,
        logger=CSVLogger(run_dir, name="", version=""),
        enable_checkpointing=False,
        **{k: v for k, v in trainer_args.items() if v is not None},
    )


def lightning_eval(backbone, cfg, run_dir):
    """Frozen or finetune protocol -> (result, is this the process that reports)."""
    data = cfg.data
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = build_trainer(cfg, run_dir)
    if cfg.linear.batch_size % trainer.world_size:
        raise ZooError(f"linear.batch_size={cfg.linear.batch_size} does not split over {trainer.world_size} devices")
    train_set = build_dataset(data, "train_labeled", probe_train_transform(data, cfg.linear))
    classes = num_classes(train_set)
    if cfg.linear.label_fraction:
        train_set = label_subset(train_set, cfg.linear.label_fraction, cfg.linear.subset_dir)
    workers = worker_count(data)
    loader_args = {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": torch.cuda.is_available()}
    train = DataLoader(train_set, batch_size=cfg.linear.batch_size // trainer.world_size, shuffle=True, **loader_args)
    val = DataLoader(build_dataset(data, "val", eval_pipeline(data)), batch_size=data.eval_batch_size, **loader_args)
    model = LinearProbe(backbone, classes, cfg.linear)
    trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
    if not model.history:
        raise ZooError("no validation ran: give linear.epochs >= 1 (and trainer.limit_val_batches > 0)")
    best = max(model.history, key=lambda h: h["top1"])
    result = {"linear_top1": best["top1"], "linear_top5": best["top5"], "best_epoch": best["epoch"],
              "linear_top1_last": model.history[-1]["top1"], "train_images": len(train_set)}
    if trainer.is_global_zero and cfg.linear.knn_k > 0:
        backbone.eval()
        result.update(knn_result(*labelled_features(backbone, data, model.device), cfg.linear.knn_k))
    return result, trainer.is_global_zero


# ---- entry point ------------------------------------------------------------------
def default_run_dir(ckpt_path, linear_cfg):
    """<pretraining run>/linear, or /semi-<fraction>pct for semi-supervised finetuning."""
    name = f"semi-{linear_cfg.label_fraction}pct" if linear_cfg.label_fraction else "linear"
    return Path(ckpt_path).resolve().parent.parent / name


def load_backbone(checkpoint):
    pretrain_cfg = complete_config(checkpoint["config"])
    crop_size = max(group.size for group in resolved_views(pretrain_cfg.data))  # decides the small stem, as in pretraining
    backbone = create_backbone(pretrain_cfg.backbone, crop_size)
    backbone.load_state_dict(checkpoint["backbone"])
    return backbone


def linear_eval(ckpt_path, overrides, print_config=False):
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path else None
    cfg = build_config(checkpoint["config"] if checkpoint else None, overrides)
    if print_config:
        print(OmegaConf.to_yaml(cfg), end="")
        return None
    backbone = load_backbone(checkpoint)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(ckpt_path, cfg.linear)
    if cfg.linear.protocol == "precomputed":
        result, reporting = precomputed_eval(backbone, cfg), True
    else:
        result, reporting = lightning_eval(backbone, cfg, run_dir)
    if not reporting:
        return result
    summary = {
        "checkpoint": str(Path(ckpt_path).resolve()),
        "method": checkpoint["config"]["method"]["name"],
        "dataset": cfg.data.name,
        "protocol": cfg.linear.name,
        "procedure": cfg.linear.protocol,
        **result,
        "epochs": cfg.linear.epochs,
        "label_fraction": cfg.linear.label_fraction,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "summary.json", summary)
    print(json.dumps(summary))
    print(f"linear evaluation written to {run_dir / 'summary.json'}")
    return summary


@exit_on_user_error
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    linear_eval(args.ckpt, args.overrides, print_config=args.cfg is not None)


if __name__ == "__main__":
    main()
