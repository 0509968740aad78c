from dataclasses import dataclass, field
from typing import ClassVar

import torch

from zoo.errors import ZooError
from zoo.losses import mixed_barlow_twins_loss
from zoo.methods.barlow_twins import BarlowTwins
from zoo.methods.base import FIRST_STEP
from zoo.registry import register_method


@register_method("mix_bt")
class MixedBarlowTwins(BarlowTwins):
    """Mixed Barlow Twins (Bandara, De Melo and Patel, 2023, "Guarding Barlow Twins Against Overfitting with Mixed
    Samples"): Barlow Twins on the two crops plus a regulariser on a third, mixed crop x_m = mix x_1 + (1 - mix)
    x_2[perm] (perm a random permutation of the batch, mix ~ Beta(mix_alpha, mix_alpha), both drawn each step by
    `draw_mix`): the cross-correlations of its standardised projection with each view's are driven to those the
    mixture of the views' projections has (`zoo.losses.mixed_barlow_twins_loss`, whose docstring has the formula),
    weighted by mix_weight x lambd.

    Defaults: the official small-data code (wgcban/mix-bt main.py, model.py) with scripts-pretrain-resnet18/
    cifar10.sh's values: projector 512 (Linear without bias, BN, ReLU) -> 1024 (with bias), the projection
    L2-normalised and then standardised by the unbiased standard deviation without epsilon (not the BatchNorm of
    `barlow_twins`, whose standardisation divides by the biased one plus 1e-5: a 0.4% larger C at batch 256),
    lambd 0.0078125, mixup_loss_scale 4.0, Beta(1, 1) (uniform) coefficients, one backbone call per crop, the mixed
    crop's last (three BatchNorm batches, in the official order); Adam lr 0.01 x batch/256 (its
    adjust_learning_rate's base_lr = batch/256 times --lr), weight decay 1e-6 (Adam's L2) on every parameter. The
    ImageNet code (main_imagenet.py) is the recipe imagenet/mix_bt: the 8192-8192-8192 projector, no L2
    normalisation, each GPU standardising its own batch (`per_device_norm`), the second target mix Z_2 + (1 - mix)
    Z_2[perm] (`imagenet_target`), weight 0.5 x lambda_mixup ramped up linearly from 0 over the first 10 epochs
    (`mix_warmup_epochs`). Loss parts (train/loss/<part>): on_diag, off_diag, mix, all x scale_loss."""

    # main.py: optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6), its lr set every step to
    # --lr (scripts: 0.01) x batch/256 by adjust_learning_rate. No online probe officially; the zoo's uses the lr.
    optimizer_defaults: ClassVar[dict] = {"name": "adam", "lr": 0.01, "scale_lr": True, "weight_decay": 1e-6,
                                          "exclude_bias_and_norm": False, "bias_lr_factor": 1.0, "probe_lr": 0.01}

    @dataclass
    class Config(BarlowTwins.Config):
        proj_hidden: list[int] = field(default_factory=lambda: [512])
        proj_out: int = 1024  # --feature_dim
        proj_hidden_bias: bool = False
        proj_last_bias: bool = True
        lambd: float = 0.0078125  # --lmbda
        normalize: bool = True  # model.py returns F.normalize(projection); main_imagenet.py does not
        mix_weight: float = 4.0  # --mixup_loss_scale (x lambd); main_imagenet.py: 0.5 x --lambda_mixup
        mix_warmup_epochs: float = 0.0  # main_imagenet.py adjust_mixup_scale: weight x step / (10 epochs of steps)
        mix_alpha: float = 1.0  # the mixing coefficient ~ Beta(mix_alpha, mix_alpha) (np.random.beta(1.0, 1.0))
        imagenet_target: bool = False  # main_imagenet.py's second target mix Z2^T Z2 + ... (main.py: mix Z1^T Z2 + ...)

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        if m.mix_alpha <= 0 or m.mix_warmup_epochs < 0:
            raise ZooError(f"mix_bt needs mix_alpha > 0 and mix_warmup_epochs >= 0, got {m.mix_alpha}, {m.mix_warmup_epochs}")

    def draw_mix(self, n, device):
        """(perm, mix) of one step: a random permutation of the n local samples and the coefficient ~ Beta(a, a),
        drawn from torch's global generator (the official code: torch.randperm, then np.random.beta). A test or
        a study replaces this method to fix them."""
        perm = torch.randperm(n, device=device)
        alpha = torch.tensor(float(self.mcfg.mix_alpha))
        return perm, float(torch.distributions.Beta(alpha, alpha).sample())

    def mix_weight_at(self, state):
        """The regulariser's weight at `state`: mix_weight, ramped linearly from 0 over mix_warmup_epochs
        (main_imagenet.py adjust_mixup_scale: lambda_mixup x step / warmup_steps)."""
        m = self.mcfg
        warmup = m.mix_warmup_epochs * state.steps_per_epoch
        return m.mix_weight * min(1.0, state.step / warmup) if warmup > 0 else m.mix_weight

    def step_logs(self, state):
        return {"train/mix_weight": self.mix_weight_at(state)} if self.mcfg.mix_warmup_epochs else {}

    def compute_loss(self, crops, state=FIRST_STEP):
        x1, x2 = crops
        features = self.encode(crops)  # one backbone call per crop, as main.py's net(pos_1), net(pos_2)
        z1, z2 = self.project(features)
        perm, mix = self.draw_mix(x1.shape[0], x1.device)
        zm = self.projector(self.backbone(mix * x1 + (1 - mix) * x2[perm]))  # then net(pos_m)
        m = self.mcfg
        total, parts = mixed_barlow_twins_loss(
            z1, z2, zm, perm, mix, lambd=m.lambd, mix_weight=self.mix_weight_at(state), normalize=m.normalize,
            imagenet_target=m.imagenet_target, per_device_norm=m.per_device_norm, return_parts=True,
        )
        return (m.scale_loss * total, {name: m.scale_loss * part for name, part in parts.items()}), features
