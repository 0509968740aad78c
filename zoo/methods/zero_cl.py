from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import FB_LARS
from zoo.losses import zero_cl_axis, zero_cl_loss, zero_cl_whiten
from zoo.methods.base import Method, MethodConfig
from zoo.names import ZeroCLMode
from zoo.registry import register_method
from zoo.spectral import check_whitening


@register_method("zero_cl")
class ZeroCL(Method):
    """Zero-CL (Zhang et al., ICLR 2022, "Zero-CL: Instance and Feature decorrelation for negative-free symmetric
    contrastive learning"): each view's projections standardised and ZCA-whitened along one axis, and the squared
    distance of each diagonal entry of the two views' cross-correlation from 1, summed (`zoo.losses.zero_cl_loss`):

        fea (Zero-FCL): C_kk = sum_i Z1_ik Z2_ik / N over the D features,   ins (Zero-ICL): C_ii = sum_k Z1_ik Z2_ik / D

    Official code: Sherrylone/Zero-CL. The class defaults are its ImageNet-100/main.py (the one script with both
    losses, `--mode fea` by default): standardisation by the unbiased std + 1e-4, the covariance / m with its
    eigenvalues + 0.01 and no shrinkage, the ZCA matrix detached, each GPU whitening its own batch and the
    agreements averaged over GPUs (`per_device_norm`); projector 8192-8192-8192 without biases; each view through
    backbone and projector on its own (SyncBatchNorm); LARS (FB's, trust 0.02, no clipping, biases and BatchNorm
    without decay or adaptation) lr 0.3 x batch / 256, biases and BatchNorm 0.0048 x batch / 256, weight decay
    1e-6. Loss value and input gradient equal its fea_loss / ins_loss to 1e-10 in float64, also on two gloo
    ranks (tests/methods/test_zero_cl.py, tests/fixtures/zero_cl_official_reference.json).

    Its cifar/main.py (feature-wise only) standardises with BatchNorm1d(affine=False) and whitens, with `--whiten
    true`, (cov / (N - 1)) shrunk 0.9 / 0.1 with eigenvalues + 1e-5: the cifar*/zero_cl_official recipes set those
    fields. The CW-RGP repository's re-implementation (winci-ai/CW-RGP base/methods/zero_icl.py, the "Zero-CL (ICL)"
    row of its table, which the zoo followed before) is mode ins with the CIFAR whitening (cov / (D - 1), 0.9 / 0.1,
    + 1e-5), no epsilon on the std and the global batch: the CW-RGP table's recipes (cifar10/zero_cl, ...) set it.
    On the fixture's inputs (docs/spectral_family.md) it differs from the official ins loss by 1.3-1.9% in value
    and 39-70% in input gradient, almost all of it the shrinkage. Not implemented: cifar/main.py's optional off-diagonal term (`--off
    true`, off by default and in its README command). Where the official code runs under fp16 autocast (CIFAR), the
    zoo's loss runs in float32."""

    # ImageNet-100/main.py: LARS(lr=0, weight_decay 1e-6, eta 0.02, exclude_bias_and_norm for both filters), lr of the
    # weights 0.3 x batch/256 and of the biases / BatchNorm 0.0048 x batch/256 (0.016 x the weights').
    optimizer_defaults: ClassVar[dict] = {**FB_LARS, "lr": 0.3, "lars_eta": 0.02, "bias_lr_factor": 0.0048 / 0.3}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [8192, 8192])  # --projector 8192-8192-8192
        proj_out: int = 8192
        proj_hidden_bias: bool = False  # nn.Linear(..., bias=False) before each BatchNorm
        proj_last_bias: bool = False
        mode: ZeroCLMode = ZeroCLMode.fea  # --mode: fea (Zero-FCL) | ins (Zero-ICL)
        whitening: bool = True  # ImageNet-100: always; cifar/main.py: --whiten (default false)
        std_ddof: int = 1  # torch.std (unbiased); cifar/main.py's BatchNorm1d(affine=False): 0
        std_eps: float = 1e-4  # added to the std (sigma + 1e-4); cifar/main.py and CW-RGP: 0
        var_eps: float = 0.0  # added to the variance under the root; cifar/main.py's BatchNorm1d: 1e-5
        cov_ddof: int = 0  # the whitened covariance / (m - cov_ddof); cifar/main.py and CW-RGP: 1
        eps: float = 0.0  # shrinkage (1 - eps) Sigma + eps I; cifar/main.py and CW-RGP: 0.1 (their 0.9 / 0.1)
        ridge: float = 0.01  # added to every eigenvalue (WhitenTran's eps 0.01); cifar/main.py and CW-RGP: 1e-5
        # true: each device standardises and whitens its own batch, the agreements averaged over devices (the
        # official DDP code); false: the global batch (CW-RGP's one-GPU runs). The same on one device.
        per_device_norm: bool = True

    @classmethod
    def check_batch(cls, config, global_batch_size):
        m = config
        if m.whitening:
            check_whitening("zca", zero_cl_axis(m.mode), global_batch_size, m.proj_out, shrinkage=m.eps + m.ridge)

    def loss(self, views):
        return zero_cl_loss(*views, **whitening_settings(self.mcfg), per_device_norm=self.mcfg.per_device_norm)

    def transform(self, z):
        return zero_cl_whiten(z, **whitening_settings(self.mcfg)), zero_cl_axis(self.mcfg.mode)


def whitening_settings(m) -> dict:
    """The config's values of `zero_cl_whiten`, which the loss and the transformed-output diagnostic share."""
    return {"mode": m.mode.value, "whitening": m.whitening, "std_ddof": m.std_ddof, "std_eps": m.std_eps,
            "var_eps": m.var_eps, "cov_ddof": m.cov_ddof, "eps": m.eps, "ridge": m.ridge}
