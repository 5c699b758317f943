"""Reconstruction metrics for three-component traces (CDiffSD spec §3), batched over windows and components.

Every function takes arrays ``[..., L]`` (typically ``[n, 3, L]``: windows, components Z/N/E, samples) in
physical (de-normalised) units and returns one value per trace, i.e. shape ``[...]`` (``[n, 3]``);
:func:`trace_metrics` averages over components (NaN-aware) to one value per window and
:func:`summarise` to one number per metric. Nothing modifies its inputs; computations in float64.

- ``SNR_rec = 10 log10( Σ x0² / Σ (x0 - x̂)² )`` dB, versus the clean trace (synthetic data only);
  ``ΔSNR = SNR_rec(x̂) - SNR_rec(y)``.
- ``SNR_win = 10 log10( mean(x[tP : tP+W]²) / mean(x[tP-W-g : tP-g]²) )``, W = 5 s, g = 0.5 s
  (works without a clean reference; windows are clipped to the record, NaN when a side is empty).
- ``CC = max_{|τ| <= 0.1 s} ρ(x0, x̂ shifted by τ)``, ρ the Pearson correlation over the overlap;
  ``rho0`` the zero-lag ρ.
- Amplitude fidelity ``| max|x̂| / max|x0| - 1 |`` and relative L2 ``‖x̂ - x0‖ / ‖x0‖``.

Traces whose clean reference is all zeros give NaN for the reference metrics (and are skipped by the
NaN-aware means).
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-30


class TraceMetricError(ValueError):
    """Arrays given to a trace metric do not fit together."""


def _pair(ref, est) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.shape != est.shape or ref.ndim < 1:
        raise TraceMetricError(f"estimate: shape {est.shape} does not match the reference {ref.shape}")
    return ref, est


def _nan_where(cond: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(cond, np.nan, values)


def snr_rec(clean, est) -> np.ndarray:
    """Reconstruction SNR in dB per trace: 10 log10(Σ x0² / Σ (x0 - x̂)²); +inf for an exact estimate."""
    x0, xh = _pair(clean, est)
    sig = (x0**2).sum(-1)
    err = ((x0 - xh) ** 2).sum(-1)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(sig / np.where(err > 0, err, 0.0))
    return _nan_where(sig <= 0, out)


def delta_snr(clean, est, noisy) -> np.ndarray:
    """SNR gain in dB per trace: SNR_rec(x̂) - SNR_rec(y)."""
    return snr_rec(clean, est) - snr_rec(clean, noisy)


def snr_win(x, p_sample, fs: float = 100.0, *, window_s: float = 5.0, guard_s: float = 0.5) -> np.ndarray:
    """Windowed SNR in dB per trace around the P arrival: mean power in [tP, tP+W) over [tP-W-g, tP-g).

    ``x`` is ``[n, ..., L]``, ``p_sample`` float[n] (NaN -> NaN). Windows are clipped to the record.
    """
    x = np.asarray(x, dtype=np.float64)
    p = np.asarray(p_sample, dtype=np.float64).reshape(-1)
    if p.shape[0] != x.shape[0]:
        raise TraceMetricError(f"p_sample: {p.shape[0]} arrivals for {x.shape[0]} windows")
    length = x.shape[-1]
    w, g = int(round(window_s * fs)), int(round(guard_s * fs))
    valid = np.isfinite(p)
    tp = np.where(valid, np.round(np.nan_to_num(p)), 0).astype(np.int64)
    idx = np.arange(length)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (length,)
    sig_mask = ((idx[None, :] >= tp[:, None]) & (idx[None, :] < tp[:, None] + w)).reshape(shape)
    noi_mask = ((idx[None, :] >= tp[:, None] - w - g) & (idx[None, :] < tp[:, None] - g)).reshape(shape)
    p2 = x**2
    n_sig = sig_mask.sum(-1)
    n_noi = noi_mask.sum(-1)
    ps = np.where(sig_mask, p2, 0).sum(-1) / np.maximum(n_sig, 1)
    pn = np.where(noi_mask, p2, 0).sum(-1) / np.maximum(n_noi, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(ps / pn)
    bad = (n_sig == 0) | (n_noi == 0) | (pn <= 0) | (ps <= 0)
    bad = bad | ~valid.reshape((-1,) + (1,) * (x.ndim - 2))
    return _nan_where(bad, out)


def _pearson_lagged(x0: np.ndarray, xh: np.ndarray, lag: int) -> np.ndarray:
    """ρ(x0[t], x̂[t - lag]) over the overlapping samples, per trace."""
    length = x0.shape[-1]
    if lag >= 0:
        a, b = x0[..., lag:], xh[..., : length - lag]
    else:
        a, b = x0[..., : length + lag], xh[..., -lag:]
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a**2).sum(-1) * (b**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > _TINY, (a * b).sum(-1) / np.where(den > _TINY, den, 1.0), np.nan)


def rho0(clean, est) -> np.ndarray:
    """Zero-lag Pearson correlation per trace."""
    x0, xh = _pair(clean, est)
    return _pearson_lagged(x0, xh, 0)


def cc(clean, est, fs: float = 100.0, *, max_lag_s: float = 0.1) -> np.ndarray:
    """Maximum Pearson correlation over lags |τ| <= ``max_lag_s`` per trace (a loop over the lags only)."""
    x0, xh = _pair(clean, est)
    k = int(round(max_lag_s * fs))
    stack = np.stack([_pearson_lagged(x0, xh, lag) for lag in range(-k, k + 1)])
    all_nan = np.isnan(stack).all(0)
    return np.where(all_nan, np.nan, np.nanmax(np.where(np.isnan(stack), -np.inf, stack), axis=0))


def amplitude_error(clean, est) -> np.ndarray:
    """Amplitude fidelity per trace: | max|x̂| / max|x0| - 1 |."""
    x0, xh = _pair(clean, est)
    m0 = np.abs(x0).max(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _nan_where(m0 <= 0, np.abs(np.abs(xh).max(-1) / m0 - 1.0))


def relative_l2(clean, est) -> np.ndarray:
    """Relative L2 error per trace: ‖x̂ - x0‖ / ‖x0‖."""
    x0, xh = _pair(clean, est)
    n0 = np.sqrt((x0**2).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _nan_where(n0 <= 0, np.sqrt(((xh - x0) ** 2).sum(-1)) / n0)


def _component_mean(v: np.ndarray) -> np.ndarray:
    """NaN-aware mean over the component axis (axis 1 of [n, 3]); all-NaN -> NaN."""
    if v.ndim < 2:
        return v
    finite = np.where(np.isfinite(v), v, 0.0)
    cnt = np.isfinite(v).sum(1)
    with np.errstate(invalid="ignore"):
        out = finite.sum(1) / np.where(cnt > 0, cnt, 1)
    return np.where(cnt > 0, out, np.nan)


def trace_metrics(clean, est, *, noisy=None, p_sample=None, fs: float = 100.0) -> dict[str, np.ndarray]:
    """All reference metrics per window (averaged over components): dict of float64[n].

    Keys: ``snr`` (SNR_rec), ``dsnr`` (with ``noisy``), ``cc``, ``rho0``, ``amp_err``, ``rel_l2``,
    ``snr_win`` (with ``p_sample``). Infinite SNRs (exact estimates) are left out of the averages.
    """
    out = {
        "snr": _component_mean(snr_rec(clean, est)),
        "cc": _component_mean(cc(clean, est, fs)),
        "rho0": _component_mean(rho0(clean, est)),
        "amp_err": _component_mean(amplitude_error(clean, est)),
        "rel_l2": _component_mean(relative_l2(clean, est)),
    }
    if noisy is not None:
        out["dsnr"] = _component_mean(delta_snr(clean, est, noisy))
    if p_sample is not None:
        out["snr_win"] = _component_mean(snr_win(est, p_sample, fs))
    return out


def summarise(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of each per-window metric over the finite values (NaN when none)."""
    out = {}
    for key, v in metrics.items():
        v = np.asarray(v, dtype=np.float64)
        fin = v[np.isfinite(v)]
        out[key] = float(fin.mean()) if fin.size else float("nan")
    return out
