"""DRFWI's forward engine on real deepwave: wavelet, CFL check, forward modelling, observed data, low-pass,
one-line errors, and float64 gradient checks of the parameterisations through the propagator."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("deepwave")

from seiscore.data.shots import Geometry, GeometryError  # noqa: E402
from seiscore.methods.drfwi import engine  # noqa: E402
from seiscore.methods.drfwi.parameterisation import ADenormModel, GridModel, SDenormModel  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def toy():
    """A 20 x 40 layered model with a lens, 3 shots, 10 Hz, 0.4 s at 2 ms."""
    geometry = Geometry.surface(20, 40, 20.0, n_shots=3, dt=0.002, nt=200, peak_frequency=10.0, receiver_step=2)
    z = np.arange(20, dtype=np.float32)[:, None] * 20.0
    v = np.broadcast_to(1800.0 + 1.5 * z, (20, 40)).copy()
    v[10:14, 12:28] += 300.0
    return geometry, v.astype(np.float32)


def test_ricker_peaks_at_peak_time_and_is_float32():
    w = engine.ricker(10.0, 100, 0.002)
    assert w.dtype == np.float32 and w.shape == (100,)
    assert int(np.argmax(w)) == round(0.15 / 0.002)  # default peak time 1.5 / f
    assert w.max() == pytest.approx(1.0, abs=1e-6)
    assert abs(w[0]) < 1e-3  # starts near zero
    assert int(np.argmax(engine.ricker(5.0, 200, 0.002, peak_time=0.2))) == 100


def test_cfl_reports_internal_steps_and_refuses_unreasonable_sampling():
    # dt_cfl = 0.6 dx / (v sqrt 2) = 1.70 ms for dx 20 m, 5000 m/s
    assert engine.check_cfl(5000.0, 20.0, 0.001) == 1
    assert engine.check_cfl(5000.0, 20.0, 0.004) == 3
    with pytest.raises(engine.EngineError, match=r"dt=2 s .*v_max=5000 m/s and dx=20 m") as exc:
        engine.check_cfl(5000.0, 20.0, 2.0)  # dt given in ms
    assert "\n" not in str(exc.value)
    with pytest.raises(engine.EngineError, match="dx=-1"):
        engine.check_cfl(5000.0, -1.0, 0.001)
    g = Geometry.surface(10, 10, 20.0, n_shots=1, dt=0.004, nt=50, peak_frequency=10.0)
    assert engine.internal_steps(g, 5000.0) == 150


def test_forward_shapes_and_shot_batches_agree(toy):
    geometry, v = toy
    vt = torch.tensor(v)
    with torch.no_grad():
        full = engine.forward(vt, geometry)
        part = engine.forward(vt, geometry, shots=[2, 0])
    assert full.shape == (3, geometry.n_receivers, 200)
    assert torch.allclose(part[0], full[2], rtol=1e-5, atol=1e-6 * float(full.abs().max()))
    assert torch.allclose(part[1], full[0], rtol=1e-5, atol=1e-6 * float(full.abs().max()))
    assert float(full.abs().max()) > 0
    # the caller's model is untouched and storage options do not change the data
    with torch.no_grad():
        cpu = engine.forward(vt, geometry, shots=[1], storage="cpu")
    assert torch.equal(cpu[0], full[1])


def test_observe_uses_a_finer_stencil_than_the_inversion(toy):
    geometry, v = toy
    before = v.copy()
    d8 = engine.observe(v, geometry)  # accuracy 8
    with torch.no_grad():
        d4 = engine.forward(torch.tensor(v), geometry, accuracy=4).numpy()
    assert d8.dtype == np.float32 and d8.shape == geometry.record_shape
    rel = np.linalg.norm(d8 - d4) / np.linalg.norm(d8)
    assert 1e-4 < rel < 0.5  # not the inversion's operator (no inverse crime), but the same physics
    np.testing.assert_array_equal(v, before)
    np.testing.assert_array_equal(engine.observe(v, geometry), d8)  # deterministic


def test_observe_noise_has_the_requested_snr_and_is_seeded(toy):
    geometry, v = toy
    clean = engine.observe(v, geometry)
    noisy = engine.observe(v, geometry, noise_db=10.0, seed=3)
    snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)
    np.testing.assert_array_equal(noisy, engine.observe(v, geometry, noise_db=10.0, seed=3))
    assert not np.array_equal(noisy, engine.observe(v, geometry, noise_db=10.0, seed=4))


def test_flushing_subnormals_ends_with_the_engine_run(toy):
    """observe() flushes subnormals while it propagates, then restores the default: left set, the per-thread flag
    silently zeroed subnormal samples of later work in the same process (a SEG-Y encoder test caught it)."""
    tiny = np.array([1e-40], dtype=np.float32)  # a float32 subnormal
    assert (tiny * np.float32(1.0))[0] != 0
    geometry, v = toy[0], toy[1]
    engine.observe(v, geometry)
    assert (tiny * np.float32(1.0))[0] != 0
    with engine.denormals_flushed("cpu"):
        assert (tiny * np.float32(1.0))[0] == 0
    assert (tiny * np.float32(1.0))[0] != 0


def test_misfit_is_a_scaled_sum_never_a_mean():
    a, b = torch.ones(2, 3, 4), torch.zeros(2, 3, 4)
    assert float(engine.misfit(a, b)) == pytest.approx(12.0)
    assert float(engine.misfit(a, b, scale=1e6)) == pytest.approx(12e6)
    assert engine.per_shot_misfit(a, b).tolist() == [6.0, 6.0]


def test_lowpass_removes_the_band_above_the_cutoff():
    dt, nt = 0.002, 500
    t = torch.arange(nt, dtype=torch.float64) * dt
    low, high = torch.sin(2 * np.pi * 3.0 * t), torch.sin(2 * np.pi * 30.0 * t)
    out = engine.lowpass((low + high)[None], dt, 8.0)[0]
    mid = slice(100, 400)  # away from the record's ends
    assert torch.allclose(out[mid], low[mid], atol=0.02)
    assert engine.lowpass(low, dt, None) is low


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda v: -v, "outside the stable range"),
        (lambda v: np.where(np.arange(v.size).reshape(v.shape) == 5, np.nan, v), "NaN"),
        (lambda v: v[:, :-1], "grid"),
        (lambda v: v * 100.0, "outside the stable range"),
    ],
)
def test_bad_velocity_models_are_one_line_errors(toy, make, match):
    geometry, v = toy
    with pytest.raises(engine.EngineError, match=match) as exc:
        engine.observe(make(v), geometry)
    assert "\n" not in str(exc.value)


def test_bad_geometry_and_data_are_one_line_errors(toy):
    geometry, v = toy
    with pytest.raises(ValueError, match="outside the 20 x 40 grid"):
        Geometry(nz=20, nx=40, dx=20.0, sources=((0, 45),), receivers=((0, 1),), dt=0.002, nt=10, peak_frequency=5)
    with pytest.raises(GeometryError, match=r"shape \(3, 20, 199\)"):
        engine.check_data(np.zeros((3, 20, 199), np.float32), geometry)
    bad = np.zeros(geometry.record_shape, np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(GeometryError, match="1 NaN"):
        engine.check_data(bad, geometry)
    with pytest.raises(engine.EngineError, match="shot indices"):
        engine.forward(torch.tensor(v), geometry, shots=[3])


# -- gradient checks -----------------------------------------------------------------------------------------
def _tiny():
    """10 x 12 cells of 10 m, 1 shot, 60 samples at 1 ms (one internal step per sample: an exact adjoint)."""
    geometry = Geometry.surface(10, 12, 10.0, n_shots=1, dt=0.001, nt=60, peak_frequency=25.0, receiver_step=3)
    z = np.arange(10, dtype=np.float64)[:, None]
    m = np.broadcast_to(2000.0 + 20.0 * z, (10, 12)).copy()
    return geometry, m


def _data_functional(geometry, observed):
    def j(v):
        pred = engine.forward(v, geometry, pml_width=4, max_vel=3000.0, storage_compression=False)
        return engine.misfit(pred, observed)

    return j


def test_gradcheck_s_denorm_through_deepwave_float64():
    """dJ/dTheta of J(F(m_init + S (f_Theta - f_0))) against finite differences, through the propagator."""
    geometry, m = _tiny()
    assert engine.check_cfl(3000.0, geometry.dx, geometry.dt) == 1
    model = SDenormModel(m, (1000.0, 3000.0), scale=50.0, width=4, hidden=1, seed=1, dtype=torch.float64)
    with torch.no_grad():
        observed = engine.forward(torch.tensor(m * 1.05), geometry, pml_width=4, max_vel=3000.0)
    j = _data_functional(geometry, observed)
    names = [n for n, _ in model.net.named_parameters()]
    shapes = [p.shape for _, p in model.net.named_parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.net.parameters()]).requires_grad_(True)
    # move away from Theta_0 so the model is not exactly m_init
    theta = (theta + 0.05 * torch.sin(torch.arange(theta.numel(), dtype=torch.float64))).detach().requires_grad_()

    def objective(flat):
        params, i = {}, 0
        for name, shape in zip(names, shapes):
            n = int(np.prod(shape))
            params[f"net.{name}"] = flat[i : i + n].reshape(shape)
            i += n
        v = torch.func.functional_call(model, params, (), strict=False)
        return j(v)

    assert torch.autograd.gradcheck(objective, (theta,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_grid_through_deepwave_float64():
    geometry, m = _tiny()
    with torch.no_grad():
        observed = engine.forward(torch.tensor(m * 1.05), geometry, pml_width=4, max_vel=3000.0)
    j = _data_functional(geometry, observed)
    model = GridModel(m, (1000.0, 3000.0), dtype=torch.float64)
    v = torch.tensor(m * 1.02, requires_grad=True)

    def objective(grid):
        return j(torch.func.functional_call(model, {"model": grid}, ()))

    assert torch.autograd.gradcheck(objective, (v,), eps=1e-3, atol=1e-6, rtol=1e-4)


def test_gradcheck_a_denorm_composition_float64():
    """v(Theta, db) of a-denorm (SIREN + Gaussian-smoothed background) against a weighted sum."""
    _, m = _tiny()
    model = ADenormModel(m, (1000.0, 3000.0), scale=50.0, width=4, hidden=1, sigma=2.0, seed=2, dtype=torch.float64)
    weights = torch.linspace(-1.0, 1.0, m.size, dtype=torch.float64).reshape(m.shape)
    db = (10.0 * torch.randn(m.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))).requires_grad_()
    w_out = model.net.out.weight.detach().clone().requires_grad_()

    def functional(delta_b, out_weight):
        v = torch.func.functional_call(model, {"delta_b": delta_b, "net.out.weight": out_weight}, (), strict=False)
        return (v * weights).sum()

    assert torch.autograd.gradcheck(functional, (db, w_out), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradient_sampling_interval_is_close_to_exact_and_checked(toy):
    geometry, v = toy
    observed = torch.tensor(engine.observe(v, geometry))
    start = torch.tensor(v * 0.97)

    def gradient(interval):
        x = start.clone().requires_grad_(True)
        pred = engine.forward(x, geometry, max_vel=5000.0, gradient_sampling_interval=interval)
        engine.misfit(pred, observed).backward()
        return x.grad

    exact, sampled = gradient(1), gradient(5)
    assert float(torch.linalg.norm(sampled - exact) / torch.linalg.norm(exact)) < 0.05
    with pytest.raises(engine.EngineError, match="divide nt=200"):
        gradient(3)
    with pytest.raises(engine.EngineError, match=r"undersamples a 10 Hz Ricker \(at most 0.0167 s, i.e. 8 samples\)"):
        gradient(10)
