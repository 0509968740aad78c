"""The evaluation command lines: their arguments and config, which protocol runs, the summary.

- `python main_linear.py --ckpt PATH [overrides]`: the linear probe (precomputed / frozen:
  zoo/eval/linear.py) or semi-supervised finetuning (zoo/eval/finetune.py); the config is
  zoo/configs/linear/linear.yaml (a published protocol: experiment=<dataset>/<recipe>) with the
  overrides, the data config the checkpoint's own with the protocol's `linear.data` and `data.*`
  overrides on top; writes <run>/linear (finetune on a label subset: <run>/semi-<fraction>pct)/summary.json.
- `python main_knn.py --ckpt PATH [data.KEY=VALUE ...]`: an offline k-NN sweep (zoo/metrics/knn.py)
  of a checkpoint's frozen features (validation images against the labelled training images,
  both with the evaluation transform) over k, temperature and distance, for backbone and
  projector features, as solo-learn's scripts/knn. Prints one markdown table of top-1
  accuracies (rows: features, distance, T; columns: k) and writes every result with its top-5
  to <run>/knn/summary.json, with a t-SNE of the validation features beside it (embedding.png).
- `python main_transfer.py --ckpt PATH [suite=many_shot|few_shot|shift] [overrides]`: transfer, few-shot
  and distribution-shift evaluation (zoo/eval/transfer.py); the config is zoo/configs/transfer/transfer.yaml
  with the overrides; writes <run>/transfer/summary.json (and a result file per data set, for resuming).
"""

import argparse
import io
import json
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from zoo.arguments import check_data_root, data_overrides, override_value
from zoo.atomic import atomic_write_bytes, write_json
from zoo.build import load_method
from zoo.checkpoint import read_checkpoint
from zoo.config import LinearRunConfig, check_batch_limits, one_line_config_errors, plain_values
from zoo.data import data_spec
from zoo.data.transfer import check_present, check_shift_present
from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.common import data_config, load_backbone, run_folder
from zoo.eval.features import FEATURES, default_device, encoder, labelled_features
from zoo.eval.finetune import LABEL_FRACTIONS, finetune_eval, run_name
from zoo.eval.linear import lightning_eval, precomputed_eval
from zoo.eval.transfer import SUITES, FeatureCache, load_head, table
from zoo.metrics.embedding import plot_embedding
from zoo.metrics.knn import DISTANCES, markdown_table, sweep
from zoo.provenance import provenance
from zoo.report import load_targets

LINEAR_HEAD = "linear_head.pt"  # the head main_linear.py leaves in its run folder (precomputed, frozen)
DEFAULT_K = "1,2,5,10,20,50,100,200"
DEFAULT_TEMPERATURES = "0.01,0.02,0.05,0.07,0.1,0.2,0.5,1"


# ---- main_linear.py -------------------------------------------------------------------------
def parse_linear_args(argv):
    parser = argparse.ArgumentParser(description="`python main_linear.py --ckpt PATH [overrides]`: evaluation of a "
                                     "pretrained backbone.", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="a checkpoint written by main_pretrain.py (e.g. RUN/checkpoints/last.ckpt)")
    parser.add_argument("--cfg", choices=["job"], help="print the resolved config and exit (as Hydra's --cfg job)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. linear.epochs=100 data.root=PATH")
    args = parser.parse_intermixed_args(argv)
    if args.ckpt is None and args.cfg is None:
        recipe = override_value(args.overrides, "experiment")
        if recipe:  # run by scripts/linear/<recipe>.sh
            raise ZooError(f"usage: bash scripts/linear/{recipe}.sh --ckpt PATH [overrides] (PATH: a checkpoint written by main_pretrain.py)")
        raise ZooError("--ckpt PATH is required (a checkpoint written by main_pretrain.py)")
    return args


def build_config(pretrain_cfg, overrides):
    """The evaluation config: linear/linear.yaml (a recipe: experiment=<dataset>/<recipe>) with the
    overrides; `data` is the checkpoint's, then the recipe's, then the `data.*` overrides."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="linear_schema", node=LinearRunConfig)
    with one_line_config_errors(), initialize_config_module("zoo.configs.linear", version_base="1.3"):
        cfg = compose("linear", overrides=[o for o in overrides if not o.startswith("data.")])
        OmegaConf.to_container(cfg, resolve=True)  # an interpolated value meets its type here
    OmegaConf.set_struct(cfg, False)
    cfg.data = data_config(pretrain_cfg, data_overrides(overrides), protocol_data=cfg.linear.data)
    check_linear_config(cfg.linear)
    check_batch_limits(cfg.trainer)
    return cfg


def check_linear_config(cfg):
    """What the schema's types (protocol, optimizer, schedule: zoo.names) do not say."""
    if cfg.label_fraction is not None and (cfg.protocol != "finetune" or cfg.label_fraction not in LABEL_FRACTIONS):
        raise ZooError("linear.label_fraction is 1 or 10 (percent of ImageNet's labels) and needs linear.protocol=finetune")


def linear_eval(ckpt_path, overrides, print_config=False):
    started = time.time()
    if not print_config:
        check_data_root(overrides)
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path else None
    cfg = build_config(checkpoint["config"] if checkpoint else None, overrides)
    if print_config:
        print(OmegaConf.to_yaml(cfg), end="")
        return None
    backbone = load_backbone(checkpoint)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else run_folder(ckpt_path) / run_name(cfg.linear)
    if cfg.linear.protocol == "precomputed":
        result, reporting = precomputed_eval(backbone, cfg), True
    else:
        result, reporting = (finetune_eval if cfg.linear.protocol == "finetune" else lightning_eval)(backbone, cfg, run_dir)
    if not reporting:
        return result
    meter = result.pop("training_meter")  # how the evaluation trained, for the provenance
    classifier = result.pop("classifier", None)
    if classifier is not None:
        save_linear_head(classifier, cfg, run_dir / LINEAR_HEAD)
    summary = {
        "checkpoint": str(Path(ckpt_path).resolve()),
        "method": checkpoint["config"]["method"]["name"],
        "dataset": cfg.data.name,
        "protocol": cfg.linear.name,
        "procedure": cfg.linear.protocol,
        **result,
        "epochs": cfg.linear.epochs,
        "label_fraction": cfg.linear.label_fraction,
        "provenance": provenance(started, cfg.seed, meter),
    }
    write_json(run_dir / "summary.json", summary)
    print(json.dumps(summary))
    print(f"linear evaluation written to {run_dir / 'summary.json'}")
    return summary


def save_linear_head(classifier, cfg, path):
    """The trained linear head with the class names of its data set (ImageFolder: the wnids of
    ImageNet) and the data config of its evaluation transform, for main_transfer.py's shift suite."""
    import torch

    classes = getattr(data_spec(cfg.data).dataset("val", None), "classes", None)
    head = {"weight": classifier.weight.detach().cpu(), "bias": classifier.bias.detach().cpu(),
            "classes": list(classes) if classes is not None else None, "data": plain_values(cfg.data)}
    buffer = io.BytesIO()
    torch.save(head, buffer)
    atomic_write_bytes(path, buffer.getvalue())


@exit_on_user_error
def main_linear(argv=None):
    args = parse_linear_args(sys.argv[1:] if argv is None else argv)
    linear_eval(args.ckpt, args.overrides, print_config=args.cfg is not None)


# ---- main_knn.py ----------------------------------------------------------------------------
def comma_list(kind, allowed=None):
    def parse(text):
        values = [kind(item) for item in text.split(",") if item]
        if allowed and set(values) - set(allowed):
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return values

    return parse


def parse_knn_args(argv):
    parser = argparse.ArgumentParser(description="`python main_knn.py --ckpt PATH [data.KEY=VALUE ...]`: an offline "
                                     "k-NN sweep.", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by main_pretrain.py")
    parser.add_argument("--k", type=comma_list(int), default=DEFAULT_K, help=f"neighbour counts (default {DEFAULT_K})")
    parser.add_argument("--temperatures", type=comma_list(float), default=DEFAULT_TEMPERATURES, help="cosine vote temperatures")
    parser.add_argument("--distances", type=comma_list(str, DISTANCES), default="cosine,euclidean")
    parser.add_argument("--features", type=comma_list(str, FEATURES), default="backbone,projector")
    parser.add_argument("--bank-size", type=int, default=None, help="a seeded random subset of the training images (ImageNet)")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/knn)")
    parser.add_argument("overrides", nargs="*", help="data.KEY=VALUE overrides of the checkpoint's data config")
    args = parser.parse_intermixed_args(argv)  # string defaults go through `type` too
    not_data = [o for o in args.overrides if not o.startswith("data.")]
    if not_data:
        raise ZooError(f"main_knn.py takes data.KEY=VALUE overrides only, not {not_data[0]}")
    return args


def knn_sweep(args):
    started = time.time()
    method, cfg = load_method(args.ckpt)
    device = default_device()
    method.to(device)
    data = data_config(cfg, args.overrides)
    features = labelled_features(encoder(method.backbone, method.projector, args.features), data_spec(data), device,
                                 args.bank_size)
    results = sweep(features, args.features, args.k, args.temperatures, args.distances)
    best = max(results, key=lambda r: r["top1"])
    print(markdown_table(results, args.k))
    print(f"\nbest of the {len(results)} settings, picked on this split: {100 * best['top1']:.2f} top-1 "
          f"({best['features']}, {best['distance']}, k={best['k']}, T={best['temperature']})")
    out = Path(args.out) if args.out else run_folder(args.ckpt) / "knn"
    summary = {"checkpoint": str(Path(args.ckpt).resolve()), "method": cfg["method"]["name"], "dataset": data.name,
               # the best of the sweep is picked on the split it is scored on: not a k-NN result of a fixed protocol
               "protocol": "kNN-sweep", "best_top1": best["top1"], "best": best, "settings": len(results),
               "bank_size": len(features.train_labels),
               "results": results, "provenance": provenance(started, seed=0, device=device)}  # the bank subset's seed
    write_json(out / "summary.json", summary)
    print(f"k-NN sweep written to {out / 'summary.json'}")
    kind = "backbone" if "backbone" in args.features else args.features[0]
    plot_embedding(features.val[args.features.index(kind)], features.val_labels, out / "embedding.png",
                   f"{cfg['method']['name']} on {data.name}, {kind} features")
    print(f"embedding of the validation features written to {out / 'embedding.png'}")
    return summary


@exit_on_user_error
def main_knn(argv=None):
    knn_sweep(parse_knn_args(sys.argv[1:] if argv is None else argv))


# ---- main_transfer.py -----------------------------------------------------------------------
SUITE_NAMES = ("many_shot", "few_shot", "shift")


def parse_transfer_args(argv):
    parser = argparse.ArgumentParser(description="`python main_transfer.py --ckpt PATH [suite=many_shot|few_shot|shift] "
                                     "[overrides]`: transfer, few-shot and distribution-shift evaluation of a frozen backbone.")
    parser.add_argument("--ckpt", help="a checkpoint written by main_pretrain.py (e.g. RUN/checkpoints/last.ckpt)")
    parser.add_argument("--cfg", choices=["job"], help="print the resolved config and exit (as Hydra's --cfg job)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. suite=few_shot transfer.root=DIR "
                        "transfer.datasets=[cifar10,dtd]")
    args = parser.parse_intermixed_args(argv)
    if args.ckpt is None and args.cfg is None:
        raise ZooError("--ckpt PATH is required (a checkpoint written by main_pretrain.py)")
    return args


def build_transfer_config(overrides):
    """zoo/configs/transfer/transfer.yaml with the overrides, its values checked."""
    with one_line_config_errors(), initialize_config_module("zoo.configs.transfer", version_base="1.3"):
        cfg = compose("transfer", overrides=overrides)
    if cfg.suite not in SUITE_NAMES:
        raise ZooError(f"suite must be one of {', '.join(SUITE_NAMES)}, not '{cfg.suite}'")
    t, f = cfg.transfer, cfg.few_shot
    for key, value, low in (("transfer.image_size", t.image_size, 1), ("transfer.batch_size", t.batch_size, 1),
                            ("transfer.c_grid", t.c_grid, 1), ("transfer.max_iter", t.max_iter, 1), ("few_shot.draws", f.draws, 1)):
        if value < low:
            raise ZooError(f"{key}={value} must be >= {low}")
    if not 0 < t.val_fraction < 1:
        raise ZooError(f"transfer.val_fraction={t.val_fraction} must lie strictly between 0 and 1")
    if not f.shots or min(f.shots) < 1 or f.C <= 0:
        raise ZooError("few_shot.shots must be a list of counts >= 1 and few_shot.C > 0")
    if not (cfg.shift.datasets if cfg.suite == "shift" else t.datasets):
        raise ZooError(f"no data sets to evaluate: give {'shift' if cfg.suite == 'shift' else 'transfer'}.datasets=[...]")
    return cfg


def suite_settings(cfg):
    """What a suite's results depend on (a saved data set result with other settings is computed again)."""
    transfer = {k: v for k, v in OmegaConf.to_container(cfg.transfer).items()
                if k not in ("datasets", "download", "batch_size", "num_workers", "cache", "progress")}
    settings = {"transfer": transfer}
    if cfg.suite != "many_shot":
        settings[cfg.suite] = {k: v for k, v in OmegaConf.to_container(cfg[cfg.suite]).items() if k != "datasets"}
    return settings


def transfer_eval(ckpt_path, overrides, print_config=False):
    started = time.time()
    cfg = build_transfer_config(overrides)
    if print_config:
        print(OmegaConf.to_yaml(cfg), end="")
        return None
    suite = cfg.suite
    datasets = list(cfg.shift.datasets if suite == "shift" else cfg.transfer.datasets)
    if suite == "few_shot" and "voc2007" in datasets:  # k images per class: not defined for multi-label VOC
        print("notice: voc2007 is multi-label (k images per class is not defined): left out of the few_shot suite")
        datasets.remove("voc2007")
    for name in datasets:  # a bad root or name ends here, before the checkpoint, any model or data is read
        (check_shift_present if suite == "shift" else check_present)(name, cfg.transfer.root, cfg.transfer.download)
    checkpoint = read_checkpoint(ckpt_path)
    extra = ()
    if suite == "shift":  # the head first: no feature is computed for a run without one
        extra = (load_head(cfg.shift.head or run_folder(ckpt_path) / "linear" / LINEAR_HEAD),)
    device = default_device()
    backbone = load_backbone(checkpoint).to(device).eval()
    out = Path(cfg.run_dir) if cfg.run_dir else run_folder(ckpt_path) / "transfer"
    cache = FeatureCache(backbone, ckpt_path, cfg.transfer, device)
    settings = suite_settings(cfg)
    rows = []
    for name in datasets:
        done = out / suite / f"{name}.json"
        saved = json.loads(done.read_text()) if done.is_file() else None
        if saved and saved["settings"] == settings:
            print(f"{name}: taken from {done}")
        else:
            saved = {"settings": settings, "result": SUITES[suite](cache, name, cfg, *extra)}
            write_json(done, saved)
        rows.append(saved["result"])
    text = table(suite, rows, load_targets())
    print(text)
    path = out / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.update({"checkpoint": str(Path(ckpt_path).resolve()), "method": checkpoint["config"]["method"]["name"],
                    "protocol": "transfer"})
    record = provenance(started, cfg.seed, device=device)
    summary.setdefault("suites", {})[suite] = {"datasets": rows, "settings": settings, "table": text, "provenance": record}
    summary["provenance"] = record
    write_json(path, summary)
    print(f"{suite} results written to {path}")
    return summary


@exit_on_user_error
def main_transfer(argv=None):
    args = parse_transfer_args(sys.argv[1:] if argv is None else argv)
    transfer_eval(args.ckpt, args.overrides, print_config=args.cfg is not None)
