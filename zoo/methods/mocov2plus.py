from dataclasses import dataclass, field
from typing import ClassVar

import torch.nn.functional as F

from zoo.losses import info_nce_loss
from zoo.methods.base import Method, MethodConfig, largest_crops
from zoo.nn import EMA, FeatureQueue
from zoo.registry import register_method


@register_method("mocov2plus")
class MoCoV2Plus(Method):
    """MoCo v2+ (solo-learn's symmetric MoCo v2, Chen et al., 2020): L2-normalised queries of the
    online branch against the keys of an EMA target (backbone + projector) and a queue of past
    keys, InfoNCE both ways (query 1 with key 2 and the queue of view-2 keys, and back), halved;
    the queues then take this step's keys of the global batch. Momentum 0.99 -> 0.999 on a cosine
    schedule. Defaults: solo-learn's CIFAR recipe (scripts/pretrain/cifar/mocov2plus.yaml:
    projector 2048 -> 256 without BN, temperature 0.2, a queue of 32768 keys (its ImageNet recipes:
    65536), SGD lr 0.3 x batch/256, weight decay 1e-4)."""

    queue_count = 2  # one queue per view, as solo-learn's
    # solo-learn's CIFAR optimizer: SGD lr 0.3, weight decay 1e-4, probe lr 0.3.
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.3, "weight_decay": 1e-4, "probe_lr": 0.3}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048])
        proj_out: int = 256
        proj_hidden_bn: bool = False  # solo-learn: Linear-ReLU-Linear
        temperature: float = 0.2
        queue_size: int = 32768
        momentum_base: float = 0.99
        momentum_final: float = 0.999

    @classmethod
    def check_batch(cls, config, global_batch_size):
        FeatureQueue.check_size(cls.name, config.queue_size, global_batch_size)

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)
        self.queue = FeatureQueue(count=self.queue_count, size=m.queue_size, dim=m.proj_out)

    def compute_loss(self, crops, state=None):
        features = self.encode(crops)
        q1, q2 = (F.normalize(z, dim=-1) for z in self.project(features))
        k1, k2 = (F.normalize(self.target(crop), dim=-1) for crop in crops)
        queue, t = self.queue.keys.clone(), self.mcfg.temperature  # the negatives of this step, before its keys go in
        loss = (info_nce_loss(q1, k2, queue[1], t) + info_nce_loss(q2, k1, queue[0], t)) / 2
        self.queue.enqueue(k1, k2)
        return loss, largest_crops(features, crops)
