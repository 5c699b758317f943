"""Scores on held-out sections in the paper convention, each section scored on its own.

Every 2-D section of the reference and of the estimate is min-max scaled to [0, 255]
separately, then PSNR and SSIM (``seiscore.metrics``) are computed per section and
averaged. (Scaling each section first makes the metrics' whole-array scaling an identity.)
"""

from __future__ import annotations

import numpy as np

from seiscore.metrics import psnr_per_slice, ssim_per_slice


def _sections_255(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    lo, hi = a.min(axis=(1, 2), keepdims=True), a.max(axis=(1, 2), keepdims=True)
    return (a - lo) * (255.0 / np.where(hi > lo, hi - lo, 1.0))


def section_scores(clean: np.ndarray, estimate: np.ndarray) -> dict[str, np.ndarray]:
    """Per-section PSNR (dB) and SSIM of a (n, H, W) estimate against its clean reference."""
    r, e = _sections_255(clean), _sections_255(estimate)
    return {"psnr": psnr_per_slice(r, e, axis=0), "ssim": ssim_per_slice(r, e, axis=0)}


def summary(clean: np.ndarray, estimate: np.ndarray, gate: np.ndarray | None = None) -> dict[str, float]:
    """Mean PSNR / SSIM over sections, plus the share of pixels with g > 0.5 when a gate is given."""
    s = section_scores(clean, estimate)
    out = {"psnr": float(np.mean(s["psnr"])), "ssim": float(np.mean(s["ssim"]))}
    if gate is not None:
        out["gate_dino_share"] = float(np.mean(gate > 0.5))
        out["gate_mean"] = float(np.mean(gate))
    return out
