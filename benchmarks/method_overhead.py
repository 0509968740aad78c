"""Cost of each method's loss (whitening included) next to the backbone's.

For every registered method at its paper defaults (projector widths, w_size,
groups, views), times forward+backward of the backbone over all crops and
forward+backward of the loss on the projector outputs, and prints medians and
their ratio. ResNet-18 with the CIFAR stem at 32x32, on this machine's CPU.

    python benchmarks/method_overhead.py [--batch-size 128] [--repeats 5]
"""

import argparse
import statistics
import time

import torch
from hydra import compose, initialize_config_module

from zoo.build import build_method
from zoo.config import register_configs
from zoo.registry import method_names

# Crops per sample in each method's official small-data recipe.
VIEWS = {"wmse": 4, "cwrgp": 4}


def build(method, batch_size, views):
    register_configs()
    method_names()
    with initialize_config_module("zoo.configs", version_base="1.3"):
        cfg = compose("pretrain", overrides=[
            f"method={method}", f"data.batch_size={batch_size}", "data.name=cifar10",
            f"data.views=[{{size: 32, count: {views}}}]",
        ])
    return build_method(cfg, num_classes=10, world_size=1).method


def median_seconds(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(method, batch_size, repeats):
    views = VIEWS.get(method, 2)
    model = build(method, batch_size, views)
    crops = [torch.randn(batch_size, 3, 32, 32) for _ in range(views)]

    def backbone_step():
        model.zero_grad(set_to_none=True)
        features = [model.backbone(crop) for crop in crops]
        torch.stack([f.sum() for f in features]).sum().backward()

    with torch.no_grad():
        projections = model.project([model.backbone(crop) for crop in crops])
    leaves = [z.detach().requires_grad_(True) for z in projections]

    def loss_step():
        model.split_loss(model.loss(leaves))[0].backward()

    backbone = median_seconds(backbone_step, repeats)
    loss = median_seconds(loss_step, repeats)
    return views, projections[0].shape[1], backbone, loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", nargs="*", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"batch {args.batch_size} per crop, ResNet-18 at 32x32, {torch.get_num_threads()} threads, medians of {args.repeats}")
    print("| method | views | D | backbone fwd+bwd (s) | loss+whitening fwd+bwd (s) | loss / backbone |")
    print("|---|---|---|---|---|---|")
    # intl_m is left out: its loss is intl's, its extra cost the EMA forward of one crop.
    for method in args.methods or ["intl", "barlow_twins", "vicreg", "wmse", "cwrgp", "simsiam"]:
        views, dim, backbone, loss = measure(method, args.batch_size, args.repeats)
        print(f"| {method} | {views} | {dim} | {backbone:.3f} | {loss:.4f} | {100 * loss / backbone:.2f}% |")


if __name__ == "__main__":
    main()
