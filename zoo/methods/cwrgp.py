from dataclasses import dataclass

import torch

from zoo.losses import cwrgp_loss, off_diagonal
from zoo.methods.base import FIRST_STEP, largest_crops
from zoo.methods.wmse import WMSE
from zoo.registry import register_method
from zoo.spectral import check_whitening, covariance, whiten


@register_method("cwrgp")
class CWRGP(WMSE):
    """CW-RGP (Weng et al., NeurIPS 2022): ZCA whitening over the channels of each
    sub-batch, with the channels split into random groups per view; normalised MSE
    over all view pairs. The ImageNet recipe adds a covariance penalty on the
    un-whitened projector output (`cov_w`) for the first `cov_stop` epochs
    (official ImageNet/methods/cwrgp.py). Defaults: the official CIFAR recipe. Built on
    W-MSE's training as the official code is (views, joint projector, Adam, sub-batches).
    Loss parts (logged as train/loss/<part>) when cov_w is set: mse (the whitened nMSE) and
    covariance (cov_w x the penalty, 0 from epoch cov_stop on); without cov_w the loss is one term."""

    @dataclass
    class Config(WMSE.Config):
        proj_out: int = 512
        groups: int = 4
        w_size: int | None = 64
        cov_w: float = 0.0
        cov_stop: int = 0  # epoch from which cov_w is 0

    @classmethod
    def check_batch(cls, config, global_batch_size):
        m = config
        check_whitening("zca", "channel", global_batch_size, m.proj_out, groups=m.groups, w_size=m.w_size)

    def transform(self, z):
        m = self.mcfg
        sub_batch = z[: m.w_size or len(z)]
        white = whiten(sub_batch, "zca", "channel", eps=m.eps, groups=m.groups, shuffle_groups=False, distributed=False)[0]
        return white[:, : z.shape[1] // m.groups], "channel"  # the first group

    def compute_loss(self, crops, state=FIRST_STEP):
        features = self.encode(crops)
        return self.loss(self.project(features), state.epoch), largest_crops(features, crops)

    def loss(self, views, epoch=0):
        """The loss at `epoch` (the covariance penalty stops at cov_stop)."""
        m = self.mcfg
        loss = cwrgp_loss(*views, groups=m.groups, w_size=m.w_size, w_iter=m.w_iter, eps=m.eps)
        if not m.cov_w:
            return loss
        parts = {"mse": loss, "covariance": torch.zeros_like(loss)}
        if epoch < m.cov_stop:
            parts["covariance"] = m.cov_w * sum(sample_covariance_penalty(z) for z in views)
            loss = loss + parts["covariance"]
        return loss, parts


def sample_covariance_penalty(z):
    """CW-RGP's optional regulariser: squared off-diagonal entries of the N x N covariance
    of the samples over their channels, / N (official `covariance_loss(h, axis=0)`)."""
    return off_diagonal(covariance(z.float(), "channel")).pow(2).sum() / len(z)
