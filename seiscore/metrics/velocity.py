"""Quality of reconstructed velocity models (``/work/shared/docs/SIREN.md`` §3), batched over models.

All functions take ``pred`` and ``true`` of shape ``(N, nz, nx)`` (one ``(nz, nx)`` model is ``N = 1``) in m/s
and return one float64 value per model, ``(N,)``. With ``v_n = (v - vmin) / vrange`` (defaults 1500 and
3000 m/s, the OpenFWI range):

- ``mse_normalised``:  ``MSE_n = mean((v^_n - v_n)^2)`` over a model's points.
- ``psnr_global``:     ``10 log10(1 / MSE_n)`` dB — peak 1 on normalised maps, i.e. a 3000 m/s range.
- ``psnr_local``:      ``10 log10(R^2 / mean((v^ - v)^2))`` dB with ``R = max(v) - min(v)`` of the true model
  (what scikit-image computes given the map's own range); NaN for a constant true model.
- ``ssim_velocity``:   ``skimage.metrics.structural_similarity(true, pred, data_range=3000)`` with its defaults
  (7 x 7 uniform window, no Gaussian weights).
- ``max_abs_error``:   ``max |v^ - v|`` in m/s.

A perfect reconstruction has infinite PSNR. Compression ratios, the three ways the spec states them:
:func:`ratio_per_model`, :func:`ratio_amortised`.
"""

from __future__ import annotations

import numpy as np

VMIN = 1500.0
VRANGE = 3000.0


class MetricInputError(ValueError):
    """Predicted and true models that cannot be compared (shapes, dimensions); one line."""


def _pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise MetricInputError(f"predicted models {p.shape} and true models {t.shape} differ in shape")
    if p.ndim == 2:
        p, t = p[None], t[None]
    if p.ndim != 3 or p.size == 0:
        raise MetricInputError(f"models must be (N, nz, nx) or (nz, nx) and non-empty, got {p.shape}")
    return p, t


def mse_normalised(pred: np.ndarray, true: np.ndarray, vmin: float = VMIN, vrange: float = VRANGE) -> np.ndarray:
    """``(N,)`` mean squared error of the min-max normalised models (``vmin`` only shifts both; kept for the
    interface)."""
    p, t = _pair(pred, true)
    if vrange <= 0:
        raise MetricInputError(f"vrange must be positive, got {vrange}")
    return np.mean(((p - vmin) / vrange - (t - vmin) / vrange) ** 2, axis=(1, 2))


def _psnr(peak_sq: np.ndarray | float, mse: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(peak_sq / mse)


def psnr_global(pred: np.ndarray, true: np.ndarray, vmin: float = VMIN, vrange: float = VRANGE) -> np.ndarray:
    """``(N,)`` PSNR in dB with peak 1 on normalised models (global range ``vrange``)."""
    return _psnr(1.0, mse_normalised(pred, true, vmin, vrange))


def psnr_local(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``(N,)`` PSNR in dB with each true model's own range ``max - min`` as the peak (NaN if constant)."""
    p, t = _pair(pred, true)
    rng = t.max(axis=(1, 2)) - t.min(axis=(1, 2))
    mse = np.mean((p - t) ** 2, axis=(1, 2))
    out = _psnr(rng**2, mse)
    return np.where(rng > 0, out, np.nan)


def ssim_velocity(pred: np.ndarray, true: np.ndarray, data_range: float = VRANGE) -> np.ndarray:
    """``(N,)`` SSIM of each model by scikit-image (defaults, ``data_range`` 3000 m/s).

    scikit-image scores one image at a time, so this loops over models (models must be at least 7 x 7)."""
    from skimage.metrics import structural_similarity

    p, t = _pair(pred, true)
    if min(p.shape[1:]) < 7:
        raise MetricInputError(f"SSIM needs models of at least 7 x 7 points, got {p.shape[1:]}")
    return np.array([structural_similarity(t[i], p[i], data_range=data_range) for i in range(p.shape[0])])


def max_abs_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``(N,)`` largest absolute error in m/s."""
    p, t = _pair(pred, true)
    return np.abs(p - t).max(axis=(1, 2))


def ratio_per_model(n_points: int, payload_bytes: float, value_bytes: int = 4) -> float:
    """Compression ratio of one model: raw ``n_points * value_bytes`` over its payload (e.g. 4,900 float32 values
    over a 1,024-byte latent = 19.14:1)."""
    return n_points * value_bytes / float(payload_bytes)


def ratio_amortised(n_models: int, n_points: int, payload_bytes: float, shared_bytes: float, value_bytes: int = 4):
    """Compression ratio of a collection counting the shared state (decoder or PCA basis) once:
    ``N * n_points * value_bytes / (N * payload_bytes + shared_bytes)``."""
    return n_models * n_points * value_bytes / (n_models * float(payload_bytes) + float(shared_bytes))


def summary(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """All per-model metrics at once: ``mse_n``, ``psnr_g``, ``psnr_l``, ``ssim``, ``max_abs_error``."""
    return {
        "mse_n": mse_normalised(pred, true),
        "psnr_g": psnr_global(pred, true),
        "psnr_l": psnr_local(pred, true),
        "ssim": ssim_velocity(pred, true),
        "max_abs_error": max_abs_error(pred, true),
    }
