"""The Marmousi-like generator (spec DRFWI section 5) and the smooth / linear initial models."""

from __future__ import annotations

import numpy as np
import pytest

from seiscore.data.marmousi import (
    MarmousiDescription,
    MarmousiError,
    describe,
    initial_model,
    marmousi_like,
    pull_back,
    render,
)


@pytest.fixture(scope="module")
def model20():
    return marmousi_like(20.0, seed=3)


@pytest.fixture(scope="module")
def model40():
    return marmousi_like(40.0, seed=3)


def test_shapes_grid_and_range(model20, model40):
    (v20, g20), (v40, g40) = model20, model40
    assert v20.shape == (150, 460) and v40.shape == (75, 230)
    assert v20.dtype == np.float32 and v20.flags.c_contiguous
    assert (g20.dz, g20.dx, g20.z0, g20.x0) == (20.0, 20.0, 0.0, 0.0) and g40.dx == 40.0
    for v in (v20, v40):
        assert 1400.0 <= v.min() and v.max() <= 5600.0
    small, grid = marmousi_like(25.0, seed=1, size=(1000.0, 2000.0))
    assert small.shape == (40, 80) and grid.dz == 25.0


def test_seeded():
    a, _ = marmousi_like(40.0, seed=5)
    b, _ = marmousi_like(40.0, seed=5)
    c, _ = marmousi_like(40.0, seed=6)
    assert np.array_equal(a, b)
    assert np.mean(a != c) > 0.3
    d = describe(5)
    assert d == describe(5)
    assert MarmousiDescription.model_validate_json(d.model_dump_json()) == d  # storable as JSON (lineage)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_description_follows_the_spec(seed):
    d = describe(seed)
    n_layers = len(d.layer_bases)
    assert 25 <= n_layers <= 40
    thickness = np.diff(np.asarray(d.layer_bases[:-1]))
    # log-normal, median 60 m where the column allows (thickened otherwise, never thinner)
    assert 55.0 <= np.median(thickness) <= 130.0
    assert 2 <= len(d.bumps) <= 4 and all(100 <= abs(b.amplitude) <= 400 for b in d.bumps)
    assert 3 <= len(d.faults) <= 6 and all(50 <= f.throw <= 300 for f in d.faults)
    assert all(f.dip_top > f.dip_base for f in d.faults)  # listric: flattens with depth
    assert 1 <= len(d.lenses) <= 2 and all(-600 <= lens.dv <= -300 for lens in d.lenses)
    assert d.wedge is not None and d.water_depth > 0
    v = np.asarray(d.layer_velocities)
    assert 4000 <= v[-1] <= 5600  # the base: 4500-5500 trend +- 300 jitter


def test_velocity_trend_and_water(model20):
    v, _ = model20
    d = describe(3)
    n_water = int(np.ceil(d.water_depth / 20.0))
    assert np.all(v[:n_water] == 1500.0)
    assert v[n_water : n_water + 5].mean() < 2200.0
    assert v[-8:].mean() > 3800.0
    dry, _ = marmousi_like(40.0, seed=3, water=False)
    assert describe(3, water=False).water_depth == 0.0
    assert not np.all(dry[0] == 1500.0)


def _across(v: np.ndarray, d, f, dx: float, half: float = 60.0) -> float:
    """Mean |v| difference between points ``half`` m either side of fault ``f`` over the middle third of depths."""
    rows = np.arange(v.shape[0] // 3, 2 * v.shape[0] // 3)
    xf = d.trace(f, rows * dx)
    left = np.clip(np.rint((xf - half) / dx).astype(int), 0, v.shape[1] - 1)
    right = np.clip(np.rint((xf + half) / dx).astype(int), 0, v.shape[1] - 1)
    return float(np.abs(v[rows, left] - v[rows, right]).mean())


@pytest.mark.parametrize("seed", [0, 3])
def test_faults_cut_the_layers(seed):
    d = describe(seed)
    v, _ = render(d, 20.0)
    unfaulted, _ = render(d.model_copy(update={"faults": ()}), 20.0)
    inside = [f for f in d.faults if 300 < d.trace(f, np.array([1500.0]))[0] < d.width - 300]
    assert inside
    faulted = sum(_across(v, d, f, 20.0) for f in inside)
    plain = sum(_across(unfaulted, d, f, 20.0) for f in inside)
    assert faulted > 2 * plain  # a lateral discontinuity along the fault traces
    # across the youngest fault (the others were moved by later ones), the hanging wall holds the footwall's beds
    # moved down along the fault by the throw
    last = d.faults[-1]
    z = np.array([1500.0])
    xf = d.trace(last, z)[0]
    foot, _ = pull_back(d, z, np.array([xf - last.direction * 0.5]))
    hang, _ = pull_back(d, z, np.array([xf + last.direction * 0.5]))
    assert abs((foot - hang)[0] - last.throw) < 0.2 * last.throw + 10.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lenses_and_wedge_present(seed):
    d = describe(seed)
    v, _ = render(d, 20.0)
    no_lens, _ = render(d.model_copy(update={"lenses": ()}), 20.0)
    diff = v.astype(np.float64) - no_lens
    changed = diff[diff != 0]
    assert changed.size > 10
    assert changed.min() >= -600.0 - 1e-3 and changed.max() <= -300.0 + 1e-3
    no_wedge, _ = render(d.model_copy(update={"wedge": None}), 20.0)
    fast = v.astype(np.float64) - no_wedge
    assert (fast > 0).sum() > 10


def test_same_model_at_every_spacing(model20, model40):
    (v20, _), (v40, _) = model20, model40
    assert np.mean(v40 == v20[::2, ::2]) > 0.999  # the 40 m nodes are every other 20 m node
    v10, _ = marmousi_like(10.0, seed=3, size=(600.0, 1200.0))
    v30, _ = marmousi_like(30.0, seed=3, size=(600.0, 1200.0))
    assert np.mean(v30 == v10[::3, ::3]) > 0.999


def _high_k_fraction(v: np.ndarray) -> float:
    """Share of the (Hann-windowed, detrended) 2-D power spectrum above a quarter of the Nyquist wavenumber."""
    v = v.astype(np.float64)
    v = v - v.mean(axis=1, keepdims=True) - v.mean(axis=0, keepdims=True) + v.mean()
    w = np.hanning(v.shape[0])[:, None] * np.hanning(v.shape[1])[None, :]
    p = np.abs(np.fft.fft2(v * w)) ** 2
    kz = np.abs(np.fft.fftfreq(v.shape[0]))[:, None] / 0.5
    kx = np.abs(np.fft.fftfreq(v.shape[1]))[None, :] / 0.5
    return float(p[np.maximum(kz, kx) > 0.25].sum() / p.sum())


def test_smooth_initial_model(model40):
    v, grid = model40
    before = v.copy()
    m = initial_model(v, "smooth", dx=grid.dx)
    assert np.array_equal(v, before)  # the caller's model is untouched
    assert m.shape == v.shape and m.dtype == np.float32
    assert v.min() - 1e-3 <= m.min() and m.max() <= v.max() + 1e-3  # slowness averaging stays in range
    assert _high_k_fraction(m) < 0.01 * _high_k_fraction(v)
    # slowness smoothing: the harmonic mean is kept (1/m averages 1/v away from the edges)
    assert np.isclose((1 / m[20:-20, 20:-20]).mean(), (1 / v[20:-20, 20:-20]).mean(), rtol=0.02)
    wider = initial_model(v, "smooth", dx=grid.dx, sigma_m=500.0)
    roughness = [float((np.diff(x.astype(np.float64), 2, axis=1) ** 2).mean()) for x in (v, m, wider)]
    assert roughness[0] > roughness[1] > roughness[2]
    assert np.array_equal(initial_model(v, "smooth", dx=grid.dx, sigma_m=0.0), v)


def test_linear_initial_model(model40):
    v, _ = model40
    m = initial_model(v, "linear")
    assert m.shape == v.shape and m.dtype == np.float32
    assert np.all(m == m[:, :1])  # laterally constant
    assert np.all(np.diff(m[:, 0]) > 0)  # monotone
    k = int(np.ceil(0.05 * v.shape[0]))
    assert np.isclose(m[0, 0], v[0].mean()) and np.isclose(m[-1, 0], v[-k:].mean(), rtol=1e-6)
    assert np.allclose(np.diff(m[:, 0].astype(np.float64), 2), 0.0, atol=1e-2)  # linear


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: marmousi_like(0.0), "spacing"),
        (lambda: marmousi_like(20.0, size=(-1.0, 100.0)), "size"),
        (lambda: marmousi_like(5000.0), "2 x 2"),
        (lambda: initial_model(np.full((4, 4), 2000.0), "cubic", dx=10.0), "kind"),
        (lambda: initial_model(np.full((4, 4), 2000.0), "smooth"), "dx"),
        (lambda: initial_model(np.where(np.eye(4) > 0, np.nan, 2000.0), "linear"), "NaN"),
        (lambda: initial_model(np.full((2, 4, 4), 2000.0), "linear"), "one (nz, nx)"),
    ],
)
def test_bad_input_one_line(call, words):
    with pytest.raises(MarmousiError) as err:
        call()
    message = str(err.value)
    assert words in message and "\n" not in message
