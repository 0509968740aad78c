"""Test-session settings shared by every test file."""

import logging
import os

import pytest
import torch

# Under pytest-xdist (pyproject's addopts: two workers) each worker, and every process it starts, computes
# with one intra-op thread: two workers on two cores, rather than four threads taking turns on them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


# The root logger's handlers before any test ran.
ROOT_HANDLERS, ROOT_LEVEL = list(logging.getLogger().handlers), logging.getLogger().level


@pytest.fixture(autouse=True)
def root_logging_restored():
    """Hydra's job logging (a pretraining run called in-process, also from a module's fixture) adds root handlers
    that write to that test's captured stream, closed once it ends: after each test the root logger is as it was
    before any test, so a later test's log records never reach a closed stream."""
    yield
    logging.getLogger().handlers[:] = ROOT_HANDLERS
    logging.getLogger().setLevel(ROOT_LEVEL)
