"""Metrics of a velocity inversion (spec DRFWI.md §3), NumPy only.

All model metrics take models ``(nz, nx)`` in m/s on the inversion region (the model grid; deepwave's PML is
outside it); ``top`` rows (e.g. a water layer) can be excluded.

- ``MSE_v = mean(((v - v_true) / 1000)^2)`` in (km/s)^2 (:func:`model_mse`);
- ``RelErr = ||v - v_true||_2 / ||v_true||_2`` (:func:`relative_error`);
- ``SSIM(v, v_true)`` with ``data_range = max - min`` of ``v_true`` (:func:`model_ssim`, scikit-image);
- ``J / J(m_init)`` (:func:`normalised_misfit`);
- high-wavenumber recovery in the deep half (:func:`high_wavenumber_recovery`);
- plasticity: the fraction of weights whose gradient stays below ``1e-3 x median`` (:func:`plasticity`) and the
  cosine similarity of weights between two stages (:func:`weight_cosine`).
"""

from __future__ import annotations

import numpy as np


def _pair(v, v_true, top: int = 0) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(v, dtype=np.float64)
    b = np.asarray(v_true, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"models must be 2-D and of the same shape, got {a.shape} and {b.shape}")
    return a[top:], b[top:]


def model_mse(v, v_true, *, top: int = 0) -> float:
    """``mean(((v - v_true) / 1000)^2)``: model MSE in (km/s)^2 (inputs in m/s)."""
    a, b = _pair(v, v_true, top)
    return float(np.mean(((a - b) / 1000.0) ** 2))


def relative_error(v, v_true, *, top: int = 0) -> float:
    """``||v - v_true||_2 / ||v_true||_2``."""
    a, b = _pair(v, v_true, top)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def model_ssim(v, v_true, *, top: int = 0) -> float:
    """SSIM of ``v`` against ``v_true`` with ``data_range = max(v_true) - min(v_true)`` (scikit-image, 7x7
    window, smaller and odd on a grid narrower than 7 cells)."""
    from skimage.metrics import structural_similarity

    a, b = _pair(v, v_true, top)
    data_range = float(b.max() - b.min()) or 1.0
    win = min(7, *(n if n % 2 else n - 1 for n in a.shape))
    if win < 3:
        raise ValueError(f"SSIM needs a model at least 3 x 3, got {a.shape}")
    return float(structural_similarity(a, b, data_range=data_range, win_size=win))


def normalised_misfit(misfit, misfit_init) -> np.ndarray | float:
    """``J / J(m_init)`` (elementwise for arrays)."""
    out = np.asarray(misfit, dtype=np.float64) / np.asarray(misfit_init, dtype=np.float64)
    return float(out) if out.ndim == 0 else out


def model_metrics(v, v_true, *, ssim: bool = True, top: int = 0) -> dict[str, float]:
    """``{"mse_v", "rel_err"[, "ssim"]}`` of ``v`` against ``v_true``."""
    out = {"mse_v": model_mse(v, v_true, top=top), "rel_err": relative_error(v, v_true, top=top)}
    if ssim:
        out["ssim"] = model_ssim(v, v_true, top=top)
    return out


def radial_spectrum(field: np.ndarray, dx: float) -> tuple[np.ndarray, np.ndarray]:
    """``(k, F)``: the 2-D FFT ``F`` of ``field`` (mean removed, 2-D Hann taper) and the radial wavenumber
    ``k = sqrt(kz^2 + kx^2)`` (cycles/m) of every coefficient."""
    f = np.asarray(field, dtype=np.float64)
    f = f - f.mean()
    taper = np.outer(np.hanning(f.shape[0]), np.hanning(f.shape[1])) if min(f.shape) > 2 else 1.0
    spec = np.fft.fft2(f * taper)
    kz = np.fft.fftfreq(f.shape[0], d=dx)
    kx = np.fft.fftfreq(f.shape[1], d=dx)
    k = np.sqrt(kz[:, None] ** 2 + kx[None, :] ** 2)
    return k, spec


def high_wavenumber_recovery(v, m_init, v_true, dx: float, *, n_bins: int = 16, above: float = 0.5) -> dict:
    """How much of the true model's high-wavenumber content the inversion recovered, in the deep half.

    In the deep half (rows ``nz // 2:``), with ``d_est = v - m_init`` and ``d_true = v_true - m_init``
    (mean removed, Hann-tapered 2-D FFTs ``E``, ``T``), radially averaged over ``n_bins`` wavenumber bins up to
    ``k_Nyquist = 1 / (2 dx)``:

    - ``ratio[b] = sum_b |E|^2 / sum_b |T|^2`` (spectral ratio: 1 = right amount of detail);
    - ``coherence[b] = Re sum_b E conj(T) / sqrt(sum_b |E|^2 sum_b |T|^2)`` (1 = the right detail, in phase).

    ``high_ratio`` / ``high_coherence`` are the same over all coefficients with ``k > above * k_Nyquist``.
    Returns ``{"k", "ratio", "coherence", "high_ratio", "high_coherence"}`` (arrays as lists)."""
    v, m_init, v_true = (np.asarray(a, dtype=np.float64) for a in (v, m_init, v_true))
    if not v.shape == m_init.shape == v_true.shape or v.ndim != 2:
        raise ValueError(f"models must be 2-D of one shape, got {v.shape}, {m_init.shape}, {v_true.shape}")
    deep = slice(v.shape[0] // 2, None)
    k, est = radial_spectrum(v[deep] - m_init[deep], dx)
    _, true = radial_spectrum(v_true[deep] - m_init[deep], dx)
    k_nyq = 1.0 / (2.0 * dx)
    edges = np.linspace(0.0, k_nyq, n_bins + 1)
    idx = np.clip(np.digitize(k.ravel(), edges) - 1, 0, n_bins)  # n_bins = beyond Nyquist (diagonal corners)
    pe = np.bincount(idx, np.abs(est.ravel()) ** 2, n_bins + 1)[:n_bins]
    pt = np.bincount(idx, np.abs(true.ravel()) ** 2, n_bins + 1)[:n_bins]
    cross = np.bincount(idx, (est * np.conj(true)).real.ravel(), n_bins + 1)[:n_bins]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = pe / pt
        coherence = cross / np.sqrt(pe * pt)
    high = (k > above * k_nyq) & (k <= k_nyq)
    e_h, t_h = est[high], true[high]
    p_e, p_t = float(np.sum(np.abs(e_h) ** 2)), float(np.sum(np.abs(t_h) ** 2))
    high_ratio = p_e / p_t if p_t > 0 else float("nan")
    high_coh = float(np.sum((e_h * np.conj(t_h)).real) / np.sqrt(p_e * p_t)) if p_e * p_t > 0 else float("nan")
    centres = 0.5 * (edges[1:] + edges[:-1])
    return {
        "k": centres.tolist(),
        "ratio": ratio.tolist(),
        "coherence": coherence.tolist(),
        "high_ratio": high_ratio,
        "high_coherence": high_coh,
    }


def inactive_fraction(max_ratio: np.ndarray, threshold: float = 1e-3) -> float:
    """Fraction of weights whose largest ``|g| / median|g|`` over the window is below ``threshold``."""
    r = np.asarray(max_ratio, dtype=np.float64)
    return float(np.mean(r < threshold)) if r.size else float("nan")


def gradient_ratio(grad: np.ndarray) -> np.ndarray:
    """``|g| / median(|g|)`` over the weights of one iteration's gradient (or of each row of ``(K, P)``)."""
    g = np.abs(np.asarray(grad, dtype=np.float64))
    med = np.median(g, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(med > 0, g / np.where(med > 0, med, 1.0), np.where(g > 0, np.inf, 0.0))


def plasticity(grad_history, threshold: float = 1e-3, weights_start=None, weights_end=None) -> dict[str, float]:
    """Loss of plasticity from the gradients of the last K iterations ``grad_history (K, P)``:

    ``inactive_fraction`` = the fraction of the P weights whose gradient magnitude stays below ``threshold``
    times that iteration's median magnitude over all weights, in every one of the K iterations; with
    ``weights_start`` / ``weights_end`` (flat weight vectors, e.g. end of stage 1 and end of stage 2) also
    their ``cosine`` similarity."""
    g = np.atleast_2d(np.asarray(grad_history, dtype=np.float64))
    out = {"inactive_fraction": inactive_fraction(gradient_ratio(g).max(axis=0), threshold)}
    if weights_start is not None and weights_end is not None:
        out["cosine"] = weight_cosine(weights_start, weights_end)
    return out


def weight_cosine(a, b) -> float:
    """Cosine similarity of two flat weight vectors."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
