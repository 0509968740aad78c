"""Test-session settings shared by every test file."""

import os

import torch

# Under pytest-xdist (pyproject's addopts: two workers) each worker, and every process it starts, computes
# with one intra-op thread: two workers on two cores, rather than four threads taking turns on them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
