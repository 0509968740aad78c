"""Real processes for the DDP equality tests: `body(rank)` on `world_size` gloo ranks of one machine."""

import socket

import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(rank, port, world_size, body, before):
    reference = before() if before else None  # still one process: no group yet
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        body(rank) if before is None else body(rank, reference)
    finally:
        dist.destroy_process_group()


def run_on_gloo_ranks(body, world_size=2, before=None):
    """`body(rank)`, or `body(rank, before())` where `before` computes single-process references in each
    process ahead of the group; both module-level functions (spawned processes import them by name)."""
    mp.spawn(_rank, args=(_free_port(), world_size, body, before), nprocs=world_size, join=True)
