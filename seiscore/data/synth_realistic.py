"""A realistic-shape synthetic post-stack survey with a clean reference, generated slab by slab.

The paper's cube (:mod:`seiscore.data.synth`) is small and has three planar events. Real surveys are
long in every direction (default here 128 inlines x 1024 crosslines x 1000 samples at 2 ms, 0.5 GB of
float32) and their reflectors bend, break and fade. The clean cube ``X[inline, crossline, time]`` is

    X = sum_j a_j(u, v) * ricker(t - t_j(u, v))

with ``u = i / n_inline``, ``v = x / n_crossline`` in [0, 1) and the horizons ``t_j`` made of

- a regional dip ``p_j u + q_j v`` (each horizon its own, so horizons converge and diverge),
- a dome (anticline) ``-d_j exp(-((u - u_c)^2 + (v - v_c)^2) / w^2)`` and a gentle undulation
  ``e_j sin(2 pi (k_u u + k_v v) + phi)`` (curved events), growing with depth,
- a fault: crosslines past the plane ``v > v_f + s (u - 1/2)`` are shifted down by a throw that grows
  linearly with the horizon's time (a normal fault that dies out upwards),
- plus two steeply dipping events crossing the layering (``t = t_0 + g v``, e.g. a fault-plane
  reflection and a dipping intrusion),

and laterally varying amplitudes ``a_j (1 + 0.35 sin(...))`` (with one bright spot on the dome's
crest). Horizons become reflectivity spikes at fractional sample positions (linear split between the
two nearest samples) which are convolved with a zero-phase Ricker wavelet of ``ricker_hz`` along time
through an FFT: cost ``O(n log n)`` per trace, no loop over traces or horizons' samples.

The noisy cube is ``Y = X + F + N`` as in the paper's generator: ``F`` acquisition-footprint stripes
alternating along crossline with period ``footprint_period`` and amplitude ``F exp(-t / decay)``,
constant along inline, and ``N`` white Gaussian noise of standard deviation ``sigma``.

Slabs: :func:`realistic_slab` returns inlines ``[i0, i1)`` of the survey; the horizon geometry depends
only on ``seed`` and ``shape`` and the noise of inline ``i`` only on ``(seed, i)``, so slabs generated
separately (in any order, of any sizes) concatenate into exactly the cube generated at once. A 4 GB
survey can therefore be written slab by slab in bounded memory (:func:`iter_slabs`). The clean cube is
scaled by a fixed constant (not its own min/max, which a slab cannot know): its amplitudes are about
within [-1, 1].
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

REALISTIC_SHAPE = (128, 1024, 1000)

# Fixed scale of the clean cube: interfering horizons reach about 2.2 before it, so ~[-1, 1] after.
_SCALE = 0.45

# The slab generator holds about this many float64 samples at once (memory ~ 5 x 8 bytes x this).
_SLAB_SAMPLES = 1 << 22


class RealisticConfig(BaseModel):
    """Parameters of the realistic-shape survey (geometry, wavelet, footprint and noise)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dt: float = Field(0.002, gt=0, description="sample interval in seconds")
    ricker_hz: float = Field(25.0, gt=0, description="peak frequency of the Ricker wavelet")
    n_horizons: int = Field(14, ge=1, le=200, description="number of layered horizons")
    footprint_peak: float = Field(0.2, ge=0, description="F: footprint amplitude at t = 0")
    footprint_period: int = Field(4, ge=2, description="stripe period along crossline, in traces")
    footprint_decay: float = Field(0.6, gt=0, description="e-folding time of the footprint amplitude, seconds")
    sigma: float = Field(0.01, ge=0, description="standard deviation of the Gaussian noise")


class _Geometry:
    """Seeded horizon parameters (depend on the seed and number of samples only)."""

    def __init__(self, cfg: RealisticConfig, n_time: int, seed: int):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
        length = n_time * cfg.dt
        m = cfg.n_horizons
        # Horizon base times spread over the record, jittered, kept away from its ends.
        base = np.linspace(0.08, 0.88, m) + rng.uniform(-0.02, 0.02, m)
        depth = np.clip(base, 0.0, 1.0)
        self.t0 = base * length
        # Regional dip (common) plus each horizon's own (fraction of the record across the survey).
        self.p = (rng.uniform(-0.04, 0.04) + rng.uniform(-0.02, 0.02, m)) * length  # along inline
        self.q = (rng.uniform(-0.06, 0.06) + rng.uniform(-0.025, 0.025, m)) * length  # along crossline
        self.dome = (0.02 + 0.05 * depth) * length  # anticline relief grows with depth
        self.dome_c = (rng.uniform(0.35, 0.65), rng.uniform(0.3, 0.5))
        self.dome_w = rng.uniform(0.18, 0.28)
        self.wave = (0.004 + 0.012 * depth) * length
        self.wave_k = (rng.uniform(0.5, 1.5), rng.uniform(1.5, 3.5))
        self.wave_phi = rng.uniform(0, 2 * np.pi, m)
        self.amp = rng.uniform(0.5, 1.0, m) * rng.choice([-1.0, 1.0], m)
        self.amp_k = rng.uniform(0.5, 2.5, (m, 2))
        self.amp_phi = rng.uniform(0, 2 * np.pi, m)
        self.fault_v, self.fault_s = rng.uniform(0.55, 0.75), rng.uniform(-0.3, 0.3)
        self.throw = 0.06 * length  # throw at the bottom of the record, zero at the top
        # Two steep events crossing the layering: (t0 as fraction of the record, dip along crossline, amplitude)
        self.steep = (
            (rng.uniform(0.3, 0.4), rng.uniform(0.35, 0.5), 0.5),
            (rng.uniform(0.55, 0.7), -rng.uniform(0.25, 0.4), -0.4),
        )
        self.length = length


def _ricker_spectrum(n_fft: int, dt: float, f: float) -> np.ndarray:
    """Spectrum of a zero-phase Ricker wavelet: (2 / sqrt(pi)) (nu^2 / f^3) exp(-(nu / f)^2), peak 1 in time."""
    nu = np.fft.rfftfreq(n_fft, dt)
    spec = (2.0 / np.sqrt(np.pi)) * nu**2 / f**3 * np.exp(-((nu / f) ** 2))
    return spec / dt  # so that a unit spike convolves to a wavelet of peak amplitude 1


def _check(i0: int, i1: int, shape) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 2:
        raise ValueError(f"shape must be (inline, crossline, time) with every length >= 2, got {shape}")
    if not 0 <= i0 < i1 <= shape[0]:
        raise ValueError(f"slab [{i0}, {i1}) must be a non-empty inline range within [0, {shape[0]})")
    return shape


def clean_slab(i0: int, i1: int, shape=REALISTIC_SHAPE, seed: int = 0, cfg: RealisticConfig | None = None):
    """Inlines ``[i0, i1)`` of the clean cube (float32, shape ``(i1 - i0, n_crossline, n_time)``)."""
    cfg = cfg or RealisticConfig()
    ni, nx, nt = _check(i0, i1, shape)
    geo = _Geometry(cfg, nt, seed)
    # Wavelet tail: pad the time axis so the circular convolution does not wrap events around.
    pad = int(np.ceil(2.0 / (cfg.ricker_hz * cfg.dt)))
    n_fft = int(2 ** np.ceil(np.log2(nt + 2 * pad)))
    spec = _ricker_spectrum(n_fft, cfg.dt, cfg.ricker_hz)
    out = np.empty((i1 - i0, nx, nt), dtype=np.float32)
    step = max(1, _SLAB_SAMPLES // (nx * n_fft))
    v = (np.arange(nx, dtype=np.float64) / nx)[None, :]
    for a in range(i0, i1, step):  # sub-slabs bound the float64 workspace
        b = min(a + step, i1)
        u = (np.arange(a, b, dtype=np.float64) / ni)[:, None]
        times, amps = _events(geo, u, v)  # (k, nu, nx) each
        refl = _spikes(times / cfg.dt + pad, amps, n_fft)
        traces = np.fft.irfft(np.fft.rfft(refl, axis=-1) * spec, n=n_fft, axis=-1)
        out[a - i0 : b - i0] = _SCALE * traces[..., pad : pad + nt]
    return out


def _events(geo: _Geometry, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event times (s) and amplitudes of every horizon and steep event at the (u, v) grid: (k, nu, nv)."""
    du, dv = u - geo.dome_c[0], v - geo.dome_c[1]
    dome = np.exp(-(du**2 + dv**2) / geo.dome_w**2)  # (nu, nv)
    phase = 2 * np.pi * (geo.wave_k[0] * u + geo.wave_k[1] * v)
    side = (v > geo.fault_v + geo.fault_s * (u - 0.5)).astype(np.float64)
    j = (slice(None), None, None)
    t = geo.t0[j] + geo.p[j] * u + geo.q[j] * v - geo.dome[j] * dome + geo.wave[j] * np.sin(phase + geo.wave_phi[j])
    t = t + side * geo.throw * np.clip(t / geo.length, 0.0, 1.0)
    amp = geo.amp[j] * (
        1.0 + 0.35 * np.sin(2 * np.pi * (geo.amp_k[:, 0][j] * u + geo.amp_k[:, 1][j] * v) + geo.amp_phi[j])
    )
    # Bright spot: the shallowest horizon under the dome crest doubles its amplitude.
    amp[len(geo.t0) // 3] *= 1.0 + dome
    steep_t = np.stack([np.broadcast_to((t0 + g * v) * geo.length, dome.shape) for t0, g, _ in geo.steep])
    steep_t = steep_t + side * geo.throw * np.clip(steep_t / geo.length, 0.0, 1.0)
    steep_a = np.stack([np.full(dome.shape, a) for _, _, a in geo.steep])
    return np.concatenate([t, steep_t]), np.concatenate([amp, steep_a])


def _spikes(pos: np.ndarray, amps: np.ndarray, n: int) -> np.ndarray:
    """Reflectivity (nu, nv, n): each event's amplitude split linearly between its two nearest samples."""
    k, nu, nv = pos.shape
    k0 = np.floor(pos).astype(np.int64)
    frac = pos - k0
    trace = (np.arange(nu)[:, None] * nv + np.arange(nv)[None, :])[None] * n  # offset of each trace
    idx = np.concatenate([(trace + k0).ravel(), (trace + k0 + 1).ravel()])
    w = np.concatenate([(amps * (1 - frac)).ravel(), (amps * frac).ravel()])
    inside = np.concatenate([((k0 >= 0) & (k0 < n)).ravel(), ((k0 + 1 >= 0) & (k0 + 1 < n)).ravel()])
    refl = np.bincount(idx[inside], weights=w[inside], minlength=nu * nv * n)
    return refl.reshape(nu, nv, n)


def footprint_slab(i0: int, i1: int, shape=REALISTIC_SHAPE, cfg: RealisticConfig | None = None) -> np.ndarray:
    """Footprint stripes over inlines ``[i0, i1)``, broadcastable to the slab: shape (1, n_crossline, n_time)."""
    cfg = cfg or RealisticConfig()
    _, nx, nt = _check(i0, i1, shape)
    x = np.arange(nx)
    stripes = np.where((x % cfg.footprint_period) < cfg.footprint_period // 2, 1.0, -1.0)
    decay = cfg.footprint_peak * np.exp(-np.arange(nt) * cfg.dt / cfg.footprint_decay)
    return (stripes[:, None] * decay[None, :])[None].astype(np.float32)


def realistic_slab(
    i0: int, i1: int, shape=REALISTIC_SHAPE, seed: int = 0, cfg: RealisticConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Inlines ``[i0, i1)`` of the realistic survey of ``shape`` (inline, crossline, time): ``(noisy, clean)``,
    both float32 of shape ``(i1 - i0, n_crossline, n_time)``; slabs concatenate exactly into the whole cube."""
    cfg = cfg or RealisticConfig()
    shape = _check(i0, i1, shape)
    clean = clean_slab(i0, i1, shape, seed, cfg)
    noisy = clean + footprint_slab(i0, i1, shape, cfg)
    if cfg.sigma > 0:
        for i in range(i0, i1):  # one generator per inline: slabs of any size give the same noise
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x0015E, i]))
            noisy[i - i0] += cfg.sigma * rng.standard_normal(shape[1:], dtype=np.float32)
    return noisy, clean


def iter_slabs(
    shape=REALISTIC_SHAPE, seed: int = 0, slab: int = 8, cfg: RealisticConfig | None = None
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Yield ``(i0, i1, noisy, clean)`` for consecutive slabs of ``slab`` inlines covering the survey."""
    shape = _check(0, 1, shape)
    if slab < 1:
        raise ValueError(f"slab must be >= 1 inline, got {slab}")
    for i0 in range(0, shape[0], slab):
        i1 = min(i0 + slab, shape[0])
        yield (i0, i1, *realistic_slab(i0, i1, shape, seed, cfg))


def make_realistic(shape=REALISTIC_SHAPE, seed: int = 0, cfg: RealisticConfig | None = None):
    """The whole survey at once: ``(noisy, clean)`` float32 (inline, crossline, time)."""
    shape = _check(0, 1, shape)
    return realistic_slab(0, shape[0], shape, seed, cfg)
