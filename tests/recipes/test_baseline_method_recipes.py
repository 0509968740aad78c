"""The baseline recipes (SimCLR, MoCo v2+, BYOL, SwAV, DINO, MoCo v2, Zero-CL, Shuffled-DBN): what each method is
built with, against its source.

test_recipe_values checks every recipe's lr per parameter group, weight decay, schedule, EMA momentum,
global batch and blur; test_scripts its linear protocol and two training steps per method on a tiny
image folder. Here, on the method built as training builds it (`zoo.build.build_method`, on the
meta device), what only these methods have: the temperature and the queue the loss reads, the
projector and predictor layers, SwAV's prototypes and DINO's head (and the epochs or steps they are held
fixed), DINO's teacher temperature per epoch, the other loss settings (Sinkhorn, whitening), the crops and
their augmentation pipeline, the stem, precision and SyncBN, and that each recipe overrides the method's
digits defaults where the source differs.

The expectations are written from the official code: solo-learn's scripts/pretrain/{cifar,imagenet-100}/
<method>.yaml with their augmentations/*.yaml and solo/methods/<method>.py; htdt/self-supervised's README
commands, cfg.py, model.py (get_head), methods/{contrastive,byol}.py and datasets/transforms.py;
google-research/simclr's README command with run.py, model_util.py and data_util.py; deepmind-research
byol/configs/byol.py with utils/{networks,augmentations}.py; facebookresearch/moco main_moco.py with moco/
{builder,loader}.py; facebookresearch/swav main_swav.py, scripts/swav_*_pretrain.sh, src/{multicropdataset,resnet50}.py;
solo-learn's solo/losses/dino.py; winci-ai/CW-RGP base/{cfg,model}.py, base/datasets/transforms.py and
base/methods/{zero_icl,cwrgp,whitening}.py; Sherrylone/Zero-CL cifar/main.py and ImageNet-100/main.py.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from recipe_helpers import PRETRAIN_RECIPES, Augment, check_crop, compose_recipe, hidden, layers, linear, stem
from torchvision.transforms import v2 as T

from zoo.build import build_method
from zoo.data import resolved_views
from zoo.data.augment import expand_crops
from zoo.pretrain import split_global_batch


def solo_mlp(d_in, d_hidden, d_out, bn):
    """solo-learn's heads: Linear (bias) [+ BN] + ReLU + Linear (bias); SimCLR and MoCo v2+ without the BN."""
    return (hidden(d_in, d_hidden) if bn else [linear(d_in, d_hidden), "ReLU"]) + [linear(d_hidden, d_out)]


def dino_mlp(d_in, d_hidden, d_out):
    """solo-learn's DINOHead MLP (num_layers 3, use_bn_in_head False): Linear (bias) + GELU twice, then Linear (bias)."""
    return [linear(d_in, d_hidden), "GELU", linear(d_hidden, d_hidden), "GELU", linear(d_hidden, d_out)]


SOLO_SYMMETRIC = Augment((0.8, 0.8, 0.8, 0.2), 0.2)  # augmentations/symmetric.yaml
SOLO_WEAK = Augment((0.4, 0.4, 0.4, 0.1), 0.2)  # augmentations/symmetric_weak.yaml
ASYM_JITTER = (0.4, 0.4, 0.2, 0.1)
SOLO_ASYM = (Augment(ASYM_JITTER, 0.2),  # augmentations/asymmetric.yaml: blur 1.0 / 0.1, solarization 0.0 / 0.2
             Augment(ASYM_JITTER, 0.2, solarize_p=0.2, ops=("crop", "jitter", "gray", "blur", "solarize", "flip")))
SOLO_ASYM_CIFAR = (Augment(ASYM_JITTER, 0.2, ops=("crop", "jitter", "gray", "flip")),  # its CIFAR copy: no blur
                   Augment(ASYM_JITTER, 0.2, solarize_p=0.2, ops=("crop", "jitter", "gray", "solarize", "flip")))
HTDT = Augment((0.4, 0.4, 0.4, 0.1), 0.1, scale=(0.2, 1.0), ops=("jitter", "gray", "crop", "flip"))  # cfg.py defaults, transforms.py
SIMCLR_TF = Augment((0.8, 0.8, 0.8, 0.2), 0.2, ops=("crop", "flip", "jitter", "gray", "blur"))  # data_util.py, strength 1.0
BYOL_JAX = (Augment(ASYM_JITTER, 0.2, ops=("crop", "flip", "jitter", "gray", "blur")),  # augmentations.py, dataset.py's crop
            Augment(ASYM_JITTER, 0.2, solarize_p=0.2, ops=("crop", "flip", "jitter", "gray", "blur", "solarize")))
BILINEAR = T.InterpolationMode.BILINEAR  # torchvision's RandomResizedCrop default (MoCo, SwAV)
MOCO_V2 = Augment((0.4, 0.4, 0.4, 0.1), 0.2, scale=(0.2, 1.0), interpolation=BILINEAR)  # main_moco.py --aug-plus
# multicropdataset.py (colour distortion of strength 1) at swav_400ep_2x224_pretrain.sh's crops: 2 x 224, scale 0.08 - 1.
SWAV_2X224 = Augment((0.8, 0.8, 0.8, 0.2), 0.2, ops=("crop", "flip", "jitter", "gray", "blur"), interpolation=BILINEAR)
# ... at swav_100ep_pretrain.sh's crops: --size_crops 224 96, --min_scale_crops 0.14 0.05, --max_scale_crops 1. 0.14.
SWAV_MC_224 = Augment((0.8, 0.8, 0.8, 0.2), 0.2, scale=(0.14, 1.0), ops=("crop", "flip", "jitter", "gray", "blur"), interpolation=BILINEAR)
SWAV_MC_96 = Augment((0.8, 0.8, 0.8, 0.2), 0.2, scale=(0.05, 0.14), ops=("crop", "flip", "jitter", "gray", "blur"),
                     interpolation=BILINEAR, size=96)


@dataclass
class Source:
    views: tuple  # one Augment per crop
    crop: int
    stem: str  # conv1: "small-p2" (3x3, stride 1, padding 2), "small-p1" (padding 1), "imagenet" (7x7, stride 2)
    maxpool: bool
    zero_init: bool
    projector: list
    precision: str
    sync_bn: bool
    predictor: list | None = None
    temperature: float | None = None
    queue: int | None = None  # rows of each queue the loss uses
    queues: int = 2  # one queue per view (solo-learn's MoCo v2+) or per coded crop (SwAV); MoCo v2: one
    queue_from: int | None = None  # SwAV: the epoch its queue joins the Sinkhorn codes
    prototypes: int | None = None  # SwAV's prototypes / DINO's last layer: a Linear from proj_out without bias
    frozen: tuple | None = None  # (epochs, steps) during which the prototypes / DINO's last layer get no update
    teacher_temperature: tuple | None = None  # DINO: (warm-up start, final, warm-up epochs), np.linspace per epoch
    loss_values: dict | None = None  # the other method fields the loss reads, as the source sets them
    # The crops' batching in the training loss: the backbone calls, each a tuple of the crops concatenated into it, and
    # whether the projector runs once on every crop (its BatchNorms' statistics over all views); None: not checked here.
    backbone_calls: tuple | None = None
    joint_projector: bool | None = None
    # What the zoo builds where the recipe states a deviation from `projector` / `predictor`.
    projector_in_zoo: list | None = None
    predictor_in_zoo: list | None = None


SOURCES = {}
# solo-learn's training_step: backbone and projector once per crop (base_training_step for each large crop).
SOLO_CALLS = {"backbone_calls": ((0,), (1,)), "joint_projector": False}
for ds in ("cifar10", "cifar100"):
    solo_cifar = {"crop": 32, "stem": "small-p2", "maxpool": False, "zero_init": False, "precision": "16-mixed", "sync_bn": True,
                  **SOLO_CALLS}
    SOURCES |= {
        f"{ds}/simclr": Source((SOLO_SYMMETRIC,) * 2, projector=solo_mlp(512, 2048, 256, bn=False), temperature=0.2, **solo_cifar),
        f"{ds}/mocov2plus": Source((SOLO_WEAK,) * 2, projector=solo_mlp(512, 2048, 256, bn=False), temperature=0.2, queue=32768,
                                   **solo_cifar),
        f"{ds}/byol": Source(SOLO_ASYM_CIFAR, projector=solo_mlp(512, 4096, 256, bn=True), predictor=solo_mlp(256, 4096, 256, bn=True),
                             **solo_cifar),
    }
solo_in100 = {"crop": 224, "stem": "imagenet", "maxpool": True, "zero_init": False, "precision": "16-mixed", "sync_bn": True,
              **SOLO_CALLS}
SOURCES |= {
    "imagenet-100/simclr": Source((SOLO_SYMMETRIC,) * 2, projector=solo_mlp(512, 4096, 512, bn=False), temperature=0.2, **solo_in100),
    "imagenet-100/mocov2plus": Source((SOLO_WEAK,) * 2, projector=solo_mlp(512, 2048, 256, bn=False), temperature=0.2, queue=65536,
                                      **solo_in100),
    "imagenet-100/byol": Source(SOLO_ASYM, projector=solo_mlp(512, 4096, 256, bn=True), predictor=solo_mlp(256, 8192, 256, bn=True),
                                **solo_in100),
}
# htdt: get_head (Linear + BN + ReLU, then Linear to --emb), torchvision resnet18 with a 3x3 p1 conv1,
# the max-pool dropped on CIFAR only; fp32 on one GPU.
# Contrastive (methods/contrastive.py) adds bn_last, an affine BatchNorm1d(emb), and runs head + bn_last once on both
# views concatenated, the encoder once per view; BYOL (methods/byol.py) runs encoder, head and predictor once per view.
for ds, crop, emb in (("cifar10", 32, 64), ("cifar100", 32, 64), ("stl10", 64, 128), ("tiny-imagenet", 64, 128)):
    htdt = {"crop": crop, "stem": "small-p1", "maxpool": ds.startswith(("stl", "tiny")), "zero_init": False,
            "precision": "32-true", "sync_bn": False, "backbone_calls": ((0,), (1,))}
    head = hidden(512, 1024) + [linear(1024, emb)]
    # --tau 0.5; the last Linear's bias comes before bn_last (cancelled by it, so `layers` leaves it out)
    SOURCES[f"{ds}/simclr_wmse_protocol"] = Source((HTDT,) * 2, temperature=0.5, projector=head[:-1] + hidden(1024, emb)[:2],
                                                   joint_projector=True, **htdt)
    SOURCES[f"{ds}/byol_wmse_protocol"] = Source((HTDT,) * 2, projector=head, predictor=hidden(emb, 1024) + [linear(1024, emb)],
                                                 joint_projector=False, **htdt)
imagenet = {"crop": 224, "stem": "imagenet", "maxpool": True, "zero_init": True, "precision": "32-true", "sync_bn": True}
SOURCES |= {
    # model_util.projection_head, num_proj_layers 3: Linear (no bias) + BN (+ReLU) twice at the feature width, then to 128 + BN.
    # model.py: the views concatenated along the batch, then the ResNet and the head once on all of them.
    "imagenet/simclr": Source((SIMCLR_TF,) * 2, temperature=0.1, backbone_calls=((0, 1),), joint_projector=True, **imagenet,
                              projector=hidden(2048, 2048) * 2 + [linear(2048, 128, bias=False), "BN 128"],
                              projector_in_zoo=hidden(2048, 2048) * 2 + [linear(2048, 128)]),
    # networks.MLP: Linear (bias) + BN + ReLU + Linear without bias, for projector and predictor.
    "imagenet/byol": Source(BYOL_JAX, **imagenet, projector=hidden(2048, 4096) + [linear(4096, 256, bias=False)],
                            predictor=hidden(256, 4096) + [linear(4096, 256, bias=False)],
                            predictor_in_zoo=hidden(256, 4096) + [linear(4096, 256)]),
}
# HanxunH/LDReg (SimCLR and BYOL with the LDReg term): models/resnet.py's ResNet-50 (the last BatchNorm of each block
# zero-initialised), each view through ResNet and head on its own (model(x0), model(x1)); ResNetSimCLR's head Linear (no
# bias) + BN + ReLU + Linear (no bias) + BN (BatchNorm1dNoBias: its offset held at 0), ResNetBYOL's MLPs Linear (bias) + BN +
# ReLU + Linear without bias; amp with SyncBN; datasets/simclr_augmentation.py and vicreg_augmentation.py.
ldreg = {"crop": 224, "stem": "imagenet", "maxpool": True, "zero_init": True, "precision": "16-mixed", "sync_bn": True,
         **SOLO_CALLS}
SOURCES |= {
    "imagenet/simclr_ldreg": Source((SIMCLR_TF,) * 2, temperature=0.1, **ldreg,
                                    projector=hidden(2048, 2048) + [linear(2048, 128, bias=False), "BN 128"]),
    "imagenet/byol_ldreg": Source(BYOL_JAX, **ldreg, projector=hidden(2048, 4096) + [linear(4096, 256, bias=False)],
                                  predictor=hidden(256, 4096) + [linear(4096, 256, bias=False)],
                                  predictor_in_zoo=hidden(256, 4096) + [linear(4096, 256)]),
}
# solo-learn's SwAV and DINO: projector / DINOHead, 3000 / 4096 prototypes, symmetric / asymmetric views.
SWAV_SOLO = {"prototypes": 3000, "temperature": 0.1, "queue": 3840, "queue_from": 50, "frozen": (2, 0),
             "loss_values": {"sk_epsilon": 0.05, "sk_iters": 3}}  # freeze_prototypes_epochs 2; SinkhornKnopp defaults
DINO_SOLO = {"prototypes": 4096, "frozen": (1, 0),  # freeze_last_layer 1
             "loss_values": {"student_temperature": 0.1, "center_momentum": 0.9, "norm_last_layer": True}}
for ds in ("cifar10", "cifar100"):
    solo_cifar = {"crop": 32, "stem": "small-p2", "maxpool": False, "zero_init": False, "precision": "16-mixed", "sync_bn": True,
                  **SOLO_CALLS}
    SOURCES |= {
        f"{ds}/swav": Source((SOLO_SYMMETRIC,) * 2, projector=solo_mlp(512, 2048, 128, bn=True), **SWAV_SOLO, **solo_cifar),
        f"{ds}/dino": Source(SOLO_ASYM_CIFAR, projector=dino_mlp(512, 2048, 256), teacher_temperature=(0.04, 0.07, 0), **DINO_SOLO,
                             **solo_cifar),
    }
SOURCES |= {
    "imagenet-100/swav": Source((SOLO_SYMMETRIC,) * 2, projector=solo_mlp(512, 2048, 128, bn=True), **SWAV_SOLO, **solo_in100),
    "imagenet-100/dino": Source(SOLO_ASYM, projector=dino_mlp(512, 2048, 256), teacher_temperature=(0.04, 0.07, 50), **DINO_SOLO,
                                **solo_in100),
}
# The official ImageNet codes: torchvision ResNet-50 without zero-init; MoCo fp32 with shuffling BN (no SyncBN), SwAV apex
# O1 with apex SyncBN.
fb_imagenet = {"crop": 224, "stem": "imagenet", "maxpool": True, "zero_init": False}
SOURCES |= {
    # builder.py --mlp: fc replaced by Linear(2048, 2048) + ReLU + the 128-d fc, both with bias; queue of 65536 keys, T 0.2.
    "imagenet/mocov2": Source((MOCO_V2,) * 2, projector=[linear(2048, 2048), "ReLU", linear(2048, 128)], temperature=0.2,
                              queue=65536, queues=1, loss_values={"shuffle_bn": True}, precision="32-true", sync_bn=False,
                              **fb_imagenet),
    # resnet50.py projection_head (hidden_mlp 2048, feat_dim 128), nmb_prototypes 3000, freeze_prototypes_niters 313, no queue.
    # resnet50.py forward: the backbone once on both 224 crops, the head once on both.
    "imagenet/swav": Source((SWAV_2X224,) * 2, projector=hidden(2048, 2048) + [linear(2048, 128)], temperature=0.1, prototypes=3000,
                            frozen=(0, 313), loss_values={"sk_epsilon": 0.05, "sk_iters": 3}, precision="16-mixed", sync_bn=True,
                            backbone_calls=((0, 1),), joint_projector=True, **fb_imagenet),
    # swav_100ep_pretrain.sh itself: 2 x 224 + 6 x 96 crops, codes of crops 0 and 1 (--crops_for_assign 0 1), --queue_length 0;
    # resnet50.py forward: the backbone on each run of same-size crops concatenated, the head on all crops at once.
    "imagenet/swav_multicrop_ep100": Source((SWAV_MC_224,) * 2 + (SWAV_MC_96,) * 6, projector=hidden(2048, 2048) + [linear(2048, 128)],
                                            temperature=0.1, prototypes=3000, frozen=(0, 313),
                                            loss_values={"sk_epsilon": 0.05, "sk_iters": 3}, precision="16-mixed", sync_bn=True,
                                            backbone_calls=((0, 1), (2, 3, 4, 5, 6, 7)), joint_projector=True, **fb_imagenet),
}
# CW-RGP base/: get_head (Linear + BN + ReLU to head_size 1024, Linear to emb), torchvision resnet18(zero_init_residual=True)
# with a 3x3 p1 conv1, the max-pool dropped on CIFAR only; cfg.py's views (= htdt's); fp32 under DataParallel.
for ds, crop in (("cifar10", 32), ("cifar100", 32), ("stl10", 64), ("tiny-imagenet", 64)):
    cw = {"crop": crop, "stem": "small-p1", "maxpool": ds.startswith(("stl", "tiny")), "zero_init": True,
          "precision": "32-true", "sync_bn": False}
    # zero_icl.py: ins_loss, std without epsilon, covariance / (D - 1), 0.9 Sigma + 0.1 I, eigenvalues + 1e-5, one GPU;
    # cfg.py emb 512.
    SOURCES[f"{ds}/zero_cl"] = Source((HTDT,) * 2, projector=hidden(512, 1024) + [linear(1024, 512)],
                                      loss_values={"mode": "ins", "whitening": True, "std_ddof": 1, "std_eps": 0.0, "var_eps": 0.0,
                                                   "cov_ddof": 1, "eps": 0.1, "ridge": 1e-5, "per_device_norm": False},
                                      backbone_calls=((0,), (1,)), joint_projector=False, **cw)
    # cwrgp.py with axis 1: cfg.py's w_size 128, w_iter 1, w_eps 0, on 128 features in 16 groups (see the recipe's notes).
    SOURCES[f"{ds}/shuffled_dbn"] = Source((HTDT,) * 2, projector=hidden(512, 1024) + [linear(1024, 128)],
                                           loss_values={"groups": 16, "w_size": 128, "w_iter": 1, "eps": 0.0}, **cw)
# kaland313/SSL-Whitening train_byol.py on lightly 1.4.21: BYOLProjectionHead(512, 1024, 256), BYOLPredictionHead(256, 1024,
# 256), BYOLTransform's views (torchvision's bilinear RandomResizedCrop), timm's resnet18 unchanged (7x7 stem, max-pool,
# zero_init_last) with the whitening layer after it; fp32, one GPU; each view through backbone and heads alone.
LIGHTLY_BYOL = tuple(dataclasses.replace(view, interpolation=BILINEAR) for view in BYOL_JAX)
for ds, crop in (("cifar10", 32), ("stl10", 96), ("tiny-imagenet", 64)):
    SOURCES[f"{ds}/byol_whitening"] = Source(LIGHTLY_BYOL, crop=crop, stem="imagenet", maxpool=True, zero_init=True,
                                             projector=hidden(512, 1024) + [linear(1024, 256)],
                                             predictor=hidden(256, 1024) + [linear(1024, 256)], precision="32-true",
                                             sync_bn=False, backbone_calls=((0,), (1,)), joint_projector=False)
# Sherrylone/Zero-CL: projector(backbone(y1)), then y2, each on its own; --projector 8192 / 2048 x 3 of Linear without
# bias (BatchNorm, ReLU between). cifar/main.py: TransformCIFAR (FB's asymmetric views without blur), torchvision
# resnet18(zero_init_residual=True) with a 3x3 p2 conv1 and no max-pool, torch.cuda.amp on one GPU, whiten_bn
# (BatchNorm1d, affine=False) and --whiten's zca_forward; ImageNet-100/main.py: Transform (FB's views), resnet18 with
# zero_init_residual, SyncBatchNorm, fp32, fea_loss's standardization and zca_forward, each GPU on its own batch.
for ds in ("cifar10", "cifar100"):
    SOURCES[f"{ds}/zero_cl_official"] = Source(
        (Augment(ASYM_JITTER, 0.2, ops=("crop", "flip", "jitter", "gray")),
         Augment(ASYM_JITTER, 0.2, solarize_p=0.2, ops=("crop", "flip", "jitter", "gray", "solarize"))),
        crop=32, stem="small-p2", maxpool=False, zero_init=True, precision="16-mixed", sync_bn=False,
        projector=hidden(512, 2048) + hidden(2048, 2048) + [linear(2048, 2048, bias=False)],
        loss_values={"mode": "fea", "whitening": True, "std_ddof": 0, "std_eps": 0.0, "var_eps": 1e-5, "cov_ddof": 1, "eps": 0.1,
                     "ridge": 1e-5, "per_device_norm": False},
        backbone_calls=((0,), (1,)), joint_projector=False)
SOURCES["imagenet-100/zero_cl_official"] = Source(
    BYOL_JAX, crop=224, stem="imagenet", maxpool=True, zero_init=True, precision="32-true", sync_bn=True,  # FB's views = BYOL's
    projector=hidden(512, 8192) + hidden(8192, 8192) + [linear(8192, 8192, bias=False)],
    loss_values={"mode": "fea", "whitening": True, "std_ddof": 1, "std_eps": 1e-4, "var_eps": 0.0, "cov_ddof": 0, "eps": 0.0,
                 "ridge": 0.01, "per_device_norm": True},
    backbone_calls=((0,), (1,)), joint_projector=False)
RECIPES = sorted(SOURCES)
BASELINE_METHODS = ("simclr", "mocov2plus", "byol", "swav", "dino", "mocov2", "zero_cl", "shuffled_dbn")


def test_every_baseline_recipe_has_its_source():
    def method_of(recipe):  # a recipe is named after its method, maybe with a suffix (byol_wmse_protocol)
        name = recipe.split("/")[1]
        return next((m for m in BASELINE_METHODS if name == m or name.startswith(f"{m}_")), None)

    baselines = [r for r in PRETRAIN_RECIPES if method_of(r)]
    assert RECIPES == baselines and len(RECIPES) == 44


def built(cfg):
    """The method as pretraining builds it for the published run (its GPUs; one without a recipe), on the meta device."""
    gpus = cfg.recipe.paper_gpus * cfg.recipe.paper_nodes
    cfg.trainer.devices, cfg.trainer.num_nodes = cfg.recipe.paper_gpus, cfg.recipe.paper_nodes
    if cfg.data.global_batch_size:
        cfg.data.batch_size = split_global_batch(cfg.data.global_batch_size, gpus)
    with torch.device("meta"):
        return build_method(cfg, num_classes=10, world_size=gpus)  # the harness; its method: .method


class _EveryCropProjected(Exception):
    """forward_calls: the projector has seen every crop; the loss itself is not needed."""


def forward_calls(model, rows=2):
    """(the crops of each backbone call, in call order; the crops of each projector call) of one training loss
    (`compute_loss`) on the meta device, read from the rows each call gets: every crop has `rows` rows, and a call
    on k crops in crop order gets k x rows. Stops once the projector has seen every crop."""
    calls = {"backbone": [], "projector": []}

    def record(name, args):
        calls[name].append(len(args[0]))
        if name == "projector" and sum(calls[name]) == rows * len(model.crop_sizes):
            raise _EveryCropProjected

    hooks = [getattr(model, name).register_forward_pre_hook(lambda _, args, name=name: record(name, args)) for name in calls]
    try:
        model.compute_loss([torch.empty(rows, 3, size, size, device="meta") for size in model.crop_sizes])
    except _EveryCropProjected:
        pass
    finally:
        for hook in hooks:
            hook.remove()

    def crops_of(counts):
        groups, first = [], 0
        for count in counts:
            assert count % rows == 0
            groups.append(tuple(range(first, first + count // rows)))
            first += count // rows
        assert first == len(model.crop_sizes), "every crop once"
        return tuple(groups)

    return crops_of(calls["backbone"]), crops_of(calls["projector"])


@pytest.mark.parametrize("recipe", RECIPES)
def test_baseline_recipe_builds_its_sources_method(recipe, tmp_path):
    source = SOURCES[recipe]
    # In-process, as `bash scripts/pretrain/<recipe>.sh --cfg job` resolves it (each script launches its recipe:
    # test_scripts; test_recipe_values resolves every script itself).
    cfg = compose_recipe([f"experiment={recipe}"], DATA_DIR=tmp_path)
    harness = built(cfg)
    model = harness.method

    mlp = model.projector.mlp if hasattr(model.projector, "last_layer") else model.projector  # DINO: the head's MLP
    assert layers(mlp) == (source.projector_in_zoo or source.projector)
    if source.projector_in_zoo or source.predictor_in_zoo:
        assert cfg.recipe.deviation, "a head that differs from the source's is the recipe's stated deviation"
    if source.predictor:
        assert layers(model.predictor) == (source.predictor_in_zoo or source.predictor)
        # It trains in the backbone's parameter groups (their lr and weight decay: test_recipe_values), as in every source.
        groups = harness.build_optimizer(steps_per_epoch=10, total_steps=100)["optimizer"].param_groups
        group_of = {id(p): i for i, group in enumerate(groups) for p in group["params"]}
        backbone_group = {p.ndim > 1: group_of[id(p)] for p in model.backbone.parameters()}
        assert all(group_of[id(p)] == backbone_group[p.ndim > 1] for p in model.predictor.parameters())
    else:
        assert not hasattr(model, "predictor")
    if source.backbone_calls is not None:  # both stated together
        crops = tuple(range(len(model.crop_sizes)))
        projector_calls = (crops,) if source.joint_projector else tuple((i,) for i in crops)
        assert forward_calls(model) == (source.backbone_calls, projector_calls)
    assert model.mcfg.get("temperature") == source.temperature  # what the loss divides by
    if source.queue:
        assert tuple(model.queue.keys.shape) == (source.queues, source.queue, model.mcfg.proj_out)
        if source.queue_from is not None:
            assert model.mcfg.epoch_queue_starts == source.queue_from
    elif hasattr(model, "queue"):  # SwAV without a queue (the official queue_length 0): it never joins the codes
        assert model.mcfg.epoch_queue_starts >= cfg.trainer.max_epochs
    else:
        assert not hasattr(model, "queue")
    assert {key: model.mcfg[key] for key in source.loss_values or {}} == (source.loss_values or {})
    if source.prototypes:
        last = model.projector.last_layer if hasattr(model.projector, "last_layer") else model.prototypes
        assert (last.in_features, last.out_features, last.bias) == (model.mcfg.proj_out, source.prototypes, None)
        assert {id(p) for p in model.freeze_early.parameters_of()} == {id(p) for p in last.parameters()}
        epochs, steps = source.frozen  # the official `epoch < freeze_epochs` / `iteration < niters`
        assert model.freeze_early.frozen(epoch=max(epochs - 1, 0), step=max(steps - 1, 0)) and not model.freeze_early.frozen(epochs, steps)
    if hasattr(model.projector, "last_layer"):  # DINO: rows of norm 1 (a fixed norm with norm_last_layer)
        assert not model.projector.last_layer.parametrizations.weight.original0.requires_grad
    if source.teacher_temperature:
        start, final, warmup = source.teacher_temperature
        epochs = cfg.trainer.max_epochs
        schedule = np.concatenate((np.linspace(start, final, warmup), np.ones(epochs - warmup) * final))  # solo-learn's DINOLoss
        for epoch in sorted({0, 1, warmup - 1, warmup, epochs - 1} - {-1}):
            assert model.teacher_temperature(epoch) == pytest.approx(schedule[epoch], rel=1e-12), epoch

    # The crops the method trains on and each crop's pipeline at its size.
    assert tuple(model.crop_sizes) == tuple(view.size or source.crop for view in source.views)
    crops = expand_crops(resolved_views(cfg.data))
    for crop, expected in zip(crops, source.views, strict=True):
        check_crop(crop, expected, expected.size or source.crop)

    kernel, stride, padding, maxpool, zero_init = stem(tuple(cfg.backbone.items()), source.crop)
    assert (kernel, stride, padding) == {"small-p2": (3, 1, 2), "small-p1": (3, 1, 1), "imagenet": (7, 2, 3)}[source.stem]
    assert (maxpool, zero_init) == (source.maxpool, source.zero_init)
    assert (cfg.trainer.precision, cfg.trainer.sync_batchnorm) == (source.precision, source.sync_bn)


def test_the_recipes_override_the_methods_digits_defaults(tmp_path):
    """The defaults are tuned for the 150 steps of the digits run (a queue of 1024 keys, BYOL lr 0.5); the recipes
    pass their sources' values, and training uses them: the queue built, the lr of the weights' parameter group."""
    def weights_lr(model):
        return model.build_optimizer(steps_per_epoch=10, total_steps=100)["optimizer"].param_groups[0]["initial_lr"]

    def recipe(name):
        return built(compose_recipe([f"experiment={name}"], DATA_DIR=tmp_path))

    mocov2plus, byol, mocov2, swav = (built(compose_recipe([f"method={name}", "data.batch_size=256"]))
                                      for name in ("mocov2plus", "byol", "mocov2", "swav"))
    assert mocov2plus.method.queue.keys.shape[1] == 1024 and weights_lr(byol) == pytest.approx(0.5)  # the digits defaults, at batch 256
    assert mocov2.method.queue.keys.shape[1] == 1024 and swav.method.prototypes.out_features == 100
    assert (recipe("cifar10/mocov2plus").method.queue.keys.shape[1] == 32768
            and recipe("imagenet-100/mocov2plus").method.queue.keys.shape[1] == 65536)
    assert weights_lr(recipe("cifar10/byol")) == pytest.approx(1.0)  # solo-learn's lr 1.0 x 256 / 256
    assert (recipe("imagenet/mocov2").method.queue.keys.shape[1] == 65536
            and recipe("cifar10/swav").method.prototypes.out_features == 3000)
