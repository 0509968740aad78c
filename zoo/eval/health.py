"""Every label-free health metric of a checkpoint, offline: `python -m zoo.health --ckpt PATH [--out DIR]
[--samples N] [--views Q] [data.KEY=VALUE ...]`.

On the images a validation of the run evaluates (its validation images; without labels, its fixed subset of
training images), with the evaluation transform, through the checkpoint's backbone and projector: the covariance
spectra (effective rank, condition number) of the backbone features and projector outputs, the whitened output's
diagnostics (whitening methods), `zoo.metrics.health.health` (RankMe, alpha-ReQ, whitening residuals), the collapse
indicator, each backbone stage's effective rank and RankMe (`zoo.metrics.stages`), and LiDAR of the backbone
features and projector outputs of `--views` training-augmented views of `--samples` of the images
(`zoo.data.views`; default the paper's 1000 x 50, at most the images there are). The names are the ones
pretraining logs without `val/`.

Writes DIR/health.json (default DIR: <checkpoint's folder>/<checkpoint's name>-health, beside the checkpoint), with
spectrum.png (backbone and projector eigenvalues) and stage_spectra.png beside it. A metric that cannot be computed
is null in "metrics" with its reason under "not_computed", never NaN; a checkpoint that cannot be read is one
`error:` line.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from zoo.atomic import write_json
from zoo.build import load_method
from zoo.callbacks import plot_spectra, plot_stage_spectra, transform_diagnostics
from zoo.data import data_spec
from zoo.data.loaders import evaluated_images, make_loader
from zoo.data.views import PAPER_SAMPLES, PAPER_VIEWS, AugmentedViews
from zoo.errors import ZooError, exit_on_user_error
from zoo.eval.common import data_config
from zoo.eval.features import default_device
from zoo.metrics.health import Measure, collapse_indicator, health, lidar_of_views, unusable
from zoo.metrics.spectrum import condition_number, covariance_eigenvalues, effective_rank
from zoo.metrics.stages import StageTaps, stage_measures
from zoo.provenance import provenance


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m zoo.health", description="Every label-free health metric of a "
                                     "checkpoint, written to health.json with the spectrum pictures.")
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by main_pretrain.py")
    parser.add_argument("--out", default=None, help="output folder (default: <checkpoint's folder>/<its name>-health)")
    parser.add_argument("--samples", type=int, default=PAPER_SAMPLES,
                        help=f"LiDAR: images (default {PAPER_SAMPLES}, Thilak et al.; at most the evaluated images)")
    parser.add_argument("--views", type=int, default=PAPER_VIEWS, help=f"LiDAR: augmented views per image (default "
                        f"{PAPER_VIEWS}, Thilak et al.; 0: no LiDAR)")
    parser.add_argument("overrides", nargs="*", help="data.KEY=VALUE overrides of the checkpoint's data config")
    args = parser.parse_intermixed_args(argv)
    not_data = [o for o in args.overrides if not o.startswith("data.")]
    if not_data:
        raise ZooError(f"python -m zoo.health takes data.KEY=VALUE overrides only, not {not_data[0]}")
    if args.samples < 2 or args.views == 1 or args.views < 0:
        raise ZooError(f"--samples {args.samples} --views {args.views}: LiDAR needs at least 2 images and 2 views of "
                       "each (--views 0: no LiDAR)")
    return args


def default_folder(ckpt_path):
    path = Path(ckpt_path).resolve()
    return path.parent / f"{path.stem}-health"


@torch.no_grad()
def evaluated_outputs(method, data, device, seed):
    """(backbone features, projector outputs) of the evaluated images (float32, on the CPU), and the stages'
    [(name, Moments)]."""
    taps = StageTaps(method.backbone)
    features, projections = [], []
    for images, _ in make_loader(evaluated_images(data, data.eval_transform(), seed), data.eval_batch_size, data.workers):
        with taps.recording():
            h = method.backbone(images.to(device))
        features.append(h.float().cpu())
        projections.append(method.projector(h).float().cpu())
    return torch.cat(features), torch.cat(projections), taps.reduced()


def spectrum(features, rank_key, condition_key):
    """{rank_key: effective rank, condition_key: condition number} as Measures, and the covariance eigenvalues
    (None when the features cannot give them)."""
    if reason := unusable(features, 2):
        return {rank_key: Measure(None, reason), condition_key: Measure(None, reason)}, None
    eigenvalues = covariance_eigenvalues(features)
    return {rank_key: Measure(effective_rank(eigenvalues)), condition_key: Measure(condition_number(eigenvalues))}, eigenvalues


def finite(measures):
    """{name: Measure} with a value that is not a finite number (inf, NaN) turned into None with its reason."""
    checked = {}
    for name, (value, reason) in measures.items():
        if value is not None and not math.isfinite(value):
            value, reason = None, f"the value came out {value}"
        checked[name] = Measure(value, reason)
    return checked


def health_measures(method, features, projections, stages, lidar=None):
    """Every metric by name, as Measures; the backbone's and projector's covariance eigenvalues by name, and each
    stage's (None for a stage without them). `lidar`: (`zoo.data.views.AugmentedViews`, images -> (features,
    projections)), or None."""
    measures, backbone_eigs = spectrum(features, "effective_rank", "backbone_condition_number")
    projector, projector_eigs = spectrum(projections, "projector_effective_rank", "projector_condition_number")
    measures.update(projector, output_std=collapse_indicator(projections))
    missing = torch.full((1,), float("nan"), dtype=torch.float64)  # alpha-ReQ says why it has no eigenvalues
    eigs = (backbone_eigs if backbone_eigs is not None else missing, projector_eigs if projector_eigs is not None else missing)
    measures.update(health(features, projections, *eigs))
    if projector_eigs is not None:
        measures.update({key: Measure(value) for key, value in transform_diagnostics(method, projections).items()
                         if not key.endswith("_eigenvalues")})
    stage_values, stage_spectra = stage_measures(stages)
    measures.update(stage_values)
    if lidar is not None:
        views, encode = lidar
        measures.update(lidar_of_views(encode, views.batches(views.data.eval_batch_size)))
    spectra = {"backbone": backbone_eigs, "projector": projector_eigs}
    return finite(measures), {key: value for key, value in spectra.items() if value is not None}, stage_spectra


def health_report(args):
    started = time.time()
    method, cfg = load_method(args.ckpt)
    device = default_device()
    method.to(device)
    data = data_spec(data_config(cfg, args.overrides))
    seed = int(cfg.seed)
    features, projections, stages = evaluated_outputs(method, data, device, seed)
    lidar_views = AugmentedViews(data, args.samples, args.views, seed) if args.views else None

    @torch.no_grad()
    def encode(images):
        h = method.backbone(images.to(device))
        return h.float(), method.projector(h).float()

    measures, spectra, stage_spectra = health_measures(method, features, projections, stages,
                                                       (lidar_views, encode) if lidar_views else None)
    out = Path(args.out) if args.out else default_folder(args.ckpt)
    name = cfg["method"]["name"]
    report = {
        "checkpoint": str(Path(args.ckpt).resolve()),
        "method": name,
        "dataset": data.source.name,
        "backbone": cfg["backbone"]["name"],
        "evaluated_images": len(features),
        "lidar_samples": lidar_views.shape[0] if lidar_views else None,
        "lidar_views": args.views or None,
        "stages": [stage for stage, _ in stages],  # the backbone modules of stage1, stage2, ...
        "metrics": {key: value for key, (value, _) in measures.items()},
        "not_computed": {key: reason for key, (value, reason) in measures.items() if value is None},
        "provenance": provenance(started, seed, device=device),
    }
    write_json(out / "health.json", report)
    written = [out / "health.json"]
    if spectra:
        plot_spectra([(Path(args.ckpt).name, {key: value.tolist() for key, value in spectra.items()})], out / "spectrum.png",
                     f"{name}: covariance eigenvalues of {len(features)} {data.source.name} images", label="{}")
        written.append(out / "spectrum.png")
    if any(eigs is not None for eigs in stage_spectra):
        plot_stage_spectra(report["stages"], stage_spectra, out / "stage_spectra.png",
                           f"{name}: covariance eigenvalues of the backbone's stages")
        written.append(out / "stage_spectra.png")
    print(json.dumps({key: report["metrics"].get(key) for key in ("effective_rank", "rankme", "lidar", "projector_lidar")}))
    for key, reason in report["not_computed"].items():
        print(f"warning: {key} not computed: {reason}")
    print(f"health metrics written to {', '.join(str(path) for path in written)}")
    return report


@exit_on_user_error
def main(argv=None):
    return health_report(parse_args(sys.argv[1:] if argv is None else argv))
