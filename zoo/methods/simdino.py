from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.backbones import build_mlp
from zoo.errors import ZooError
from zoo.losses.coding_rate import total_coding_rate
from zoo.losses.shared import check_views, total_or_parts
from zoo.methods.base import FIRST_STEP, Method, MethodConfig, largest_crops
from zoo.methods.crops import targets_first
from zoo.nn import EMA
from zoo.registry import register_method
from zoo.spectral import float32_math, gather, world_size


@float32_math
def simdino_loss(
    *student: Tensor,
    teacher: Sequence[Tensor],
    eps: float = 0.5,
    coeff: float = 1.0,
    expa_type: int = 1,
    reduce_cov: bool = False,
    return_parts: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """SimDINO's loss (Wu et al., ICML 2025): the student's embeddings of every crop aligned with the teacher's of
    every other global crop, minus the coding rate of the global crops' embeddings.

    With s_v the L2-normalised student embeddings of crop v (V crops, the T teacher crops first, each (m, D)),
    t_i the teacher's of global crop i (i < T), R(Z) = 1/2 log det(I + D / (m W eps) Z^T Z) on m local rows
    (W the world size; `total_coding_rate` at eps W) and gamma = (D + W m) / (D W m)::

        comp = 1 / (T V - min(T, V)) sum_{i < T} sum_{v != i} mean_b cos(t_{i,b}, s_{v,b})
        expa = gamma / T sum_{i < T} R(X_i),   X_i = (s_i + t_i) / 2 (expa_type 1) or s_i (expa_type 0)
        L = -coeff comp - expa

    No gradient through the teacher. Under torch.distributed each rank computes this on its own rows, as the
    official code (DDP's gradient mean then averages the ranks' gradients); ``reduce_cov=True`` sums the Gram
    matrices over ranks first (the official ``--reduce_cov 1``: R of the gathered rows at eps, every rank's gradient
    of it summed into each). ``return_parts=True``: also ``{"compression": -coeff comp, "expansion": -expa}`` (they
    sum to L; the official log's comp_loss and expa_loss are comp and expa). RobinWu218/SimDINO simdino/main_dino.py
    ``MCRLoss`` (forward, calc_compression, calc_expansion) on the output of simdino/vision_transformer.py
    ``DINOHead`` (its last operation the L2 normalisation, done here).
    """
    check_views(student, "simdino_loss")
    if not 1 <= len(teacher) <= len(student) or any(t.shape != student[0].shape for t in teacher):
        raise ZooError(f"simdino_loss needs 1 to {len(student)} teacher crops of the students' shape "
                       f"{tuple(student[0].shape)}, got {[tuple(t.shape) for t in teacher]}")
    if eps <= 0 or expa_type not in (0, 1):
        raise ZooError(f"simdino_loss needs eps > 0 and expa_type 0 or 1, got {eps}, {expa_type}")
    s = F.normalize(torch.stack(student), dim=-1)  # (V, m, D)
    # the teacher comes as a keyword, which float32_math does not upcast: its AMP half-precision outputs to s's dtype
    t = F.normalize(torch.stack([x.to(s.dtype) for x in teacher]), dim=-1).detach()  # (T, m, D)
    views, targets = len(s), len(t)
    cosines = F.cosine_similarity(t.unsqueeze(1), s.unsqueeze(0), dim=-1).mean(dim=-1)  # (T, V)
    other = ~torch.eye(targets, views, dtype=torch.bool, device=cosines.device)  # skip each teacher crop's own student
    comp = cosines[other].sum() / (targets * views - min(targets, views))
    x = s[:targets] if expa_type == 0 else (s[:targets] + t) / 2
    ranks, m, d = world_size(), x.shape[1], x.shape[2]
    rate = total_coding_rate(gather(x, dim=1), eps) if reduce_cov else total_coding_rate(x, eps * ranks)
    expa = rate.mean() * (d + ranks * m) / (d * ranks * m)
    parts = {"compression": -coeff * comp, "expansion": -expa}
    return total_or_parts((parts["compression"] + parts["expansion"], parts), return_parts)


@register_method("simdino")
class SimDINO(Method):
    """SimDINO (Wu, Zhang, Pai, Wang, Singh, Yang, Gao and Ma, ICML 2025, "Simplifying DINO via Coding Rate
    Regularization"): DINO without the prototype layer, the centring and the sharpening. The student (backbone +
    head) of every crop is pulled, by cosine, towards the EMA teacher's embedding of every other global (largest)
    crop, while the coding rate of the global crops' embeddings (each the mean of the student's and the teacher's)
    is pushed up (`simdino_loss`)::

        L = -coeff comp - gamma / T sum_i 1/2 log det(I + D / (m eps) X_i^T X_i)

    Defaults: the official code's (RobinWu218/SimDINO simdino/main_dino.py argument defaults, MCRLoss;
    simdino/vision_transformer.py DINOHead with its prototype layer removed): head F -> 2048 -> 2048 -> 256,
    Linear + GELU without BatchNorm, truncated-normal (std 0.02) weights and zero biases, the output
    L2-normalised; eps 0.5, coeff 1, expa_type 1 (the rate of the student-teacher mean), reduce_cov off (each
    rank's own Gram matrix, the world size in its scale); teacher momentum 0.996 -> 1 on a cosine over every
    step, moved after each optimiser step; AdamW lr 5e-4 x batch / 256, weight decay 0.04, none on biases and
    1-D parameters (utils.get_params_groups). Every same-size run of crops goes through the backbone as one batch
    and the head sees all crops at once (utils.MultiCropWrapper); the teacher sees the global crops in one call.

    Deviations (the recipes' notes give their sizes): the official weight decay rises on a cosine from 0.04 to
    0.4 over training, the zoo's stays at its start value; the official clips each parameter's gradient norm to 3
    (utils.clip_gradients), the recipes clip the global norm (trainer.gradient_clip_val); no stochastic depth on
    the backbone. Loss parts (train/loss/<part>): compression (-coeff x the mean cosine), expansion (-gamma x the
    mean coding rate)."""

    num_views = None  # two crops or more (multi-crop)
    joint_backbone = True  # utils.MultiCropWrapper: the backbone on each run of same-size crops, concatenated
    joint_projector = True  # ... and the head on every crop's features at once

    # main_dino.py defaults: --optimizer adamw --lr 0.0005 (x batch/256) --weight_decay 0.04 (cosine to 0.4);
    # utils.get_params_groups: no weight decay on biases and 1-D parameters. The online probe (none in the official
    # code) trains in the same AdamW: its lr 1e-3 x batch/256 (LeJEPA's), not the SGD probe's 0.1.
    optimizer_defaults: ClassVar[dict] = {"name": "adamw", "lr": 5e-4, "weight_decay": 0.04, "exclude_bias_and_norm": True,
                                          "probe_lr": 1e-3}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048, 2048])  # --hidden_dim, 3 layers
        proj_out: int = 256  # --z_dim
        proj_hidden_bn: bool = False  # --use_bn_in_head
        eps: float = 0.5  # --eps, epsilon^2 of the coding rate
        coeff: float = 1.0  # --coeff, the weight of the alignment (compression) term
        expa_type: int = 1  # --expa_type: 1 the rate of (student + teacher) / 2, 0 the student's alone
        reduce_cov: bool = False  # --reduce_cov: sum the Gram matrices over ranks
        momentum_base: float = 0.996  # --momentum_teacher
        momentum_final: float = 1.0

    def build_projector(self):
        m = self.mcfg
        if m.expa_type not in (0, 1):
            raise ZooError(f"simdino: method.expa_type must be 0 or 1 (the official --expa_type), got {m.expa_type}")
        head = build_mlp(self.feature_dim, m.proj_hidden, m.proj_out, hidden_bn=m.proj_hidden_bn, activation=nn.GELU)
        for layer in head:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        return head

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)

    def compute_loss(self, crops, state=FIRST_STEP):
        m = self.mcfg
        order, teacher_count = targets_first(self.crop_sizes)
        features = self.encode(crops)
        student = self.project(features)
        globals_ = [crops[i] for i in order[:teacher_count]]
        with torch.no_grad():  # main_dino.py: teacher(images[:2]), the global crops in one call
            teacher = self.target(torch.cat(globals_)).split([len(c) for c in globals_])
        loss = simdino_loss(*(student[v] for v in order), teacher=teacher, eps=m.eps, coeff=m.coeff,
                            expa_type=m.expa_type, reduce_cov=m.reduce_cov, return_parts=True)
        return loss, largest_crops(features, crops)
