"""`python main_knn.py --ckpt PATH [data.KEY=VALUE ...]`: an offline k-NN sweep.

The k-NN accuracy of a checkpoint's frozen features (validation images against the labelled
training images, both with the evaluation transform) over k, temperature and distance, for
backbone and projector features, as solo-learn's scripts/knn: cosine votes are weighted by
exp(similarity / T); Euclidean votes are a plain majority, so T does not apply to them.
Prints one markdown table of top-1 accuracies (rows: features, distance, T; columns: k) and
writes every result with its top-5 to <run>/knn/summary.json.
"""

import argparse
import sys
from pathlib import Path

import torch

from zoo.checkpoint import load_method
from zoo.data import capped, eval_pipeline, worker_count
from zoo.data.datasets import build_dataset
from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.knn import knn_predict, topk_accuracy
from zoo.linear import data_config, extract_features
from zoo.pretrain import write_json

DEFAULT_K = "1,2,5,10,20,50,100,200"
DEFAULT_TEMPERATURES = "0.01,0.02,0.05,0.07,0.1,0.2,0.5,1"
FEATURES = ("backbone", "projector")
DISTANCES = ("cosine", "euclidean")


def comma_list(kind, allowed=None):
    def parse(text):
        values = [kind(item) for item in text.split(",") if item]
        if allowed and set(values) - set(allowed):
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return values

    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
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


def encoder(method, features):
    """images -> one tensor per requested kind of features, in the order asked."""

    def encode(images):
        h = method.backbone(images)
        return tuple(h if name == "backbone" else method.projector(h) for name in features)

    return encode


def labelled_split(method, data_cfg, split, features, device, bank_size=None):
    dataset = capped(build_dataset(data_cfg, split, eval_pipeline(data_cfg)), bank_size, seed=0)
    outputs, labels = extract_features(encoder(method, features), dataset, data_cfg.eval_batch_size, worker_count(data_cfg), device)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    known = labels >= 0  # STL-10's unlabelled images carry -1
    return {name: x[known] for name, x in zip(features, outputs)}, labels[known]


def sweep(bank, bank_labels, queries, labels, ks, temperatures, distances):
    """One result dict per (features, distance, k, T); T is None for Euclidean votes."""
    classes = int(max(bank_labels.max(), labels.max())) + 1
    top = (1, min(5, classes))
    results = []
    for name in bank:
        for distance in distances:
            for temperature in temperatures if distance == "cosine" else [None]:
                for k in ks:
                    scores = knn_predict(bank[name], bank_labels, queries[name], classes, k=k,
                                         temperature=temperature or 1.0, distance=distance)
                    top1, top5 = topk_accuracy(scores, labels, top)
                    results.append({"features": name, "distance": distance, "k": k, "temperature": temperature,
                                    "top1": top1, "top5": top5})
    return results


def markdown_table(results, ks):
    """Rows: features, distance, T; columns: k; cells: top-1 in %."""
    rows = {}
    for r in results:
        rows.setdefault((r["features"], r["distance"], r["temperature"]), {})[r["k"]] = r["top1"]
    lines = ["| features | distance | T | " + " | ".join(f"k={k}" for k in ks) + " |", "|---|---|---|" + "---:|" * len(ks)]
    for (name, distance, temperature), by_k in rows.items():
        cells = " | ".join(f"{100 * by_k[k]:.2f}" for k in ks)
        lines.append(f"| {name} | {distance} | {'-' if temperature is None else f'{temperature:g}'} | {cells} |")
    return "\n".join(lines)


def knn_sweep(args):
    method, cfg = load_method(args.ckpt)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    method.to(device)
    data = data_config(cfg, args.overrides)
    bank, bank_labels = labelled_split(method, data, "train_labeled", args.features, device, args.bank_size)
    queries, labels = labelled_split(method, data, "val", args.features, device)
    results = sweep(bank, bank_labels, queries, labels, args.k, args.temperatures, args.distances)
    best = max(results, key=lambda r: r["top1"])
    print(markdown_table(results, args.k))
    print(f"\nbest: {100 * best['top1']:.2f} top-1 ({best['features']}, {best['distance']}, k={best['k']}, T={best['temperature']})")
    out = Path(args.out) if args.out else Path(args.ckpt).resolve().parent.parent / "knn"
    summary = {"checkpoint": str(Path(args.ckpt).resolve()), "method": cfg["method"]["name"], "dataset": data.name,
               "protocol": "kNN-sweep", "knn_top1": best["top1"], "best": best, "bank_size": len(bank_labels), "results": results}
    write_json(out / "summary.json", summary)
    print(f"k-NN sweep written to {out / 'summary.json'}")
    return summary


@exit_on_user_error
def main(argv=None):
    knn_sweep(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
