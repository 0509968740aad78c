"""The closed sets of names the config takes, one enum each.

The schema (zoo.config, the method Configs) types its fields with them, so OmegaConf rejects
`scheduler.name=cosin` when the config is composed; the torch-free check of the command line
(zoo.arguments.NAMES) reads the same enums and says the same line (`not_one_of`).

Each is a `StrEnum` whose member names are its values: OmegaConf reads a config's string by
member name, and a member is the string itself wherever it is compared, formatted or written
as JSON (`OmegaConf.to_container(..., enum_to_str=True)` where a value leaves the process as a
plain string: checkpoint hyper-parameters, YAML).
"""

from enum import StrEnum

from zoo.errors import ZooError


class Optimizer(StrEnum):
    """optimizer.name: the optimisers of zoo.optim.make_optimizer."""

    sgd = "sgd"
    lars = "lars"  # solo-learn's (timm's) LARS, optionally clipped
    lars_fb = "lars_fb"  # facebookresearch/barlowtwins and vicreg
    lars_google = "lars_google"  # google-research/simclr
    adam = "adam"
    adamw = "adamw"


# The LARS variants without LARC's clipping (optimizer.lars_clip=true is refused with them).
UNCLIPPED_LARS = (Optimizer.lars_fb, Optimizer.lars_google)


class Schedule(StrEnum):
    """scheduler.name: the lr after warm-up (zoo.optim.lr_factor_schedule)."""

    cosine = "cosine"
    step = "step"
    constant = "constant"


class ScheduleInterval(StrEnum):
    """scheduler.interval: how often the lr changes."""

    step = "step"
    epoch = "epoch"


class WarmupRule(StrEnum):
    """scheduler.warmup_rule (zoo.optim.WARMUP_RULES)."""

    next = "next"
    from_zero = "from_zero"
    endpoints = "endpoints"


class Loader(StrEnum):
    """data.loader: auto = DALI for folder data sets when it is installed, else torchvision."""

    auto = "auto"
    dali = "dali"
    torchvision = "torchvision"


class CorruptImages(StrEnum):
    """data.corrupt_images: what an image that cannot be decoded does."""

    skip = "skip"
    stop = "stop"


class Interpolation(StrEnum):
    """The resize interpolation of a crop (data.views[].interpolation, linear.crop_interpolation)."""

    bicubic = "bicubic"
    bilinear = "bilinear"
    nearest = "nearest"


class LinearProtocol(StrEnum):
    """linear.protocol (zoo.eval.linear)."""

    precomputed = "precomputed"
    frozen = "frozen"
    finetune = "finetune"


class LinearOptimizer(StrEnum):
    """linear.optimizer."""

    adam = "adam"
    sgd = "sgd"
    lars = "lars"


class LinearSchedule(StrEnum):
    """linear.schedule: the lr per epoch."""

    exponential = "exponential"
    step = "step"
    cosine = "cosine"
    constant = "constant"


class WhiteningAxis(StrEnum):
    """What a whitening whitens (zoo.spectral; INTL's `method.axis`)."""

    batch = "batch"
    channel = "channel"


class BackboneWhitening(StrEnum):
    """backbone.whitening_layer: a whitening layer after the backbone's pooled features (zoo.backbones), or none."""

    none = "none"
    iternorm = "iternorm"  # IterNorm (Huang et al., CVPR 2019), as kaland313/SSL-Whitening adds it
    zca = "zca"  # exact ZCA (eigendecomposition): needs more samples than features per group


class Representation(StrEnum):
    """What an auxiliary regulariser reads (zoo.regularizers): the backbone's features of the crops, or the
    projector's outputs (LDReg's lid_type f / z)."""

    features = "features"
    embeddings = "embeddings"


class LIDReduction(StrEnum):
    """How LDReg pools its per-sample term over the views (zoo.losses.local_dimension.ldreg_loss): joint (the
    official SimCLR criterion: the views as one batch, one mean) or per_view (BYOL's: each view against every view
    and the momentum encoder's, the views' means summed)."""

    joint = "joint"
    per_view = "per_view"


class ZeroCLMode(StrEnum):
    """Zero-CL's `method.mode` (Sherrylone/Zero-CL ImageNet-100/main.py --mode): fea = Zero-FCL, each feature
    standardised and the D x D feature covariance whitened; ins = Zero-ICL, each sample standardised and the N x N
    sample covariance whitened."""

    fea = "fea"
    ins = "ins"


class Tracker(StrEnum):
    """`logger` (a name or a list of them): csv is always on; naming it alone is the default."""

    csv = "csv"
    wandb = "wandb"
    tensorboard = "tensorboard"


def not_one_of(key, value, names):
    """The one line for a `key=value` outside `names` (an enum of this module)."""
    return f"{key}={value} is not one of: {', '.join(names)}"


def checked(key, value, names):
    """`value` as a member of `names`, or the ZooError of `not_one_of`."""
    if not isinstance(value, str) or value not in tuple(names):
        raise ZooError(not_one_of(key, value, names))
    return names(value)
