"""Classical baselines for the CDiffSD comparison (spec §5): identity and a zero-phase band-pass.

The band-pass is a 4th-order Butterworth applied forwards and backwards (``scipy.signal.sosfiltfilt``,
zero phase, so picks are not shifted); its corners are chosen on the *validation* pairs as the
(low, high) pair of :data:`LOW_HZ` x :data:`HIGH_HZ` with the best mean reconstruction SNR
(ties: the first in grid order). The STFT-masking network lives in
:mod:`seiscore.methods.cdiffsd.stft_mask`, the direct U-Net is ``CDiffSDModel.denoise(mode="direct")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seiscore.metrics.traces import snr_rec

LOW_HZ = (0.5, 1.0, 2.0)
HIGH_HZ = (10.0, 15.0, 20.0, 30.0, 45.0)
ORDER = 4


class BandpassError(ValueError):
    """Band-pass corners that cannot be used at the given sampling rate."""


@dataclass(frozen=True)
class BandpassChoice:
    """The chosen corners and the validation table ``{(low, high): mean SNR_rec dB}``."""

    low: float
    high: float
    order: int
    table: dict


def bandpass(x, low: float, high: float, fs: float = 100.0, order: int = ORDER) -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis: float32 array of ``x``'s shape."""
    from scipy.signal import butter, sosfiltfilt

    if not 0 < low < high < fs / 2:
        raise BandpassError(f"corners: need 0 < low < high < {fs / 2:g} Hz, got {low:g}-{high:g} Hz")
    sos = butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1).astype(np.float32)


def choose_bandpass(noisy_val, clean_val, fs: float = 100.0, lows=LOW_HZ, highs=HIGH_HZ) -> BandpassChoice:
    """Pick the corners with the best mean SNR_rec on validation pairs (NaN-aware mean over traces)."""
    table = {}
    for lo in lows:
        for hi in highs:
            if hi >= fs / 2:
                continue
            s = snr_rec(clean_val, bandpass(noisy_val, lo, hi, fs))
            table[(float(lo), float(hi))] = float(np.nanmean(np.where(np.isfinite(s), s, np.nan)))
    if not table:
        raise BandpassError(f"corners: no high corner below the Nyquist frequency {fs / 2:g} Hz")
    best = max(table, key=lambda k: table[k])
    return BandpassChoice(low=best[0], high=best[1], order=ORDER, table=table)
