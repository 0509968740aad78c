"""Fine-tune Mask R-CNN R50-C4 on COCO 2017 from a zoo checkpoint; evaluate with pycocotools.

The default config, coco_R_50_C4_2x, is the protocol of MoCo, INTL and CW-RGP: detectron2's
R50-C4 with every BN trained and synchronised across GPUs, 180k iterations of 16 images,
lr 0.02 (x0.1 at 120k and 160k, 1k linear warmup), short side 640..800 for training and 800
for testing, BN statistics recomputed on 200 batches before testing (PreciseBN).

    python downstream/detection/train_coco.py --ckpt CKPT --coco-root COCO [--output DIR]
    torchrun --nproc_per_node 8 downstream/detection/train_coco.py --ckpt CKPT --coco-root COCO

DIR (default: next to CKPT, named CKPT-stem_CONFIG) receives config.json, log.jsonl (losses,
lr), last.pth (every checkpoint_period iterations, written atomically; running the same
command again resumes from it), model_final.pth and metrics.json with bbox_AP, bbox_AP50,
bbox_AP75, segm_AP, segm_AP50, segm_AP75 (percent) and the run's provenance (zoo/provenance.py:
wall time, iterations/s and images/s, peak memory, machine, lr per group, seed, code versions).
"""

import argparse
import bisect
import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the repository root, not this folder
    sys.path[0] = str(Path(__file__).resolve().parents[2])

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from downstream.detection.config import CONFIGS, get_config
from downstream.detection.convert import atomic_write, resnet50_state_dict
from downstream.detection.data import (
    AspectGroupedBatches,
    CocoInstances,
    UnreadableImage,
    as_list,
    coco_splits,
    to_model_input,
    warn_unreadable,
)
from downstream.detection.evaluation import check_test_images, evaluate
from downstream.detection.model import TRAINABLE_NORMS, build_mask_rcnn_c4
from zoo.errors import ZooError, exit_on_user_error
from zoo.provenance import TrainingMeter, every_process_memory, provenance

DEFAULT_CONFIG = "coco_R_50_C4_2x"
# Config fields a resumed run may change without changing what it computes.
RESUMABLE_CHANGES = ("max_iter", "checkpoint_period", "num_workers", "log_period")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="zoo pretraining checkpoint with a resnet50 backbone")
    parser.add_argument("--coco-root", required=True, help="folder with train2017/, val2017/, annotations/")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"one of {', '.join(CONFIGS)}")
    parser.add_argument("--output", help="run folder (resumed if it holds last.pth)")
    parser.add_argument("--max-iter", type=int, help="stop after this many iterations (0: evaluate the initial model)")
    parser.add_argument("--ims-per-batch", type=int, help="total batch; scales lr and schedule linearly (detectron2's rule)")
    parser.add_argument("--min-size", type=int, nargs="+", help="training short sides; the largest is the test size")
    parser.add_argument("--max-size", type=int, help="longest side cap")
    parser.add_argument("--workers", type=int, help="data loading processes per GPU")
    return parser.parse_args(argv)


def resolve_config(args):
    cfg = get_config(args.config)
    if args.ims_per_batch is not None:
        cfg = cfg.scaled_to_batch(args.ims_per_batch)
    overrides = {
        "max_iter": args.max_iter,
        "min_sizes_train": tuple(args.min_size) if args.min_size else None,
        "max_size": args.max_size,
        "num_workers": args.workers,
    }
    return dataclasses.replace(cfg, **{key: value for key, value in overrides.items() if value is not None}).validate()


@dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self):
        return self.rank == 0


def init_runtime():
    """One process, or one of torchrun's (WORLD_SIZE, LOCAL_RANK set): NCCL on GPUs, gloo on CPUs."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Runtime(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend)
    return Runtime(dist.get_rank(), world_size, device)


# Peak host memory of one CPU training step of Mask R-CNN R50-C4, fitted to measurements
# (1-2 images at 320x480 and 480x720, 512 RoIs per image, AMD EPYC): the res5 head over the
# sampled RoIs dominates, then the image's pixels.
CPU_BASE_GIB, CPU_GIB_PER_ROI, CPU_GIB_PER_PIXEL = 0.9, 6.1e-3, 1.6e-6


def cpu_memory_needed_gib(cfg, images_per_process):
    per_image = CPU_GIB_PER_ROI * cfg.roi_batch_size_per_image + CPU_GIB_PER_PIXEL * cfg.min_size_test * cfg.max_size
    return CPU_BASE_GIB + images_per_process * per_image


def available_memory_gib():
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) / 2**20


def check_fits_this_machine(cfg, config_name, world_size, local_processes):
    """Without a GPU, stop in one line before a config the host memory cannot hold (the paper's
    16 images of 800x1333 need ~80 GiB on a CPU) instead of being killed by the kernel."""
    if torch.cuda.is_available():
        return
    per_process = cfg.ims_per_batch // world_size
    needed = cpu_memory_needed_gib(cfg, per_process) * local_processes
    available = available_memory_gib()
    if needed > 0.9 * available:
        raise ZooError(
            f"--config {config_name} needs about {needed:.0f} GiB of memory on this machine without a GPU ({local_processes} x "
            f"{per_process} images of up to {cfg.min_size_test}x{cfg.max_size} px, {cfg.roi_batch_size_per_image} RoIs each), "
            f"{available:.0f} GiB are available: it is meant for GPUs; try the pipeline with --config cpu_smoke, or shrink it "
            "with --ims-per-batch / --min-size / --max-size"
        )
    if cfg.max_iter > 1000:
        print(f"warning: no GPU: {cfg.max_iter} iterations on the CPU will take a very long time (est. memory {needed:.1f} GiB)")


def build_optimizer(model, cfg):
    """SGD with momentum; norm-layer parameters get weight_decay_norm (detectron2's default 0)."""
    norm_params, other_params = [], []
    for module in model.modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        (norm_params if isinstance(module, TRAINABLE_NORMS) else other_params).extend(params)
    groups = [
        {"params": other_params, "weight_decay": cfg.weight_decay},
        {"params": norm_params, "weight_decay": cfg.weight_decay_norm},
    ]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=cfg.base_lr, momentum=cfg.momentum)


def warmup_multistep(cfg):
    """detectron2's WarmupMultiStepLR as a factor on base_lr: linear warmup, then x gamma at each step."""

    def factor(iteration):
        decay = cfg.lr_gamma ** bisect.bisect_right(cfg.lr_steps, iteration)
        if iteration >= cfg.warmup_iters:
            return decay
        alpha = iteration / cfg.warmup_iters
        return decay * (cfg.warmup_factor * (1 - alpha) + alpha)

    return factor


def next_training_batch(batches, device):
    """The next batch, without images that failed to decode (each skipped with a warning)."""
    while True:
        samples = next(batches)
        readable = []
        for sample in samples:
            if isinstance(sample, UnreadableImage):
                warn_unreadable(sample)
            else:
                readable.append(sample)
        if readable:
            break
    images = [to_model_input(image, device) for image, _ in readable]
    targets = [{key: value.to(device) for key, value in target.items()} for _, target in readable]
    return images, targets


class RunCheckpoint:
    """last.pth in the run folder: model, optimizer, scheduler and iteration. `run` identifies the
    source checkpoint and config so a folder is never resumed by a different run."""

    def __init__(self, path, run):
        self.path = path
        self.run = run

    def save(self, iteration, model, optimizer, scheduler):
        state = {
            "iteration": iteration,
            "run": self.run,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        }
        atomic_write(self.path, lambda file: torch.save(state, file))

    def resume(self, model, optimizer, scheduler):
        """The iteration to start from: 0, or the one saved in last.pth after loading its state."""
        if not self.path.is_file():
            return 0
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state["run"] != self.run:
            raise ZooError(f"{self.path} belongs to another run (other checkpoint or config); pass a fresh --output")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return state["iteration"]


def train(model, optimizer, scheduler, batches, start_iter, cfg, runtime, output, checkpoint, model_to_save, meter):
    model.train()
    progress = tqdm(
        range(start_iter, cfg.max_iter),
        initial=start_iter,
        total=cfg.max_iter,
        desc="train",
        disable=not runtime.is_main,
        file=sys.stdout,
        dynamic_ncols=True,
    )
    with open(output / "log.jsonl", "a") if runtime.is_main else contextlib.nullcontext() as log:
        for iteration in progress:
            images, targets = next_training_batch(batches, runtime.device)
            losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at iteration {iteration}: {losses}")
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            meter.step(len(images), runtime.world_size)

            done = iteration + 1
            if log and (done % cfg.log_period == 0 or done == cfg.max_iter):
                record = {"iteration": done, "lr": lr, "loss": loss.item(), **{k: v.item() for k, v in losses.items()}}
                log.write(json.dumps(record) + "\n")
                log.flush()
                progress.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{lr:.2e}", refresh=False)
            if runtime.is_main and (done % cfg.checkpoint_period == 0 or done == cfg.max_iter):
                checkpoint.save(done, model_to_save, optimizer, scheduler)


@torch.no_grad()
def recompute_bn_statistics(model, batches, num_iters, runtime):
    """detectron2's PreciseBN: replace each trained BN's running statistics by their plain average
    over `num_iters` training batches of the final weights."""
    norms = [module for module in model.modules() if isinstance(module, TRAINABLE_NORMS)]
    if not norms or num_iters == 0:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: a cumulative average instead of an exponential one
    model.train()
    for _ in tqdm(range(num_iters), desc="precise BN", disable=not runtime.is_main, file=sys.stdout):
        model(*next_training_batch(batches, runtime.device))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    if runtime.world_size > 1:  # without SyncBN (CPU processes) the ranks' statistics differ: use rank 0's
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def default_output(ckpt, config_name):
    ckpt = Path(ckpt)
    return ckpt.parent / f"{ckpt.stem}_{config_name}"


@exit_on_user_error
def main(argv=None):
    started = time.time()
    args = parse_args(argv)
    cfg = resolve_config(args)
    splits = coco_splits(args.coco_root)
    weights = resnet50_state_dict(args.ckpt)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    check_fits_this_machine(cfg, args.config, world_size, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    output = Path(args.output) if args.output else default_output(args.ckpt, args.config)
    runtime = init_runtime()
    if cfg.ims_per_batch % runtime.world_size:
        raise ZooError(f"ims_per_batch {cfg.ims_per_batch} does not split over {runtime.world_size} processes")

    train_set = CocoInstances(splits["train"], train=True)
    val_set = CocoInstances(splits["val"], train=False)
    if train_set.category_ids != val_set.category_ids:
        raise ZooError("train2017 and val2017 annotations list different categories")
    check_test_images(val_set, runtime.rank, runtime.world_size, cfg.num_workers)

    torch.manual_seed(cfg.seed)
    model = build_mask_rcnn_c4(weights, len(train_set.category_ids), cfg).to(runtime.device)
    if runtime.world_size > 1 and runtime.device.type == "cuda" and cfg.norm == "SyncBN":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_multistep(cfg))

    run_config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RESUMABLE_CHANGES}
    run = {"source_checkpoint": str(Path(args.ckpt).resolve()), "config": run_config}
    checkpoint = RunCheckpoint(output / "last.pth", run)
    start_iter = checkpoint.resume(model, optimizer, scheduler)
    if runtime.is_main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.json").write_text(json.dumps({"name": args.config, **dataclasses.asdict(cfg)}, indent=2))
        print(f"output: {output}" + (f" (resuming at iteration {start_iter})" if start_iter else ""))

    # Reseeding with start_iter gives a resumed run fresh data order instead of replaying the first batches.
    sampler = AspectGroupedBatches(
        train_set, cfg.ims_per_batch // runtime.world_size, cfg.seed + start_iter, runtime.rank, runtime.world_size
    )
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg.num_workers, collate_fn=as_list)
    batches = iter(loader)
    ddp_model = DistributedDataParallel(model) if runtime.world_size > 1 else model
    meter = TrainingMeter()
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    meter.start(optimizer, runtime.device, devices=local_processes, nodes=runtime.world_size // local_processes)
    train(ddp_model, optimizer, scheduler, batches, start_iter, cfg, runtime, output, checkpoint, model, meter)
    meter.memory = every_process_memory()  # every rank takes part

    recompute_bn_statistics(model, batches, cfg.precise_bn_iters, runtime)
    if runtime.is_main:
        atomic_write(output / "model_final.pth", lambda file: torch.save(model.state_dict(), file))
    metrics = evaluate(model, val_set, runtime.device, runtime.rank, runtime.world_size, cfg.num_workers)
    if runtime.is_main:
        report = {**metrics, "iteration": max(start_iter, cfg.max_iter), "config": args.config, "ckpt": args.ckpt,
                  "provenance": provenance(started, cfg.seed, meter)}
        atomic_write(output / "metrics.json", lambda file: file.write(json.dumps(report, indent=2).encode()))
        print(json.dumps(metrics, indent=2))
    if runtime.world_size > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
