"""The blur probe both image loaders (torchvision, DALI) are checked on, and the blur it shows."""

import numpy as np


def blur_probe(size, seed=0):
    """Colour noise with a black 25 px stripe down the middle holding a white 1 px line: an impulse response and texture."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    middle = size // 2
    pixels[:, middle - 12 : middle + 13] = 0
    pixels[:, middle] = 255
    return pixels


def line_sigma(pixels):
    """Std (px) of the horizontal spread of the probe's line, from the 13 columns about it (all of a sigma-2 blur)."""
    middle = pixels.shape[1] // 2
    spread = pixels[:, middle - 6 : middle + 7].astype(np.float64).mean(axis=(0, 2))
    offsets = np.arange(-6, 7)
    return float(np.sqrt((spread * offsets**2).sum() / spread.sum()))
