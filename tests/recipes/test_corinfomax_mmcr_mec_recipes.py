"""The CorInfoMax, MMCR and MEC recipes against their official code.

Every recipe is resolved as its script resolves it (`--cfg job`), then the method and its optimiser are
built as pretraining builds them (`zoo.build.build_method` on the meta device, `build_optimizer`), and the
values training uses are read back: each parameter group's lr at chosen steps (after batch scaling and
warmup), weight decay, LARS settings, the EMA momentum and MEC's lambda schedule, the global batch and its GPU
split, the projector / predictor layers, the stem, precision, SyncBN, and each crop's pipeline.

The expectations are written from the sources, each computed with the source's own formula:
- serdarozsoy/corinfomax-ssl: the README commands; cifars-tiny/ and imagenet*/ parsing_file*.py (defaults:
  warmup_epochs 10, warmup_start_lr 3e-3), optim_utils*.py (SGD over every parameter, lr not scaled),
  LRscheduler.py (LinearWarmupCosineAnnealingLR, stepped once after every epoch), model_base_*.py,
  transform_utils*.py.
- ThomasYerxa/mmcr: pretrain_imagenet.py / pretrain_cifar_stl.py defaults, mmcr/imagenet/{train,misc,models,data}.py
  (LARS, lr x batch / 256, composer's CosineAnnealingWithWarmupScheduler(t_warmup=10ep, alpha_f=0.001) per batch),
  mmcr/cifar_stl/{train,models,data}.py (Adam 1e-3, constant); the linear scripts' defaults.
- xinliu20/MEC: main_pretrain.py (lr x batch / 256, cosine_scheduler with np.linspace warmup, the teacher's
  cosine_scheduler(0.996, 1), lamda_scheduler, eps / d), mec/builder.py; benchmarks/linearprob/main_lincls.py.

CorInfoMax's per-epoch schedule is compared where the zoo's per-step one must meet it (the recipes' stated
deviation); MMCR's and MEC's per-step schedules are compared at every probed step.
"""

import itertools
import math

import numpy as np
import pytest
from recipe_helpers import (
    ALL_SCRIPTS,
    LINEAR,
    PRETRAIN_RECIPES,
    TINY_RUN,
    TRAIN_SIZE,
    Augment,
    check_crop,
    compose_recipe,
    constant_lr,
    hidden,
    layers,
    linear,
    probe_steps,
    resolved,
    stem,
    swav_lr,
    trained_with,
)
from torchvision.transforms import v2 as T

from zoo.data import eval_pipeline, resolved_views
from zoo.data.augment import applied_blur, expand_crops
from zoo.losses.coding_rate import mec_lambda
from zoo.pretrain import pretrain, split_global_batch

FAMILY = ("corinfomax", "mmcr", "mec")
RECIPES = sorted(r for r in PRETRAIN_RECIPES if r.split("/")[1].split("_")[0] in FAMILY)
BICUBIC, BILINEAR = T.InterpolationMode.BICUBIC, T.InterpolationMode.BILINEAR


def test_every_family_recipe_is_here_with_its_scripts():
    assert RECIPES == sorted(CORINFOMAX | MMCR | MEC)
    for recipe in RECIPES:
        assert f"pretrain/{recipe}" in ALL_SCRIPTS and f"linear/{recipe}" in ALL_SCRIPTS, recipe


# ---- the official augmentations -------------------------------------------------------------------------
JITTER_02 = (0.4, 0.4, 0.2, 0.1)
# corinfomax transform_utils*.py PretrainTransform and mmcr imagenet/data.py Barlow_Transform: bicubic crop 0.08-1,
# flip right after it, then jitter, grayscale, blur 1.0 / 0.1, solarization 0.0 / 0.2.
FB_ORDER = ("crop", "flip", "jitter", "gray", "blur")
ASYM_FLIP_FIRST = (Augment(JITTER_02, 0.2, ops=FB_ORDER), Augment(JITTER_02, 0.2, solarize_p=0.2, ops=(*FB_ORDER, "solarize")))
# mmcr cifar_stl/data.py: CifarBatchTransform (default bilinear crop, flip, jitter, gray) and StlBatchTransform
# (jitter and gray before a bicubic crop at 0.2-1, then flip); no blur in either.
MMCR_CIFAR = Augment((0.4, 0.4, 0.4, 0.1), 0.2, ops=("crop", "flip", "jitter", "gray"), interpolation=BILINEAR)
MMCR_STL = Augment((0.4, 0.4, 0.4, 0.1), 0.1, scale=(0.2, 1.0), ops=("jitter", "gray", "crop", "flip"), interpolation=BICUBIC)
# MEC main_pretrain.py augmentation1 / augmentation2: default (bilinear) crop at 0.2-1, jitter, gray, blur, [solarize], flip.
MEC_VIEWS = (Augment(JITTER_02, 0.2, scale=(0.2, 1.0), ops=("crop", "jitter", "gray", "blur", "flip"), interpolation=BILINEAR),
             Augment(JITTER_02, 0.2, scale=(0.2, 1.0), solarize_p=0.2, ops=("crop", "jitter", "gray", "blur", "solarize", "flip"),
                     interpolation=BILINEAR))


def relu_mlp(d_in, widths):
    """corinfomax model_base_*.py CovModel / CovModel6: Linear (bias) + ReLU per hidden layer, the last Linear without bias."""
    dims = [d_in, *widths]
    described = []
    for a, b in itertools.pairwise(dims[:-1]):
        described += [linear(a, b), "ReLU"]
    return described + [linear(dims[-2], dims[-1], bias=False)]


def bn_mlp(d_in, widths, last_bias=False):
    """Linear + BatchNorm + ReLU per hidden layer (a bias before the BN is cancelled by it), then the last Linear."""
    dims = [d_in, *widths]
    described = []
    for a, b in itertools.pairwise(dims[:-1]):
        described += hidden(a, b)
    return described + [linear(dims[-2], dims[-1], bias=last_bias)]


# ---- CorInfoMax -----------------------------------------------------------------------------------------
def corinfomax_epoch_lr(base, epochs, warmup=10, start=3e-3, eta_min=1e-6):
    """LRscheduler.py LinearWarmupCosineAnnealingLR after e scheduler.step() calls (one per epoch, after it), in its
    closed form: start + e (base - start) / (W - 1) during the warmup, then
    eta_min + (base - eta_min) (1 + cos(pi (e - W) / (E - W))) / 2."""
    def lr(e):
        if e < warmup:
            return start + e * (base - start) / (warmup - 1)
        return eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * (e - warmup) / (epochs - warmup)))
    return lr


CIM_SMALL = {"stem": (3, 1, 1, False, True), "crop": 32, "precision": "32-true", "sync_bn": False}  # model_base_resnet.py, one GPU
CORINFOMAX = {
    # recipe: README command values (and parser defaults they leave alone)
    "cifar10/corinfomax": dict(batch=512, gpus=1, epochs=1000, lr=0.5, warmup=10, eta_min=1e-6, wd=1e-4, alpha=250.0,
                               la=0.01, projector=relu_mlp(512, [2048, 2048, 64]), **CIM_SMALL),
    "cifar100/corinfomax": dict(batch=512, gpus=1, epochs=1000, lr=0.5, warmup=10, eta_min=1e-6, wd=1e-4, alpha=1000.0,
                                la=0.01, projector=relu_mlp(512, [4096, 4096, 128]), **CIM_SMALL),
    # ResNet-50 unmodified (7x7 stem, max-pool) at 64 px; evaluation resize int(64 x 8/7) = 73 bicubic.
    "tiny-imagenet/corinfomax": {"batch": 1024, "gpus": 1, "epochs": 800, "lr": 0.5, "warmup": 10, "eta_min": 1e-6, "wd": 1e-4, "alpha": 500.0,
                                     "la": 0.1, "projector": relu_mlp(2048, [4096, 4096, 128]), "stem": (7, 2, 3, True, True), "crop": 64,
                                     "precision": "32-true", "sync_bn": False, "eval_resize": 73},
    "imagenet-100/corinfomax": {"batch": 1024, "gpus": 8, "epochs": 400, "lr": 1.0, "warmup": 10, "eta_min": 5e-3, "wd": 1e-4, "alpha": 500.0,
                                    "la": 0.01, "projector": relu_mlp(512, [4096, 4096, 128]), "stem": (7, 2, 3, True, True), "crop": 224,
                                    "precision": "32-true", "sync_bn": True},
    "imagenet-100/corinfomax_resnet50": {"batch": 1024, "gpus": 8, "epochs": 200, "lr": 1.0, "warmup": 5, "eta_min": 5e-3, "wd": 1e-4,
                                             "alpha": 500.0, "la": 0.01, "projector": relu_mlp(2048, [4096, 4096, 128]),
                                             "stem": (7, 2, 3, True, True), "crop": 224, "precision": "32-true", "sync_bn": True},
    # imagenet1k model_base_resnet_bn.py CovModel6: BatchNorm hidden layers; --amp; --batch_size 1536 over 8 processes.
    "imagenet/corinfomax": {"batch": 1536, "gpus": 8, "epochs": 100, "lr": 0.2, "warmup": 10, "eta_min": 1e-6, "wd": 1e-4, "alpha": 2000.0,
                                "la": 0.1, "projector": bn_mlp(2048, [8192, 8192, 512]), "stem": (7, 2, 3, True, True), "crop": 224,
                                "precision": "16-mixed", "sync_bn": True},
}


def check_views(cfg, model, views, crop):
    """Each crop's torchvision pipeline against the source's (as test_baseline_method_recipes checks the baselines')."""
    assert tuple(model.crop_sizes) == (crop,) * len(views)
    crops = expand_crops(resolved_views(cfg.data))
    for group, expected in zip(crops, views, strict=True):
        check_crop(group, expected, crop)
    return crops


def check_blur(crops, expected):
    """PIL GaussianBlur(radius ~ U(0.1, 2.0)) with each crop's probability, as every one of these sources draws it."""
    blurs = [applied_blur(group) for group in crops]
    assert tuple(blur.p for blur in blurs) == expected
    for blur in blurs:
        assert blur.sigma == (0.1, 2.0) and blur.effective_sigma == pytest.approx(blur.sigma, rel=0.03), blur


def published(recorded, recipe, tmp_path):
    """The config the pretraining script resolves to, on the published run's GPUs, its global batch split as training does."""
    cfg = resolved(recorded, f"pretrain/{recipe}", tmp_path)
    cfg.trainer.devices, cfg.trainer.num_nodes = cfg.recipe.paper_gpus, cfg.recipe.paper_nodes
    gpus = cfg.trainer.devices * cfg.trainer.num_nodes
    cfg.data.batch_size = split_global_batch(cfg.data.global_batch_size, gpus)
    return cfg, gpus


def group_lr(optimizer, scheduler, index, step):
    return optimizer.param_groups[index]["initial_lr"] * scheduler.lr_lambdas[index](step)


@pytest.mark.parametrize("recipe", sorted(CORINFOMAX))
def test_corinfomax_recipe_trains_with_the_official_values(recipe, recorded, tmp_path):
    official = CORINFOMAX[recipe]
    cfg, gpus = published(recorded, recipe, tmp_path)
    assert (cfg.data.global_batch_size, gpus, cfg.trainer.max_epochs) == (official["batch"], official["gpus"], official["epochs"])
    assert cfg.data.batch_size * gpus == official["batch"]
    epochs = official["epochs"]
    spe = TRAIN_SIZE[recipe.split("/")[0]] // official["batch"]  # drop_last=True in every CorInfoMax loader
    model, optimizer, scheduler, roles = trained_with(cfg, spe)

    # optim_utils*.py: torch SGD over model.parameters(), momentum 0.9, weight decay on every parameter, lr as given.
    assert type(optimizer).__name__ == "SGD" and all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    official_lr = corinfomax_epoch_lr(official["lr"], epochs, official["warmup"], 3e-3, official["eta_min"])
    warmup = official["warmup"]
    for role in ("weights", "norms"):
        (index,) = roles[role]
        group = optimizer.param_groups[index]
        assert group["initial_lr"] == pytest.approx(official["lr"], rel=1e-12), "the lr is not scaled with the batch"
        assert group["weight_decay"] == pytest.approx(official["wd"], rel=1e-12)
        assert group_lr(optimizer, scheduler, index, 0) == pytest.approx(official_lr(0), rel=1e-9)  # 3e-3
        # After the warmup the zoo's per-step cosine meets the official per-epoch one at each epoch's first step.
        for e in sorted({warmup, warmup + 1, warmup + 7, epochs // 2, epochs - 1}):
            assert group_lr(optimizer, scheduler, index, e * spe) == pytest.approx(official_lr(e), rel=1e-9), e
        # During the warmup the zoo ramps per step; it stays within one epoch of the official ramp.
        for e in range(warmup):
            low, high = official_lr(max(e - 1, 0)), official_lr(min(e + 1, warmup - 1))
            for s in (e * spe, e * spe + spe // 2, (e + 1) * spe - 1):
                assert low * (1 - 1e-12) <= group_lr(optimizer, scheduler, index, s) <= high * (1 + 1e-12), (e, s)
    assert cfg.recipe.deviation and "per epoch" in cfg.recipe.deviation
    assert not model.momentum_target

    # The loss as the README command sets it (loss.py CovarianceLoss / CovarianceLossv2, --normalize_on).
    m = model.mcfg
    assert (m.sim_weight, m.cov_weight, m.init_scale, m.cov_forgetting, m.mean_forgetting, m.eps, m.normalize) == (
        official["alpha"], 1.0, 1.0, official["la"], official["la"], 1e-8, True)
    assert tuple(model.running_cov.shape) == (2, m.proj_out, m.proj_out)
    assert layers(model.projector) == official["projector"]

    crops = check_views(cfg, model, ASYM_FLIP_FIRST, official["crop"])
    check_blur(crops, (1.0, 0.1))
    assert stem(tuple(cfg.backbone.items()), official["crop"]) == official["stem"]
    assert (cfg.trainer.precision, cfg.trainer.sync_batchnorm) == (official["precision"], official["sync_bn"])
    if "eval_resize" in official:  # EvalTransform: Resize(int(size x 8/7), bicubic), CenterCrop(size)
        resize = next(t for t in eval_pipeline(cfg.data).transforms if isinstance(t, T.Resize))
        assert resize.size in (official["eval_resize"], [official["eval_resize"]])


def test_corinfomax_normalisation_is_the_official_codes():
    """transform_utils.py: the CIFAR statistics it writes out (CIFAR-10's std 0.247, 0.243, 0.261), ImageNet's for Tiny."""
    stats = {"cifar10/corinfomax": ([0.4914, 0.4822, 0.4465], [0.247, 0.243, 0.261]),
             "cifar100/corinfomax": ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]),
             "tiny-imagenet/corinfomax": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}
    for recipe, (mean, std) in stats.items():
        cfg = compose_recipe([f"experiment={recipe}"])
        assert (list(cfg.data.mean), list(cfg.data.std)) == (mean, std), recipe


# ---- MMCR and MEC: per-step schedules -------------------------------------------------------------------
def composer_warmup_cosine(base, warmup_epochs=10, alpha_f=0.001):
    """composer CosineAnnealingWithWarmupScheduler, per batch ('10ep' is converted to batches): t / t_warmup during
    the warmup, then alpha_f + (1 - alpha_f) (1 + cos(pi (t - t_warmup) / (t_max - t_warmup))) / 2, times the lr."""
    def lr(s, spe, total):
        w = warmup_epochs * spe
        if s < w:
            return base * s / w
        return base * (alpha_f + (1 - alpha_f) * 0.5 * (1 + math.cos(math.pi * (s - w) / (total - w))))
    return lr


# MEC main_pretrain.py cosine_scheduler is SwAV's lr_schedule (np.linspace warm-up, both ends included, then cosine).


MMCR_SMALL = {"gpus": 1, "epochs": 500, "batch": 32, "optimizer": "Adam", "lr_fn": constant_lr(1e-3), "wd": 1e-6, "wd_norms": 1e-6, "lars": None,
                  "projector": bn_mlp(2048, [512, 128]), "stem": (3, 1, 1, False, False), "precision": "32-true", "sync_bn": False}
MMCR = {
    # pretrain_cifar_stl.py defaults; train.py: Adam(model.parameters(), lr, weight_decay=1e-6), no scheduler.
    "cifar10/mmcr": dict(**MMCR_SMALL, views=(MMCR_CIFAR,) * 40, crop=32, blur=(0.0,) * 40),
    "cifar100/mmcr": dict(**MMCR_SMALL, views=(MMCR_CIFAR,) * 40, crop=32, blur=(0.0,) * 40),
    "stl10/mmcr": dict(**MMCR_SMALL, views=(MMCR_STL,) * 40, crop=64, blur=(0.0,) * 40),
    # pretrain_imagenet.py defaults (4 nodes x 4 GPUs, batch 2048, lr 0.6 x batch/256), train.py's LARS and scheduler.
    "imagenet/mmcr": {"gpus": 16, "epochs": 100, "batch": 2048, "optimizer": "FBLars", "lr_fn": composer_warmup_cosine(0.6 * 2048 / 256),
                          "wd": 1e-6, "wd_norms": 0.0, "lars": (0.001, False), "projector": bn_mlp(2048, [8192, 8192, 512]),
                          "stem": (7, 2, 3, True, True), "precision": "16-mixed", "sync_bn": True, "views": ASYM_FLIP_FIRST, "crop": 224,
                          "blur": (1.0, 0.1)},
}
MEC = {
    # main_pretrain.py defaults on 8 GPUs (README), builder.py's heads.
    "imagenet/mec": {"gpus": 8, "epochs": 100, "batch": 1024, "optimizer": "SGD", "lr_fn": swav_lr(0.5 * 1024 / 256, start=0.0, final=0.0),
                         "wd": 1e-5, "wd_norms": 1e-5, "lars": None,
                         "projector": bn_mlp(2048, [2048, 2048, 2048]) + ["BN 2048 no affine"],
                         "predictor": bn_mlp(2048, [512, 2048], last_bias=True),
                         "stem": (7, 2, 3, True, True), "precision": "32-true", "sync_bn": True, "views": MEC_VIEWS, "crop": 224,
                         "blur": (1.0, 0.1)},
}


@pytest.mark.parametrize("recipe", sorted(MMCR | MEC))
def test_mmcr_and_mec_recipes_train_with_the_official_values(recipe, recorded, tmp_path):
    official = (MMCR | MEC)[recipe]
    cfg, gpus = published(recorded, recipe, tmp_path)
    assert (cfg.data.global_batch_size, gpus, cfg.trainer.max_epochs) == (official["batch"], official["gpus"], official["epochs"])
    spe = TRAIN_SIZE[recipe.split("/")[0]] // official["batch"]  # drop_last (the CIFAR / STL loaders keep a last partial batch)
    total = spe * official["epochs"]
    model, optimizer, scheduler, roles = trained_with(cfg, spe)
    assert type(optimizer).__name__ == official["optimizer"]
    if official["optimizer"] == "Adam":
        assert all(g["betas"] == (0.9, 0.999) for g in optimizer.param_groups)
    else:
        assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    if official["lars"]:  # misc.py LARS: eta 0.001, no clipping; 1-D parameters neither decayed nor adapted
        assert all((g["trust_coeff"], g.get("trust_clip", False)) == official["lars"] for g in optimizer.param_groups)

    steps = probe_steps(spe, total)
    expected_roles = {"weights": official["wd"], "norms": official["wd_norms"]}
    if "predictor" in official:
        expected_roles["predictor"] = official["wd"]
    for role, weight_decay in expected_roles.items():
        (index,) = roles[role]
        group = optimizer.param_groups[index]
        zoo = [group_lr(optimizer, scheduler, index, s) for s in steps]
        source = [official["lr_fn"](s, spe, total) for s in steps]
        wrong = [(s, z, o) for s, z, o in zip(steps, zoo, source) if not math.isclose(z, o, rel_tol=1e-9, abs_tol=1e-15)]
        assert not wrong, f"{recipe} {role}: (step, zoo lr, official lr) {wrong[:4]}"
        assert group["weight_decay"] == pytest.approx(weight_decay, rel=1e-12), role
        assert not group["fixed_lr"], role
        if official["lars"]:
            assert (group["weight_decay"] != 0 or group["always_adapt"]) == (role != "norms"), role

    assert layers(model.projector) == official["projector"]
    if "predictor" in official:
        assert layers(model.predictor) == official["predictor"]
    crops = check_views(cfg, model, official["views"], official["crop"])
    check_blur(crops, official["blur"])
    assert stem(tuple(cfg.backbone.items()), official["crop"]) == official["stem"]
    assert (cfg.trainer.precision, cfg.trainer.sync_batchnorm) == (official["precision"], official["sync_bn"])

    if recipe.endswith("/mmcr"):
        assert model.mcfg.lambd == 0.0 and not model.momentum_target
        if recipe.startswith("imagenet/"):  # the default objective's momentum encoder is the recipe's stated deviation
            assert "MMCR_Momentum" in cfg.recipe.deviation
        return
    # MEC: the teacher, cosine_scheduler(0.996, 1, epochs, iters) with no warmup: 1 + (0.996 - 1) (1 + cos(pi s / T)) / 2.
    for s in (0, 1, total // 3, total // 2, total - 1):
        assert model.target.momentum(s, total) == pytest.approx(1 + 0.5 * (0.996 - 1) * (1 + math.cos(math.pi * s / total)), rel=1e-12)
    # lamda = 1 / (m eps / d), d = --dim 2048, m = the global batch; lamda_scheduler: linspace(8/lamda, 1/lamda, W), then 1/lamda.
    lamda = 1 / (official["batch"] * 64 / 2048)
    assert mec_lambda(model.mcfg.proj_out, model.global_batch_size, model.mcfg.eps) == pytest.approx(lamda, rel=1e-12)
    w = 10 * spe
    ramp = np.linspace(8 / lamda, 1 / lamda, w)
    for s in (0, 1, w // 2, w - 1, w, w + 5, total - 1):
        expected = ramp[s] if s < w else 1 / lamda
        assert model.lambda_inverse(step=s, steps_per_epoch=spe) == pytest.approx(expected, rel=1e-9), s
    assert model.mcfg.order == 4
    assert not model.projector[-2].bias.requires_grad  # builder.py: fc[6].bias.requires_grad = False


def test_mmcr_cifar100_uses_the_cifar10_statistics_as_the_official_loader():
    """cifar_stl/data.py CifarBatchTransform normalises every CIFAR with (0.4914, ...) / (0.2023, 0.1994, 0.2010)."""
    for recipe in ("cifar10/mmcr", "cifar100/mmcr"):
        cfg = compose_recipe([f"experiment={recipe}"])
        assert (list(cfg.data.mean), list(cfg.data.std)) == ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.201]), recipe


# ---- the linear protocols -------------------------------------------------------------------------------
# The linear protocols: test_scripts.LINEAR (the official probes, where each value comes from).


@pytest.mark.parametrize("recipe", ["cifar10/corinfomax", "cifar100/corinfomax"])
def test_corinfomax_cifar_probe_evaluates_at_36_px(recipe, recorded, tmp_path):
    """The protocols themselves are test_scripts.LINEAR's (test_linear_script_resolves_to_its_protocol)."""
    cfg = resolved(recorded, f"linear/{recipe}", tmp_path)
    assert cfg.data.eval_resize_ratio == pytest.approx(36 / 32)


def test_targets_are_the_readmes_numbers():
    """The README tables: corinfomax-ssl's linear evaluation results and MEC's 100-epoch model; MMCR's README has none."""
    expected = {"cifar10/corinfomax": 93.18, "cifar100/corinfomax": 71.61, "tiny-imagenet/corinfomax": 54.86,
                "imagenet-100/corinfomax": 80.48, "imagenet-100/corinfomax_resnet50": 82.64, "imagenet/corinfomax": 69.08,
                "imagenet/mec": 70.8}
    for recipe in RECIPES:
        cfg = compose_recipe([f"experiment={recipe}"])
        linear_name = LINEAR[recipe]["linear.name"]
        if recipe in expected:
            (target,) = cfg.recipe.targets
            assert (target["top1"], target["protocol"], target["epochs"]) == (expected[recipe], linear_name, cfg.trainer.max_epochs)
            assert target["method"] == cfg.method.name
        else:
            assert not cfg.recipe.targets and "README" in cfg.recipe.no_target


# ---- two training steps ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_imagenet_corinfomax_runs_two_steps(tiny_imagenet, tmp_path):
    """The folder recipe test_scripts does not run (its two-step test takes imagenet/ and imagenet-100/ recipes)."""
    cfg = compose_recipe(["experiment=tiny-imagenet/corinfomax", f"data.root={tiny_imagenet}", *TINY_RUN, f"run_dir={tmp_path}",
                          "checkpoint_every_n_steps=100"])
    model = pretrain(cfg)
    assert model.trained_steps == 2
    assert bool(model.method.running_cov.isfinite().all())
