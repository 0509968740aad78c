from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from zoo.losses import sinkhorn_knopp, swav_loss
from zoo.methods.base import FIRST_STEP, Method, MethodConfig, largest_crops
from zoo.methods.crops import targets_first
from zoo.nn import FeatureQueue, FreezeEarly
from zoo.registry import register_method


@register_method("swav")
class SwAV(Method):
    """SwAV (Caron et al., NeurIPS 2020): the L2-normalised projection of every crop is scored against
    unit-norm prototypes (a linear layer without bias, renormalised before every step); the scores of each
    global (largest) crop give its codes by Sinkhorn-Knopp over the global batch, and every other crop
    predicts them (swapped prediction, softmax at `temperature`). From epoch `epoch_queue_starts` on, once
    full, a queue of the global crops' past embeddings joins the Sinkhorn problem (each rank its share of
    it), as extra samples to spread over the prototypes. The prototypes get no gradient during the first
    `freeze_epochs` epochs / `freeze_steps` steps (`zoo.nn.FreezeEarly`). The prototypes are the official
    code's (facebookresearch/swav main_swav.py: weights renormalised in place, no gradient through the
    normalisation), not solo-learn's weight-normalised layer. Defaults: the official code's (main_swav.py,
    src/resnet50.py): projector 2048 (BN) -> 128, 3000 prototypes, temperature 0.1, epsilon 0.05, 3 Sinkhorn
    iterations, prototypes frozen for the first 313 steps, LARC (eta 0.001, no clipping, on every parameter)
    lr 4.8 at batch 4096 (0.3 x batch/256), weight decay 1e-6; the queue of the README's runs, 3840 embeddings
    from epoch 15 (main_swav.py's own default is no queue, queue_length 0).

    `joint_forward` (on by default, as the official code; solo-learn: off) runs the crops as the official ResNet
    does (src/resnet50.py `forward`): the backbone once on each run of consecutive crops of one size,
    concatenated, and the projector once on every crop's features concatenated, so each BatchNorm's statistics
    cover those crops together (2 x 224 in one backbone call, 6 x 96 in another, all 8 in the projector's)."""

    num_views = None  # two crops or more (multi-crop)
    # main_swav.py: apex LARC (trust coefficient 0.001, clip=False) over SGD on every parameter, base_lr 4.8 at its
    # batch of 64 x 64 GPUs, weight decay 1e-6.
    optimizer_defaults: ClassVar[dict] = {"name": "lars", "lr": 0.3, "weight_decay": 1e-6, "lars_eta": 0.001,
                                          "lars_clip": False, "exclude_bias_and_norm": False}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048])
        proj_out: int = 128
        num_prototypes: int = 3000
        temperature: float = 0.1
        sk_epsilon: float = 0.05
        sk_iters: int = 3
        queue_size: int = 3840
        epoch_queue_starts: int = 15  # an epoch past the last one: no queue (main_swav.py's queue_length=0)
        freeze_epochs: int = 0  # the prototypes' (solo-learn's CIFAR recipe: 2 epochs)
        freeze_steps: int = 313  # main_swav.py's freeze_prototypes_niters
        joint_forward: bool = True  # the official multi-resolution forward (see above); solo-learn: one call per crop

    @classmethod
    def check_batch(cls, config, global_batch_size):
        FeatureQueue.check_size(cls.name, config.queue_size, global_batch_size)

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        # one queue per crop with codes; zeros, used once every row holds an embedding (the official queue)
        self.queue = FeatureQueue(count=targets_first(self.crop_sizes)[1], size=m.queue_size, dim=m.proj_out,
                                  starts_empty=True)
        self.prototypes = nn.Linear(m.proj_out, m.num_prototypes, bias=False)
        self.normalize_prototypes()
        self.freeze_early = FreezeEarly(self.prototypes.parameters, epochs=m.freeze_epochs, steps=m.freeze_steps)

    @torch.no_grad()
    def normalize_prototypes(self):
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    @property
    def joint_backbone(self):  # Method.encode reads it: one backbone call per run of same-size crops
        return bool(self.mcfg.joint_forward)

    @property
    def joint_projector(self):  # Method.project reads it: one projector call on every crop
        return bool(self.mcfg.joint_forward)

    def uses_queue(self, epoch):
        return epoch >= self.mcfg.epoch_queue_starts and self.queue.filled()

    @torch.no_grad()
    def codes(self, scores, epoch=0):
        """Sinkhorn codes of the coded crops' prototype scores (one (n, K) tensor each), with this rank's share
        of the queue's scores as extra rows once the queue is in use (at `epoch`)."""
        queue_scores = self.prototypes(self.queue.share()) if self.uses_queue(epoch) else None
        codes = []
        for i, crop_scores in enumerate(scores):
            rows = crop_scores if queue_scores is None else torch.cat([crop_scores, queue_scores[i]])
            codes.append(sinkhorn_knopp(rows, self.mcfg.sk_epsilon, self.mcfg.sk_iters)[: len(crop_scores)])
        return codes

    def compute_loss(self, crops, state=FIRST_STEP):
        self.normalize_prototypes()  # unit prototypes in every step, as the official code at each iteration
        features = self.encode(crops)
        embeddings = [F.normalize(z, dim=-1) for z in self.project(features)]
        order, coded = targets_first(self.crop_sizes)
        scores = [self.prototypes(embeddings[v]) for v in order]
        codes = self.codes(scores[:coded], state.epoch)
        loss = swav_loss(*scores, codes=codes, temperature=self.mcfg.temperature)
        self.queue.enqueue(*(embeddings[v] for v in order[:coded]))  # after the codes: this step's are not in its queue
        return loss, largest_crops(features, crops)
