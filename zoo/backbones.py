"""timm backbones by name, with the small-image stem for 32x32-class data."""

import timm
from torch import nn

from zoo.errors import ZooError

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
    return model


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
