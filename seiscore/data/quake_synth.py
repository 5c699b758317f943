"""Synthetic three-component local earthquakes with realistic noise (CDiffSD spec §6).

Every array is ``float32[n, 3, L]`` in Z, N, E order at ``fs`` Hz (default 100 Hz, L = 3000 = 30 s).

Events (:func:`make_events`), vectorised over events, seeded:

1. Geometry: hypocentral distance ``d ~ U(5, 150)`` km, ``Vp = 6.0``, ``Vs = 3.46`` km/s,
   P arrival ``tP ~ U(5, 12)`` s inside the window, ``tS = tP + d (1/Vs - 1/Vp)``; draws with
   ``tS > 27`` s are redrawn (rejection, as the spec says).
2. Source: ``M ~ U(0.5, 4.5)``, ``M0 = 10^(1.5 M + 9.1)`` N m, stress drop ``Δσ ~ logU(0.1, 10)`` MPa,
   Brune corner ``fc = 0.49 β (Δσ / M0)^(1/3)`` (β in m/s) clipped to [0.3, 25] Hz (design: above
   25 Hz the 100 Hz record cannot show the corner). The ω⁻² displacement pulse
   ``u(t) = ωc² t e^{-ωc t} H(t)`` has ``|U(f)| ∝ 1 / (1 + (f/fc)²)``; the record is ground
   *velocity*, ``v(t) = ωc² (1 - ωc t) e^{-ωc t} H(t)``, so the onset is causal and sits exactly at
   the arrival time. P uses ``1.5 fc`` (P corners are higher than S corners). The "random phase"
   of the source is a random rupture of 1–3 sub-events (delays within ``1/fc``, random weights),
   which keeps the first onset exact.
3. Attenuation ``exp(-π f t*)``, ``t* = T / Q``, ``Q ~ U(100, 600)`` (T the travel time), applied as
   a *minimum-phase* filter (real-cepstrum folding), so it is causal and does not move the onset.
4. Phases: P on Z and radial with incidence ``i ~ U(10, 35)°``; S split into SH (transverse) and
   SV (mostly radial) by a random angle; radial/transverse rotated to N/E by a random back-azimuth;
   S/P peak ratio ``~ logU(2, 10)``; geometric spreading ``1/d`` (kept in ``params``).
5. Coda after P and after S: band-limited noise (white noise convolved with the phase pulse)
   times ``(1 - e^{-(t - t_ph)/0.3}) e^{-(t - t_ph)/τ}``, ``τ ~ U(2, 10)`` s; the envelope is zero at
   the phase, so arrivals stay exact.

Each clean event is scaled to unit peak over its three components; the physical peak velocity
(arbitrary units ∝ M0-derived amplitude / d) is kept in ``params["peak_amplitude"]``.

Noise (:func:`make_noise`), one kind per window, drawn uniformly from ``kinds``:

- ``real``: windows of real records shipped inside ObsPy (``ref_STS2`` 1 h broadband, the
  ``gaps.mseed`` BGLD segments, the 3-C ``BW.UH3`` short-period record), resampled to ``fs``
  (polyphase), linearly detrended per window; windows with an event in them are rejected
  (``max|x| > 9 x`` the MAD-based standard deviation on any component). Single-channel records
  give 3-C windows from three different times of the same record. ``split="train"`` uses the
  first 80 % of each record, ``"test"`` the last 20 % (no shared samples), ``"all"`` everything.
  The demo record (``CRLZ.HHZ.10.NZ.SAC``, :func:`demo_noise_record`) is never in this pool.
- ``coloured``: Gaussian noise with a velocity PSD between Peterson's NLNM and NHNM (ObsPy's
  ``get_nlnm`` / ``get_nhnm`` tables, acceleration → velocity by ``/(2πf)²``) at a random level,
  plus a microseism bump at ``U(0.1, 0.3)`` Hz.
- ``impulsive``: spikes (single samples), decaying transient bursts, over a weak coloured floor.
- ``cultural``: harmonic lines (1–25 Hz with harmonics) and amplitude-modulated band-limited noise
  (traffic-like periodic envelopes), over a weak coloured floor.

70 % of the noise windows (any kind) are then high-passed (zero-phase 2-pole Butterworth response, corner
``logU(0.5, 2)`` Hz), like the 1 Hz high-passed STEAD records; the rest keep their microseisms.
Every noise window is scaled to unit peak over its three components (as the paper's code does).

Mixing: :func:`mix_paper` is the paper's rule ``y = x0/max|x0| + r n/max|n|`` with
``r ~ U{40..65}/100`` (integers, both ends included), returned at the clean event's scale;
:func:`mix_snr` sets the power SNR ``10 log10(Σ x0² / Σ (g n)²)`` over the three components to a
given value (the SNR sweep). :func:`make_pairs` draws events, noise and the mix from one seed.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

VP_KM_S = 6.0
VS_KM_S = 3.46
NOISE_KINDS = ("real", "coloured", "impulsive", "cultural")
_REAL_SOURCES = (
    # (path inside the obspy package, channel selection in Z, N, E order or a single channel)
    ("signal/tests/data/ref_STS2", None),
    ("io/mseed/tests/data/gaps.mseed", None),
    (
        "signal/tests/data/BW.UH3._.SHZ.D.2010.147.cut.slist.gz",
        (
            "signal/tests/data/BW.UH3._.SHZ.D.2010.147.cut.slist.gz",
            "signal/tests/data/BW.UH3._.SHN.D.2010.147.cut.slist.gz",
            "signal/tests/data/BW.UH3._.SHE.D.2010.147.cut.slist.gz",
        ),
    ),
)
_DEMO_NOISE = "signal/tests/data/CRLZ.HHZ.10.NZ.SAC"
_EVENT_REJECT = 9.0  # max|x| / robust std above which a "noise" window is taken to hold an event
_TRAIN_SHARE = 0.8
_HIGHPASS_SHARE = 0.7  # share of noise windows high-passed at a random 0.5-2 Hz corner


class QuakeSynthError(ValueError):
    """Bad arguments to the synthetic earthquake generator."""


@dataclass(frozen=True)
class EventSet:
    """Clean synthetic events: ``clean`` float32[n, 3, L] (Z, N, E; unit peak per event), arrival
    samples ``p_sample`` / ``s_sample`` (float64, exact, fractional), and the drawn ``params``."""

    clean: np.ndarray
    p_sample: np.ndarray
    s_sample: np.ndarray
    fs: float
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pairs:
    """Training / test pairs: ``clean`` and ``noisy`` float32[n, 3, L], exact P/S samples, the
    unit-peak ``noise`` used, the noise ``ratio`` r of the paper's rule (NaN for an SNR mix), the
    power SNR of each noisy window in dB, the noise kind per window and the event parameters."""

    clean: np.ndarray
    noisy: np.ndarray
    p_sample: np.ndarray
    s_sample: np.ndarray
    noise: np.ndarray
    ratio: np.ndarray
    snr_db: np.ndarray
    kinds: np.ndarray
    fs: float
    params: dict = field(default_factory=dict)


def _check(n: int, length: int, fs: float) -> None:
    if int(n) < 0:
        raise QuakeSynthError(f"n: must be >= 0, got {n}")
    if fs <= 0:
        raise QuakeSynthError(f"fs: must be > 0, got {fs}")
    if length < int(30 * fs) and length < 2:
        raise QuakeSynthError(f"length: {length} samples is too short")


def _rng(seed) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------------- events


def _min_phase_attenuation(tstar: np.ndarray, nfft: int, fs: float) -> np.ndarray:
    """Spectra (rfft, length nfft//2+1) of causal minimum-phase filters with |H| = exp(-π f t*)."""
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    log_amp = -np.pi * f[None, :] * tstar[:, None]
    # Real cepstrum of the full (even) log-amplitude spectrum, folded onto positive quefrencies.
    cep = np.fft.irfft(log_amp, n=nfft, axis=-1)
    fold = np.zeros_like(cep)
    half = nfft // 2
    fold[:, 0] = cep[:, 0]
    fold[:, 1:half] = 2.0 * cep[:, 1:half]
    fold[:, half] = cep[:, half]
    return np.exp(np.fft.rfft(fold, axis=-1))


def _brune_velocity(tau: np.ndarray, fc: np.ndarray) -> np.ndarray:
    """Brune ω⁻² velocity pulse ωc² (1 - ωc τ) e^{-ωc τ} H(τ), τ in s, fc broadcastable."""
    wc = 2.0 * np.pi * fc
    pos = tau > 0
    tt = np.where(pos, tau, 0.0)
    return np.where(pos, wc**2 * (1.0 - wc * tt) * np.exp(-wc * tt), 0.0)


def _phase_pulse(t: np.ndarray, onset: np.ndarray, fc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random 1–3 sub-event rupture starting exactly at ``onset`` (s): float64[n, L], unit peak."""
    n = onset.shape[0]
    k = 3
    count = rng.integers(1, k + 1, size=n)
    delays = rng.uniform(0.0, 1.0, size=(n, k)) / fc[:, None]
    delays[:, 0] = 0.0
    weights = rng.uniform(0.3, 1.0, size=(n, k)) * rng.choice([-1.0, 1.0], size=(n, k))
    weights[:, 0] = np.abs(weights[:, 0]) + 0.5
    weights = np.where(np.arange(k)[None, :] < count[:, None], weights, 0.0)
    tau = t[None, None, :] - onset[:, None, None] - delays[:, :, None]
    pulse = np.einsum("nk,nkl->nl", weights, _brune_velocity(tau, fc[:, None, None]))
    return pulse / np.maximum(np.abs(pulse).max(axis=-1, keepdims=True), 1e-30)


def _causal_filter(x: np.ndarray, spectrum: np.ndarray, nfft: int) -> np.ndarray:
    length = x.shape[-1]
    return np.fft.irfft(np.fft.rfft(x, n=nfft, axis=-1) * spectrum, n=nfft, axis=-1)[..., :length]


def _coda(t: np.ndarray, onset: np.ndarray, tau: np.ndarray, pulse: np.ndarray, nfft: int, rng) -> np.ndarray:
    """Band-limited coda: white noise convolved with the (onset-aligned) pulse, times the envelope."""
    n, length = pulse.shape
    # Only the pulse's amplitude spectrum shapes the coda (its position in the window does not matter).
    spec = np.fft.rfft(pulse, n=nfft, axis=-1)
    white = rng.standard_normal((n, 3, length))
    band = np.fft.irfft(np.fft.rfft(white, n=nfft, axis=-1) * np.abs(spec)[:, None, :], n=nfft, axis=-1)[..., :length]
    band /= np.maximum(band.std(axis=-1, keepdims=True), 1e-30)
    dt = t[None, :] - onset[:, None]
    env = np.where(dt > 0, (1.0 - np.exp(-np.maximum(dt, 0) / 0.3)) * np.exp(-np.maximum(dt, 0) / tau[:, None]), 0.0)
    return band * env[:, None, :]


def make_events(n: int, seed, *, length: int = 3000, fs: float = 100.0) -> EventSet:
    """Draw ``n`` clean 3-C local earthquakes (see the module docstring for the physics).

    Returns an :class:`EventSet` with ``clean`` float32[n, 3, length] (Z, N, E; unit peak per event)
    and exact fractional arrival samples ``p_sample = tP fs``, ``s_sample = tS fs``.
    """
    n, length = int(n), int(length)
    _check(n, length, fs)
    rng = _rng(seed)
    dur = length / fs
    # Arrival window scales with the record length (the spec's 5-12 s / 27 s for 30 s records).
    tp_lo, tp_hi, ts_max = 5.0 * dur / 30.0, 12.0 * dur / 30.0, 27.0 * dur / 30.0
    slow = 1.0 / VS_KM_S - 1.0 / VP_KM_S
    d = rng.uniform(5.0, 150.0, size=n)
    tp = rng.uniform(tp_lo, tp_hi, size=n)
    bad = tp + d * slow > ts_max
    for _ in range(200):  # rejection rounds (vectorised over the rejected draws)
        if not bad.any():
            break
        m = int(bad.sum())
        d[bad] = rng.uniform(5.0, 150.0, size=m)
        tp[bad] = rng.uniform(tp_lo, tp_hi, size=m)
        bad = tp + d * slow > ts_max
    if bad.any():  # very short windows: put S at the limit
        d[bad] = np.maximum((ts_max - tp[bad]) / slow, 0.1)
    ts = tp + d * slow

    mag = rng.uniform(0.5, 4.5, size=n)
    m0 = 10.0 ** (1.5 * mag + 9.1)
    stress = 10.0 ** rng.uniform(np.log10(0.1e6), np.log10(10e6), size=n)
    fc = np.clip(0.49 * VS_KM_S * 1e3 * (stress / m0) ** (1.0 / 3.0), 0.3, 25.0)
    q = rng.uniform(100.0, 600.0, size=n)
    incidence = np.deg2rad(rng.uniform(10.0, 35.0, size=n))
    baz = rng.uniform(0.0, 2.0 * np.pi, size=n)
    sv_angle = rng.uniform(0.0, np.pi / 2.0, size=n)
    sp_ratio = 10.0 ** rng.uniform(np.log10(2.0), np.log10(10.0), size=n)
    tau_coda = rng.uniform(2.0, 10.0, size=n)
    coda_p = rng.uniform(0.1, 0.4, size=n)
    coda_s = rng.uniform(0.15, 0.5, size=n)
    pol_p = rng.choice([-1.0, 1.0], size=n)
    pol_s = rng.choice([-1.0, 1.0], size=n)

    t = np.arange(length) / fs
    nfft = 2 * length
    p_pulse = _phase_pulse(t, tp, np.minimum(1.5 * fc, 25.0), rng)
    s_pulse = _phase_pulse(t, ts, fc, rng)
    p_pulse = _causal_filter(p_pulse, _min_phase_attenuation(d / VP_KM_S / q, nfft, fs), nfft)
    s_pulse = _causal_filter(s_pulse, _min_phase_attenuation(d / VS_KM_S / q, nfft, fs), nfft)
    p_pulse /= np.maximum(np.abs(p_pulse).max(-1, keepdims=True), 1e-30)
    s_pulse /= np.maximum(np.abs(s_pulse).max(-1, keepdims=True), 1e-30)

    p_coda = _coda(t, tp, tau_coda, p_pulse, nfft, rng) * coda_p[:, None, None]
    s_coda = _coda(t, ts, tau_coda, s_pulse, nfft, rng) * (coda_s * sp_ratio)[:, None, None]

    # Ray coordinates: (Z, radial, transverse).
    p_amp = pol_p[:, None] * p_pulse
    s_amp = (pol_s * sp_ratio)[:, None] * s_pulse
    z = np.cos(incidence)[:, None] * p_amp + (np.sin(sv_angle) * np.sin(incidence))[:, None] * s_amp
    r = np.sin(incidence)[:, None] * p_amp + (np.sin(sv_angle) * np.cos(incidence))[:, None] * s_amp
    tr = np.cos(sv_angle)[:, None] * s_amp
    zrt = np.stack([z, r, tr], axis=1) + p_coda + s_coda
    cb, sb = np.cos(baz)[:, None], np.sin(baz)[:, None]
    north = cb * zrt[:, 1] - sb * zrt[:, 2]
    east = sb * zrt[:, 1] + cb * zrt[:, 2]
    x = np.stack([zrt[:, 0], north, east], axis=1)
    peak = np.maximum(np.abs(x).max(axis=(1, 2)), 1e-30)
    x /= peak[:, None, None]
    # The onset of each phase is exact: nothing before tP (pulses and codas are causal).
    before = t[None, :] < tp[:, None]
    x = np.where(before[:, None, :], 0.0, x)
    wc = 2.0 * np.pi * fc
    physical = m0 * wc**2 / d  # velocity peak scale of the Brune pulse with 1/d spreading
    params = {
        "distance_km": d,
        "magnitude": mag,
        "m0": m0,
        "stress_drop_pa": stress,
        "fc_hz": fc,
        "q": q,
        "incidence_deg": np.rad2deg(incidence),
        "back_azimuth_deg": np.rad2deg(baz),
        "sp_ratio": sp_ratio,
        "coda_tau_s": tau_coda,
        "peak_amplitude": physical * sp_ratio,
    }
    return EventSet(
        clean=x.astype(np.float32),
        p_sample=tp * fs,
        s_sample=ts * fs,
        fs=float(fs),
        params=params,
    )


# ------------------------------------------------------------------------------------------------ noise


def _obspy_root() -> str:
    import obspy

    return os.path.dirname(obspy.__file__)


def _resample(x: np.ndarray, fs_in: float, fs: float) -> np.ndarray:
    from scipy.signal import resample_poly

    if fs_in == fs:
        return x.astype(np.float64)
    frac = Fraction(fs / fs_in).limit_denominator(1000)
    return resample_poly(x.astype(np.float64), frac.numerator, frac.denominator, axis=-1)


def _read_segments(path: str, fs: float) -> list[np.ndarray]:
    """Contiguous single-channel segments of one ObsPy record at ``fs``: list of float64[N]."""
    import obspy

    st = obspy.read(path)
    out = []
    for trace in st:  # one trace per contiguous piece (gappy files come split)
        x = trace.data.astype(np.float64)
        x = x - x.mean()
        out.append(_resample(x, float(trace.stats.sampling_rate), fs))
    return out


@functools.lru_cache(maxsize=8)
def _real_pool(fs: float) -> tuple[tuple[np.ndarray, ...], ...]:
    """Real-noise records as tuples of float64[C, N] segments (C = 1 or 3), one entry per source."""
    root = _obspy_root()
    pool = []
    for path, comps in _REAL_SOURCES:
        if comps is None:
            segs = tuple(s[None, :] for s in _read_segments(os.path.join(root, path), fs))
        else:
            chans = [_read_segments(os.path.join(root, c), fs)[0] for c in comps]
            m = min(len(c) for c in chans)
            segs = (np.stack([c[:m] for c in chans]),)
        pool.append(tuple(s for s in segs if s.shape[-1] >= 1))
    return tuple(pool)


def demo_noise_record(fs: float = 100.0) -> np.ndarray:
    """The real noise record kept out of the training pool for the real-data demo: float64[N] at ``fs``
    (``CRLZ.HHZ.10.NZ.SAC`` shipped inside ObsPy, demeaned)."""
    return _read_segments(os.path.join(_obspy_root(), _DEMO_NOISE), fs)[0]


def _robust_ratio(w: np.ndarray) -> np.ndarray:
    """max|x| / (1.4826 MAD) per window, maximum over components: float[k]. ``w``: [k, 3, L]."""
    med = np.median(w, axis=-1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(w - med), axis=-1)
    return (np.abs(w - med).max(axis=-1) / np.maximum(mad, 1e-30)).max(axis=-1)


def _detrend(w: np.ndarray) -> np.ndarray:
    """Remove the least-squares line from each trace (last axis), vectorised."""
    length = w.shape[-1]
    t = np.linspace(-1.0, 1.0, length)
    mean = w.mean(axis=-1, keepdims=True)
    slope = (w * t).sum(axis=-1, keepdims=True) / (t @ t)
    return w - mean - slope * t


def _real_noise(k: int, length: int, fs: float, split: str, rng: np.random.Generator) -> np.ndarray:
    pool = _real_pool(float(fs))
    # Candidate (source, segment, usable range) entries.
    entries = []
    for src in pool:
        for seg in src:
            n_seg = seg.shape[-1]
            cut = int(n_seg * _TRAIN_SHARE)
            lo, hi = {"train": (0, cut), "test": (cut, n_seg), "all": (0, n_seg)}[split]
            if hi - lo >= length:
                entries.append((seg, lo, hi))
    if not entries:
        raise QuakeSynthError(f"length: no real-noise record of the ObsPy pool holds {length} samples ({split})")
    out = np.empty((k, 3, length))
    filled = 0
    for _ in range(100):  # rounds of candidate draws; event-holding windows are rejected
        if filled >= k:
            break
        want = (k - filled) * 2 + 4
        which = rng.integers(0, len(entries), size=want)
        cand = np.empty((want, 3, length))
        for e, (seg, lo, hi) in enumerate(entries):
            sel = np.flatnonzero(which == e)
            if sel.size == 0:
                continue
            if seg.shape[0] == 3:
                starts = rng.integers(lo, hi - length + 1, size=sel.size)
                idx = starts[:, None] + np.arange(length)[None, :]
                cand[sel] = seg[:, idx].transpose(1, 0, 2)
            else:  # single channel: three different times of the record
                starts = rng.integers(lo, hi - length + 1, size=(sel.size, 3))
                idx = starts[:, :, None] + np.arange(length)[None, None, :]
                cand[sel] = seg[0][idx]
        cand = _detrend(cand)
        good = cand[_robust_ratio(cand) <= _EVENT_REJECT]
        take = min(k - filled, good.shape[0])
        out[filled : filled + take] = good[:take]
        filled += take
    if filled < k:
        raise QuakeSynthError("kinds: the real-noise pool gave too few event-free windows")
    return out


@functools.lru_cache(maxsize=8)
def _peterson_velocity_db(length: int, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f, NLNM, NHNM) as velocity PSD in dB re (m/s)²/Hz on the rfft grid (f > 0; f[0] set to f[1])."""
    from obspy.signal.spectral_estimation import get_nhnm, get_nlnm

    f = np.fft.rfftfreq(length, 1.0 / fs)
    f[0] = f[1]
    out = []
    for per, db in (get_nlnm(), get_nhnm()):
        order = np.argsort(1.0 / per)
        fa = (1.0 / per)[order]
        acc = np.interp(np.log10(np.clip(f, fa[0], fa[-1])), np.log10(fa), db[order])
        out.append(acc - 20.0 * np.log10(2.0 * np.pi * f))
    return f, out[0], out[1]


def _coloured(k: int, length: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    f, lo, hi = _peterson_velocity_db(length, float(fs))
    level = rng.uniform(0.1, 0.9, size=(k, 1))
    fm = rng.uniform(0.1, 0.3, size=(k, 1))
    bump = rng.uniform(5.0, 20.0, size=(k, 1)) * np.exp(-0.5 * (np.log(f[None, :] / fm) / 0.25) ** 2)
    psd_db = lo[None, :] + level * (hi - lo)[None, :] + bump
    amp = 10.0 ** (psd_db / 20.0)
    spec = (rng.standard_normal((k, 3, f.size)) + 1j * rng.standard_normal((k, 3, f.size))) * amp[:, None, :]
    spec[..., 0] = 0.0
    return np.fft.irfft(spec, n=length, axis=-1)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.sqrt((x**2).mean(axis=(-2, -1), keepdims=True)), 1e-30)


def _impulsive(k: int, length: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    floor = _unit_rms(_coloured(k, length, fs, rng)) * rng.uniform(0.2, 1.0, size=(k, 1, 1))
    t = np.arange(length) / fs
    # Spikes: up to 6 single-sample spikes per window, on random components.
    n_sp = 6
    active = rng.random((k, n_sp)) < rng.uniform(0.2, 0.9, size=(k, 1))
    pos = rng.integers(0, length, size=(k, n_sp))
    comp = rng.integers(0, 3, size=(k, n_sp))
    amp = rng.uniform(1.0, 5.0, size=(k, n_sp)) * rng.choice([-1.0, 1.0], size=(k, n_sp)) * active
    spikes = np.zeros((k, 3, length))
    np.add.at(spikes, (np.repeat(np.arange(k), n_sp), comp.ravel(), pos.ravel()), amp.ravel())
    # Transient bursts: decaying sinusoids 2-30 Hz, 0.05-1 s decay, up to 3 per window.
    n_b = 3
    on = rng.random((k, n_b)) < 0.6
    t0 = rng.uniform(0.0, t[-1], size=(k, n_b))
    fb = rng.uniform(2.0, 30.0, size=(k, n_b))
    dec = rng.uniform(0.05, 1.0, size=(k, n_b))
    ab = rng.uniform(0.5, 3.0, size=(k, n_b, 3)) * on[..., None]
    dt = t[None, None, :] - t0[..., None]
    burst = np.where(dt >= 0, np.sin(2 * np.pi * fb[..., None] * dt) * np.exp(-np.maximum(dt, 0) / dec[..., None]), 0)
    bursts = np.einsum("kbc,kbl->kcl", ab, burst)
    return floor + spikes + bursts


def _cultural(k: int, length: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    floor = _unit_rms(_coloured(k, length, fs, rng)) * rng.uniform(0.1, 0.5, size=(k, 1, 1))
    t = np.arange(length) / fs
    # Harmonic lines: a fundamental 1-25 Hz (below Nyquist) with 1-4 harmonics, slowly drifting phase.
    f0 = rng.uniform(1.0, min(25.0, 0.45 * fs), size=(k, 1, 1))
    n_h = 4
    h = np.arange(1, n_h + 1)[None, :, None]
    ah = rng.uniform(0.0, 1.0, size=(k, n_h, 1)) / h * (f0 * h < 0.45 * fs)
    ph = rng.uniform(0, 2 * np.pi, size=(k, n_h, 3))
    arg = 2 * np.pi * f0 * h * t[None, None, :]  # [k, h, L]
    lines = (ah[..., None] * np.sin(arg[:, :, None, :] + ph[..., None])).sum(axis=1)  # [k, 3, L]
    # Amplitude-modulated band-limited noise (traffic / machinery with a periodic duty cycle).
    white = rng.standard_normal((k, 3, length))
    fband = np.fft.rfftfreq(length, 1.0 / fs)
    centre = rng.uniform(3.0, min(30.0, 0.4 * fs), size=(k, 1, 1))
    band = np.exp(-0.5 * ((fband[None, None, :] - centre) / (0.3 * centre)) ** 2)
    carrier = _unit_rms(np.fft.irfft(np.fft.rfft(white, axis=-1) * band, n=length, axis=-1))
    period = rng.uniform(2.0, 15.0, size=(k, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(k, 1, 1))
    envelope = np.clip(np.sin(2 * np.pi * t[None, None, :] / period + phase), 0, None) ** 2
    am = carrier * envelope * rng.uniform(0.3, 2.0, size=(k, 1, 1))
    mix = rng.random((k, 1, 1))
    return floor + _unit_rms(lines) * mix + am * (1.0 - mix)


def make_noise(
    n: int,
    seed,
    *,
    length: int = 3000,
    fs: float = 100.0,
    kinds=NOISE_KINDS,
    split: str = "all",
    with_kinds: bool = False,
):
    """Draw ``n`` noise windows float32[n, 3, length] (unit peak each), one kind per window from ``kinds``.

    ``split`` ("all" | "train" | "test") picks the part of each real record the ``real`` windows come
    from. With ``with_kinds=True`` also returns the kind of each window (str array).
    """
    n, length = int(n), int(length)
    _check(n, length, fs)
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in NOISE_KINDS]
    if not kinds or unknown:
        raise QuakeSynthError(f"kinds: unknown noise kind(s) {unknown or kinds!r}; use some of {NOISE_KINDS}")
    if split not in ("all", "train", "test"):
        raise QuakeSynthError(f"split: must be 'all', 'train' or 'test', got {split!r}")
    rng = _rng(seed)
    choice = rng.integers(0, len(kinds), size=n)
    out = np.zeros((n, 3, length))
    makers = {"real": None, "coloured": _coloured, "impulsive": _impulsive, "cultural": _cultural}
    for i, kind in enumerate(kinds):  # one batch per kind
        sel = np.flatnonzero(choice == i)
        if sel.size == 0:
            continue
        sub = np.random.default_rng(rng.integers(0, 2**63))
        if kind == "real":
            out[sel] = _real_noise(sel.size, length, fs, split, sub)
        else:
            out[sel] = makers[kind](sel.size, length, fs, sub)
    # STEAD-like processing: most windows are high-passed (random corner), the rest keep their microseisms.
    hp = rng.random(n) < _HIGHPASS_SHARE
    if hp.any():
        f = np.fft.rfftfreq(length, 1.0 / fs)
        corner = 10.0 ** rng.uniform(np.log10(0.5), np.log10(2.0), size=(int(hp.sum()), 1, 1))
        gain = (f / corner) ** 4 / (1.0 + (f / corner) ** 4)  # |H|² of a 2-pole Butterworth, zero phase
        out[hp] = np.fft.irfft(np.fft.rfft(out[hp], axis=-1) * np.sqrt(gain), n=length, axis=-1)
    out -= out.mean(axis=-1, keepdims=True)
    out /= np.maximum(np.abs(out).max(axis=(1, 2), keepdims=True), 1e-30)
    out = out.astype(np.float32)
    if with_kinds:
        return out, np.asarray(kinds, dtype=object)[choice].astype(str)
    return out


# ----------------------------------------------------------------------------------------------- mixing


def _peak(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(x).max(axis=(-2, -1), keepdims=True), 1e-30)


def _shapes(clean: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clean = np.asarray(clean)
    noise = np.asarray(noise)
    if clean.ndim != 3 or clean.shape != noise.shape:
        raise QuakeSynthError(f"noise: shape {noise.shape} does not match clean {clean.shape} (need [n, 3, L] both)")
    return clean.astype(np.float64), noise.astype(np.float64)


def paper_ratios(n: int, seed, rnf=(40, 65)) -> np.ndarray:
    """The paper's noise ratios r = U{rnf[0] .. rnf[1]} / 100 (integers, both ends included)."""
    lo, hi = int(rnf[0]), int(rnf[1])
    if not 0 <= lo <= hi:
        raise QuakeSynthError(f"rnf: need 0 <= low <= high, got {rnf}")
    return _rng(seed).integers(lo, hi + 1, size=int(n)) / 100.0


def mix_paper(clean: np.ndarray, noise: np.ndarray, seed, rnf=(40, 65), *, ratio=None) -> np.ndarray:
    """The paper's mixing rule: ``y = (x0/max|x0| + r n/max|n|) max|x0|``, r ~ U{rnf}/100 per event.

    The result is at the clean event's amplitude (so ``y - x0`` is the added noise). ``ratio``
    (float[n]) replaces the random draw when given.
    """
    c, nz = _shapes(clean, noise)
    r = paper_ratios(c.shape[0], seed, rnf) if ratio is None else np.asarray(ratio, dtype=np.float64)
    pc = _peak(c)
    y = c / pc + r[:, None, None] * nz / _peak(nz)
    return (y * pc).astype(np.float32)


def mix_snr(clean: np.ndarray, noise: np.ndarray, snr_db) -> np.ndarray:
    """Add noise scaled so that ``10 log10(Σ x0² / Σ (g n)²) = snr_db`` per event (over the three components)."""
    c, nz = _shapes(clean, noise)
    snr = np.broadcast_to(np.asarray(snr_db, dtype=np.float64), (c.shape[0],))
    pc = (c**2).sum(axis=(1, 2))
    pn = np.maximum((nz**2).sum(axis=(1, 2)), 1e-30)
    g = np.sqrt(pc / pn / 10.0 ** (snr / 10.0))
    return (c + g[:, None, None] * nz).astype(np.float32)


def power_snr_db(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Power SNR in dB of each window over its three components: 10 log10(Σ x0² / Σ (y - x0)²)."""
    c = np.asarray(clean, dtype=np.float64)
    d = np.asarray(noisy, dtype=np.float64) - c
    return 10.0 * np.log10((c**2).sum(axis=(1, 2)) / np.maximum((d**2).sum(axis=(1, 2)), 1e-30))


def make_pairs(
    n: int,
    seed,
    *,
    length: int = 3000,
    fs: float = 100.0,
    kinds=NOISE_KINDS,
    rnf=(40, 65),
    snr_db=None,
    split: str = "all",
) -> Pairs:
    """Clean events, noise and noisy mixtures from one seed.

    The paper's rule with ratios from ``rnf`` by default; with ``snr_db`` (scalar or float[n]) the
    noise is scaled to that power SNR instead (SNR sweep). ``split`` selects the real-noise part.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise QuakeSynthError(f"seed: need an integer, got {seed!r}")
    s_ev, s_noise, s_mix = np.random.SeedSequence(int(seed)).spawn(3)
    ev = make_events(n, s_ev, length=length, fs=fs)
    noise, kind = make_noise(n, s_noise, length=length, fs=fs, kinds=kinds, split=split, with_kinds=True)
    if snr_db is None:
        ratio = paper_ratios(n, s_mix, rnf)
        noisy = mix_paper(ev.clean, noise, None, ratio=ratio)
    else:
        ratio = np.full(int(n), np.nan)
        noisy = mix_snr(ev.clean, noise, snr_db)
    return Pairs(
        clean=ev.clean,
        noisy=noisy,
        p_sample=ev.p_sample,
        s_sample=ev.s_sample,
        noise=noise,
        ratio=ratio,
        snr_db=power_snr_db(ev.clean, noisy),
        kinds=kind,
        fs=float(fs),
        params=ev.params,
    )
