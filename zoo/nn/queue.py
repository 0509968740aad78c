"""A queue of past keys: MoCo-style negatives (MoCo v2, MoCo v2+), SwAV's extra samples for its Sinkhorn codes.

    self.queue = FeatureQueue(count=2, size=cfg.queue_size, dim=cfg.proj_out)
    ...
    negatives = self.queue.keys[1].clone()   # before this step's keys go in
    self.queue.enqueue(k1, k2)               # gathered from every rank, oldest keys replaced

The keys and the pointer are buffers (`queue.keys`, `queue.ptr` in the state dict), so a checkpoint keeps them
and resuming (also after kill -9) restores both. Every rank enqueues the same gathered keys, so the queues stay
identical across ranks (the initial random keys are drawn after the run's seed_everything, the same on every rank).
"""

import torch
import torch.distributed as dist
import torch.nn.functional as F

from zoo.errors import ZooError
from zoo.nn.component import Component
from zoo.spectral import gather, is_distributed, world_size


class FeatureQueue(Component):
    """`count` FIFO queues of `size` L2-normalised keys of `dim` features (`keys`, (count, size, dim), rows are
    keys; `ptr`, the row the next key goes to), filled by `enqueue` with the keys of the global batch, no
    gradients. Initially unit-norm random keys, as the official MoCo and solo-learn queues, or, with
    `starts_empty`, zero rows told apart from keys by `filled()` (SwAV uses its queue once every row holds a key)."""

    def __init__(self, count: int, size: int, dim: int, starts_empty: bool = False):
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(count, size, dim), dim=-1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        if starts_empty:
            self.keys.zero_()

    @staticmethod
    def check_size(method, size, global_batch_size):
        """ZooError when a queue of `size` rows cannot hold one global batch of keys (checked at compose time)."""
        if size < global_batch_size:
            raise ZooError(
                f"method {method}: method.queue_size={size} is smaller than the global batch of "
                f"{global_batch_size}, whose keys it must hold; raise method.queue_size (or lower the batch)"
            )

    def filled(self):
        """Whether every row holds a key: rows are written in order, so the last row is written last (the
        official SwAV test); always True for a queue of random initial keys."""
        return bool(self.keys[:, -1].any())

    def share(self):
        """This rank's share of the rows, (count, ~size / world_size, D): every world_size-th row, so that a
        computation summed over the ranks (SwAV's Sinkhorn) sees each key once, as it would in one process; all
        rows when not distributed."""
        rank = dist.get_rank() if is_distributed() else 0
        return self.keys[:, rank :: world_size()]

    @torch.no_grad()
    def enqueue(self, *keys):
        """Put one (n, D) local batch of keys per queue, gathered from every rank, in place of the oldest keys.
        The pointer wraps around, so the size need not be a multiple of the batch (solo-learn and MoCo assert
        that it is; with it, the rows written are theirs)."""
        if len(keys) != len(self.keys):
            raise ZooError(f"enqueue takes {len(self.keys)} key batches (one per queue), got {len(keys)}")
        gathered = gather(torch.stack(keys).detach(), dim=1).to(self.keys.dtype)  # (queues, N, D)
        rows = (self.ptr + torch.arange(gathered.shape[1], device=self.keys.device)) % self.keys.shape[1]
        self.keys[:, rows] = gathered
        self.ptr.copy_((self.ptr + gathered.shape[1]) % self.keys.shape[1])
