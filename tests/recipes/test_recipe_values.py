"""What every pretraining recipe trains with, against its official source.

Each script is resolved as `--cfg job` would, then the method and its optimiser are built exactly
as training builds them (`zoo.build.build_method`, `Pretrainer.build_optimizer`, on the meta
device: no memory, no time), and the test reads back the values training uses: each parameter
group's lr after batch scaling, its weight decay and LARS adaptation, the lr at chosen steps of the
schedule (warmup, peak, epoch boundaries, milestones, the end), the EMA momentum, the global batch
and its per-GPU split, and the evaluation resize.

The expectations are written as the official code computes them: its arguments (lr, batch, weight
decay, warmup, epochs) and the formula of its own lr function, e.g. INTL main.py's
`adjust_learning_rate`, solo-learn's `LinearWarmupCosineAnnealingLR`, CW-RGP ImageNet/train.py's
`init_lr = lr * bs / 256` with its 500-iteration `lr_warmup`. A flag the scripts misread (such as
`scale_lr`) changes an lr here and fails the test.
"""

import math
from dataclasses import dataclass, field

import pytest
import torch
from recipe_helpers import (
    ALL_SCRIPTS,
    TRAIN_SIZE,
    compose_recipe,
    constant_lr,
    minimal_lejepa_lr,
    probe_steps,
    resolved,
    swav_lr,
    trained_with,
)
from torchvision.transforms import v2 as T

from zoo.build import build_method
from zoo.data import eval_pipeline, resolved_views
from zoo.data.augment import applied_blur, expand_crops
from zoo.pretrain import split_global_batch


# ---- the official lr functions: lr of step s (0-based) of T, W warmup steps, E epochs ----------------
def intl_lr(base, warmup_epochs=2, end=0.001):
    """INTL main.py / cifar/main.py adjust_learning_rate: base (s+1)/W, then cosine to end x base."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return base * (s + 1) / w
        q = 0.5 * (1 + math.cos(math.pi * (s - w) / (total - w)))
        return base * q + base * end * (1 - q)
    return lr


def fb_lr(base, warmup_epochs=10, end=0.001):
    """FB Barlow Twins main.py / VICReg main_vicreg.py adjust_learning_rate: base s/W, then cosine to end x base."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return base * s / w
        q = 0.5 * (1 + math.cos(math.pi * (s - w) / (total - w)))
        return base * q + base * end * (1 - q)
    return lr


def solo_lr(base, warmup_epochs=10, start=3e-5, final=0.0):
    """solo-learn LinearWarmupCosineAnnealingLR per step: start + (base - start) s/(W-1), then cosine to `final`
    (facebookresearch/dino's utils.cosine_scheduler is start 0, final 1e-6: np.linspace(0, base, W), then
    final + (base - final) (1 + cos(pi i / (T - W))) / 2 at step W + i)."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return start + s * (base - start) / (w - 1)
        return final + 0.5 * (base - final) * (1 + math.cos(math.pi * (s - w) / (total - w)))
    return lr


def wmse_lr(base, epochs, gamma=0.2, warmup_iters=500):
    """htdt/self-supervised train.py: lr (i+1)/500 over the first 500 iterations, MultiStepLR x0.2 at E-50, E-25 (per epoch)."""
    def lr(s, spe, total):
        if s < warmup_iters:
            return base * (s + 1) / warmup_iters
        return base * gamma ** sum(s // spe >= m for m in (epochs - 50, epochs - 25))
    return lr


def cw_imagenet_lr(base, epochs, warmup_iters=500):
    """CW-RGP ImageNet/train.py: per-epoch cosine base 1/2 (1 + cos(pi e/E)); lr_warmup (s+1)/500 overrides the first 500 steps."""
    def lr(s, spe, total):
        if s < warmup_iters:
            return base * (s + 1) / warmup_iters
        return base * 0.5 * (1 + math.cos(math.pi * (s // spe) / epochs))
    return lr


def simsiam_lr(base, epochs):
    """FB SimSiam main_simsiam.py adjust_learning_rate, as FB MoCo main_moco.py's with --cos: per-epoch cosine
    base 1/2 (1 + cos(pi e/E)), no warmup."""
    return lambda s, spe, total: base * 0.5 * (1 + math.cos(math.pi * (s // spe) / epochs))


@dataclass
class Official:
    source: str
    batch: int  # global batch
    gpus: int  # GPUs x nodes of the published run
    epochs: int
    optimizer: str  # SGD | Lars (timm's = solo-learn's) | FBLars (FB Barlow Twins / VICReg, BYOL) | GoogleLars (SimCLR) | Adam
    # role -> (lr function, weight decay, LARS-adapted); roles: weights and norms (backbone + projector,
    # >= 2-D and 1-D), predictor, probe_weight, probe_bias. A role the source does not have is left out.
    roles: dict
    lars: tuple | None = None  # (trust coefficient, clipped)
    momentum: tuple | None = None  # EMA target: (start, end), cosine per step
    momentum_per_epoch: bool = False  # the source's cosine moves once an epoch (htdt: progress = epoch / epochs)
    eval_interpolation: T.InterpolationMode = T.InterpolationMode.BILINEAR
    notes: list = field(default_factory=list)


def sgd_all(lr_fn, wd):
    """Every parameter in one group (INTL CIFAR, SimSiam, CW-RGP ImageNet): same lr, same weight decay."""
    return {"weights": (lr_fn, wd, None), "norms": (lr_fn, wd, None)}


def larc_all(lr_fn, wd):
    """Every parameter in one group under apex LARC (SwAV): same lr and weight decay, every one adapted."""
    return {"weights": (lr_fn, wd, True), "norms": (lr_fn, wd, True)}


def excluded(lr_fn, wd, norms_lr_fn=None, lars=False):
    """1-D parameters without weight decay (and, under LARS, without adaptation)."""
    return {"weights": (lr_fn, wd, True if lars else None), "norms": (norms_lr_fn or lr_fn, 0.0, False if lars else None)}


def solo_probe(batch, schedule, classifier_lr=0.1, lars=False):
    """solo-learn's online classifier: classifier_lr x bs/256, wd 0, in the method's scheduler; under its LARS the
    weight is adapted (2-D) and the bias is not (exclude_bias_n_norm)."""
    fn = schedule(classifier_lr * batch / 256)
    return {"probe_weight": (fn, 0.0, True if lars else None), "probe_bias": (fn, 0.0, False if lars else None)}


OFFICIAL = {}
for ds in ("cifar10", "cifar100"):
    solo = f"solo-learn scripts/pretrain/cifar/{{}}.yaml ({ds})"
    OFFICIAL |= {
        f"{ds}/intl": Official("INTL scripts/cifar*.sh, cifar/cfg.py, cifar/main.py", 256, 1, 1000, "SGD",
                               sgd_all(intl_lr(0.3 * 256 / 256), 1e-4)),
        f"{ds}/barlow_twins": Official(solo.format("barlow"), 256, 1, 1000, "Lars",
                                       excluded(solo_lr(0.3), 1e-4, lars=True) | solo_probe(256, solo_lr, lars=True),
                                       lars=(0.02, True)),
        f"{ds}/vicreg": Official(solo.format("vicreg"), 256, 1, 1000, "Lars",
                                 excluded(solo_lr(0.3), 1e-4, lars=True) | solo_probe(256, solo_lr, lars=True),
                                 lars=(0.02, True)),
        f"{ds}/simsiam": Official(solo.format("simsiam"), 256, 1, 1000, "SGD",
                                  sgd_all(solo_lr(0.5), 1e-5) | {"predictor": (constant_lr(0.5), 1e-5, None)}
                                  | solo_probe(256, solo_lr)),
    }
    for recipe, batch in (("wmse", 256), ("wmse_2views", 512), ("cwrgp", 256)):
        OFFICIAL[f"{ds}/{recipe}"] = Official("htdt/self-supervised README + cfg.py; CW-RGP scripts/base.sh", batch, 1, 1000,
                                              "Adam", sgd_all(wmse_lr(3e-3, 1000), 1e-6))
OFFICIAL["cifar10/cwrgp_2views"] = Official("CW-RGP scripts/base.sh (C10: bs 256, w_iter 4)", 256, 1, 1000, "Adam",
                                            sgd_all(wmse_lr(3e-3, 1000), 1e-6))
OFFICIAL["cifar100/cwrgp_2views"] = Official("CW-RGP scripts/base.sh (C100: bs default 512)", 512, 1, 1000, "Adam",
                                             sgd_all(wmse_lr(3e-3, 1000), 1e-6))
for ds, epochs in (("stl10", 2000), ("tiny-imagenet", 1000)):
    for recipe, batch in (("wmse", 256), ("wmse_2views", 512), ("cwrgp", 256), ("cwrgp_2views", 512)):
        OFFICIAL[f"{ds}/{recipe}"] = Official("htdt/self-supervised README; CW-RGP scripts/base.sh", batch, 1, epochs, "Adam",
                                              sgd_all(wmse_lr(2e-3, epochs), 1e-6),
                                              eval_interpolation=T.InterpolationMode.BICUBIC if ds == "stl10"
                                              else T.InterpolationMode.BILINEAR)
solo100 = "solo-learn scripts/pretrain/imagenet-100/{}.yaml (128 per GPU x 2)"
OFFICIAL |= {
    "imagenet-100/intl": Official("INTL scripts/in100.sh, cfg.py, main.py", 128, 1, 400, "SGD",
                                  excluded(intl_lr(0.5 * 128 / 256), 2.5e-5)),
    "imagenet-100/barlow_twins": Official(solo100.format("barlow"), 256, 2, 400, "Lars",
                                          excluded(solo_lr(0.3), 1e-4, lars=True) | solo_probe(256, solo_lr, lars=True),
                                          lars=(0.02, True)),
    "imagenet-100/vicreg": Official(solo100.format("vicreg"), 256, 2, 400, "Lars",
                                    excluded(solo_lr(0.3), 1e-4, lars=True) | solo_probe(256, solo_lr, lars=True),
                                    lars=(0.02, True)),
    "imagenet-100/simsiam": Official(solo100.format("simsiam"), 256, 2, 400, "SGD",
                                     sgd_all(solo_lr(0.5), 1e-5) | {"predictor": (constant_lr(0.5), 1e-5, None)}
                                     | solo_probe(256, solo_lr)),
}
for recipe, batch in (("wmse", 256), ("wmse_2views", 512), ("cwrgp", 256), ("cwrgp_2views", 512)):
    OFFICIAL[f"imagenet-100/{recipe}"] = Official("htdt/self-supervised README (ImageNet-100); cwrgp: the same protocol [P]",
                                                  batch, 1, 240, "Adam", sgd_all(wmse_lr(2e-3, 240), 1e-6))
OFFICIAL |= {
    "imagenet/intl": Official("INTL scripts/ep800.sh, cfg.py, main.py", 256, 4, 800, "SGD", excluded(intl_lr(0.3), 1e-5)),
    "imagenet/barlow_twins": Official("FB barlowtwins main.py defaults, README (16 GPUs)", 2048, 16, 1000, "FBLars",
                                      excluded(fb_lr(0.2 * 2048 / 256), 1e-6, norms_lr_fn=fb_lr(0.0048 * 2048 / 256), lars=True),
                                      lars=(0.001, False)),
    "imagenet/barlow_twins_ep100": Official("solo-learn scripts/pretrain/imagenet/barlow.yaml (64 per GPU x 4)", 256, 4, 100,
                                            "Lars", excluded(solo_lr(0.8), 1.5e-6, lars=True)
                                            | solo_probe(256, solo_lr, lars=True), lars=(0.001, False)),
    "imagenet/vicreg": Official("FB vicreg main_vicreg.py, README (4 nodes x 8 GPUs)", 2048, 32, 1000, "FBLars",
                                excluded(fb_lr(0.2 * 2048 / 256), 1e-6, lars=True), lars=(0.001, False)),
    "imagenet/simsiam": Official("FB simsiam main_simsiam.py --fix-pred-lr, README", 512, 8, 100, "SGD",
                                 sgd_all(simsiam_lr(0.05 * 512 / 256, 100), 1e-4)
                                 | {"predictor": (constant_lr(0.05 * 512 / 256), 1e-4, None)}),
    "imagenet/cwrgp": Official("CW-RGP scripts/ImageNet.sh, ImageNet/{cfg,train}.py", 512, 4, 100, "SGD",
                               sgd_all(cw_imagenet_lr(0.05 * 512 / 256, 100), 1e-4)),
    "imagenet/cwrgp_ep200": Official("CW-RGP scripts/ImageNet.sh (200 epochs)", 512, 4, 200, "SGD",
                                     sgd_all(cw_imagenet_lr(0.05 * 512 / 256, 200), 1e-4)),
    "imagenet/wmse": Official("[P] CW-RGP ImageNet pipeline with method=wmse", 512, 4, 100, "SGD",
                              sgd_all(cw_imagenet_lr(0.05 * 512 / 256, 100), 1e-4)),
}
for epochs, lr in ((100, 0.5), (200, 0.4), (400, 0.4), (800, 0.3)):
    OFFICIAL[f"imagenet/intl_m_ep{epochs}"] = Official(f"INTL scripts/ep{epochs}_multi-crop_ema.sh, cfg.py, main.py", 256, 4,
                                                       epochs, "SGD", excluded(intl_lr(lr * 256 / 256), 1e-5),
                                                       momentum=(0.996, 1.0))
# Blur probability of each crop, in crop order, as each official pipeline applies PIL's GaussianBlur
# with sigma ~ U(0.1, 2.0) (recipes.md §1.3; INTL src/transform.py, solo-learn augmentations, FB
# main.py / augmentations.py, MoCo v2's loader in SimSiam and CW-RGP ImageNet/transform.py).
BLUR_P = {}
for ds in ("cifar10", "cifar100"):
    BLUR_P |= {f"{ds}/intl": (0.0, 0.0), f"{ds}/barlow_twins": (0.0, 0.0), f"{ds}/vicreg": (0.0, 0.0),
               f"{ds}/simsiam": (0.5, 0.5)}  # solo-learn's symmetric-weak blurs on CIFAR as well
for name, views in (("wmse", 4), ("wmse_2views", 2), ("cwrgp", 4), ("cwrgp_2views", 2)):
    for ds in ("cifar10", "cifar100", "stl10", "tiny-imagenet"):
        BLUR_P[f"{ds}/{name}"] = (0.0,) * views  # W-MSE's small-data pipeline has no blur
    BLUR_P[f"imagenet-100/{name}"] = (0.5,) * views
BLUR_P |= {"imagenet-100/intl": (1.0, 0.1), "imagenet-100/barlow_twins": (1.0, 0.1), "imagenet-100/vicreg": (0.5, 0.5),
           "imagenet-100/simsiam": (1.0, 0.1), "imagenet/intl": (1.0, 0.1), "imagenet/barlow_twins": (1.0, 0.1),
           "imagenet/barlow_twins_ep100": (1.0, 0.1), "imagenet/vicreg": (1.0, 0.1), "imagenet/simsiam": (0.5, 0.5),
           "imagenet/cwrgp": (0.5,) * 4, "imagenet/cwrgp_ep200": (0.5,) * 4, "imagenet/wmse": (0.5,) * 4}
BLUR_P |= {f"imagenet/intl_m_ep{epochs}": (0.5,) * 6 for epochs in (100, 200, 400, 800)}

# ---- the baselines: SimCLR, MoCo v2+, BYOL (what they see beyond lr and weight decay: tests/recipes/test_baseline_method_recipes.py) ----
for ds in ("cifar10", "cifar100"):
    solo = f"solo-learn scripts/pretrain/cifar/{{}}.yaml ({ds})"
    OFFICIAL |= {
        f"{ds}/simclr": Official(solo.format("simclr"), 256, 1, 1000, "Lars",
                                 excluded(solo_lr(0.4), 1e-4, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True)),
        f"{ds}/mocov2plus": Official(solo.format("mocov2plus"), 256, 1, 1000, "SGD",
                                     sgd_all(solo_lr(0.3), 1e-4) | solo_probe(256, solo_lr, classifier_lr=0.3), momentum=(0.99, 0.999)),
        f"{ds}/byol": Official(solo.format("byol"), 256, 1, 1000, "Lars",
                               excluded(solo_lr(1.0), 1e-5, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True),
                               momentum=(0.99, 1.0)),
    }
    BLUR_P |= {f"{ds}/simclr": (0.5, 0.5), f"{ds}/mocov2plus": (0.5, 0.5), f"{ds}/byol": (0.0, 0.0)}
OFFICIAL |= {
    "imagenet-100/simclr": Official(solo100.format("simclr"), 256, 2, 400, "Lars",
                                    excluded(solo_lr(0.3), 1e-4, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True)),
    "imagenet-100/mocov2plus": Official(solo100.format("mocov2plus"), 256, 2, 400, "SGD",
                                        sgd_all(solo_lr(0.3), 1e-4) | solo_probe(256, solo_lr, classifier_lr=0.3), momentum=(0.99, 0.999)),
    "imagenet-100/byol": Official(solo100.format("byol"), 256, 2, 400, "Lars",
                                  excluded(solo_lr(0.5), 1e-6, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True),
                                  momentum=(0.99, 1.0)),
    # google-research/simclr: 0.075 x sqrt(batch) with --learning_rate_scaling=sqrt, warmup step/W from 0, cosine to 0.
    "imagenet/simclr": Official("google-research/simclr README + model_util.py (32 TPU v3 cores)", 4096, 32, 100, "GoogleLars",
                                excluded(fb_lr(0.075 * math.sqrt(4096), end=0.0), 1e-4, lars=True), lars=(0.001, False)),
    # deepmind-research byol: the 100-epoch preset (lr 0.45 x batch/256, wd 1e-6, EMA 0.99), schedules.py's warmup and cosine.
    "imagenet/byol": Official("deepmind-research byol/configs/byol.py, main_loop.py (512 TPU v3 cores)", 4096, 512, 100, "FBLars",
                              excluded(fb_lr(0.45 * 4096 / 256, end=0.0), 1e-6, lars=True), lars=(0.001, False), momentum=(0.99, 1.0)),
}
BLUR_P |= {"imagenet-100/simclr": (0.5, 0.5), "imagenet-100/mocov2plus": (0.5, 0.5), "imagenet-100/byol": (1.0, 0.1),
           "imagenet/simclr": (0.5, 0.5), "imagenet/byol": (1.0, 0.1)}
# DCL / DCLW (no code published): SimCLR's recipe at the paper's batch 256 and 200 epochs, the lr by SimCLR's square-root
# rule for small batches (0.075 x sqrt(256)), not rescaled.
for name in ("dcl", "dclw"):
    OFFICIAL[f"imagenet/{name}"] = Official("Yeh et al. ECCV 2022 (batch, epochs); google-research/simclr README + model_util.py",
                                            256, 8, 200, "GoogleLars",
                                            excluded(fb_lr(0.075 * math.sqrt(256), end=0.0), 1e-4, lars=True), lars=(0.001, False))
    BLUR_P[f"imagenet/{name}"] = (0.5, 0.5)


def lightly_lr(base, warmup_epochs=10, end=0.001):
    """lightly utils/scheduler.py CosineWarmupScheduler per step: base (s+1)/W, then a cosine from base to end x base.
    lightly's cosine_schedule(s - W, T - W, 1, end) runs it over T - W - 1 steps, the zoo's over T - W: written here as
    the zoo runs it, the deviation the TiCo recipe states (at most 4.0e-7 apart in lr at 100 epochs of batch 256)."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return base * (s + 1) / w
        return base * (end - (end - 1) * (math.cos(math.pi * (s - w) / (total - w)) + 1) / 2)
    return lr


# HanxunH/LDReg (SimCLR and BYOL with the LDReg term): models/lars.py (FB's LARS, 1-D parameters neither decayed nor adapted),
# util.py adjust_learning_rate per step (the fractional epoch): lr e/W from 0 over 10 epochs, then a cosine to min_lr 0;
# SimCLR's blr 0.075 x sqrt(batch) (blr_scale sqrt), BYOL's 0.4 x batch/256 and its momentum 0.99 -> 1 (cosine).
OFFICIAL |= {
    "imagenet/simclr_ldreg": Official("HanxunH/LDReg configs/simclr_lid_l1_f_mom_bs_2048_e100 (512 per GPU x 4), main_simclr.py",
                                      2048, 4, 100, "FBLars", excluded(fb_lr(0.075 * math.sqrt(2048), end=0.0), 1e-6, lars=True),
                                      lars=(0.001, False)),
    "imagenet/byol_ldreg": Official("HanxunH/LDReg configs/byol_lid_l1_f_mom_bs_2048_e100 (512 per GPU x 4), main_byol.py",
                                    2048, 4, 100, "FBLars", excluded(fb_lr(0.4 * 2048 / 256, end=0.0), 1.5e-6, lars=True),
                                    lars=(0.001, False), momentum=(0.99, 1.0)),
}
BLUR_P |= {"imagenet/simclr_ldreg": (0.5, 0.5), "imagenet/byol_ldreg": (1.0, 0.1)}
# lightly benchmarks/imagenet/resnet50/tico.py (no authors' code): LARS 0.2 x batch/256, wd 1.5e-6, EMA 0.99 -> 1.
OFFICIAL["imagenet/tico"] = Official("lightly benchmarks/imagenet/resnet50/tico.py, main.py (128 per device x 2)", 256, 2, 100,
                                     "Lars", excluded(lightly_lr(0.2 * 256 / 256), 1.5e-6, lars=True), lars=(0.001, False),
                                     momentum=(0.99, 1.0))
BLUR_P["imagenet/tico"] = (1.0, 0.1)
# htdt/self-supervised (the W-MSE protocol): Adam on every parameter, batch 512 (cfg.py's default), its 500-step warmup and drops.
for ds, epochs, lr in (("cifar10", 1000, 3e-3), ("cifar100", 1000, 3e-3), ("stl10", 2000, 2e-3), ("tiny-imagenet", 1000, 2e-3)):
    for method, code, momentum in (("simclr", "contrastive", None), ("byol", "byol", (0.99, 1.0))):
        OFFICIAL[f"{ds}/{method}_wmse_protocol"] = Official(
            f"htdt/self-supervised README + cfg.py, train.py, methods/{code}.py", 512, 1, epochs, "Adam",
            sgd_all(wmse_lr(lr, epochs), 1e-6), momentum=momentum, momentum_per_epoch=True,
            eval_interpolation=T.InterpolationMode.BICUBIC if ds == "stl10" else T.InterpolationMode.BILINEAR)
        BLUR_P[f"{ds}/{method}_wmse_protocol"] = (0.0, 0.0)
# The whitening layer (kaland313/SSL-Whitening, on lightly 1.4.21): AdamW on every parameter at a constant lr, batch 128 on one
# GPU, 201 epochs; BYOL's EMA 0.996 -> 1 once an epoch (the recipe's deviation: the zoo's per step meets it at epoch starts
# within 1.8e-5). STL-10's evaluation resize is to the images' own 96 px: the identity, whatever its interpolation.
for ds in ("cifar10", "stl10", "tiny-imagenet"):
    for method, lr, momentum in (("barlow_twins", 1e-3, None), ("byol", 1e-4, (0.996, 1.0))):
        OFFICIAL[f"{ds}/{method}_whitening"] = Official(
            f"kaland313/SSL-Whitening pretrain/configs/{method.replace('_', '')}.yaml, trainer_common.py", 128, 1, 201, "AdamW",
            sgd_all(constant_lr(lr), 1e-6), momentum=momentum, momentum_per_epoch=True,
            eval_interpolation=T.InterpolationMode.BICUBIC if ds == "stl10" else T.InterpolationMode.BILINEAR)
        BLUR_P[f"{ds}/{method}_whitening"] = (1.0, 0.1)  # lightly's BYOLTransform
# ---- SwAV and DINO (solo-learn), MoCo v2 and SwAV on ImageNet, Zero-CL and Shuffled-DBN (the CW-RGP code) ----
for ds in ("cifar10", "cifar100"):
    solo = f"solo-learn scripts/pretrain/cifar/{{}}.yaml ({ds})"
    OFFICIAL |= {
        f"{ds}/swav": Official(solo.format("swav"), 256, 1, 1000, "Lars",
                               excluded(solo_lr(0.6), 1e-6, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True)),
        f"{ds}/dino": Official(solo.format("dino"), 256, 1, 1000, "Lars",
                               excluded(solo_lr(0.3), 1e-6, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True),
                               momentum=(0.9995, 1.0)),
    }
    BLUR_P |= {f"{ds}/swav": (0.5, 0.5), f"{ds}/dino": (0.0, 0.0)}  # symmetric.yaml blurs at 32 px too; asymmetric's CIFAR copy does not
OFFICIAL |= {
    "imagenet-100/swav": Official(solo100.format("swav"), 256, 2, 400, "Lars",
                                  excluded(solo_lr(0.6), 1e-6, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True)),
    "imagenet-100/dino": Official(solo100.format("dino"), 256, 2, 400, "Lars",
                                  excluded(solo_lr(0.3), 1e-6, lars=True) | solo_probe(256, solo_lr, lars=True), lars=(0.02, True),
                                  momentum=(0.9995, 1.0)),
    # facebookresearch/moco README (MoCo v2 flags, 8 GPUs x 32): SGD over model.parameters(), --cos per epoch, key encoder 0.999.
    "imagenet/mocov2": Official("facebookresearch/moco README + main_moco.py (8 GPUs)", 256, 8, 100, "SGD",
                                sgd_all(simsiam_lr(0.03 * 256 / 256, 100), 1e-4), momentum=(0.999, 0.999)),
    # facebookresearch/swav scripts/swav_100ep_pretrain.sh (64 GPUs x 64): base_lr 4.8, start_warmup 0.3, final_lr 0.0048.
    "imagenet/swav": Official("facebookresearch/swav scripts/swav_100ep_pretrain.sh, main_swav.py (64 GPUs)", 4096, 64, 100, "Lars",
                              larc_all(swav_lr(4.8, start=0.3, final=0.0048), 1e-6), lars=(0.001, False)),
    # the same script with its own 2 x 224 + 6 x 96 crops: the same optimiser, lr schedule and batch.
    "imagenet/swav_multicrop_ep100": Official("facebookresearch/swav scripts/swav_100ep_pretrain.sh, main_swav.py (64 GPUs)", 4096,
                                              64, 100, "Lars", larc_all(swav_lr(4.8, start=0.3, final=0.0048), 1e-6),
                                              lars=(0.001, False)),
}
BLUR_P |= {"imagenet-100/swav": (0.5, 0.5), "imagenet-100/dino": (1.0, 0.1), "imagenet/mocov2": (0.5, 0.5), "imagenet/swav": (0.5, 0.5),
           "imagenet/swav_multicrop_ep100": (0.5,) * 8}  # PILRandomGaussianBlur(p=0.5) on every crop, 224 and 96 px
# CW-RGP base/train.py (no published command for these rows): cfg.py's batch 512 and 2 views on the W-MSE protocol's schedule.
for ds, epochs, lr in (("cifar10", 1000, 3e-3), ("cifar100", 1000, 3e-3), ("stl10", 2000, 2e-3), ("tiny-imagenet", 1000, 2e-3)):
    for method in ("zero_cl", "shuffled_dbn"):
        OFFICIAL[f"{ds}/{method}"] = Official("CW-RGP base/cfg.py, base/train.py; the W-MSE protocol", 512, 1, epochs, "Adam",
                                              sgd_all(wmse_lr(lr, epochs), 1e-6),
                                              eval_interpolation=T.InterpolationMode.BICUBIC if ds == "stl10"
                                              else T.InterpolationMode.BILINEAR)
        BLUR_P[f"{ds}/{method}"] = (0.0, 0.0)


def frossl_official(yaml, batch, gpus, epochs, lr):
    """solo-learn's LARS recipe: lr x global batch / 256 on a 10-epoch warmup from 3e-5, weight decay 1e-4 off the
    1-D params (exclude_bias_n_norm, also no LARS adaptation there); classifier_lr 0.1 x batch / 256."""
    return Official(f"OFSkean/FroSSL scripts/pretrain/{yaml}/frossl.yaml", batch, gpus, epochs, "Lars",
                    excluded(solo_lr(lr * batch / 256), 1e-4, lars=True) | solo_probe(batch, solo_lr, lars=True),
                    lars=(0.02, True))


OFFICIAL |= {
    # cifar/frossl.yaml: batch_size 256, devices [0] (one GPU), lr 0.3, max_epochs 1000
    "cifar10/frossl": frossl_official("cifar", 256, 1, 1000, 0.3),
    "cifar100/frossl": frossl_official("cifar", 256, 1, 1000, 0.3),
    # stl10/frossl.yaml: batch_size 256, one GPU, lr 0.1, 500 epochs; the zoo's STL-10 evaluation resize is bicubic
    "stl10/frossl": Official(**{**frossl_official("stl10", 256, 1, 500, 0.1).__dict__,
                                "eval_interpolation": T.InterpolationMode.BICUBIC}),
    # tiny-imagenet/frossl.yaml: batch_size 512 on one GPU, lr 0.3 (-> 0.6), 800 epochs
    "tiny-imagenet/frossl": frossl_official("tiny-imagenet", 512, 1, 800, 0.3),
    # imagenet100/frossl.yaml: batch_size 256 per GPU, devices [0, 1] -> 512, lr 0.3 (-> 0.6), 400 epochs
    "imagenet-100/frossl": frossl_official("imagenet100", 512, 2, 400, 0.3),
    # README: AdamW lr 5e-4, weight decay 5e-4 (ResNets) / 5e-2 (ViTs); MINIMAL.md: one param group without
    # exclusions, no batch scaling, batch 256 on one GPU. Epochs (400) are the recipe's own (none stated).
    # The probe group (MINIMAL lr 1e-3) is checked in test_lejepa_probe_lr: its warm-up start differs (see notes).
    "imagenet-100/lejepa": Official("rbalestr-lab/lejepa README + MINIMAL.md", 256, 1, 400, "AdamW",
                                    sgd_all(minimal_lejepa_lr(5e-4), 5e-4)),
    "imagenet-100/lejepa_vit_small": Official("rbalestr-lab/lejepa README + MINIMAL.md", 256, 1, 400, "AdamW",
                                              sgd_all(minimal_lejepa_lr(5e-4), 5e-2)),
}
# blur probability of each crop: FroSSL symmetric(.yaml) 0.5 (CIFAR too), tiny asymmetric 1.0 / 0.1; LeJEPA 0.5 on all 8
BLUR_P |= {"cifar10/frossl": (0.5, 0.5), "cifar100/frossl": (0.5, 0.5), "stl10/frossl": (0.5, 0.5),
                   "tiny-imagenet/frossl": (1.0, 0.1), "imagenet-100/frossl": (0.5,) * 8,
                   "imagenet-100/lejepa": (0.5,) * 8, "imagenet-100/lejepa_vit_small": (0.5,) * 8}


def decay_lr_cos(base, final):
    """husthuaan/ssole utils.py DecayLRCos, per step without warmup: final + (base - final) 1/2 (1 + cos(pi s/T))."""
    return lambda s, spe, total: 0.5 * (base - final) * (1 + math.cos(math.pi * s / total)) + final


# Matrix-SSL main_pretrain.py (MEC's cosine_scheduler: np.linspace(0, lr, W) over 10 epochs, then cosine to 0, per step;
# SGD over model.parameters() with wd 1e-5; the teacher 0.996 -> 1); SSOLE train.py (LARS false: SGD, biases and
# BatchNorm without decay) with utils.DecayLRCos, lr 2.0 not scaled.
OFFICIAL |= {
    "imagenet/matrix_ssl": Official("yifanzhang-pro/Matrix-SSL README + main_pretrain.py (8 GPUs, as MEC's)", 1024, 8, 100, "SGD",
                                    sgd_all(solo_lr(0.5 * 1024 / 256, start=0.0), 1e-5)
                                    | {"predictor": (solo_lr(0.5 * 1024 / 256, start=0.0), 1e-5, None)}, momentum=(0.996, 1.0)),
    "imagenet-100/ssole": Official("husthuaan/ssole configs/ssole_imagenet100_m4.yaml, train.py, utils.py (4 GPUs x 32)", 128, 4,
                                   100, "SGD", excluded(decay_lr_cos(2.0, 0.002), 1e-5)),
}
BLUR_P |= {"imagenet/matrix_ssl": (1.0, 0.1), "imagenet-100/ssole": (0.5,) * 4}
def ivne_lr(base, warmup_epochs=10, start=1e-6):
    """CVPR23-VNE train_ivne_imagenet100.py CosineAnnealingLR_Warmup per step: start + (base - start) s/W, then
    base (1 + cos(pi (s - W)/(T - W))) / 2 down to eta_min 0."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return (base - start) / w * s + start
        return base * (1 + math.cos(math.pi * (s - w) / (total - w))) / 2
    return lr


# Mixed Barlow Twins (wgcban/mix-bt): main.py's Adam on every parameter with its adjust_learning_rate (FB's curve; main.py
# runs it one epoch ahead, counting epochs from 1: the recipes' deviation), main_imagenet.py's FB LARS; I-VNE+.
for ds in ("cifar10", "cifar100", "tiny-imagenet", "stl10"):
    script = {"tiny-imagenet": "tinyimagenet"}.get(ds, ds)
    OFFICIAL[f"{ds}/mix_bt"] = Official(f"wgcban/mix-bt scripts-pretrain-resnet18/{script}.sh, main.py", 256, 1, 2000, "Adam",
                                        sgd_all(fb_lr(0.01 * 256 / 256), 1e-6),
                                        eval_interpolation=T.InterpolationMode.BICUBIC if ds == "stl10" else T.InterpolationMode.BILINEAR)
    BLUR_P[f"{ds}/mix_bt"] = (0.0, 0.0)
OFFICIAL |= {
    "imagenet/mix_bt": Official("wgcban/mix-bt scripts-pretrain-resnet50/imagenet.sh, main_imagenet.py (8 GPUs)", 1024, 8, 300,
                                "FBLars", excluded(fb_lr(0.2 * 1024 / 256), 1e-6, norms_lr_fn=fb_lr(0.0048 * 1024 / 256), lars=True),
                                lars=(0.001, False)),
    # the official exempts parameters named 'bn' / 'bias' from the decay (the recipe's deviation: every 1-D one here)
    "imagenet-100/ivne": Official("jaeill/CVPR23-VNE examples/i-vne+ README command, train_ivne_imagenet100.py (2 GPUs)", 64, 2,
                                  800, "SGD", excluded(ivne_lr(0.4 * 64 / 256), 1e-4)),
}
BLUR_P |= {"imagenet/mix_bt": (1.0, 0.1), "imagenet-100/ivne": (1.0, 0.1) * 3}


def emp_ssl_lr(base):
    """tsb0601/EMP-SSL main.py CosineAnnealingLR(T_max = the run's steps, eta_min 0), stepped every step, no warm-up.
    On ImageNet-100 its T_max is CIFAR's (500 steps an epoch: the recipe's deviation); written here as the zoo runs it."""
    return lambda s, spe, total: base * (1 + math.cos(math.pi * s / total)) / 2


# EMP-SSL: torch SGD (lr 0.3 not scaled, momentum 0.9, weight decay 1e-4) in solo-learn's LARSWrapper (eta 0.005, clipped,
# biases and norms neither adapted nor decayed), batch 100; the README's commands (CIFAR: 30 epochs; ImageNet-100: 2).
for ds, epochs in (("cifar10", 30), ("cifar100", 30), ("imagenet-100", 2)):
    OFFICIAL[f"{ds}/emp_ssl"] = Official("tsb0601/EMP-SSL README command, main.py, lars.py", 100, 1, epochs, "Lars",
                                         excluded(emp_ssl_lr(0.3), 1e-4, lars=True), lars=(0.005, True))
    BLUR_P[f"{ds}/emp_ssl"] = (0.1,) * 20  # GBlur(p=0.1) on every patch

# Zero-CL's official scripts (Sherrylone/Zero-CL): FB's LARS (trust 0.02, no clipping) with their adjust_learning_rate
# (FB Barlow Twins' curve), weights at lr x batch/256 and biases / BatchNorm at their own lr x batch/256, neither decayed.
OFFICIAL |= {
    f"{ds}/zero_cl_official": Official(f"Sherrylone/Zero-CL README ({ds}) + cifar/main.py", 256, 1, 1000, "FBLars",
                                       excluded(fb_lr(0.3 * 256 / 256), 1e-4, norms_lr_fn=fb_lr(0.005 * 256 / 256), lars=True),
                                       lars=(0.02, False))
    for ds in ("cifar10", "cifar100")
}
OFFICIAL["imagenet-100/zero_cl_official"] = Official("Sherrylone/Zero-CL README + ImageNet-100/main.py (8 GPUs assumed)", 256, 8,
                                                     400, "FBLars", excluded(fb_lr(0.3 * 256 / 256), 1e-6,
                                                                             norms_lr_fn=fb_lr(0.0048 * 256 / 256), lars=True),
                                                     lars=(0.02, False))
BLUR_P |= {"cifar10/zero_cl_official": (0.0, 0.0), "cifar100/zero_cl_official": (0.0, 0.0),
           "imagenet-100/zero_cl_official": (1.0, 0.1)}

# SimDINO (RobinWu218/SimDINO simdino/main_dino.py defaults; README's ViT-B/16 command): AdamW, lr 5e-4 x 512/256, weight decay
# 0.04 (its cosine to 0.4 is the recipes' deviation) on the >= 2-D parameters only, teacher 0.996 -> 1 per step.
for recipe, local_crops in (("simdino", 8), ("simdino_vit_base", 10)):
    OFFICIAL[f"imagenet/{recipe}"] = Official("RobinWu218/SimDINO simdino/main_dino.py, utils.py, README (8 GPUs x 64)", 512, 8,
                                              100, "AdamW", excluded(solo_lr(5e-4 * 512 / 256, start=0.0, final=1e-6), 0.04), momentum=(0.996, 1.0))
    BLUR_P[f"imagenet/{recipe}"] = (1.0, 0.1) + (0.5,) * local_crops  # DataAugmentationDINO: GaussianBlur(1.0), (0.1), (p=0.5)


# CorInfoMax's, MMCR's and MEC's recipes are checked in tests/recipes/test_corinfomax_mmcr_mec_recipes.py (CorInfoMax's per-epoch
# schedule cannot meet this file's per-step comparison).
FAMILY = ("corinfomax", "mmcr", "mec")
PRETRAIN_SCRIPTS = sorted(s for s in ALL_SCRIPTS if s.startswith("pretrain/") and s.split("/")[-1].split("_")[0] not in FAMILY)


def test_every_pretraining_script_has_its_official_values():
    assert sorted(f"pretrain/{k}" for k in OFFICIAL) == PRETRAIN_SCRIPTS == sorted(f"pretrain/{k}" for k in BLUR_P)


def test_the_default_run_warms_up_for_one_of_its_five_epochs():
    """README command 1 (no overrides): INTL's SGD lr 0.3 x 64/256 on INTL's own schedule (main.py
    adjust_learning_rate) with one warmup epoch of the 21 steps an epoch of the 1,347 training digits gives."""
    cfg = compose_recipe([], NUM_GPUS="1")
    spe, epochs = 1347 // cfg.data.batch_size, cfg.trainer.max_epochs
    assert (spe, epochs) == (21, 5)
    _, optimizer, scheduler, roles = trained_with(cfg, spe)
    (index,) = roles["weights"]
    expected = intl_lr(0.3 * 64 / 256, warmup_epochs=1)
    for s in (0, 1, spe - 2, spe - 1, spe, 2 * spe, spe * epochs - 1):
        zoo_lr = optimizer.param_groups[index]["initial_lr"] * scheduler.lr_lambdas[index](s)
        assert zoo_lr == pytest.approx(expected(s, spe, spe * epochs), rel=1e-9), s


def test_the_default_run_convolves_14x14_maps_of_its_16_px_crops():
    """README command 1's backbone as pretraining builds it: two 16 px crops into the small stem without
    padding, whose 14x14 maps cost 0.77x the convolution work of padding 1's 16x16."""
    cfg = compose_recipe([], NUM_GPUS="1")
    model = build_method(cfg, num_classes=10, world_size=1).method
    assert model.crop_sizes == (16, 16)
    stem = model.backbone.conv1
    assert (stem.kernel_size, stem.stride, stem.padding) == ((3, 3), (1, 1), (0, 0))
    sizes = {}
    model.backbone.layer1.register_forward_hook(lambda module, inputs, output: sizes.update(layer1=output.shape[-2:]))
    with torch.no_grad():
        model.backbone(torch.zeros(1, 3, 16, 16))
    assert sizes["layer1"] == (14, 14)


@pytest.mark.parametrize("script", PRETRAIN_SCRIPTS)
def test_recipe_trains_with_its_official_values(script, recorded, tmp_path):
    official = OFFICIAL[script.removeprefix("pretrain/")]
    dataset = script.split("/")[1]
    cfg = resolved(recorded, script, tmp_path)
    cfg.trainer.devices, cfg.trainer.num_nodes = cfg.recipe.paper_gpus, cfg.recipe.paper_nodes  # the published run
    gpus = cfg.trainer.devices * cfg.trainer.num_nodes
    assert (cfg.data.global_batch_size, gpus) == (official.batch, official.gpus), "global batch and its device split"
    cfg.data.batch_size = split_global_batch(cfg.data.global_batch_size, gpus)  # as pretraining splits it
    assert cfg.trainer.max_epochs == official.epochs
    spe = TRAIN_SIZE[dataset] // official.batch
    total = spe * official.epochs
    model, optimizer, scheduler, roles = trained_with(cfg, spe)
    assert type(optimizer).__name__ == official.optimizer
    if official.optimizer in ("SGD", "Lars", "FBLars", "GoogleLars"):
        assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    if official.optimizer == "Adam":
        assert all(g["betas"] == (0.9, 0.999) for g in optimizer.param_groups)
    if official.lars:
        assert all((g["trust_coeff"], g.get("trust_clip", False)) == official.lars for g in optimizer.param_groups)  # FBLars: no clip

    steps = probe_steps(spe, total, (official.epochs - 50, official.epochs - 25))
    assert set(official.roles) <= set(roles), f"{script}: parameter roles {sorted(roles)}"
    for role, (lr_fn, weight_decay, adapted) in official.roles.items():
        assert len(roles[role]) == 1, f"{role}: one parameter group"
        index = roles[role].pop()
        group = optimizer.param_groups[index]
        zoo_lr = [group["initial_lr"] * scheduler.lr_lambdas[index](s) for s in steps]
        official_lr = [lr_fn(s, spe, total) for s in steps]
        wrong = [(s, z, o) for s, z, o in zip(steps, zoo_lr, official_lr) if not math.isclose(z, o, rel_tol=1e-9, abs_tol=1e-15)]
        assert not wrong, f"{script} {role}: (step, zoo lr, official lr) {wrong[:4]}"
        assert group["weight_decay"] == pytest.approx(weight_decay, rel=1e-12), f"{role}: weight decay"
        if adapted is not None:  # timm's Lars adapts a group with weight decay, or with always_adapt
            assert (group["weight_decay"] != 0 or group["always_adapt"]) == adapted, f"{role}: LARS adaptation"

    if official.momentum:
        start, end = official.momentum
        for s in (0, total // 3, total // 2, total - 1):
            if official.momentum_per_epoch:  # compared at the start of an epoch, where the per-step cosine meets it
                s -= s % spe
            progress = (s // spe) / official.epochs if official.momentum_per_epoch else s / total
            expected = end - (end - start) * (math.cos(math.pi * progress) + 1) / 2  # INTL-M: 1 - (1-m0) (1+cos(pi t/T))/2
            assert model.target.momentum(s, total) == pytest.approx(expected, rel=1e-12)
    else:
        assert not model.momentum_target

    resize = next(t for t in eval_pipeline(cfg.data).transforms if isinstance(t, T.Resize))
    assert resize.interpolation == official.eval_interpolation, "evaluation resize"

    blurs = [applied_blur(crop) for crop in expand_crops(resolved_views(cfg.data))]
    assert tuple(blur.p for blur in blurs) == BLUR_P[script.removeprefix("pretrain/")]
    for blur in blurs:  # PIL's radius: the effective sigma is the drawn one at every crop size
        assert blur.sigma == (0.1, 2.0) and blur.effective_sigma == pytest.approx(blur.sigma, rel=0.03), blur
