"""Mean-subtracted contrast-normalised (MSCN) coefficients of image stacks.

For an image ``I`` (grey levels in [0, 1]) and a 7 x 7 Gaussian window ``w`` (sigma 7/6,
normalised to sum 1, replicated borders):

    mu    = w * I
    sigma = sqrt(|w * I^2 - mu^2|)
    MSCN  = (I - mu) / (sigma + C),   C = 1/255

(equivalently grey levels in [0, 255] with C = 1). This is the normalisation shared by
BRISQUE (Mittal et al. 2012) and PIQE (Venkatanath et al. 2015). Stacks ``(n, rows, cols)``
are filtered in one pass per axis (separable filter over axes 1 and 2).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

WINDOW = 7
SIGMA = 7.0 / 6.0
C = 1.0 / 255.0


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """1-D Gaussian taps (as OpenCV's ``getGaussianKernel``), normalised to sum 1."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def local_mean(stack: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable Gaussian filtering of every image of a stack, replicated borders."""
    out = ndimage.correlate1d(stack, g, axis=-2, mode="nearest")
    return ndimage.correlate1d(out, g, axis=-1, mode="nearest")


def mscn(stack: np.ndarray, c: float = C) -> np.ndarray:
    """MSCN coefficients of a float64 stack ``(n, rows, cols)`` (or one 2-D image) in [0, 1]."""
    stack = np.asarray(stack, dtype=np.float64)
    g = gaussian_window()
    mu = local_mean(stack, g)
    sigma = np.sqrt(np.abs(local_mean(stack * stack, g) - mu * mu))
    return (stack - mu) / (sigma + c)
