from dataclasses import dataclass

from zoo.losses import shuffled_dbn_loss
from zoo.methods.wmse import WMSE
from zoo.registry import register_method
from zoo.spectral import check_whitening, whiten


@register_method("shuffled_dbn")
class ShuffledDBN(WMSE):
    """Shuffled-DBN (Hua et al., ICCV 2021, "On Feature Decorrelation in Self-Supervised Learning"):
    decorrelated batch normalisation of the projector output, ZCA whitening of the features over
    the batch in groups, the features split into the groups by a fresh random permutation every
    call (and put back in order after), so that over steps every pair of features is decorrelated;
    then the normalised MSE between every pair of views.

    The zoo follows the CW-RGP repository's run of it (the Shuffled-DBN row of the CW-RGP table;
    winci-ai/CW-RGP base/methods/cwrgp.py with axis=1: Whitening2dZCA over the batch, random
    groups): W-MSE's training (views, one projector call for all of them, Adam, sub-batches), the
    covariance / (m - 1), a permutation per (sub-batch, view), nMSE. Where the paper (its
    pseudo-code and its authors' code, PatrickHua/FeatureDecorrelationSSL
    models/utils/pseudo_code_for_paper.py and shuffled_group_whitening.py, the whitening as the
    projector's last layer) differs: it divides the covariance by m (a scale the nMSE ignores),
    whitens each view's whole batch (no sub-batches), calls the projector once per view and
    trains on the squared L2 distance of the whitened outputs (not L2-normalised) with SGD.
    Defaults: the authors' CIFAR groups (128 features, 16 groups of 8,
    configs/exp_small_200ep/cifar10/lin_vs_bn_vs_dbn_vs_sdbn/sdbn.yaml), the whole batch
    whitened (w_size None, as the paper), W-MSE's projector (1024, BN) and Adam 3e-3."""

    @dataclass
    class Config(WMSE.Config):
        proj_out: int = 128
        groups: int = 16
        w_size: int | None = None  # the whole (global) batch

    @classmethod
    def check_batch(cls, config, global_batch_size):
        m = config
        check_whitening("zca", "batch", global_batch_size, m.proj_out, groups=m.groups, w_size=m.w_size, shrinkage=m.eps)

    def loss(self, views):
        m = self.mcfg
        return shuffled_dbn_loss(*views, groups=m.groups, w_size=m.w_size, w_iter=m.w_iter, eps=m.eps)

    def transform(self, z):
        m = self.mcfg
        sub_batch = z[: m.w_size or len(z)]
        white = whiten(sub_batch, "zca", "batch", eps=m.eps, groups=m.groups, shuffle_groups=False, distributed=False)[0]
        return white[:, : z.shape[1] // m.groups], "batch"  # the first group
