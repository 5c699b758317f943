"""The TLSM paper's synthetic survey: three crossing linear events plus footprint and noise.

The clean cube ``X[inline, crossline, time]`` holds three planar reflectors
``t_j(i, x) = t0_j + p_j i + q_j x`` (times in seconds, inline / crossline in trace
units) convolved with a 10 Hz Ricker wavelet, sampled every 2 ms and min-max scaled
to [-1, 1]. The observed cube is ``Y = X + F + N`` with

- ``F`` an acquisition footprint: stripes that alternate along the crossline axis with
  period ``footprint_period`` traces, constant along the inline axis, with amplitude
  ``F_peak * exp(-t / footprint_decay)`` decaying with time (peak amplitude ``F_peak``
  at t = 0);
- ``N`` white Gaussian noise of standard deviation ``sigma``.

Calibration (paper convention metrics): the demo cube 100 x 200 x 400 with F = 0.2,
sigma = 0.01 starts at about 27 dB (paper: 27.19 dB); see ``tests/test_synth.py``.
In the TLSM canonical orientation this cube is permuted to (crossline, time, inline):
the footprint alternates along axis 0 and is smooth along axis 1 (time).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# (t0 [s], dip along inline [s/trace], dip along crossline [s/trace], relative amplitude)
_EVENTS = (
    (0.20, 0.0006, 0.0004, 1.0),
    (0.40, -0.0004, 0.0005, -0.8),
    (0.55, 0.0003, -0.0006, 0.6),
)


class SynthConfig(BaseModel):
    """Parameters of a synthetic survey (defaults: the paper's demo cube)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_inline: int = Field(100, ge=2)
    n_crossline: int = Field(200, ge=2)
    n_time: int = Field(400, ge=2)
    dt: float = Field(0.002, gt=0, description="sample interval in seconds")
    ricker_hz: float = Field(10.0, gt=0)
    footprint_peak: float = Field(0.2, ge=0, description="F: footprint amplitude at t = 0")
    sigma: float = Field(0.01, ge=0, description="standard deviation of the Gaussian noise")
    footprint_period: int = Field(4, ge=2, description="stripe period along the crossline axis, in traces")
    footprint_decay: float = Field(0.29, gt=0, description="e-folding time of the footprint amplitude, in seconds")
    seed: int = 0


def ricker(t: np.ndarray, f: float) -> np.ndarray:
    """Ricker wavelet (1 - 2 (pi f t)^2) exp(-(pi f t)^2)."""
    a = (np.pi * f * t) ** 2
    return (1.0 - 2.0 * a) * np.exp(-a)


def clean_cube(cfg: SynthConfig, dtype=np.float32) -> np.ndarray:
    """The clean cube (inline, crossline, time) scaled to [-1, 1]."""
    i = np.arange(cfg.n_inline, dtype=np.float64)[:, None, None]
    x = np.arange(cfg.n_crossline, dtype=np.float64)[None, :, None]
    t = (np.arange(cfg.n_time, dtype=np.float64) * cfg.dt)[None, None, :]
    # Scale event times to the record length so any size keeps the three events inside it.
    length = cfg.n_time * cfg.dt / 0.8
    cube = np.zeros((cfg.n_inline, cfg.n_crossline, cfg.n_time))
    for t0, p, q, amp in _EVENTS:
        tj = (t0 + p * i * 100 / max(cfg.n_inline, 1) + q * x * 200 / max(cfg.n_crossline, 1)) * length
        cube += amp * ricker(t - tj, cfg.ricker_hz)
    lo, hi = cube.min(), cube.max()
    return (2.0 * (cube - lo) / (hi - lo) - 1.0).astype(dtype)


def footprint(cfg: SynthConfig, dtype=np.float32) -> np.ndarray:
    """Footprint stripes F (inline, crossline, time), broadcastable to the cube's shape."""
    x = np.arange(cfg.n_crossline)
    stripes = np.where((x % cfg.footprint_period) < cfg.footprint_period // 2, 1.0, -1.0)
    t = np.arange(cfg.n_time) * cfg.dt
    decay = cfg.footprint_peak * np.exp(-t / cfg.footprint_decay)
    return (stripes[None, :, None] * decay[None, None, :]).astype(dtype)


def make_survey(cfg: SynthConfig | None = None, dtype=np.float32, **overrides) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(noisy, clean)`` cubes of shape (inline, crossline, time), seeded by ``cfg.seed``."""
    cfg = (cfg or SynthConfig()).model_copy(update=overrides) if overrides else (cfg or SynthConfig())
    cfg = SynthConfig.model_validate(cfg.model_dump())
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    clean = clean_cube(cfg, dtype)
    rng = np.random.default_rng(cfg.seed)
    noise = rng.standard_normal(clean.shape, dtype=np.float64) * cfg.sigma
    noisy = (clean + footprint(cfg, np.float64) + noise).astype(dtype)
    return noisy, clean


def to_canonical(cube: np.ndarray) -> np.ndarray:
    """(inline, crossline, time) -> TLSM canonical (crossline, time, inline), as the demo did."""
    return np.transpose(cube, (1, 2, 0))


def from_canonical(cube: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_canonical`."""
    return np.transpose(cube, (2, 0, 1))
