from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import WMSE_ADAM
from zoo.losses import zero_cl_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method
from zoo.spectral import check_whitening, standardize, whiten


@register_method("zero_cl")
class ZeroCL(Method):
    """Zero-CL (Zhang et al., ICLR 2022), its instance-wise loss: each sample standardised over
    its features, the samples of each view ZCA-whitened over the features (N x N covariance,
    shrunk 0.9 Sigma + 0.1 I, eigenvalues + 1e-5, the matrix detached), and the squared distance
    of every sample's cross-view agreement C_ii = z1_i . z2_i / D from 1, summed over the batch.

    The paper has no official code; the zoo follows the CW-RGP repository's implementation
    (winci-ai/CW-RGP base/methods/zero_icl.py, the "Zero-CL (ICL)" row of the CW-RGP table).
    That file has the instance-wise term only, not the paper's feature-wise one, so neither
    does the zoo. Defaults: that repository's (base/cfg.py): projector 1024 (BN) -> 512, one
    projector call per view, Adam lr 3e-3 (its W-MSE-protocol scripts' value), weight decay 1e-6."""

    optimizer_defaults: ClassVar[dict] = WMSE_ADAM

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [1024])
        proj_out: int = 512
        eps: float = 0.1  # shrinkage (1 - eps) Sigma + eps I, the official 0.9 / 0.1
        ridge: float = 1e-5  # added to every eigenvalue, the official 1 / sqrt(S + 1e-5)

    @classmethod
    def check_batch(cls, config, global_batch_size):
        m = config
        check_whitening("zca", "channel", global_batch_size, m.proj_out, shrinkage=m.eps + m.ridge)

    def loss(self, views):
        return zero_cl_loss(*views, eps=self.mcfg.eps, ridge=self.mcfg.ridge)

    def transform(self, z):
        m = self.mcfg
        return whiten(standardize(z, "channel"), "zca", "channel", eps=m.eps, ridge=m.ridge, distributed=False)[0], "channel"
