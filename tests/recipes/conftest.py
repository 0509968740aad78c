"""Fixtures of the recipe tests."""

from pathlib import Path

import pytest
from recipe_helpers import bash, script_env


@pytest.fixture
def recorded(tmp_path):
    """Runs a script with PYTHON = a shim that records the command line; returns (python file, its arguments)."""
    out = tmp_path / "argv"
    shim = tmp_path / "python-shim"
    shim.write_text('#!/bin/sh\nfor arg in "$@"; do printf \'%s\\0\' "$arg"; done > "$ZOO_ARGV"\n')
    shim.chmod(0o755)

    def run(script, *args, **env):
        result = bash(script, *args, env=script_env(PYTHON=shim, ZOO_ARGV=out, **env))
        assert result.returncode == 0, result.stderr
        argv = out.read_text().split("\0")[:-1]
        return Path(argv[0]).name, argv[1:]

    return run


@pytest.fixture(scope="module")
def tiny_imagenet(tmp_path_factory):
    """An ImageFolder with train/ and val/, two classes of small JPEGs."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("tiny-imagenet")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for label, colour in enumerate(((200, 40, 40), (40, 40, 200))):
            folder = root / split / f"n0000000{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(colour, 40, size=(40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"n0000000{label}_{i}.JPEG")
    return root
