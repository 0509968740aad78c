"""Each method's loss in float32 and under bfloat16 / float16 autocast on a CPU, on the same fixed inputs.

    python benchmarks/precision.py [--methods intl simclr ...] [--json runs/precision.json]
    python benchmarks/precision.py --tiny          # three methods, seconds (CI)

Builds every registered method as training does (the run config composed by Hydra, then
`zoo.build.build_method`), with a projector of --proj-hidden -> --proj-out and the whitening
fitted to the batch, on timm's test_resnet backbone (0.37 M parameters: 16-bit convolutions are
emulated on a CPU without native support, slow at ResNet-18 size), and computes the training
loss (`compute_loss`: backbone, projector, loss) of one seeded batch of crops three times: in
float32, under torch.autocast("cpu", dtype=torch.bfloat16) (what trainer.precision=bf16-mixed
runs), and under float16 autocast (what 16-mixed runs on a GPU; on a CPU torch emulates it). The
table gives the float32 loss and each 16-bit loss with its relative difference from it.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from _common import compose_config, cores, cpu_model, fit_whitening, load_average, markdown_table

from zoo.build import build_method
from zoo.registry import get_method, method_names

PRECISIONS = {"float32": None, "bf16 autocast": torch.bfloat16, "fp16 autocast": torch.float16}
TINY_METHODS = ["intl", "simclr", "wmse"]


def method_loss(method, batch, size, proj_hidden, proj_out, seed=0):
    """{precision: loss value} of `method` on one seeded batch of crops (same weights for each precision)."""
    views = get_method(method).num_views or 2
    cfg = compose_config([f"method={method}", f"data.batch_size={batch}", f"data.views=[{{size: {size}, count: {views}}}]",
                          "backbone.name=test_resnet", "backbone.small_stem=false", f"method.proj_hidden=[{proj_hidden}]", f"method.proj_out={proj_out}"])
    fit_whitening(cfg, batch)
    torch.manual_seed(seed)
    model = build_method(cfg, num_classes=10, world_size=1).method
    generator = torch.Generator().manual_seed(seed)
    crops = [torch.randn(batch, 3, size, size, generator=generator) for _ in range(views)]
    state = {key: value.clone() for key, value in model.state_dict().items()}  # queues, EMA targets, BN statistics
    losses = {}
    for name, dtype in PRECISIONS.items():
        model.load_state_dict(state)
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss, _ = model.compute_loss(crops)
        losses[name] = float(model.split_loss(loss)[0])
    return losses


def relative(value, reference):
    if not math.isfinite(value):
        return str(value)
    return f"{abs(value - reference) / max(abs(reference), 1e-12):.1e}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--tiny", action="store_true", help=f"{', '.join(TINY_METHODS)} at batch 16, 8 px (CI)")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    parser.add_argument("--batch", type=int, default=None, help="samples per view (default 64; --tiny 16)")
    parser.add_argument("--size", type=int, default=None, help="crop size in px (default 16; --tiny 8)")
    parser.add_argument("--proj-hidden", type=int, default=256)
    parser.add_argument("--proj-out", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, help="write the losses here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = args.methods or (TINY_METHODS if args.tiny else method_names())
    batch, size = args.batch or (16 if args.tiny else 64), args.size or (8 if args.tiny else 16)
    print(f"precision: CPU {cpu_model()}, {cores()} cores, {args.threads} torch thread(s), test_resnet backbone, batch "
          f"{batch} x {size} px, projector {args.proj_hidden} -> {args.proj_out}, seed 0; load average {load_average():.1f}")
    started, data, rows = time.perf_counter(), {}, []
    for method in methods:
        data[method] = losses = method_loss(method, batch, size, args.proj_hidden, args.proj_out)
        reference = losses["float32"]
        rows.append([method, f"{reference:.6g}", *[f"{losses[name]:.6g} ({relative(losses[name], reference)})"
                                                  for name in list(PRECISIONS)[1:]]])
        print(f"  {method}: {losses}", file=sys.stderr)
    print()
    print(markdown_table(["method", "float32 loss", *[f"{name} (rel. diff.)" for name in list(PRECISIONS)[1:]]], rows))
    print(f"\n{time.perf_counter() - started:.0f} s in all.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"batch": batch, "size": size, "losses": data}, indent=2) + "\n")


if __name__ == "__main__":
    main()
