"""TLSM: operator-level checks against brute force / direct solves, and the solver's contract."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from seiscore.data.synth import SynthConfig, make_survey, to_canonical
from seiscore.methods.tlsm import PRESETS, TLSMParams, denoise, denoise_dataarray, lsm_reference, lsm_shrink
from seiscore.methods.tlsm.lsm import EPS
from seiscore.methods.tlsm.reference import denoise_reference, tsvd_lsm_reference
from seiscore.methods.tlsm.tsvd import tsvd_lsm
from seiscore.methods.tlsm.xstep import FourierXSolver
from seiscore.metrics import psnr


@pytest.fixture(scope="module")
def small_survey():
    noisy, clean = make_survey(SynthConfig(n_inline=24, n_crossline=40, n_time=64, seed=3), dtype=np.float64)
    return to_canonical(noisy), to_canonical(clean)


# --- the LSM operator -------------------------------------------------------------------------


@pytest.mark.parametrize("mu1", [0.05, 0.125, 1.0, 5.0, 10.0])
def test_lsm_scale_minimises_its_scalar_objective(mu1):
    """theta from the closed form is the minimiser of f(t) = a t^2 + b t + c log(t + eps) over t >= 0."""
    rng = np.random.default_rng(0)
    y = rng.standard_normal((6, 50)) * rng.uniform(1e-3, 10)
    theta0 = np.sqrt(np.mean(y**2, axis=1, keepdims=True))
    u = y / (theta0 + EPS)
    a, b, c = u**2, -2 * u * y, 4 * mu1 * y**2 / 400
    t = np.concatenate([[0.0], np.geomspace(1e-12, 1, 4000) * 3 * theta0.max()])
    f_grid = a[..., None] * t**2 + b[..., None] * t + c[..., None] * np.log(t + EPS)
    # Recover theta from the operator: S = theta * soft(y/theta, thr) -> compare objective values
    S = lsm_reference(y, mu1, axis=1)
    shrunk = np.abs(S) > 0
    for g in range(y.shape[0]):
        i = np.argmax(np.abs(y[g]))
        f_min = f_grid[g, i].min()
        if not shrunk[g].any():  # theta = 0 chosen: f(0) must be (near) the minimum
            assert c[g, i] * np.log(EPS) <= f_min + 1e-9 * abs(f_min)
        else:
            q = 0.25 - mu1 / 200
            cands = theta0[g, 0] * np.array([0.5 + np.sqrt(q), 0.5 - np.sqrt(q)])
            f_c = a[g, i] * cands**2 + b[g, i] * cands + c[g, i] * np.log(cands + EPS)
            assert f_c.min() <= f_min + 1e-9 * abs(f_min)


def test_lsm_coefficient_is_soft_threshold_minimiser():
    """Given theta, S/theta minimises 1/2 (a - v)^2 + thr |a| (brute force over a grid)."""
    rng = np.random.default_rng(1)
    y = rng.standard_normal((1, 30))
    mu1 = 1.0
    S = lsm_reference(y, mu1, axis=1)
    theta = np.sqrt(np.mean(y**2)) * (0.5 + np.sqrt(0.25 - mu1 / 200))
    v = y / theta
    thr = 2 * np.sqrt(2) * mu1 * y**2 / 400 / theta**2
    grid = np.linspace(-5, 5, 200001)
    obj = 0.5 * (grid[None, :] - v.T) ** 2 + thr.T * np.abs(grid[None, :])
    best = grid[np.argmin(obj, axis=1)]
    np.testing.assert_allclose(S[0] / theta, best, atol=1e-4)


@pytest.mark.parametrize("mu1", [0.01, 0.125, 1.0, 5.0, 60.0])
@pytest.mark.parametrize("scale", [1e-6, 1.0, 300.0])
def test_lsm_group_form_equals_literal_formula(mu1, scale):
    rng = np.random.default_rng(2)
    y = rng.standard_normal((5, 7, 9)) * scale
    y[0, 0, 0] = 0.0
    for axis in range(3):
        np.testing.assert_allclose(lsm_shrink(y, mu1, axis), lsm_reference(y, mu1, axis), rtol=1e-12, atol=0)


def test_lsm_shrink_keeps_dtype_and_input():
    y = np.random.default_rng(3).standard_normal((4, 10)).astype(np.float32)
    before = y.copy()
    out = lsm_shrink(y, 0.5, axis=1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(y, before)


# --- X-step ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["fftw", "scipy"])
def test_xstep_equals_direct_solve_of_normal_equations(backend):
    rng = np.random.default_rng(4)
    n3, n1, n2 = 3, 6, 5
    alpha, beta, gamma = 4.0, 1.0, 0.2
    rhs = rng.standard_normal((n3, n1, n2))
    before = rhs.copy()
    solver = FourierXSolver((n3, n1, n2), alpha, beta, gamma, np.float64, workers=1, backend=backend)
    got = solver.solve(rhs).copy()
    np.testing.assert_array_equal(rhs, before)
    # the solver's output buffers alternate: a second solve must not disturb the first result
    again = solver.solve(2 * rhs)
    np.testing.assert_allclose(again, 2 * got, rtol=1e-12, atol=1e-12)

    def periodic_diff(n):
        D = -np.eye(n)
        D[np.arange(n), (np.arange(n) + 1) % n] += 1
        return D

    Dx = np.kron(np.eye(n1), periodic_diff(n2))  # along axis 2 of each (n1, n2) slice (row-major)
    Dy = np.kron(periodic_diff(n1), np.eye(n2))
    A = (1 + alpha + 1e-6) * np.eye(n1 * n2) + beta * Dx.T @ Dx + gamma * Dy.T @ Dy
    want = np.linalg.solve(A, rhs.reshape(n3, -1).T).T.reshape(rhs.shape)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_xstep_rejects_unknown_backend_and_wrong_shape():
    with pytest.raises(ValueError, match="unknown FFT backend 'mkl'"):
        FourierXSolver((2, 3, 4), 1.0, 1.0, 1.0, np.float32, workers=1, backend="mkl")
    solver = FourierXSolver((2, 3, 4), 1.0, 1.0, 1.0, np.float32, workers=1)
    with pytest.raises(ValueError, match="shape"):
        solver.solve(np.zeros((2, 3, 5), np.float32))


# --- Z-step ------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["gram", "svd"])
@pytest.mark.parametrize("shape", [(8, 5, 9), (7, 9, 5)])  # even / odd n3, wide / tall slices
def test_tsvd_rebuild_is_exact_with_zero_shrinkage(route, shape):
    A = np.random.default_rng(5).standard_normal(shape)
    np.testing.assert_allclose(tsvd_lsm(A, 0.0, route=route), A, rtol=0, atol=1e-10)


@pytest.mark.parametrize("route", ["gram", "svd"])
@pytest.mark.parametrize("rho", [0.125, 2.0, 30.0])
@pytest.mark.parametrize("n3", [8, 9])
def test_conjugate_symmetry_shortcut_equals_full_per_slice_svds(route, rho, n3):
    rng = np.random.default_rng(6)
    canonical = rng.standard_normal((6, 11, n3)) + np.outer(rng.standard_normal(6), rng.standard_normal(11))[:, :, None]
    full = tsvd_lsm_reference(canonical, rho)  # n3 SVDs, literal LSM
    fast = tsvd_lsm(np.ascontiguousarray(np.transpose(canonical, (2, 0, 1))), rho, route=route, workers=2)
    np.testing.assert_allclose(np.transpose(fast, (1, 2, 0)), full, rtol=1e-9, atol=1e-11)


# --- the whole solver --------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("boundary", ["demo", "periodic"])
def test_fast_solver_matches_literal_reference(preset, boundary):
    noisy, _ = make_survey(SynthConfig(n_inline=7, n_crossline=12, n_time=16, seed=1), dtype=np.float64)
    y = to_canonical(noisy)
    params = {"iterations": 6, "boundary": boundary}
    ref = denoise_reference(y, params, preset=preset)
    fast = denoise(y, params, preset=preset)
    assert np.linalg.norm(fast - ref) / np.linalg.norm(ref) < 1e-10


def test_denoising_raises_psnr(small_survey):
    y, x = small_survey
    out = denoise(y, preset="synthetic")
    before, after = psnr(x, y), psnr(x, out)
    assert after - before > 8.0, (before, after)  # measured: 25.7 -> 37.1 dB on this cube


def test_float32_and_float64_agree(small_survey):
    y, x = small_survey
    out64 = denoise(y)
    out32 = denoise(y.astype(np.float32))
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    assert abs(psnr(x, out32) - psnr(x, out64)) < 0.05
    assert np.linalg.norm(out32 - out64) / np.linalg.norm(out64) < 1e-3  # measured 3.5e-4


def test_deterministic_and_input_untouched(small_survey):
    y, _ = small_survey
    y = y.astype(np.float32)
    before = y.copy()
    a = denoise(y, {"iterations": 5})
    b = denoise(y, {"iterations": 5})
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(y, before)


def test_callback_reports_every_iteration(small_survey):
    y, _ = small_survey
    seen = []
    denoise(y, {"iterations": 4}, callback=lambda it, change: seen.append((it, change)))
    assert [it for it, _ in seen] == [1, 2, 3, 4]
    assert all(isinstance(c, float) and c >= 0 for _, c in seen)


def test_non_contiguous_input_is_handled(small_survey):
    y, _ = small_survey
    view = np.asfortranarray(y)[:, ::2, :]
    np.testing.assert_allclose(denoise(view, {"iterations": 3}), denoise(np.ascontiguousarray(view), {"iterations": 3}))


def test_dataarray_wrapper_keeps_dims_coords_attrs():
    noisy, _ = make_survey(SynthConfig(n_inline=10, n_crossline=16, n_time=24))
    da = xr.DataArray(
        noisy,
        dims=("inline", "crossline", "time"),
        coords={"inline": np.arange(100, 110), "crossline": np.arange(16) * 2, "time": np.arange(24) * 2.0},
        attrs={"units": "amplitude"},
        name="amplitude",
    )
    out = denoise_dataarray(da, smooth="crossline", footprint="time", tube="inline", params={"iterations": 3})
    assert out.dims == da.dims and out.attrs == da.attrs and out.name == da.name
    xr.testing.assert_identical(out.coords.to_dataset(), da.coords.to_dataset())
    direct = denoise(to_canonical(noisy), {"iterations": 3})
    np.testing.assert_array_equal(out.transpose("crossline", "time", "inline").values, direct)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((4, 4)), "3-D"),
        (np.zeros((4, 1, 4)), "axis 1 of length 1"),
        (np.zeros((4, 4, 4), dtype=np.int16), "integer"),
        (np.zeros((4, 4, 4), dtype=np.complex64), "complex"),
        (np.full((4, 4, 4), np.nan), "NaN or Inf"),
        (np.array([[[np.inf, 0], [0, 0]], [[0, 0], [0, 0]]]), "NaN or Inf"),
    ],
)
def test_bad_arrays_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        denoise(bad)


def test_bad_parameters_raise_value_error():
    y = np.zeros((4, 4, 4))
    with pytest.raises(ValueError, match="unknown TLSM preset"):
        denoise(y, preset="marmousi")
    with pytest.raises(ValueError, match="tau"):
        denoise(y, {"tau": 0})
    with pytest.raises(ValueError, match="gamma"):
        denoise(y, {"gamma": -1.0})
    with pytest.raises(ValueError):
        TLSMParams(iterations=0)
    with pytest.raises(ValueError, match="smooth"):
        denoise_dataarray(xr.DataArray(y, dims=("a", "b", "c")), smooth="a", footprint="a", tube="c")
    with pytest.raises(ValueError, match="not in the DataArray"):
        denoise_dataarray(xr.DataArray(y, dims=("a", "b", "c")), smooth="a", footprint="b", tube="time")
