from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F

from zoo.losses import info_nce_loss
from zoo.methods.base import Method, MethodConfig
from zoo.nn import EMA, FeatureQueue
from zoo.registry import register_method
from zoo.spectral import _same_on_every_rank, gather, is_distributed, world_size


@torch.no_grad()
def encode_shuffled_across_ranks(encode, x):
    """`encode(x)` with the global batch shuffled over the ranks: MoCo's shuffling BN. Every rank
    encodes a random share of every rank's samples (one permutation, rank 0's), so the key encoder's
    BatchNorm statistics for a sample come from other samples than its query's; the rows come
    back in x's order. One process: `encode(x)`, there being no other share to draw from."""
    if not is_distributed():
        return encode(x)
    everyone = gather(x)
    order = _same_on_every_rank(torch.randperm(len(everyone)), x.device)
    rank, ranks = dist.get_rank(), world_size()
    encoded = gather(encode(everyone[order.view(ranks, -1)[rank]]))  # row j encodes everyone[order[j]]
    return encoded[order.argsort()].view(ranks, len(x), *encoded.shape[1:])[rank]


@register_method("mocov2")
class MoCoV2(Method):
    """MoCo v2 (Chen et al., 2020) as facebookresearch/moco runs it (main_moco.py --mlp --moco-t 0.2
    --aug-plus --cos; moco/builder.py): asymmetric, one direction per step. The L2-normalised query
    of crop 0 (online backbone + projector) against the key of crop 1 (the EMA key encoder, momentum
    0.999 constant) and a queue of past keys, InfoNCE at temperature 0.2; then the key batch, gathered
    from every rank, replaces the oldest keys. Projector Linear-ReLU-Linear 2048 -> 128 without BN;
    SGD lr 0.03 x batch/256, weight decay 1e-4.

    Shuffling BN: under DDP the key encoder runs on a random share of the gathered global batch and
    the keys are put back in order (`encode_shuffled_across_ranks`, the official batch shuffle), so
    no key's BN statistics include its own query's image. On one process there is no other share
    to shuffle into (a permutation of the one batch leaves its BN statistics as they are), so the
    key encoder sees the query's batch; trainer.sync_batchnorm=true is the other cure (SimCLR's
    global BN: statistics over the whole global batch) and makes `shuffle_bn` unnecessary.

    Not a subclass of MoCoV2Plus: that is solo-learn's symmetrised variant of this method (two
    queues, a cosine momentum schedule), not the other way round; both share the queue and EMA
    components, the projector builder and the InfoNCE loss.

    Defaults: the official ImageNet recipe (main_moco.py with the MoCo v2 flags above): 65536 keys in
    the queue."""

    queue_count = 1
    # facebookresearch/moco main_moco.py: SGD (momentum 0.9) lr 0.03 per 256 samples, weight decay 1e-4.
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.03, "weight_decay": 1e-4}

    @dataclass
    class Config(MethodConfig):
        proj_hidden: list[int] = field(default_factory=lambda: [2048])  # official: the backbone's width (ResNet-50)
        proj_out: int = 128
        proj_hidden_bn: bool = False  # --mlp: Linear-ReLU-Linear
        temperature: float = 0.2
        queue_size: int = 65536
        momentum_base: float = 0.999  # constant: base == final
        momentum_final: float = 0.999
        shuffle_bn: bool = True  # under DDP: the key encoder on a random share of the global batch

    @classmethod
    def check_batch(cls, config, global_batch_size):
        FeatureQueue.check_size(cls.name, config.queue_size, global_batch_size)

    def build_modules(self):
        super().build_modules()
        m = self.mcfg
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, m.momentum_base, m.momentum_final)
        self.queue = FeatureQueue(count=self.queue_count, size=m.queue_size, dim=m.proj_out)

    def compute_loss(self, crops, state=None):
        query_crop, key_crop = crops
        (features,) = self.encode([query_crop])
        (query,) = self.project([features])
        query = F.normalize(query, dim=-1)
        if self.mcfg.shuffle_bn:
            key = encode_shuffled_across_ranks(self.target, key_crop)
        else:
            key = self.target(key_crop)
        key = F.normalize(key, dim=-1)
        loss = info_nce_loss(query, key, self.queue.keys[0].clone(), self.mcfg.temperature)  # the queue before this step's keys
        self.queue.enqueue(key)
        return loss, [features]
