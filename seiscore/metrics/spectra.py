"""Average amplitude spectra and removed-noise energy per frequency band.

Along the trace axis (time or depth) with sample interval ``dt``:

    A(f) = mean over traces of |FFT(trace)(f)|           (average amplitude spectrum)
    E_band(x) = sum over f in band of |FFT(x)(f)|^2     (energy, by Parseval up to a constant)

For a denoiser, ``removed = original - denoised``; the fraction ``E_band(removed) / E_band(original)``
says how much of each band was taken out. Reading it: random noise is broadband, so a
good result removes a modest, similar fraction everywhere and more where the signal is weak
(high frequencies); a large fraction in the dominant signal band means signal was removed.
"""

from __future__ import annotations

import numpy as np

UNITS = {"ms": (1e-3, "Hz"), "s": (1.0, "Hz"), "m": (1e-3, "cycles/km"), "ft": (1e-3, "cycles/kft")}


def frequency_axis(n: int, step: float = 1.0, unit: str | None = None) -> tuple[np.ndarray, str]:
    """Frequencies of ``rfft`` of ``n`` samples spaced ``step`` in ``unit`` (ms, s, m, ft, or None = samples)."""
    if n < 2:
        raise ValueError(f"a spectrum needs at least 2 samples per trace, got {n}")
    if step <= 0:
        raise ValueError(f"sample interval must be positive, got {step}")
    factor, label = UNITS.get(unit or "", (1.0, "cycles/sample"))
    if unit is None:
        step = 1.0
    return np.fft.rfftfreq(n, d=step * factor), label


def amplitude_spectrum(traces, axis: int = -1) -> np.ndarray:
    """Average amplitude spectrum of traces along ``axis`` (mean over all other axes)."""
    t = np.moveaxis(np.asarray(traces, dtype=np.float64), axis, -1)
    spec = np.abs(np.fft.rfft(t, axis=-1))
    return spec.reshape(-1, spec.shape[-1]).mean(axis=0)


def band_edges(nyquist: float, n_bands: int = 4) -> np.ndarray:
    """``n_bands`` equal-width bands over [0, nyquist]."""
    if n_bands < 1:
        raise ValueError(f"n_bands must be >= 1, got {n_bands}")
    return np.linspace(0.0, nyquist, n_bands + 1)


def band_energies(original, denoised, freqs: np.ndarray, edges, axis: int = -1) -> list[dict]:
    """Energy of the original, of the removed noise and their ratio in each band ``[edges[i], edges[i+1])``.

    The last band includes its upper edge (Nyquist).
    """
    o = np.moveaxis(np.asarray(original, dtype=np.float64), axis, -1)
    d = np.moveaxis(np.asarray(denoised, dtype=np.float64), axis, -1)
    if o.shape != d.shape:
        raise ValueError(f"original and denoised traces differ in shape: {o.shape} vs {d.shape}")
    p_orig = (np.abs(np.fft.rfft(o, axis=-1)) ** 2).reshape(-1, len(freqs)).sum(axis=0)
    p_rem = (np.abs(np.fft.rfft(o - d, axis=-1)) ** 2).reshape(-1, len(freqs)).sum(axis=0)
    edges = np.asarray(edges, dtype=np.float64)
    out = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        sel = (freqs >= lo) & ((freqs < hi) if i < len(edges) - 2 else (freqs <= hi))
        e_o, e_r = float(p_orig[sel].sum()), float(p_rem[sel].sum())
        out.append(
            {
                "band": [float(lo), float(hi)],
                "original_energy": e_o,
                "removed_energy": e_r,
                "removed_fraction": e_r / e_o if e_o > 0 else None,
            }
        )
    return out
