"""The baseline recipes (SimCLR, MoCo v2+, BYOL): what each method is built with, against its source.

test_recipe_values checks every recipe's lr per parameter group, weight decay, schedule, EMA momentum,
global batch and blur; test_scripts its linear protocol and two training steps per method on a tiny
image folder. Here, on the method built as training builds it (`zoo.pretrain.build_method`, on the
meta device), what only these methods have: the temperature and the queue the loss reads, the
projector and predictor layers, the crops and their augmentation pipeline, the stem, precision and
SyncBN, and that each recipe overrides the method's digits defaults where the source differs.

The expectations are written from the official code: solo-learn's scripts/pretrain/{cifar,imagenet-100}/
<method>.yaml with their augmentations/*.yaml and solo/methods/<method>.py; htdt/self-supervised's README
commands, cfg.py, model.py (get_head), methods/{contrastive,byol}.py and datasets/transforms.py;
google-research/simclr's README command with run.py, model_util.py and data_util.py; deepmind-research
byol/configs/byol.py with utils/{networks,augmentations}.py.
"""

import functools
from dataclasses import dataclass

import pytest
import torch
from test_scripts import PRETRAIN_RECIPES, compose_recipe
from torch import nn
from torchvision.transforms import v2 as T

from zoo.backbones import create_backbone
from zoo.config import BackboneConfig
from zoo.data import resolved_views
from zoo.data.augment import expand_crops, torchvision_view
from zoo.pretrain import build_method, split_global_batch


# ---- the sources' pieces ------------------------------------------------------------------------------
def linear(d_in, d_out, bias=True):
    return f"Linear {d_in}>{d_out}" + (" +bias" if bias else "")


def hidden(d_in, d_out):
    """Linear + BatchNorm + ReLU: a bias before the BatchNorm is cancelled by it, so `layers` leaves it out."""
    return [linear(d_in, d_out, bias=False), f"BN {d_out}", "ReLU"]


def solo_mlp(d_in, d_hidden, d_out, bn):
    """solo-learn's heads: Linear (bias) [+ BN] + ReLU + Linear (bias); SimCLR and MoCo v2+ without the BN."""
    return (hidden(d_in, d_hidden) if bn else [linear(d_in, d_hidden), "ReLU"]) + [linear(d_hidden, d_out)]


@dataclass
class Augment:
    """One crop as the source builds it; `ops` the order of the operations that can fire."""

    jitter: tuple  # brightness, contrast, saturation, hue
    gray_p: float
    solarize_p: float = 0.0
    scale: tuple = (0.08, 1.0)
    jitter_p: float = 0.8
    flip_p: float = 0.5
    ops: tuple = ("crop", "jitter", "gray", "blur", "flip")  # solo-learn's pipeline (solo/data/pretrain_dataloader.py)


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
    queue: int | None = None
    # What the zoo builds where the recipe states a deviation from `projector` / `predictor`.
    projector_in_zoo: list | None = None
    predictor_in_zoo: list | None = None


SOURCES = {}
for ds in ("cifar10", "cifar100"):
    solo_cifar = {"crop": 32, "stem": "small-p2", "maxpool": False, "zero_init": False, "precision": "16-mixed", "sync_bn": True}
    SOURCES |= {
        f"{ds}/simclr": Source((SOLO_SYMMETRIC,) * 2, projector=solo_mlp(512, 2048, 256, bn=False), temperature=0.2, **solo_cifar),
        f"{ds}/mocov2plus": Source((SOLO_WEAK,) * 2, projector=solo_mlp(512, 2048, 256, bn=False), temperature=0.2, queue=32768,
                                   **solo_cifar),
        f"{ds}/byol": Source(SOLO_ASYM_CIFAR, projector=solo_mlp(512, 4096, 256, bn=True), predictor=solo_mlp(256, 4096, 256, bn=True),
                             **solo_cifar),
    }
solo_in100 = {"crop": 224, "stem": "imagenet", "maxpool": True, "zero_init": False, "precision": "16-mixed", "sync_bn": True}
SOURCES |= {
    "imagenet-100/simclr": Source((SOLO_SYMMETRIC,) * 2, projector=solo_mlp(512, 4096, 512, bn=False), temperature=0.2, **solo_in100),
    "imagenet-100/mocov2plus": Source((SOLO_WEAK,) * 2, projector=solo_mlp(512, 2048, 256, bn=False), temperature=0.2, queue=65536,
                                      **solo_in100),
    "imagenet-100/byol": Source(SOLO_ASYM, projector=solo_mlp(512, 4096, 256, bn=True), predictor=solo_mlp(256, 8192, 256, bn=True),
                                **solo_in100),
}
# htdt: get_head (Linear + BN + ReLU, then Linear to --emb), torchvision resnet18 with a 3x3 p1 conv1,
# the max-pool dropped on CIFAR only; fp32 on one GPU.
for ds, crop, emb in (("cifar10", 32, 64), ("cifar100", 32, 64), ("stl10", 64, 128), ("tiny-imagenet", 64, 128)):
    htdt = {"crop": crop, "stem": "small-p1", "maxpool": ds.startswith(("stl", "tiny")), "zero_init": False,
            "precision": "32-true", "sync_bn": False, "projector": hidden(512, 1024) + [linear(1024, emb)]}
    SOURCES[f"{ds}/simclr_wmse_protocol"] = Source((HTDT,) * 2, temperature=0.5, **htdt)  # --tau 0.5; bn_last: the deviation
    SOURCES[f"{ds}/byol_wmse_protocol"] = Source((HTDT,) * 2, predictor=hidden(emb, 1024) + [linear(1024, emb)], **htdt)
imagenet = {"crop": 224, "stem": "imagenet", "maxpool": True, "zero_init": True, "precision": "32-true", "sync_bn": True}
SOURCES |= {
    # model_util.projection_head, num_proj_layers 3: Linear (no bias) + BN (+ReLU) twice at the feature width, then to 128 + BN.
    "imagenet/simclr": Source((SIMCLR_TF,) * 2, temperature=0.1, **imagenet,
                              projector=hidden(2048, 2048) * 2 + [linear(2048, 128, bias=False), "BN 128"],
                              projector_in_zoo=hidden(2048, 2048) * 2 + [linear(2048, 128)]),
    # networks.MLP: Linear (bias) + BN + ReLU + Linear without bias, for projector and predictor.
    "imagenet/byol": Source(BYOL_JAX, **imagenet, projector=hidden(2048, 4096) + [linear(4096, 256, bias=False)],
                            predictor=hidden(256, 4096) + [linear(4096, 256, bias=False)],
                            predictor_in_zoo=hidden(256, 4096) + [linear(4096, 256)]),
}
RECIPES = sorted(SOURCES)


def test_every_baseline_recipe_has_its_source():
    baselines = [r for r in PRETRAIN_RECIPES if r.split("/")[1].split("_")[0] in ("simclr", "mocov2plus", "byol")]
    assert RECIPES == baselines and len(RECIPES) == 19


# ---- what training builds -----------------------------------------------------------------------------
def layers(mlp):
    """A projector / predictor as text, one entry per layer; a Linear's bias is shown unless a BatchNorm follows."""
    modules = list(mlp)
    described = []
    for i, module in enumerate(modules):
        if isinstance(module, nn.Linear):
            before_bn = i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm1d)
            described.append(linear(module.in_features, module.out_features, module.bias is not None and not before_bn))
        elif isinstance(module, nn.BatchNorm1d):
            described.append(f"BN {module.num_features}" + ("" if module.affine else " no affine"))
        elif isinstance(module, nn.ReLU):
            described.append("ReLU")
        else:
            raise TypeError(f"a head layer this test cannot describe: {module}")
    return described


def built(cfg):
    """The method as pretraining builds it for the published run (its GPUs; one without a recipe), on the meta device."""
    gpus = cfg.recipe.paper_gpus * cfg.recipe.paper_nodes
    cfg.trainer.devices, cfg.trainer.num_nodes = cfg.recipe.paper_gpus, cfg.recipe.paper_nodes
    if cfg.data.global_batch_size:
        cfg.data.batch_size = split_global_batch(cfg.data.global_batch_size, gpus)
    with torch.device("meta"):
        return build_method(cfg, num_classes=10, world_size=gpus)


def pipeline_ops(pipeline):
    """(name, transform) of each operation of a torchvision_view pipeline that can fire."""
    names = {T.RandomResizedCrop: "crop", T.RandomGrayscale: "gray", T.RandomSolarize: "solarize", T.RandomHorizontalFlip: "flip"}
    ops = []
    for step in pipeline.transforms:
        if isinstance(step, T.RandomApply):
            name = "jitter" if isinstance(step.transforms[0], T.ColorJitter) else "blur"
        else:
            name = names.get(type(step))
        if name and getattr(step, "p", 1.0) > 0:
            ops.append((name, step))
    return ops


@functools.cache
def stem(backbone_items, crop):
    """conv1 (kernel, stride, padding), whether the max-pool is kept, and whether each residual block's last
    BatchNorm starts at zero: of the backbone really built (on the CPU, once per backbone config)."""
    model = create_backbone(BackboneConfig(**dict(backbone_items)), crop)
    last_bns = [block.bn3 if hasattr(block, "bn3") else block.bn2 for layer in (model.layer1, model.layer4) for block in layer]
    zero = {bool((bn.weight == 0).all()) for bn in last_bns}
    assert len(zero) == 1, "every block alike"
    conv = model.conv1
    return conv.kernel_size[0], conv.stride[0], conv.padding[0], not isinstance(model.maxpool, nn.Identity), zero.pop()


@pytest.mark.parametrize("recipe", RECIPES)
def test_baseline_recipe_builds_its_sources_method(recipe, tmp_path):
    source = SOURCES[recipe]
    # In-process, as `bash scripts/pretrain/<recipe>.sh --cfg job` resolves it (each script launches its recipe:
    # test_scripts; test_recipe_values resolves every script itself).
    cfg = compose_recipe([f"experiment={recipe}"], DATA_DIR=tmp_path)
    model = built(cfg)

    assert layers(model.projector) == (source.projector_in_zoo or source.projector)
    if source.projector_in_zoo or source.predictor_in_zoo:
        assert cfg.recipe.deviation, "a head that differs from the source's is the recipe's stated deviation"
    if source.predictor:
        assert layers(model.predictor) == (source.predictor_in_zoo or source.predictor)
        # It trains in the backbone's parameter groups (their lr and weight decay: test_recipe_values), as in every source.
        groups = model.build_optimizer(steps_per_epoch=10, total_steps=100)["optimizer"].param_groups
        group_of = {id(p): i for i, group in enumerate(groups) for p in group["params"]}
        backbone_group = {p.ndim > 1: group_of[id(p)] for p in model.backbone.parameters()}
        assert all(group_of[id(p)] == backbone_group[p.ndim > 1] for p in model.predictor.parameters())
    else:
        assert not hasattr(model, "predictor")
    if recipe.endswith("/simclr_wmse_protocol"):
        assert "bn_last" in cfg.recipe.deviation  # htdt's affine BN after the head, over both views: not built here
    assert model.mcfg.get("temperature") == source.temperature  # what the loss divides by
    if source.queue:
        assert tuple(model.queue.shape) == (2, source.queue, model.mcfg.proj_out)  # one queue of keys per view, as solo-learn's
    else:
        assert not hasattr(model, "queue")

    # The crops the method trains on and each crop's pipeline at its size.
    assert tuple(model.crop_sizes) == (source.crop,) * len(source.views)
    crops = expand_crops(resolved_views(cfg.data))
    for crop, expected in zip(crops, source.views, strict=True):
        ops = pipeline_ops(torchvision_view(crop, [0.5] * 3, [0.5] * 3))
        assert tuple(name for name, _ in ops) == expected.ops
        step = dict(ops)
        assert (step["crop"].size, step["crop"].scale, step["crop"].ratio) == ((source.crop,) * 2, expected.scale, (3 / 4, 4 / 3))
        assert step["crop"].interpolation == T.InterpolationMode.BICUBIC  # PIL bicubic / TF resize_bicubic in every source
        jitter = step["jitter"].transforms[0]
        b, c, s, h = expected.jitter
        assert [*jitter.brightness, *jitter.contrast, *jitter.saturation, *jitter.hue] == pytest.approx(
            [1 - b, 1 + b, 1 - c, 1 + c, 1 - s, 1 + s, -h, h])
        assert (step["jitter"].p, step["gray"].p, step["flip"].p) == (expected.jitter_p, expected.gray_p, expected.flip_p)
        assert (step["solarize"].p if "solarize" in step else 0.0) == expected.solarize_p

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

    mocov2plus, byol = (built(compose_recipe([f"method={name}", "data.batch_size=256"])) for name in ("mocov2plus", "byol"))
    assert mocov2plus.queue.shape[1] == 1024 and weights_lr(byol) == pytest.approx(0.5)  # the digits defaults, at batch 256
    assert recipe("cifar10/mocov2plus").queue.shape[1] == 32768 and recipe("imagenet-100/mocov2plus").queue.shape[1] == 65536
    assert weights_lr(recipe("cifar10/byol")) == pytest.approx(1.0)  # solo-learn's lr 1.0 x 256 / 256
