"""PSNR and SSIM against a clean reference, in the TLSM paper's convention.

Convention (docs/TLSM.md, "Metrics convention"): the reference and the estimate are
each min-max scaled, as whole arrays, to [0, 255]; the metric is computed on every
2-D slice along ``axis`` (the frontal slices, axis 2 of the canonical cube) and averaged.

PSNR per slice:  10 log10(255^2 / mean((r - e)^2)).

SSIM per slice (Wang et al. 2004): with Gaussian-window local means mu, variances
sigma^2 and covariance sigma_re (11 x 11 window, sigma 1.5, 'valid' filtering),

    SSIM = mean( (2 mu_r mu_e + C1)(2 sigma_re + C2) / ((mu_r^2 + mu_e^2 + C1)(sigma_r^2 + sigma_e^2 + C2)) ),
    C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 255.

All slices are processed at once (separable filtering over the two in-slice axes). When only some
slices of a survey are scored, pass each whole array's ``(min, max)`` as ``reference_range`` /
``estimate_range`` so the scaling is the one of the whole arrays, as the convention says.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from seiscore.core.validation import check_same_shape

PEAK = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K = (0.01, 0.03)


Range = tuple[float, float]


def minmax_255(a: np.ndarray, value_range: Range | None = None) -> np.ndarray:
    """Scale an array linearly to [0, 255] in float64, ``value_range`` (default: its own min, max)
    mapping to 0 and 255 (a constant array maps to 0)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = (float(a.min()), float(a.max())) if value_range is None else map(float, value_range)
    if hi == lo:
        return np.zeros_like(a)
    return (a - lo) * (PEAK / (hi - lo))


def _prepare(
    reference, estimate, axis: int, ranges: tuple[Range | None, Range | None] = (None, None)
) -> tuple[np.ndarray, np.ndarray]:
    r, e = np.asarray(reference), np.asarray(estimate)
    check_same_shape("reference", r, "estimate", e)
    if r.ndim not in (2, 3):
        raise ValueError(f"metrics take a 2-D image or a 3-D cube, got {r.ndim}-D")
    for name, a in (("reference", r), ("estimate", e)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or Inf samples")
    r, e = minmax_255(r, ranges[0]), minmax_255(e, ranges[1])
    if r.ndim == 2:
        return r[None], e[None]
    return np.moveaxis(r, axis, 0), np.moveaxis(e, axis, 0)


def psnr_per_slice(
    reference, estimate, axis: int = 2, *, reference_range: Range | None = None, estimate_range: Range | None = None
) -> np.ndarray:
    """PSNR (dB) of every slice along ``axis``; a 2-D input gives one value."""
    r, e = _prepare(reference, estimate, axis, (reference_range, estimate_range))
    mse = np.mean((r - e) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(PEAK**2 / mse)


def psnr(reference, estimate, axis: int = 2) -> float:
    """Mean over slices of :func:`psnr_per_slice` (paper convention)."""
    return float(np.mean(psnr_per_slice(reference, estimate, axis)))


def _gaussian_window() -> np.ndarray:
    x = np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2
    g = np.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def _filter_valid(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 2-D Gaussian filtering over axes 1 and 2 of a stack, 'valid' part only."""
    h = len(g) // 2
    out = ndimage.correlate1d(a, g, axis=1, mode="constant")[:, h:-h]
    return ndimage.correlate1d(out, g, axis=2, mode="constant")[:, :, h:-h]


def ssim_per_slice(
    reference, estimate, axis: int = 2, *, reference_range: Range | None = None, estimate_range: Range | None = None
) -> np.ndarray:
    """SSIM of every slice along ``axis`` (each slice needs >= 11 x 11 samples)."""
    r, e = _prepare(reference, estimate, axis, (reference_range, estimate_range))
    if min(r.shape[1:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs slices of at least {SSIM_WINDOW} x {SSIM_WINDOW} samples, got {r.shape[1:]}")
    g = _gaussian_window()
    c1, c2 = (SSIM_K[0] * PEAK) ** 2, (SSIM_K[1] * PEAK) ** 2
    mu_r, mu_e = _filter_valid(r, g), _filter_valid(e, g)
    s_rr = _filter_valid(r * r, g) - mu_r**2
    s_ee = _filter_valid(e * e, g) - mu_e**2
    s_re = _filter_valid(r * e, g) - mu_r * mu_e
    num = (2 * mu_r * mu_e + c1) * (2 * s_re + c2)
    den = (mu_r**2 + mu_e**2 + c1) * (s_rr + s_ee + c2)
    return np.mean(num / den, axis=(1, 2))


def ssim(reference, estimate, axis: int = 2) -> float:
    """Mean over slices of :func:`ssim_per_slice` (paper convention)."""
    return float(np.mean(ssim_per_slice(reference, estimate, axis)))
