"""A Marmousi-like 2-D velocity model at any spacing, and the smooth / linear starting models of FWI.

Marmousi itself is not available offline (``docs`` DRFWI spec, section 5), so this module draws a model with its
dominant features from a seed: a layered column folded and cut by listric normal faults, gas-sand lenses and a
fast wedge. A model is first *described* (:func:`describe`: every feature as numbers in metres, independent of
any grid) and then *rendered* (:func:`render`) by evaluating the description at the grid nodes
``z = i * spacing``, ``x = j * spacing``; the same description therefore gives the same model at every spacing
(the 40 m model's nodes are every other node of the 20 m model).

Rendering pulls each node back to where its rock was deposited, then looks up the layer there:

1. Faults, last formed first. Fault ``f`` has the listric trace
   ``X_f(z) = x_top + d (c_0 z + (c_1 - c_0) z^2 / (2 H))`` with ``c = cot(dip)`` (steep at the top, flatter
   at the base ``H``), dipping towards ``d = +-1``. A node in the hanging wall (``d (x - X_f(z)) > 0``) slid
   down the fault by the throw ``T``: it came from ``z' = z - T``, ``x' = X_f(z - T) + (x - X_f(z))`` (moved
   along a copy of the fault curve).
2. Folding: the stratigraphic depth is ``zeta = z - u(x, z)`` with ``u`` a sum of Gaussian and sinusoidal bumps
   in ``x`` (amplitude 100-400 m) growing gently with depth (older beds folded more).
3. Layers: ``zeta`` is looked up in the layer bases (30-40 layers filling the column below the water, log-normal
   thicknesses of median 60 m whose log-spread is solved for, up to 0.9, beyond which all are thickened); a
   layer's velocity is the trend ``1500 + (v_base - 1500) * clip(zeta / H, 0, 1)`` at its middle plus a
   +-300 m/s jitter, ``v_base`` in 4500-5500 m/s.
4. Anomalies in stratigraphic coordinates (so they are folded and faulted with their beds): 1-2 lenticular
   low-velocity lenses (-300 to -600 m/s) and one high-velocity wedge (thin to thick laterally).
5. An optional flat water layer (1500 m/s); the result is clipped to [1400, 5600] m/s.

Everything is vectorised over the grid (loops only over the handful of faults, bumps and anomalies).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from seiscore.data.velocity import VelocityGrid, VelocityModelError, validate_models

V_WATER = 1500.0
V_MIN, V_MAX = 1400.0, 5600.0
MEDIAN_THICKNESS = 60.0  # m, median of the log-normal layer thicknesses


class MarmousiError(ValueError):
    """Bad arguments to the Marmousi-like generator or the initial models; the message names the problem."""


class Bump(BaseModel):
    """One folding term of the vertical displacement ``u(x)`` (m): Gaussian or sinusoidal in ``x``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: Literal["gauss", "sine"]
    amplitude: float = Field(description="signed amplitude (m); positive pushes beds down")
    centre: float = Field(description="gauss: centre x (m); sine: phase reference x (m)")
    width: float = Field(gt=0, description="gauss: standard deviation (m); sine: wavelength (m)")


class Fault(BaseModel):
    """A listric normal fault: trace from ``x_top`` at the surface, dip ``dip_top`` flattening to ``dip_base``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x_top: float = Field(description="x (m) where the fault reaches z = 0")
    dip_top: float = Field(gt=0, lt=90, description="dip at the top (degrees)")
    dip_base: float = Field(gt=0, lt=90, description="dip at the model base (degrees)")
    direction: Literal[-1, 1] = Field(description="+1: dips towards +x (hanging wall on the +x side)")
    throw: float = Field(ge=0, description="vertical displacement of the hanging wall (m)")


class Lens(BaseModel):
    """A lenticular body (in stratigraphic coordinates) whose velocity is lowered by ``dv`` (negative)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float
    zeta: float = Field(description="stratigraphic depth of the lens centre (m)")
    half_width: float = Field(gt=0)
    thickness: float = Field(gt=0, description="thickness at the centre (m)")
    dv: float = Field(lt=0, description="velocity change (m/s)")


class Wedge(BaseModel):
    """A fast wedge (stratigraphic coordinates): top at ``zeta``, thickness growing linearly from 0 at ``x_thin``
    to ``thickness`` at ``x_thick``, where it is cut off; velocity ``velocity``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x_thin: float
    x_thick: float
    zeta: float
    thickness: float = Field(gt=0)
    velocity: float = Field(gt=0)


class MarmousiDescription(BaseModel):
    """Everything that defines one Marmousi-like model, in metres and m/s (no grid)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: float = Field(gt=0, description="model depth H (m)")
    width: float = Field(gt=0, description="model width (m)")
    seed: int
    water_depth: float = Field(ge=0, description="0: no water layer")
    layer_bases: tuple[float, ...] = Field(description="stratigraphic depth of each layer's base (m), increasing")
    layer_velocities: tuple[float, ...] = Field(description="velocity of each layer (m/s); the last continues down")
    bumps: tuple[Bump, ...]
    faults: tuple[Fault, ...] = Field(description="in order of formation (the last one cuts the others)")
    lenses: tuple[Lens, ...]
    wedge: Wedge | None

    def trace(self, fault: Fault, z: np.ndarray) -> np.ndarray:
        """x (m) of ``fault``'s trace at depths ``z`` (m)."""
        c0 = 1.0 / math.tan(math.radians(fault.dip_top))
        c1 = 1.0 / math.tan(math.radians(fault.dip_base))
        return fault.x_top + fault.direction * (c0 * z + (c1 - c0) * z * z / (2.0 * self.depth))


def _fold(desc: MarmousiDescription, z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Vertical fold displacement ``u(x, z)`` (m), growing from 0.6x at the top to 1.0x at the base."""
    shape = np.zeros_like(x)
    for b in desc.bumps:
        if b.shape == "gauss":
            shape = shape + b.amplitude * np.exp(-0.5 * ((x - b.centre) / b.width) ** 2)
        else:
            shape = shape + b.amplitude * np.sin(2.0 * np.pi * (x - b.centre) / b.width)
    return shape * (0.6 + 0.4 * np.clip(z / desc.depth, 0.0, 1.0))


def pull_back(desc: MarmousiDescription, z: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stratigraphic coordinates ``(zeta, x_s)`` of the points ``(z, x)`` (m, any broadcastable arrays): undo the
    faults (last first), then the folding."""
    z, x = np.broadcast_arrays(np.asarray(z, dtype=np.float64), np.asarray(x, dtype=np.float64))
    z, x = z.copy(), x.copy()
    for f in reversed(desc.faults):
        xf = desc.trace(f, z)
        hanging = f.direction * (x - xf) > 0
        z_up = z - f.throw
        x_up = desc.trace(f, z_up) + (x - xf)
        z = np.where(hanging, z_up, z)
        x = np.where(hanging, x_up, x)
    return z - _fold(desc, z, x), x


def _lens_mask(lens: Lens, zeta: np.ndarray, xs: np.ndarray) -> np.ndarray:
    r = (xs - lens.x) / lens.half_width
    half = 0.5 * lens.thickness * (1.0 - r * r)
    return (np.abs(r) < 1.0) & (np.abs(zeta - lens.zeta) < half)


def _wedge_mask(w: Wedge, zeta: np.ndarray, xs: np.ndarray) -> np.ndarray:
    frac = (xs - w.x_thin) / (w.x_thick - w.x_thin)
    inside = (frac > 0.0) & (frac <= 1.0)
    return inside & (zeta >= w.zeta) & (zeta < w.zeta + w.thickness * np.clip(frac, 0.0, 1.0))


def _evaluate(desc: MarmousiDescription, z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Velocity (m/s, float64) of the description at the points ``(z, x)``."""
    zeta, xs = pull_back(desc, z, x)
    bases = np.asarray(desc.layer_bases)
    layer = np.minimum(np.searchsorted(bases, zeta, side="right"), bases.size - 1)
    v = np.asarray(desc.layer_velocities, dtype=np.float64)[layer]
    for lens in desc.lenses:
        v = np.where(_lens_mask(lens, zeta, xs), v + lens.dv, v)
    if desc.wedge is not None:
        v = np.where(_wedge_mask(desc.wedge, zeta, xs), desc.wedge.velocity, v)
    if desc.water_depth > 0:
        v = np.where(np.broadcast_to(z, v.shape) < desc.water_depth, V_WATER, v)
    return np.clip(v, V_MIN, V_MAX)


def _trend(zeta: np.ndarray, depth: float, v_base: float) -> np.ndarray:
    return V_WATER + (v_base - V_WATER) * np.clip(zeta / depth, 0.0, 1.0)


def _layer_thicknesses(rng: np.random.Generator, n: int, span: float, max_spread: float = 0.9) -> np.ndarray:
    """``n`` log-normal thicknesses ``60 m * exp(s * g)`` that sum to ``span``: the normal draws ``g`` are centred on
    their median (so the median thickness is 60 m) and the log-spread ``s`` is solved for. When that needs
    ``s > max_spread`` (a few huge layers), ``s = max_spread`` and all thicknesses are scaled up instead."""
    from scipy.optimize import brentq

    g = rng.standard_normal(n)
    g -= np.median(g)
    target = span / MEDIAN_THICKNESS

    def excess(s: float) -> float:
        return float(np.exp(s * g).sum() - target)

    if excess(0.0) >= 0:  # the column is thin: equal layers already fill it
        return np.full(n, span / n)
    s = max_spread if excess(max_spread) <= 0 else brentq(excess, 0.0, max_spread, xtol=1e-12)
    t = MEDIAN_THICKNESS * np.exp(s * g)
    return t * (span / t.sum())


def describe(seed: int = 0, size: tuple[float, float] = (3000.0, 9200.0), water: bool = True) -> MarmousiDescription:
    """Draw the description of a Marmousi-like model of ``size = (depth, width)`` metres from ``seed``."""
    depth, width = (float(s) for s in size)
    if not (np.isfinite(depth) and np.isfinite(width) and depth > 0 and width > 0):
        raise MarmousiError(f"model size must be two positive lengths (depth, width) in metres, got {size}")
    rng = np.random.default_rng(seed)
    water_depth = float(rng.uniform(0.03, 0.06) * depth) if water else 0.0

    bumps = []
    for k in range(int(rng.integers(2, 5))):
        shape = "gauss" if k == 0 or rng.random() < 0.7 else "sine"
        amp = float(rng.uniform(100.0, 400.0) * rng.choice([-1.0, 1.0]))
        if shape == "gauss":
            bumps.append(
                Bump(
                    shape=shape,
                    amplitude=amp,
                    centre=float(rng.uniform(0.1, 0.9) * width),
                    width=float(rng.uniform(0.06, 0.16) * width),
                )
            )
        else:
            bumps.append(
                Bump(
                    shape=shape,
                    amplitude=amp,
                    centre=float(rng.uniform(0, width)),
                    width=float(rng.uniform(0.3, 0.6) * width),
                )
            )

    n_faults = int(rng.integers(3, 7))
    edges = np.linspace(0.1, 0.9, n_faults + 1) * width
    faults = [
        Fault(
            x_top=float(rng.uniform(edges[i] + 0.15 * (edges[1] - edges[0]), edges[i + 1])),
            dip_top=float(rng.uniform(60.0, 75.0)),
            dip_base=float(rng.uniform(30.0, 45.0)),
            direction=int(rng.choice([-1, 1])),
            throw=float(rng.uniform(50.0, 300.0)),
        )
        for i in range(n_faults)
    ]
    order = rng.permutation(n_faults)  # order of formation
    faults = [faults[i] for i in order]

    v_base = float(rng.uniform(4500.0, 5500.0))
    lenses = [
        Lens(
            x=float(rng.uniform(0.15, 0.85) * width),
            zeta=float(rng.uniform(0.3, 0.6) * depth),
            half_width=float(rng.uniform(300.0, 700.0)),
            thickness=float(rng.uniform(80.0, 160.0)),
            dv=float(rng.uniform(-600.0, -300.0)),
        )
        for _ in range(int(rng.integers(1, 3)))
    ]
    x_thin = float(rng.uniform(0.1, 0.6) * width)
    wedge_zeta = float(rng.uniform(0.45, 0.7) * depth)
    wedge = Wedge(
        x_thin=x_thin,
        x_thick=x_thin + float(rng.uniform(0.15, 0.3) * width),
        zeta=wedge_zeta,
        thickness=float(rng.uniform(150.0, 350.0)),
        velocity=float(min(V_MAX, _trend(np.float64(wedge_zeta), depth, v_base) + rng.uniform(600.0, 1000.0))),
    )

    # the stratigraphic column the model samples: pull a fixed 201 x 401 lattice back (structure only)
    partial = MarmousiDescription(
        depth=depth, width=width, seed=seed, water_depth=water_depth, layer_bases=(0.0,), layer_velocities=(0.0,),
        bumps=tuple(bumps), faults=tuple(faults), lenses=(), wedge=None,
    )  # fmt: skip
    zz, xx = np.meshgrid(np.linspace(water_depth, depth, 201), np.linspace(0, width, 401), indexing="ij")
    zeta, _ = pull_back(partial, zz, xx)
    top, bottom = float(zeta.min()), float(zeta.max())
    n_layers = int(rng.integers(30, 41))  # 25-40 in the spec; >= 30 keeps the log-spread moderate
    thickness = _layer_thicknesses(rng, n_layers, bottom - top)
    bases = top + np.cumsum(thickness)
    # the deepest layer continues downwards (lookups past the last base are clamped to it); finite for JSON
    mids = bases - 0.5 * thickness
    jitter = rng.uniform(-300.0, 300.0, n_layers)
    velocities = np.clip(_trend(mids, depth, v_base) + jitter, V_WATER + 50.0, V_MAX - 100.0)
    return partial.model_copy(
        update={
            "layer_bases": tuple(float(b) for b in bases),
            "layer_velocities": tuple(float(v) for v in velocities),
            "lenses": tuple(lenses),
            "wedge": wedge,
        }
    )


def render(desc: MarmousiDescription, spacing: float = 20.0) -> tuple[np.ndarray, VelocityGrid]:
    """The model of ``desc`` on nodes ``i * spacing`` (``round(depth / spacing) x round(width / spacing)``):
    ``(v (nz, nx) float32 m/s, VelocityGrid)``."""
    spacing = float(spacing)
    if not (np.isfinite(spacing) and spacing > 0):
        raise MarmousiError(f"grid spacing must be a positive number of metres, got {spacing}")
    nz, nx = int(round(desc.depth / spacing)), int(round(desc.width / spacing))
    if nz < 2 or nx < 2:
        raise MarmousiError(
            f"spacing {spacing:g} m gives a {nz} x {nx} grid for a {desc.depth:g} x {desc.width:g} m model; "
            "need at least 2 x 2 cells"
        )
    grid = VelocityGrid(dz=spacing, dx=spacing)
    z, x = grid.axes(nz, nx)
    v = _evaluate(desc, z[:, None], x[None, :])
    return np.ascontiguousarray(v, dtype=np.float32), grid


def marmousi_like(
    spacing: float = 20.0, seed: int = 0, size: tuple[float, float] = (3000.0, 9200.0), water: bool = True
) -> tuple[np.ndarray, VelocityGrid]:
    """A Marmousi-like model (``size = (depth, width)`` m, default 3 km x 9.2 km like Marmousi-1) at ``spacing``
    metres: 20 m -> 150 x 460, 40 m -> 75 x 230. Returns ``(v (nz, nx) float32 in [1400, 5600] m/s, grid)``;
    the same ``seed`` and ``size`` give the same model at every spacing."""
    return render(describe(seed=seed, size=size, water=water), spacing)


def initial_model(
    v: np.ndarray, kind: Literal["smooth", "linear"] = "smooth", dx: float | None = None, sigma_m: float = 250.0
) -> np.ndarray:
    """A starting model for FWI from the true model ``v`` (nz, nx) m/s, as float32 (``v`` is not modified).

    - ``smooth``: ``1 / G_sigma(1 / v)``, Gaussian smoothing of the slowness with ``sigma = sigma_m / dx`` cells
      (edges continued); needs ``dx`` (m).
    - ``linear``: laterally constant ``v(z)`` rising linearly from the mean of the top row to the mean of the
      deepest 5 % of rows (at least one) at the bottom row.
    """
    try:
        arr = validate_models(v, what="true model")
    except VelocityModelError as exc:
        raise MarmousiError(str(exc)) from None
    if arr.shape[0] != 1:
        raise MarmousiError(f"true model must be one (nz, nx) model, got shape {np.shape(v)}")
    m = arr[0].astype(np.float64)
    nz, nx = m.shape
    if kind == "smooth":
        if dx is None or not (np.isfinite(dx) and dx > 0):
            raise MarmousiError(f"the smooth initial model needs the grid spacing dx > 0 (m), got {dx}")
        if not (np.isfinite(sigma_m) and sigma_m >= 0):
            raise MarmousiError(f"sigma_m must be >= 0 metres, got {sigma_m}")
        from scipy.ndimage import gaussian_filter

        out = 1.0 / gaussian_filter(1.0 / m, sigma=sigma_m / float(dx), mode="nearest")
    elif kind == "linear":
        k = max(1, math.ceil(0.05 * nz))
        top, bottom = m[0].mean(), m[-k:].mean()
        profile = top + (bottom - top) * np.arange(nz) / max(1, nz - 1)
        out = np.broadcast_to(profile[:, None], (nz, nx))
    else:
        raise MarmousiError(f"initial model kind must be 'smooth' or 'linear', got {kind!r}")
    return np.ascontiguousarray(out, dtype=np.float32)
