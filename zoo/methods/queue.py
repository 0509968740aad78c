"""A queue of past keys, a mixin: MoCo-style negatives (MoCo v2+, MoCo v2; NNCLR-style support sets),
SwAV's extra samples for its Sinkhorn codes.

    @register_method("mocov2plus")
    class MoCoV2Plus(FeatureQueueMixin, MomentumTargetMixin, BaseMethod):
        queue_count = 2  # one queue per view

        @dataclass
        class Config(FeatureQueueMixin.Config, MomentumTargetMixin.Config, BaseMethod.Config):  # + queue_size
            ...

        def compute_loss(self, crops):
            negatives = self.queue[1].clone()   # before this step's keys go in
            ...
            self.enqueue(k1, k2)                # gathered from every rank, oldest keys replaced

The queue and its pointer are registered buffers: they are in the state_dict, so a checkpoint
keeps them and resuming (also after kill -9) restores both. Every rank enqueues the same gathered
keys, so the queues stay identical across ranks (the initial random queue is drawn after the
run's seed_everything, the same seed on every rank).
"""

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.methods.momentum import ConfiguredMixin
from zoo.spectral import gather, is_distributed, world_size


class FeatureQueueMixin(ConfiguredMixin):
    """`queue_count` FIFO queues of `queue_size` L2-normalised keys of `proj_out` features
    (`self.queue`, (queue_count, queue_size, D), rows are keys; `self.queue_ptr`, the row the
    next key goes to), filled by `enqueue` with the keys of the global batch, no gradients.
    Initially unit-norm random keys, as the official MoCo and solo-learn queues."""

    queue_count = 1
    # True: the queue starts as zero rows, told apart from keys by `queue_filled()` (SwAV uses its queue only
    # once every row holds a key, as the official code); False: unit-norm random keys (MoCo).
    queue_starts_empty = False

    @dataclass
    class Config:
        """The mixin's field; a method's Config lists this class among its bases, before the method Config."""

        queue_size: int = 65536

    def build_modules(self):
        super().build_modules()
        keys = torch.randn(self.queue_count, self.mcfg.queue_size, self.mcfg.proj_out)
        self.register_buffer("queue", F.normalize(keys, dim=-1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        if self.queue_starts_empty:
            self.queue.zero_()

    def queue_filled(self):
        """Whether every row holds a key: rows are written in order, so the last row is written last (the
        official SwAV test); always True for a queue of random initial keys."""
        return bool(self.queue[:, -1].any())

    def queue_share(self):
        """This rank's share of the queue rows, (queue_count, ~queue_size / world_size, D): every world_size-th
        row, so that a computation summed over the ranks (SwAV's Sinkhorn) sees each key once, as it would in
        one process; all rows when not distributed."""
        rank = dist.get_rank() if is_distributed() else 0
        return self.queue[:, rank :: world_size()]

    @classmethod
    def check_batch(cls, config, global_batch_size):
        super().check_batch(config, global_batch_size)
        if config.queue_size < global_batch_size:
            raise ZooError(
                f"method {cls.name}: method.queue_size={config.queue_size} is smaller than the global batch of "
                f"{global_batch_size}, whose keys it must hold; raise method.queue_size (or lower the batch)"
            )

    @torch.no_grad()
    def enqueue(self, *keys):
        """Put one (n, D) local batch of keys per queue, gathered from every rank, in place of the oldest
        keys. The pointer wraps around, so the queue size need not be a multiple of the batch (solo-learn
        and MoCo assert that it is; with it, the rows written are theirs)."""
        if len(keys) != self.queue_count:
            raise ZooError(f"method {self.name}: enqueue takes {self.queue_count} key batches, got {len(keys)}")
        gathered = gather(torch.stack(keys).detach(), dim=1).to(self.queue.dtype)  # (queues, N, D)
        rows = (self.queue_ptr + torch.arange(gathered.shape[1], device=self.queue.device)) % self.queue.shape[1]
        self.queue[:, rows] = gathered
        self.queue_ptr.copy_((self.queue_ptr + gathered.shape[1]) % self.queue.shape[1])
