"""`python main_linear.py --ckpt PATH [overrides]`: linear evaluation of a frozen backbone.

The protocol `precomputed` is the W-MSE / CW-RGP / INTL-CIFAR one: backbone
features (eval mode, no augmentation) computed once, then a linear layer
trained with Adam, lr decayed exponentially from `linear.lr` to
`linear.final_lr`; it also reports the 5-nn accuracy (Euclidean, majority).
"""

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch.utils.data import DataLoader

from zoo.backbones import create_backbone
from zoo.checkpoint import read_checkpoint
from zoo.config import DataConfig, LinearRunConfig
from zoo.data import eval_pipeline, resolved_views
from zoo.data.datasets import build_dataset
from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.knn import knn_predict, topk_accuracy
from zoo.pretrain import write_json


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by main_pretrain.py (e.g. RUN/checkpoints/last.ckpt)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. linear.epochs=100 data.root=PATH")
    return parser.parse_args(argv)


def build_config(pretrain_cfg, overrides):
    """The linear-run config: the checkpoint's data config, then the user's overrides."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="linear_schema", node=LinearRunConfig)
    data_overrides = [o for o in overrides if o.startswith("data.")]
    other_overrides = [o for o in overrides if not o.startswith("data.")]
    try:
        with initialize_config_module("zoo.configs", version_base="1.3"):
            cfg = compose("linear", overrides=other_overrides)
        data = OmegaConf.merge(OmegaConf.structured(DataConfig), pretrain_cfg["data"])
        data.merge_with_dotlist([o[len("data.") :] for o in data_overrides])
    except Exception as err:  # Hydra's and OmegaConf's own messages name the key
        if isinstance(err, OmegaConfBaseException) or type(err).__module__.startswith("hydra"):
            raise ZooError(str(err).splitlines()[0]) from None
        raise
    OmegaConf.set_struct(cfg, False)
    cfg.data = data
    return cfg


@torch.no_grad()
def extract_features(backbone, dataset, batch_size, num_workers):
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    features, labels = [], []
    for images, targets in loader:
        features.append(backbone(images).float())
        labels.append(torch.as_tensor(targets))
    return torch.cat(features), torch.cat(labels)


def train_linear(train_x, train_y, num_classes, cfg, seed):
    """Adam on a linear layer over fixed features; lr decays exponentially to final_lr."""
    torch.manual_seed(seed)
    classifier = nn.Linear(train_x.shape[1], num_classes)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gamma = (cfg.final_lr / cfg.lr) ** (1 / max(cfg.epochs, 1))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(train_x))
        for start in range(0, len(order), cfg.batch_size):
            index = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(classifier(train_x[index]), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return classifier


def linear_eval(ckpt_path, overrides):
    checkpoint = read_checkpoint(ckpt_path)
    pretrain_cfg = checkpoint["config"]
    cfg = build_config(pretrain_cfg, overrides)
    if cfg.linear.protocol != "precomputed":
        raise ZooError(f"linear.protocol must be precomputed, not '{cfg.linear.protocol}'")
    backbone_cfg = OmegaConf.create(pretrain_cfg["backbone"])
    crop_size = max(group.size for group in resolved_views(OmegaConf.merge(OmegaConf.structured(DataConfig), pretrain_cfg["data"])))
    backbone = create_backbone(backbone_cfg, crop_size)
    backbone.load_state_dict(checkpoint["backbone"])
    backbone.eval()

    transform = eval_pipeline(cfg.data)
    train_set = build_dataset(cfg.data, "train_labeled", transform)
    val_set = build_dataset(cfg.data, "val", transform)
    workers = cfg.data.num_workers
    train_x, train_y = extract_features(backbone, train_set, cfg.data.eval_batch_size, workers)
    val_x, val_y = extract_features(backbone, val_set, cfg.data.eval_batch_size, workers)
    labelled = train_y >= 0  # STL-10's unlabelled images carry -1
    train_x, train_y = train_x[labelled], train_y[labelled]
    num_classes = int(max(train_y.max(), val_y.max())) + 1

    classifier = train_linear(train_x, train_y, num_classes, cfg.linear, cfg.seed)
    with torch.no_grad():
        top1, top5 = topk_accuracy(classifier(val_x), val_y, (1, min(5, num_classes)))
    knn5 = topk_accuracy(knn_predict(train_x, train_y, val_x, num_classes, k=5, distance="euclidean"), val_y)[0]
    run_dir = Path(cfg.run_dir) if cfg.run_dir else Path(ckpt_path).resolve().parent.parent / "linear"
    summary = {
        "checkpoint": str(Path(ckpt_path).resolve()),
        "method": pretrain_cfg["method"]["name"],
        "dataset": cfg.data.name,
        "protocol": cfg.linear.protocol,
        "linear_top1": top1,
        "linear_top5": top5,
        "knn5_top1": knn5,
        "epochs": cfg.linear.epochs,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "summary.json", summary)
    print(json.dumps(summary))
    print(f"linear evaluation written to {run_dir / 'summary.json'}")
    return summary


@exit_on_user_error
def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    linear_eval(args.ckpt, args.overrides)


if __name__ == "__main__":
    main()
