from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F

from zoo.backbones import build_mlp
from zoo.methods.base import Method, MethodConfig
from zoo.nn import EMA, FeatureQueue
from zoo.registry import register_method


def msf_loss(query, target, bank, topk):
    """Mean Shift's loss (Koohpayegani et al., ICCV 2021; UMBCvision/MSF train_msf.py MeanShift.forward): each
    online prediction q_i regresses the k nearest neighbours, in the memory bank, of its own target t_i,

        loss = mean_i 1/k sum_{j in NN_k(t_i)} (2 - 2 <q_i, b_j>),   q, t, b L2-normalised,

    the neighbours chosen by the target's distance 2 - 2 <t_i, b_j>. `bank` (K, D) already holds this batch's
    targets, so each t_i is its own first neighbour (k = 1 is BYOL's loss against the EMA target)."""
    query, target = F.normalize(query, dim=1), F.normalize(target, dim=1)
    neighbours = (2 - 2 * target @ bank.T).topk(topk, dim=1, largest=False).indices
    return (2 - 2 * query @ bank.T).gather(1, neighbours).sum(dim=1).div(topk).mean()


@register_method("msf")
class MSF(Method):
    """Mean Shift (MSF; Koohpayegani, Tejankar and Pirsiavash, ICCV 2021): the online branch (backbone, projector,
    predictor) of the first crop regresses the k nearest neighbours of the EMA target's embedding of the second
    crop in a memory bank of past targets (`msf_loss`). Defaults: the official code's (UMBCvision/MSF
    train_msf.py and its README's training command): projector and predictor Linear-BN-ReLU-Linear, hidden width
    twice the backbone's features and output a quarter of them (ResNet-50: 4096 and 512), the target's momentum
    0.99, constant, applied at the start of each forward; a bank of 128,000 normalised targets (random unit rows
    at first), k = 10; SGD lr 0.05 not scaled with the batch, momentum 0.9, weight decay 1e-4 on every parameter;
    the lr on a cosine over epochs (a recipe's scheduler). The official code shuffles the target's batch across
    its DataParallel GPUs (ShuffleBN): on one device that changes nothing; under DDP each process's target
    BatchNorm sees its own batch."""

    # train_msf.py: SGD lr 0.05, momentum 0.9, weight decay 1e-4 on all parameters, the lr not scaled with the batch.
    optimizer_defaults: ClassVar[dict] = {"name": "sgd", "lr": 0.05, "scale_lr": False, "weight_decay": 1e-4}

    @dataclass
    class Config(MethodConfig):
        # None: the official widths from the backbone's F features: projector F -> 2F -> F/4, predictor -> 2F -> F/4
        proj_hidden: list[int] | None = None
        proj_out: int | None = None
        pred_hidden: int | None = None
        momentum: float = 0.99  # constant
        queue_size: int = 128000  # mem_bank_size
        topk: int = 10

    @classmethod
    def check_batch(cls, config, global_batch_size):
        FeatureQueue.check_size(cls.name, config.queue_size, global_batch_size)

    def widths(self):
        """(projector hidden widths, output width, predictor hidden width)."""
        m, features = self.mcfg, self.feature_dim
        return (m.proj_hidden if m.proj_hidden is not None else [2 * features], m.proj_out or features // 4,
                m.pred_hidden or 2 * features)

    def build_projector(self):
        hidden, out, _ = self.widths()
        return build_mlp(self.feature_dim, hidden, out)

    def build_modules(self):
        super().build_modules()
        _, out, pred_hidden = self.widths()
        self.predictor = build_mlp(out, [pred_hidden], out)
        # the official target moves at the start of each forward, with the online weights of the step before
        momentum = self.mcfg.momentum
        self.target = EMA({"backbone": self.backbone, "projector": self.projector}, momentum, momentum,
                          timing="before_forward")
        self.queue = FeatureQueue(count=1, size=self.mcfg.queue_size, dim=out)

    def compute_loss(self, crops, state=None):
        query_crop, target_crop = crops
        features = self.backbone(query_crop)  # only the query crop goes through the online branch
        query = self.predictor(self.projector(features))
        target = F.normalize(self.target(target_crop), dim=1)
        self.queue.enqueue(target)  # before the loss, as the official code: each target is its own neighbour
        return msf_loss(query, target, self.queue.keys[0], self.mcfg.topk), [features]
