from dataclasses import dataclass, field
from typing import ClassVar

from zoo.config import WMSE_ADAM
from zoo.losses import wmse_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method
from zoo.spectral import check_whitening, whiten


@register_method("wmse")
class WMSE(Method):
    """W-MSE (Ermolov et al., ICML 2021): Cholesky whitening of the batch, then the
    normalised MSE between every pair of views. Defaults: the official CIFAR recipe (htdt/self-supervised
    README commands and cfg.py): projector 1024 (BN) -> 64, sub-batches of 128 whitened, one whitening
    iteration, Adam lr 3e-3 (not scaled with the batch), weight decay 1e-6."""

    num_views = None  # 2 or 4 views in the paper; all pairs enter the loss
    joint_projector = True

    optimizer_defaults: ClassVar[dict] = WMSE_ADAM

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [1024])
        proj_out: int = 64
        w_size: int | None = 128  # whitening sub-batch; None = the whole (global) batch
        w_iter: int = 1
        eps: float = 0.0

    @classmethod
    def check_batch(cls, config, global_batch_size):
        check_whitening("cholesky", "batch", global_batch_size, config.proj_out, w_size=config.w_size)

    def loss(self, views):
        return wmse_loss(*views, w_size=self.mcfg.w_size, w_iter=self.mcfg.w_iter, eps=self.mcfg.eps)

    def transform(self, z):
        sub_batch = z[: self.mcfg.w_size or len(z)]
        return whiten(sub_batch, "cholesky", "batch", eps=self.mcfg.eps, distributed=False)[0], "batch"
