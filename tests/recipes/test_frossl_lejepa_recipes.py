"""The FroSSL and LeJEPA recipes against their official sources, and the timm ViT backbone they need.

FroSSL: OFSkean/FroSSL (a solo-learn fork) scripts/pretrain/<dataset>/frossl.yaml with solo-learn's lr
rules (solo/args/pretrain.py: lr and classifier_lr x batch_size x devices / 256; solo/methods/base.py:
warmup_cosine with 10 warmup epochs from 3e-5, per step, to 0; LARS with exclude_bias_n_norm).
LeJEPA: rbalestr-lab/lejepa README.md ("GOTO hyperparameters") and MINIMAL.md (the runnable code).

Their per-group lr, weight decay, LARS, batch split, evaluation resize and blur: test_recipe_values' OFFICIAL / BLUR_P.
"""

import json

import pytest
import torch
from omegaconf import OmegaConf
from recipe_helpers import TINY_RUN, compose_linear, compose_recipe, minimal_lejepa_lr, same_value

from zoo.backbones import create_backbone
from zoo.build import build_method
from zoo.config import BackboneConfig
from zoo.data import resolved_views
from zoo.data.augment import expand_crops
from zoo.pretrain import pretrain

FROSSL = ["cifar10/frossl", "cifar100/frossl", "stl10/frossl", "tiny-imagenet/frossl", "imagenet-100/frossl"]
LEJEPA = ["imagenet-100/lejepa", "imagenet-100/lejepa_vit_small"]


def test_lejepa_probe_lr():
    """MINIMAL.md's probe: lr 1e-3 (not scaled), the same warmup + cosine; the zoo's warm-up start is absolute
    (5e-6), so the probe starts at 0.005 x 1e-3 instead of 0.01 x 1e-3 and then follows the schedule."""
    cfg = compose_recipe(["experiment=imagenet-100/lejepa", "trainer.devices=1"])
    spe = 126_689 // 256
    with torch.device("meta"):
        model = build_method(cfg, num_classes=100, world_size=1)
    built = model.build_optimizer(spe, spe * 400)
    optimizer, scheduler = built["optimizer"], built["lr_scheduler"]["scheduler"]
    (index,) = {i for i, g in enumerate(optimizer.param_groups) for p in g["params"] if p is model.classifier.weight}
    initial = optimizer.param_groups[index]["initial_lr"]
    assert initial == pytest.approx(1e-3)
    assert initial * scheduler.lr_lambdas[index](0) == pytest.approx(5e-6)
    official = minimal_lejepa_lr(1e-3)
    for s in (spe, spe + 1, spe * 200, spe * 400 - 1):
        assert initial * scheduler.lr_lambdas[index](s) == pytest.approx(official(s, spe, spe * 400), rel=1e-9)


# ---- what each method is built with -------------------------------------------------------------------
def built(recipe, **env):
    cfg = compose_recipe([f"experiment={recipe}", "trainer.devices=1"], **env)
    with torch.device("meta"):
        return cfg, build_method(cfg, num_classes=100, world_size=1)


def layers(module):
    return [(type(m).__name__, getattr(m, "in_features", None), getattr(m, "out_features", None),
             getattr(m, "bias", None) is not None) for m in module if not isinstance(m, torch.nn.ReLU)]


@pytest.mark.parametrize("recipe", FROSSL)
def test_frossl_is_built_as_the_fork(recipe):
    """solo/methods/frossl.py: Linear(512, 2048) BN ReLU Linear(2048, 2048) BN ReLU Linear(2048, 1024), biases on
    (nn.Linear's default); invariance_weight from the yaml (STL-10: 1.4, others 1.0); CIFAR stem 3x3/1 pad 2, no
    max-pool (solo/methods/base.py, cifar only)."""
    cfg, model = built(recipe)
    model = model.method
    assert model.mcfg.name == "frossl"
    assert layers(model.projector) == [("Linear", 512, 2048, True), ("BatchNorm1d", None, None, True),
                                       ("Linear", 2048, 2048, True), ("BatchNorm1d", None, None, True),
                                       ("Linear", 2048, 1024, True)]
    assert model.mcfg.invariance_weight == (1.4 if recipe.startswith("stl10") else 1.0)
    conv1 = model.backbone.conv1
    if recipe.startswith("cifar"):
        assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((3, 3), (1, 1), (2, 2))
        assert isinstance(model.backbone.maxpool, torch.nn.Identity)
    else:
        assert (conv1.kernel_size, conv1.stride) == ((7, 7), (2, 2))
        assert not isinstance(model.backbone.maxpool, torch.nn.Identity)
    assert cfg.trainer.precision == ("32-true" if recipe.startswith("cifar") else "16-mixed")
    assert cfg.trainer.sync_batchnorm is True


@pytest.mark.parametrize("recipe", LEJEPA)
def test_lejepa_is_built_as_minimal(recipe):
    """MINIMAL.md: MLP(feat, [2048, 2048, 16], BatchNorm1d): Linear BN ReLU Linear BN ReLU Linear, biases on;
    SIGReg with 256 slices, 17 knots on [0, 3], lambda 0.02; bf16 (README)."""
    cfg, harness = built(recipe)
    model = harness.method
    width = 384 if "vit" in recipe else 512
    assert model.feature_dim == width
    assert layers(model.projector) == [("Linear", width, 2048, True), ("BatchNorm1d", None, None, True),
                                       ("Linear", 2048, 2048, True), ("BatchNorm1d", None, None, True),
                                       ("Linear", 2048, 16, True)]
    m = model.mcfg
    assert (m.lambd, m.num_slices, m.t_max, m.points) == (0.02, 256, 3.0, 17)
    assert cfg.trainer.precision == "bf16-mixed"
    assert harness.optimizer_cfg.betas == [0.9, 0.999]  # torch AdamW's defaults


# ---- views ----------------------------------------------------------------------------------------------
def crops_of(recipe):
    return expand_crops(resolved_views(compose_recipe([f"experiment={recipe}"]).data))


def test_frossl_views():
    """cifar augmentations/symmetric.yaml: rrc disabled (Resize(32): the whole image), jitter 0.8/0.8/0.8/0.2 p 0.8;
    stl10 symmetric_weak.yaml: 96 px, jitter 0.4/0.4/0.4/0.1; tiny asymmetric.yaml: 64 px, solarize 0 / 0.2;
    imagenet100 symmetric.yaml at 224 px, 8 crops (the paper's row)."""
    for ds in ("cifar10", "cifar100"):
        crops = crops_of(f"{ds}/frossl")
        assert len(crops) == 2 and all(c.size == 32 and list(c.scale) == [1.0, 1.0] and list(c.ratio) == [1.0, 1.0]
                                       and (c.brightness, c.contrast, c.saturation, c.hue, c.jitter_p, c.gray_p,
                                            c.solarize_p, c.flip_p) == (0.8, 0.8, 0.8, 0.2, 0.8, 0.2, 0.0, 0.5)
                                       for c in crops)
    crops = crops_of("stl10/frossl")
    assert len(crops) == 2 and all(c.size == 96 and list(c.scale) == [0.08, 1.0] and
                                   (c.brightness, c.contrast, c.saturation, c.hue) == (0.4, 0.4, 0.4, 0.1) for c in crops)
    crops = crops_of("tiny-imagenet/frossl")
    assert [c.size for c in crops] == [64, 64] and [c.solarize_p for c in crops] == [0.0, 0.2]
    crops = crops_of("imagenet-100/frossl")
    assert len(crops) == 8 and all(c.size == 224 and list(c.scale) == [0.08, 1.0] and c.interpolation == "bicubic"
                                   and (c.brightness, c.hue) == (0.8, 0.2) for c in crops)


@pytest.mark.parametrize("recipe", LEJEPA)
def test_lejepa_views(recipe):
    """README: 2 global crops 224 px at (0.3, 1), 6 local 98 px at (0.05, 0.3); flip 0.5, jitter (0.4, 0.4, 0.2, 0.1)
    p 0.8, grayscale 0.2, blur 0.5, solarize 0.2 on every crop."""
    crops = crops_of(recipe)
    assert [(c.size, list(c.scale)) for c in crops] == [(224, [0.3, 1.0])] * 2 + [(98, [0.05, 0.3])] * 6
    for c in crops:
        assert (c.flip_p, c.jitter_p, c.brightness, c.contrast, c.saturation, c.hue, c.gray_p, c.blur_p, c.solarize_p) == \
            (0.5, 0.8, 0.4, 0.4, 0.2, 0.1, 0.2, 0.5, 0.2)


def test_frossl_data_statistics():
    """solo/data/pretrain_dataloader.py MEANS_N_STD (the pretraining normalisation of each dataset)."""
    expected = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
                "stl10": ((0.4914, 0.4823, 0.4466), (0.247, 0.243, 0.261)),
                "tiny-imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}
    from zoo.catalog import dataset_info
    for ds, (mean, std) in expected.items():
        data = compose_recipe([f"experiment={ds}/frossl"]).data
        info = dataset_info(data.name)
        assert tuple(data.mean or info.mean) == pytest.approx(mean) and tuple(data.std or info.std) == pytest.approx(std), ds


# ---- linear protocols -----------------------------------------------------------------------------------
def test_frossl_cifar_probes_normalise_with_cifar10_statistics():
    """The fork's cifar_pipeline normalises both sets with CIFAR-10's statistics; the protocols' other values are
    test_scripts.LINEAR's (test_linear_script_resolves_to_its_protocol)."""
    for recipe in ("cifar10/frossl", "cifar100/frossl"):
        cfg = compose_linear([f"experiment={recipe}"])
        assert same_value(OmegaConf.to_object(cfg.linear.data), {"mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.243, 0.261]})


def test_recipes_carry_source_protocol_and_target_or_reason():
    for recipe in FROSSL + LEJEPA:
        cfg = compose_recipe([f"experiment={recipe}"])
        assert cfg.recipe.name == recipe and cfg.recipe.source and cfg.recipe.protocol
        assert cfg.recipe.targets or cfg.recipe.no_target, recipe
    (target,) = compose_recipe(["experiment=imagenet-100/frossl"]).recipe.targets
    assert (target.views, target.top1, target.epochs) == (8, 79.8, 400)


# ---- the timm ViT ---------------------------------------------------------------------------------------
def test_a_timm_vit_small_is_built_for_the_largest_crop_and_takes_smaller_ones():
    backbone = create_backbone(OmegaConf.structured(BackboneConfig(name="vit_small_patch16_224")), 224)
    assert backbone.num_features == 384 and backbone.pos_embed.shape[1] == 1 + 14 * 14
    with torch.no_grad():
        for size in (224, 98, 32):  # 98 px: zero-padded to 112 = 7 patches
            assert backbone(torch.randn(2, 3, size, size)).shape == (2, 384)
    small = create_backbone(OmegaConf.structured(BackboneConfig(name="vit_small_patch16_224")), 128)
    assert small.pos_embed.shape[1] == 1 + 8 * 8
    resnet = create_backbone(OmegaConf.structured(BackboneConfig(name="resnet18", small_stem="false")), 224)
    assert resnet.num_features == 512  # ResNets as before


@pytest.mark.slow
def test_the_vit_recipe_trains_two_steps_with_probe_and_spectrum(tiny_imagenet, tmp_path):
    """imagenet-100/lejepa_vit_small with its ViT-S/16, bf16 and 8 crops (sizes / 7: 32 and 14 px) on a tiny
    folder: the 384-wide features feed the online probe, k-NN and the spectrum diagnostics (validated at 32 px:
    at the recipe's 224, ViT-S's bf16 forward takes 30 s on a CPU)."""
    tiny = [o for o in TINY_RUN if not o.startswith(("backbone.name", "trainer.precision"))]
    cfg = compose_recipe(["experiment=imagenet-100/lejepa_vit_small", f"data.root={tiny_imagenet}", *tiny,
                          f"run_dir={tmp_path}", "checkpoint_every_n_steps=100"])
    cfg.data.views = [{**v, "size": v["size"] // 7} for v in OmegaConf.to_container(cfg.data.views)]
    model = pretrain(cfg)
    assert model.trained_steps == 2 and model.method.feature_dim == 384
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["global_batch_size"] == 8
    assert summary["effective_rank"] is not None and 0 < summary["effective_rank"] <= 384
    assert summary["linear_top1"] is not None


@pytest.mark.slow
def test_the_tiny_imagenet_frossl_recipe_trains_two_steps(tiny_imagenet, tmp_path):
    cfg = compose_recipe(["experiment=tiny-imagenet/frossl", f"data.root={tiny_imagenet}", *TINY_RUN,
                          f"run_dir={tmp_path}", "checkpoint_every_n_steps=100"])
    model = pretrain(cfg)
    assert model.trained_steps == 2
