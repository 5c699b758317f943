"""P/S picks with ObsPy's classic pickers and their scores (CDiffSD spec §3, picking).

The same pickers run on clean, noisy and every denoised version, so the comparison needs no trained
weights:

- ``ar_pick`` (AR-AIC + STA/LTA, Akazawa 2004) on Z, N, E: a P and an S pick;
- ``pk_baer`` (Baer & Kradolfer 1987) on Z: a P pick.

Both are C routines that take one trace (or one 3-C record) at a time, so :func:`pick` loops over
windows calling them (one C call per window; everything else is vectorised). Parameters are ObsPy's
documented examples for 100 Hz local records (:data:`AR_PARAMS`, :data:`BAER_PARAMS`, in seconds where
ObsPy takes seconds, scaled with ``fs`` where it takes samples).

A tiny seeded dither (``1e-4 x`` the window's peak, the same noise for every version of a window) is
added before picking: both pickers divide by the pre-event variance and return nonsense on traces that
are exactly zero before the P arrival (the clean synthetic events are).

``ar_pick``'s S pick is undefined when its own P pick is early: its reversed STA-LTA search on the horizontal
runs from the P sample back to ``lta_s`` samples *before* its buffers when ``P sample + l_p < lta_s`` (ObsPy 1.5
``arpicker.c``), so the S pick then depends on whatever memory lies there (on the same windows, 0.69 or 0.51 S
recall depending on what the process had done before). Those windows get no S pick (:func:`s_pick_defined`).

Scores (:func:`score_picks`): a pick is a detection when the picker returned a time inside the window;
a detection is a true positive when ``|t_pick - t_true| <= tol``. ``precision = TP / detections``,
``recall = TP / arrivals`` (windows with a known arrival), ``F1``, and the mean / std of the residuals
``t_pick - t_true`` (s) of the true positives, at ``tol = 0.1 s`` and ``0.5 s``.
"""

from __future__ import annotations

import numpy as np

AR_PARAMS = dict(f1=1.0, f2=20.0, lta_p=1.0, sta_p=0.1, lta_s=4.0, sta_s=1.0, m_p=2, m_s=8, l_p=0.1, l_s=0.2)
BAER_PARAMS = dict(tdownmax_s=0.2, tupevent_s=0.6, thr1=7.0, thr2=12.0, preset_len_s=1.0, p_dur_s=1.0)
TOLERANCES_S = (0.1, 0.5)
_DITHER = 1e-4
_DITHER_SEED = 20240621


class PickError(ValueError):
    """Arrays given to the pickers do not fit together."""


def _dither(x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(_DITHER_SEED)
    peak = np.abs(x).max(axis=(1, 2), keepdims=True)
    return x + _DITHER * peak * rng.standard_normal(x.shape[1:])[None]


def s_pick_defined(p_seconds, fs: float = 100.0) -> np.ndarray:
    """Where ``ar_pick``'s S pick is defined, given its P picks (s): bool array.

    Its S search reads ``buf[i - nlta]`` for ``i`` down to the P sample ``i4 = round(p fs) + int(l_p fs)``, so it
    stays inside the buffer only when ``i4 >= nlta = int(lta_s fs)``.
    """
    a = AR_PARAMS
    p = np.asarray(p_seconds, dtype=np.float64)
    i4 = np.round(p * fs) + int(a["l_p"] * fs)
    return np.isfinite(p) & (i4 >= int(a["lta_s"] * fs))


def pick(x, fs: float = 100.0) -> dict[str, np.ndarray]:
    """Pick every window of ``x`` float[n, 3, L] (Z, N, E): dict of float64[n] pick samples (NaN = no pick).

    Keys ``ar_p``, ``ar_s`` (``ar_pick``) and ``baer_p`` (``pk_baer``), in samples from the window start. ``ar_s``
    is NaN where ar_pick's S pick is undefined (:func:`s_pick_defined`).
    """
    from obspy.signal.trigger import ar_pick, pk_baer

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] != 3:
        raise PickError(f"x: need [n, 3, L] three-component windows, got shape {x.shape}")
    n, _, length = x.shape
    xd = _dither(x).astype(np.float32)
    a = AR_PARAMS
    b = BAER_PARAMS
    out = {k: np.full(n, np.nan) for k in ("ar_p", "ar_s", "baer_p")}
    for i in range(n):  # one C call per window (ObsPy's pickers take single records)
        z, nn, e = (np.ascontiguousarray(xd[i, c]) for c in range(3))
        try:
            tp, ts = ar_pick(z, nn, e, fs, a["f1"], a["f2"], a["lta_p"], a["sta_p"], a["lta_s"], a["sta_s"],
                             a["m_p"], a["m_s"], a["l_p"], a["l_s"], s_pick=True)  # fmt: skip
        except Exception:  # noqa: BLE001 - the C picker fails on degenerate records: no pick
            tp, ts = np.nan, np.nan
        pb, _ = pk_baer(z, fs, int(round(b["tdownmax_s"] * fs)), int(round(b["tupevent_s"] * fs)), b["thr1"],
                        b["thr2"], int(round(b["preset_len_s"] * fs)), int(round(b["p_dur_s"] * fs)))  # fmt: skip
        out["ar_p"][i] = tp * fs
        out["ar_s"][i] = ts * fs if s_pick_defined(tp, fs) else np.nan
        out["baer_p"][i] = pb
    for k, v in out.items():
        out[k] = np.where(np.isfinite(v) & (v > 0) & (v < length), v, np.nan)
    return out


def score_picks(picked, true, fs: float = 100.0, tolerances=TOLERANCES_S) -> dict[str, float]:
    """Precision, recall, F1 and residual mean/std (s) of picks against true arrival samples.

    ``picked`` and ``true`` are float[n] samples (NaN = no pick / unknown arrival). Keys like
    ``recall@0.5``, ``precision@0.1``, ``f1@0.5``, ``res_mean@0.5``, ``res_std@0.5`` and ``n``.
    """
    picked = np.asarray(picked, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if picked.shape != true.shape:
        raise PickError(f"picked: {picked.shape[0]} picks for {true.shape[0]} arrivals")
    det = np.isfinite(picked)
    known = np.isfinite(true)
    res = (picked - true) / fs
    out: dict[str, float] = {"n": float(known.sum())}
    for tol in tolerances:
        tp = det & known & (np.abs(res) <= tol + 1e-9)
        n_tp = float(tp.sum())
        prec = n_tp / det.sum() if det.any() else float("nan")
        rec = n_tp / known.sum() if known.any() else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        out[f"precision@{tol:g}"] = float(prec)
        out[f"recall@{tol:g}"] = float(rec)
        out[f"f1@{tol:g}"] = float(f1)
        out[f"res_mean@{tol:g}"] = float(res[tp].mean()) if n_tp else float("nan")
        out[f"res_std@{tol:g}"] = float(res[tp].std()) if n_tp else float("nan")
    return out


def pick_scores(x, p_sample, s_sample, fs: float = 100.0) -> dict[str, dict[str, float]]:
    """Pick ``x`` [n, 3, L] and score: ``{"ar_p": ..., "ar_s": ..., "baer_p": ...}`` each from :func:`score_picks`."""
    picks = pick(x, fs)
    truth = {"ar_p": p_sample, "ar_s": s_sample, "baer_p": p_sample}
    return {k: score_picks(picks[k], truth[k], fs) for k in picks}
