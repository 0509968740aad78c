from dataclasses import dataclass, field
from typing import ClassVar

from zoo.losses.spectral_family import ssole_loss
from zoo.methods.base import Method, MethodConfig
from zoo.registry import register_method


@register_method("ssole")
class SSOLE(Method):
    """SSOLE (Huang, Qiu and Sapiro, ICLR 2025, "SSOLE: Rethinking Orthogonal Low-rank Embedding for
    Self-Supervised Learning"): orthogonal low-rank embedding over views x batch. Each image's L2-normalised
    views, minus their (constant) mean, are pulled to low rank (their nuclear norm squared), and each view's
    global batch is pushed to high rank (a function of its nuclear norm that is smallest when the B rows are
    orthogonal), with lambd weighing the second (`zoo.losses.spectral_family.ssole_loss`; nuclear norms through
    the SVD in float32 without TF32, also under AMP). Any number of views >= 2; no target network, predictor
    or queue.

    Defaults: the official code (husthuaan/ssole configs/ssole_imagenet100_m4.yaml, models/ssole_encoder.py,
    loss/ssole_loss.py, train.py, utils.py): projector 3 Linear layers 4096 -> 4096 -> 4096 with biases, ReLU
    and no BatchNorm (mlp_bn false); lambda_ 0.6, the high-rank term's gamma 0.5 (a constant of the loss);
    SGD lr 2.0 not scaled with the batch, momentum 0.9, weight decay 1e-5 off the 1-D parameters (LARS false);
    the lr on a per-step cosine to 0.002 without warm-up (utils.DecayLRCos: a recipe's scheduler). The
    encoder runs every crop of a size through backbone and projector as one batch ((B, crops) flattened), so
    BatchNorm statistics cover every view (SyncBatchNorm over the GPUs: a run setting)."""

    num_views = None  # 2 or more views; the official config takes 4
    joint_backbone = True
    joint_projector = True
    # train.py configure_optimizers (LARS false): SGD momentum 0.9, lr base_lr 2.0 as given, weight decay 1e-5 on
    # the >= 2-D parameters only.
    optimizer_defaults: ClassVar[dict] = {
        "name": "sgd", "lr": 2.0, "scale_lr": False, "weight_decay": 1e-5, "exclude_bias_and_norm": True,
    }

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [4096, 4096])  # mlp_layers 3, mlp_hidden_dim 4096
        proj_out: int = 4096  # dim
        proj_hidden_bn: bool = False  # mlp_bn false
        lambd: float = 0.6  # lambda_: the high-rank term's weight
        gamma: float = 0.5  # the high-rank term's mix of its two cosine estimates (ssole_loss.gamma)

    def loss(self, views):
        m = self.mcfg
        return ssole_loss(*views, lambd=m.lambd, gamma=m.gamma, return_parts=True)  # (total, {"low_rank", "high_rank"})
