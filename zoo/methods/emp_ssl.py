from dataclasses import dataclass, field
from typing import ClassVar

from zoo.losses.coding_rate import emp_ssl_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("emp_ssl")
class EMPSSL(Method):
    """EMP-SSL (Tong, Chen, Ma and LeCun, 2023, "EMP-SSL: Towards Self-Supervised Learning in One Training Epoch"):
    many fixed-scale patches of each image (the README's 20, up to 200), each patch's L2-normalised projection
    pulled towards the mean projection of its image's patches (cosine, weight patch_sim 200) while the total
    coding rate of each patch's batch of projections, R(Z) = 1/2 log det(I + D / (N eps) Z^T Z), eps 0.2, is
    pushed up (weight tcr 1):

        L = -patch_sim 1/n sum_v mean_i cos(z_{v,i}, zbar_i) - tcr 1/n sum_v R(Z_v)

    (`zoo.losses.coding_rate.emp_ssl_loss`; the rate `total_coding_rate`, an exact log-determinant, not MEC's
    series). No stop-gradient, no EMA target, no predictor. Any number of patches >= 2 (`data.views`; the
    augmentation presets zoo/configs/augment/emp_ssl_*.yaml draw them as the official code does).

    Defaults: the official code (tsb0601/EMP-SSL main.py argument defaults and README commands, model/model.py):
    projector F -> 4096 -> 4096 -> 1024 (F the backbone's 512 features on its ResNet-18), each Linear with a bias,
    BatchNorm and ReLU after the hidden ones, the output L2-normalised; patch_sim 200, tcr 1, eps 0.2; SGD lr 0.3
    (not scaled with the batch), momentum 0.9, weight decay 1e-4, under solo-learn's LARSWrapper (lars.py: trust
    eta 0.005, clipped, biases and norms neither adapted nor decayed), which is the zoo's `lars` with those values;
    the lr on a per-step cosine to 0 without warm-up (the recipes' scheduler). All patches go through the
    backbone and the projector as one batch (main.py net(torch.cat(data))), so BatchNorm statistics cover every
    patch of every image.

    Deviations: the official SGD under the LARS wrapper uses Nesterov momentum (update g + m v instead of v: the
    first step is 1.9 x the zoo's at m 0.9, the same g / (1 - m) under a constant gradient); the zoo's LARS has
    no Nesterov option. Its DataParallel splits the one batch of patches between GPUs (each BatchNorm sees a
    contiguous share of patches); the zoo's DDP processes each see all patches of their share of images. The
    official model evaluates the projector's first hidden layer (4096-d, after BatchNorm and ReLU) averaged over
    128 patches per image (evaluate.py); the zoo's probe and k-NN read the backbone's features of the whole image.
    Loss parts (train/loss/<part>): invariance (-patch_sim x mean cosine), tcr (-tcr x mean R)."""

    num_views = None  # any number of patches (the official 20 to 200)
    joint_backbone = True  # main.py: net(torch.cat(data, dim=0)), one call for every patch
    joint_projector = True

    # main.py: SGD(lr 0.3, momentum 0.9, weight_decay 1e-4, nesterov) in LARSWrapper(eta 0.005, clip, exclude_bias_n_norm);
    # the lr is not scaled with the batch.
    optimizer_defaults: ClassVar[dict] = {"name": "lars", "lr": 0.3, "scale_lr": False, "weight_decay": 1e-4, "momentum": 0.9,
                                          "lars_eta": 0.005, "lars_clip": True, "exclude_bias_and_norm": True,
                                          "bias_lr_factor": 1.0}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [4096, 4096])  # model/model.py encoder hidden_dim
        proj_out: int = 1024  # z_dim
        patch_sim: float = 200.0  # --patch_sim, the invariance weight
        tcr: float = 1.0  # --tcr, the total coding rate's weight
        eps: float = 0.2  # --eps, epsilon^2 of the coding rate

    def loss(self, views):
        m = self.mcfg
        return emp_ssl_loss(*views, patch_sim=m.patch_sim, tcr=m.tcr, eps=m.eps, return_parts=True)
