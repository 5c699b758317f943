"""Amplitude normalisation of 2-D sections, recorded so that it can be undone.

Each section s (over the last two axes) is mapped to z = (s - mu) / sd with its own mean mu and
standard deviation sd (sd = 1 for a constant section); the inverse is s = z * sd + mu.
Training pairs normalise noisy and clean with the *noisy* section's (mu, sd), as inference must.
"""

from __future__ import annotations

import numpy as np


def section_stats(sections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sd) of every section of a (..., H, W) stack, shaped (..., 1, 1), float64."""
    a = np.asarray(sections, dtype=np.float64)
    mu = a.mean(axis=(-2, -1), keepdims=True)
    sd = a.std(axis=(-2, -1), keepdims=True)
    return mu, np.where(sd > 0, sd, 1.0)


def normalise(sections: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``z = (x - mu) / sd`` per section, as float32."""
    return ((np.asarray(sections, dtype=np.float64) - mu) / sd).astype(np.float32)


def denormalise(z: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``x = z * sd + mu`` (the inverse of :func:`normalise`), as float64."""
    return np.asarray(z, dtype=np.float64) * sd + mu
