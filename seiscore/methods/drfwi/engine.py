"""The forward engine of DRFWI: deepwave's 2-D constant-density acoustic (scalar) propagator on a Geometry.

The wave equation ``d2u/dt2 = v^2 lap(u) + s`` is solved by finite differences (2nd order in time, ``accuracy``
2/4/6/8 in space) with a PML of ``pml_width`` cells on every side. deepwave keeps the user's ``dt`` for the
source and the records and subdivides it internally to honour the CFL condition; :func:`check_cfl` reports that
subdivision and refuses sampling that would need an unreasonable number of internal steps.

Rules measured on CPU (spec DRFWI.md §2.1): the misfit must be *scaled* (a sum of squares, or ``1e6 * mean``):
with a plain mean the adjoint wavefield underflows into subnormal floats and an iteration becomes 6-50x slower;
and the inversion and :func:`observe` run inside :func:`denormals_flushed` (subnormal floats flushed to zero on
CPU), which restores the default when they end: the flag is per-thread processor state, and left set it would
silently zero subnormal samples in whatever the same worker thread does next (a SEG-Y export, say).

Observed data (:func:`observe`) are made with ``accuracy=8``, a finer stencil than the inversion's 4, so the
inversion does not commit the inverse crime of fitting data made by its own operator.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Iterator, Literal

import numpy as np
import torch

from seiscore.data.shots import Geometry, GeometryError

# Refuse sampling needing more internal steps per recorded sample than this (dt far above the CFL limit:
# almost certainly dt in ms or dx in km).
MAX_SUBSTEPS = 64
# Velocities the engine accepts (m/s): water is ~1480, the fastest rocks ~7000.
MIN_VELOCITY, MAX_VELOCITY = 100.0, 10_000.0
ACCURACIES = (2, 4, 6, 8)
StorageMode = Literal["device", "cpu", "disk", "none"]


class EngineError(ValueError):
    """Inputs the wave engine refuses (velocity, sampling, data shape); the message is one line with the numbers."""


# -- wavelet and checks --------------------------------------------------------------------------------------
def ricker(freq: float, nt: int, dt: float, peak_time: float | None = None) -> np.ndarray:
    """Ricker wavelet ``(1 - 2 a) exp(-a)``, ``a = (pi f (t - t0))^2``, sampled at ``t = i dt``, ``i < nt``;
    ``t0 = peak_time`` (default ``1.5 / f``, so the wavelet starts near zero). float32 ``(nt,)``."""
    if not (freq > 0 and dt > 0 and nt >= 1):
        raise EngineError(f"Ricker wavelet needs freq > 0, dt > 0 and nt >= 1, got freq={freq}, dt={dt}, nt={nt}")
    t0 = 1.5 / freq if peak_time is None else float(peak_time)
    a = (math.pi * freq * (np.arange(nt, dtype=np.float64) * dt - t0)) ** 2
    return ((1.0 - 2.0 * a) * np.exp(-a)).astype(np.float32)


def check_cfl(
    v_max: float, dx: float, dt: float, *, courant_number: float | None = None, max_substeps: int = MAX_SUBSTEPS
) -> int:
    """Internal time steps per recorded sample deepwave will use for ``v_max`` (m/s), cell ``dx`` (m) and
    sample interval ``dt`` (s): ``ceil(dt / dt_cfl)`` with ``dt_cfl = C dx / (v_max sqrt(2))`` (C = 0.6).

    Raises :class:`EngineError` (one line with the numbers) for a non-positive or non-finite input or when
    more than ``max_substeps`` internal steps per sample would be needed."""
    from deepwave.discretisation import cfl_condition_n

    for name, value in (("v_max", v_max), ("dx", dx), ("dt", dt)):
        if not (math.isfinite(float(value)) and float(value) > 0):
            raise EngineError(f"CFL check: {name}={value} must be a positive finite number")
    with warnings.catch_warnings():  # deepwave warns about a large ratio; we refuse it with our own line
        warnings.simplefilter("ignore")
        inner_dt, ratio = cfl_condition_n([float(dx)] * 2, float(dt), float(v_max), courant_number=courant_number)
    if ratio > max_substeps:
        raise EngineError(
            f"time step dt={dt:g} s needs {ratio} internal steps per sample (CFL limit {inner_dt:.3g} s) for "
            f"v_max={v_max:g} m/s and dx={dx:g} m (at most {max_substeps} internal steps per sample): "
            "check the units of dt (s) and dx (m)"
        )
    return int(ratio)


def internal_steps(geometry: Geometry, v_max: float) -> int:
    """Total internal time steps of one propagation over the record of ``geometry`` (``nt`` x the CFL ratio)."""
    return geometry.nt * check_cfl(v_max, geometry.dx, geometry.dt)


def check_gradient_sampling(geometry: Geometry, interval: int) -> None:
    """One-line :class:`EngineError` unless ``interval`` divides ``nt`` and samples the gradient's time integral
    at least twice per period of the wavelet's highest significant frequency (``3 x`` the Ricker peak):
    ``interval * dt <= 1 / (6 f_peak)``."""
    limit = 1.0 / (6.0 * geometry.peak_frequency)
    if interval < 1 or geometry.nt % interval:
        raise EngineError(f"gradient sampling interval {interval} must be >= 1 and divide nt={geometry.nt}")
    if interval * geometry.dt > limit + 1e-12:
        raise EngineError(
            f"gradient sampling interval {interval} x dt={geometry.dt:g} s = {interval * geometry.dt:g} s undersamples "
            f"a {geometry.peak_frequency:g} Hz Ricker (at most {limit:.3g} s, "
            f"i.e. {int(limit / geometry.dt + 1e-9)} samples)"
        )


def check_velocity(v, geometry: Geometry | None = None, what: str = "velocity model") -> None:
    """One-line :class:`EngineError` unless ``v`` is a finite 2-D model within ``[MIN_VELOCITY, MAX_VELOCITY]``
    m/s (and of the geometry's grid). Works on NumPy arrays and torch tensors."""
    shape = tuple(v.shape)
    if len(shape) != 2:
        raise EngineError(f"{what} must be 2-D (z, x), got shape {shape}")
    if geometry is not None and shape != (geometry.nz, geometry.nx):
        raise EngineError(f"{what} has grid {shape} but the geometry is {geometry.nz} x {geometry.nx}")
    arr = v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
    if not bool(torch.isfinite(arr).all()):
        n = int((~torch.isfinite(arr)).sum())
        raise EngineError(f"{what} holds {n} NaN or infinite velocities")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < MIN_VELOCITY or hi > MAX_VELOCITY:
        raise EngineError(
            f"{what} ranges {lo:g}..{hi:g} m/s, outside the stable range {MIN_VELOCITY:g}..{MAX_VELOCITY:g} m/s"
            + (" (negative velocities)" if lo < 0 else "")
        )


def check_data(data: np.ndarray, geometry: Geometry, what: str = "observed shot gathers") -> np.ndarray:
    """``data`` as float32 after checking its shape against the geometry and that it is finite (one-line errors)."""
    geometry.check_data(data, what)
    arr = np.asarray(data, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise GeometryError(f"{what} hold {int((~np.isfinite(arr)).sum())} NaN or infinite samples")
    return arr


# -- propagation ---------------------------------------------------------------------------------------------
def _locations(cells, n: int, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(cells, dtype=np.int64), device=device)[None].expand(n, -1, -1).contiguous()


def source_locations(geometry: Geometry, shots, device=None) -> torch.Tensor:
    """``(n, 1, 2)`` long tensor of the (z, x) source cells of ``shots``."""
    cells = np.asarray(geometry.sources, dtype=np.int64)[np.asarray(shots, dtype=np.int64)]
    return torch.as_tensor(cells, device=device)[:, None, :].contiguous()


@contextmanager
def denormals_flushed(device: str | torch.device = "cpu") -> Iterator[None]:
    """Flush subnormal floats to zero in this thread while the block runs (CPU only), then restore the default
    (not flushed). Forward and adjoint propagation both run inside: the adjoint wavefield decays into
    subnormals and, unflushed, an iteration on CPU becomes 6-50x slower (spec DRFWI.md §2.1)."""
    if torch.device(device).type != "cpu" or not torch.set_flush_denormal(True):
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def forward(
    v: torch.Tensor,
    geometry: Geometry,
    shots=None,
    *,
    accuracy: int = 4,
    pml_width: int = 20,
    storage: StorageMode = "device",
    storage_compression: bool = False,
    storage_path: str | None = None,
    checkpoint_segments: int | None = None,
    max_vel: float | None = None,
    wavelet: torch.Tensor | None = None,
    gradient_sampling_interval: int = 1,
    check: bool = True,
) -> torch.Tensor:
    """Receiver data ``(n, n_receivers, nt)`` of ``shots`` (indices into ``geometry.sources``; default all) for
    the velocity model ``v (nz, nx)`` (m/s, differentiable).

    ``max_vel`` pins the CFL subdivision and the PML (an inversion passes its upper bound, so the discretisation
    does not change with the model); the PML is built for the geometry's peak frequency. ``storage`` /
    ``storage_compression`` / ``storage_path`` / ``checkpoint_segments`` choose where the wavefield history for
    the gradient lives ("device", "cpu", "disk"), whether it is 8-bit quantised (lossy: 0.2-4 % gradient
    error), and recomputation of time segments; the data are the same in every case.
    ``gradient_sampling_interval``: the model gradient's time integral sampled every that many samples (must
    divide ``nt``; see :func:`check_gradient_sampling`): less history to store and read back (measured 3x faster
    forward + backward at 5 on a 94 x 288 grid, 5 Hz, 2 ms), exact adjoint only at 1."""
    import deepwave

    if accuracy not in ACCURACIES:
        raise EngineError(f"accuracy must be one of {ACCURACIES}, got {accuracy}")
    if check:
        check_velocity(v, geometry)
    shots = np.arange(geometry.n_shots) if shots is None else np.asarray(shots, dtype=np.int64).reshape(-1)
    if shots.size == 0 or shots.min() < 0 or shots.max() >= geometry.n_shots:
        raise EngineError(f"shot indices {shots.tolist()} outside 0..{geometry.n_shots - 1}")
    if gradient_sampling_interval != 1:
        check_gradient_sampling(geometry, gradient_sampling_interval)
    vmax = float(v.detach().max()) if max_vel is None else float(max_vel)
    check_cfl(vmax, geometry.dx, geometry.dt)
    n = int(shots.size)
    if wavelet is None:
        wavelet = torch.as_tensor(ricker(geometry.peak_frequency, geometry.nt, geometry.dt))
    amplitudes = wavelet.to(device=v.device, dtype=v.dtype).reshape(1, 1, -1).expand(n, 1, -1).contiguous()
    out = deepwave.scalar(
        v,
        geometry.dx,
        geometry.dt,
        source_amplitudes=amplitudes,
        source_locations=source_locations(geometry, shots, v.device),
        receiver_locations=_locations(geometry.receivers, n, v.device),
        accuracy=accuracy,
        pml_width=pml_width,
        pml_freq=geometry.peak_frequency,
        max_vel=vmax,
        storage_mode=storage,
        storage_compression=storage_compression,
        storage_path=storage_path,
        checkpoint_segments=checkpoint_segments,
        model_gradient_sampling_interval=int(gradient_sampling_interval),
    )
    return out.receiver_amplitudes


def misfit(pred: torch.Tensor, observed: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """``J = scale * 1/2 * sum((pred - observed)^2)``: a *sum* over shots, receivers and samples (never a plain
    mean: its tiny adjoint source underflows into subnormal floats on CPU, spec §2.1)."""
    return 0.5 * scale * torch.sum((pred - observed) ** 2)


def per_shot_misfit(pred: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """``1/2 * sum over receivers and samples`` of the squared residual, one value per shot ``(n,)``."""
    return 0.5 * torch.sum((pred - observed) ** 2, dim=(-2, -1))


def observe(
    v_true: np.ndarray,
    geometry: Geometry,
    accuracy: int = 8,
    noise_db: float | None = None,
    seed: int = 0,
    *,
    pml_width: int = 20,
    device: str = "cpu",
) -> np.ndarray:
    """Observed shot gathers ``(shots, receivers, nt)`` float32 for the true model ``v_true (nz, nx)`` m/s.

    ``accuracy=8`` by default (the inversion uses 4: no inverse crime). ``noise_db``: white Gaussian noise at
    that signal-to-noise ratio, ``10 log10(P_signal / P_noise)`` over the whole record, drawn from a generator
    seeded by ``seed``. ``v_true`` is not modified."""
    check_velocity(np.asarray(v_true), geometry, "true velocity model")
    v = torch.as_tensor(np.array(v_true, dtype=np.float32), device=device)
    with torch.no_grad(), denormals_flushed(device):
        data = forward(v, geometry, accuracy=accuracy, pml_width=pml_width).cpu().numpy().astype(np.float32)
    if noise_db is not None:
        power = float(np.mean(data.astype(np.float64) ** 2))
        sigma = math.sqrt(power / 10.0 ** (float(noise_db) / 10.0))
        rng = np.random.default_rng(seed)
        data = (data + sigma * rng.standard_normal(data.shape)).astype(np.float32)
    return data


# -- multiscale ----------------------------------------------------------------------------------------------
def lowpass(data: torch.Tensor, dt: float, cutoff: float | None, order: int = 6) -> torch.Tensor:
    """Zero-phase Butterworth low-pass along the last (time) axis: the spectrum is multiplied by
    ``|H(f)|^2 = 1 / (1 + (f / cutoff)^(2 order))`` (what a forward-backward Butterworth of ``order`` does),
    with the record zero-padded to twice its length against wrap-around. Differentiable; ``None`` = identity."""
    if cutoff is None:
        return data
    nt = data.shape[-1]
    n = 2 * nt
    freqs = torch.fft.rfftfreq(n, d=dt, device=data.device).to(data.dtype)
    gain = 1.0 / (1.0 + (freqs / float(cutoff)) ** (2 * order))
    spec = torch.fft.rfft(data, n=n, dim=-1) * gain
    return torch.fft.irfft(spec, n=n, dim=-1)[..., :nt]
