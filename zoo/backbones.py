"""timm backbones by name, with the small-image stem for 32x32-class data and the optional whitening layer after
their pooled features."""

import timm
from torch import nn

from zoo.errors import ZooError
from zoo.nn.whitening import WhiteningLayer

SMALL_IMAGE_MAX = 64  # crops at or below this size get the small-image stem when small_stem=auto
# oneDNN's NHWC convolutions beat NCHW on the CPU from this crop size on (ResNet-18, batch 64, AVX2 kernels,
# 2 threads: 0.91x the NCHW step at 32 px, 1.08x at 16 px; benchmarks/step_time.py --channels-last on/off)
CPU_CHANNELS_LAST_MIN = 32


def wants_small_stem(setting, crop_size):
    if setting == "auto":
        return crop_size <= SMALL_IMAGE_MAX
    if isinstance(setting, bool):
        return setting
    if str(setting).lower() in ("true", "false"):
        return str(setting).lower() == "true"
    raise ZooError(f"backbone.small_stem must be auto, true or false, not '{setting}'")


def wants_channels_last(device_type, crop_size):
    """NHWC model and crops: always on CUDA (tensor cores), on the CPU only where oneDNN gains from it."""
    return device_type == "cuda" or crop_size >= CPU_CHANNELS_LAST_MIN


VIT_PREFIXES = ("vit_", "deit_", "deit3_")  # timm's VisionTransformer family


def is_vit(name):
    return name.startswith(VIT_PREFIXES)


def vit_kwargs(crop_size):
    """A timm ViT for multi-crop: position embeddings laid out for the largest training crop (`img_size`), and
    any smaller crop accepted (`dynamic_img_size`: the embeddings interpolated to its patch grid;
    `dynamic_img_pad`: a crop that is not a whole number of patches is zero-padded to one, e.g. 98 px -> 7 x 16)."""
    return {"img_size": crop_size, "dynamic_img_size": True, "dynamic_img_pad": True}


def create_backbone(cfg, crop_size):
    """A timm model without classifier head (features after global pooling).

    `cfg` is the `backbone` config node; `crop_size` is the largest training crop (a ViT's `img_size`).
    """
    try:
        kwargs = {"zero_init_last": cfg.zero_init_residual} if cfg.name.startswith(("resnet", "resnext", "wide_resnet")) else {}
        if is_vit(cfg.name):
            kwargs = vit_kwargs(crop_size)
        model = timm.create_model(cfg.name, pretrained=False, num_classes=0, **kwargs)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ZooError(f"unknown timm backbone '{cfg.name}' (see timm.list_models(), e.g. resnet18, resnet50)") from None
        raise
    if wants_small_stem(cfg.small_stem, crop_size):
        if not (hasattr(model, "conv1") and hasattr(model, "maxpool")):
            if cfg.small_stem != "auto":
                raise ZooError(f"backbone.small_stem=true needs a ResNet-style stem (conv1 + maxpool); '{cfg.name}' has none")
            return model
        # CIFAR-style stem: keep spatial resolution for 32x32 inputs.
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, stride=1, padding=cfg.small_stem_padding, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        if not cfg.small_stem_maxpool:
            model.maxpool = nn.Identity()
    return with_whitening_layer(model, cfg)


# ---- the whitening layer (backbone.whitening_layer) -------------------------------------------------------
def classifier_name(model):
    """The attribute path of a timm model's classifier ("fc" for a ResNet, "head" for a ViT, "head.fc" for a
    ConvNeXt): an Identity in a backbone built with num_classes=0, the last module of its forward."""
    return model.pretrained_cfg.get("classifier") or "fc"


def set_classifier(model, module):
    """Put `module` in the classifier's place of the timm `model` (`classifier_name`); return what was there."""
    parent_name, _, attribute = classifier_name(model).rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    before = getattr(parent, attribute, None)
    setattr(parent, attribute, module)
    return before


def with_whitening_layer(model, cfg):
    """`model` with the whitening layer of `cfg` (a backbone config) in its classifier's place, so that it is the
    backbone's last operation for every caller (training, the probe, k-NN, evaluations, the EMA target's copy), and
    its running statistics are backbone.<classifier>.running_mean / running_matrix in the state dict."""
    kind = str(getattr(cfg, "whitening_layer", "none"))
    if kind == "none":
        return model
    layer = WhiteningLayer(model.num_features, kind, cfg.whitening_iters, cfg.whitening_eps, cfg.whitening_momentum,
                           cfg.whitening_groups)
    if not isinstance(set_classifier(model, layer), nn.Identity):
        raise ZooError(f"backbone.whitening_layer={kind}: {cfg.name} has no classifier slot '{classifier_name(model)}' "
                       "left empty by num_classes=0 to put the layer in")
    return model


def whitening_layer(model):
    """The backbone's `WhiteningLayer`, or None."""
    return next((module for module in model.modules() if isinstance(module, WhiteningLayer)), None)


def check_whitening_layer(cfg, batch_size, dim):
    """ZooError when the layer of `cfg` cannot whiten batches of `batch_size` samples of `dim` features in training:
    exact ZCA needs more samples than features per group (the covariance of N centred samples has rank N - 1; eps
    alone would leave its null directions scaled by eps^-1/2 and the eigendecomposition's gradient undefined on
    their repeated eigenvalue). IterNorm never inverts and takes any batch."""
    if str(getattr(cfg, "whitening_layer", "none")) != "zca":
        return
    per_group = dim // cfg.whitening_groups
    if batch_size <= per_group:
        raise ZooError(
            f"backbone.whitening_layer=zca cannot whiten {per_group} features per group from batches of {batch_size} "
            f"samples (their covariance has rank {batch_size - 1} at most): raise the batch above {per_group}, set "
            f"backbone.whitening_groups so that {dim} / groups < {batch_size}, or use backbone.whitening_layer=iternorm"
        )


def build_mlp(in_dim, hidden, out_dim, hidden_bias=True, last_bias=True, last_bn=False, hidden_bn=True, activation=None):
    """Projector / predictor: [Linear, BN, activation] per hidden width ([Linear, activation] without `hidden_bn`;
    `activation()` makes one, default ReLU), then Linear (and BN without affine)."""
    activation = activation or (lambda: nn.ReLU(inplace=True))
    layers = []
    for width in hidden:
        norm = [nn.BatchNorm1d(width)] if hidden_bn else []
        layers += [nn.Linear(in_dim, width, bias=hidden_bias), *norm, activation()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim, bias=last_bias))
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)
