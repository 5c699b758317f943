"""PIQE: Perception-based Image Quality Evaluator (Venkatanath et al. 2015); needs no model.

On grey levels in [0, 255] (each image padded by edge replication to a multiple of 16):

1. MSCN coefficients ``m`` (:mod:`seiscore.metrics.mscn`; C = 1 on the 0-255 scale).
2. Non-overlapping 16 x 16 blocks; a block is *active* when the sample variance of its
   MSCN values ``v > 0.1``.
3. Active block distortions:
   - noticeable artefact: some segment of 6 consecutive pixels along one of the block's
     four edges has sample standard deviation < 0.1;
   - noise: ``sigma > 2 beta`` with ``sigma = sqrt(v)``, ``beta = |sigma - s_cs| / max(sigma, s_cs)``
     and ``s_cs`` the ratio of the standard deviation of the two centre columns (8 and 9 of
     16, 1-based) to that of the "surround" (0 when undefined). As in MATLAB's ``piqe`` (whose
     scores the TLSM paper reports), the surround is the block without columns 8 and 10: MATLAB
     deletes column 8 and then column 9 of what is left.
4. ``PIQE = 100 (1 + sum_active [artefact (1 - v) + noise v]) / (1 + n_active)``; a uniform
   image (no active block) scores 100.

Lower is better (0-20 excellent, 20-35 good, 35-50 fair, 50-80 poor, > 80 bad per the
original paper). All blocks of all images are evaluated at once (no Python loops over blocks).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from seiscore.metrics.brisque import _as_stack
from seiscore.metrics.mscn import mscn

BLOCK = 16
SEGMENT = 6
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1


def _pad_to_blocks(stack: np.ndarray) -> np.ndarray:
    rows, cols = stack.shape[1:]
    pr, pc = (-rows) % BLOCK, (-cols) % BLOCK
    if pr or pc:
        stack = np.pad(stack, ((0, 0), (0, pr), (0, pc)), mode="edge")
    return stack


def _blocks(m: np.ndarray) -> np.ndarray:
    """(n, R, C) -> (n, R/16, C/16, 16, 16)."""
    n, rows, cols = m.shape
    return m.reshape(n, rows // BLOCK, BLOCK, cols // BLOCK, BLOCK).swapaxes(2, 3)


def piqe_block_maps(images) -> dict[str, np.ndarray]:
    """Per-block quantities of every image: ``variance``, ``active``, ``artefact``, ``noise`` (n, R/16, C/16)."""
    stack = _pad_to_blocks(_as_stack(images).astype(np.float64))
    b = _blocks(mscn(stack / 255.0))
    var = b.reshape(*b.shape[:3], -1).var(axis=-1, ddof=1)
    active = var > ACTIVITY_THRESHOLD

    edges = np.stack([b[..., 0, :], b[..., :, -1], b[..., -1, :], b[..., :, 0]], axis=-2)  # (..., 4, 16)
    seg_std = sliding_window_view(edges, SEGMENT, axis=-1).std(axis=-1, ddof=1)
    artefact = (seg_std < IMPAIRED_THRESHOLD).any(axis=(-2, -1))

    c0 = BLOCK // 2 - 1  # 0-based columns 7, 8 are the centre; MATLAB's surround drops 7 and 9
    center = b[..., :, c0 : c0 + 2].reshape(*b.shape[:3], -1)
    keep = np.setdiff1d(np.arange(BLOCK), [c0, c0 + 2])
    surround = b[..., :, keep].reshape(*b.shape[:3], -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = center.std(axis=-1, ddof=1) / surround.std(axis=-1, ddof=1)
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        sigma = np.sqrt(var)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
    noise = sigma > 2 * np.nan_to_num(beta)
    return {"variance": var, "active": active, "artefact": artefact & active, "noise": noise & active}


def piqe(images) -> np.ndarray | float:
    """PIQE score of each image (grey levels in [0, 255]); a float for one 2-D image."""
    maps = piqe_block_maps(images)
    v, act = maps["variance"], maps["active"]
    dist = np.where(act, maps["artefact"] * (1 - v) + maps["noise"] * v, 0.0).sum(axis=(1, 2))
    scores = 100.0 * (1.0 + dist) / (1.0 + act.sum(axis=(1, 2)))
    return float(scores[0]) if np.ndim(images) == 2 else scores
