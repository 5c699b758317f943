"""``seis fwi make-data | run --check | info``: real generator, real deepwave modelling, real stores; user mistakes
are one line and exit 2 before anything starts (no Prefect flow run in this file)."""

from __future__ import annotations

import numpy as np
import pytest

import seiscore.cli as cli

TINY = ["--spacing", "200", "--shots", "3", "--record", "0.8", "--dt", "0.004", "--frequency", "6"]


@pytest.fixture(autouse=True)
def _threads():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def seis(monkeypatch, tmp_path, capsys):
    """``seis(*argv) -> (status, stdout, stderr)`` in this process, with ``seis fwi`` registered as its entry point
    will register it, ``tmp_path/data`` the only data root, and no GPU (CPU must be allowed)."""
    from flows.commands import fwi

    original = cli._add_plugin_commands

    def plugins(sub):
        original(sub)
        if "fwi" not in sub.choices:
            fwi.register(sub)

    monkeypatch.setattr(cli, "_add_plugin_commands", plugins)
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setattr("seiscore.execution.resources.gpu_cluster_possible", lambda: False)

    def run(*argv: str):
        status = cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


@pytest.fixture
def made(seis, tmp_path):
    """A tiny make-data folder (15 x 46 cells at 200 m, 3 shots, 0.8 s)."""
    status, out, err = seis("fwi", "make-data", tmp_path / "data" / "fwi", *TINY, "--segy")
    assert status == 0, err
    return tmp_path / "data" / "fwi", out


def test_make_data_writes_true_initial_and_observed_stores(made):
    from seiscore.data.shots import read_shot_store, shots_from_segy
    from seiscore.data.velocity import read_velocity_store

    folder, out = made
    true, names, grid, attrs = read_velocity_store(folder / "true_model.zarr")
    assert names == ["true"] and grid.dx == grid.dz == 200.0 and attrs["seed"] == 0
    assert true.shape == (1, 15, 46) and 1400 < true.min() < true.max() < 6000
    smooth, _, sgrid, _ = read_velocity_store(folder / "initial_smooth.zarr")
    linear, _, lgrid, _ = read_velocity_store(folder / "initial_linear.zarr")
    assert smooth.shape == linear.shape == (1, 15, 46) and sgrid == lgrid == grid
    assert np.allclose(linear[0], linear[0][:, :1])  # linear: laterally constant
    assert np.abs(smooth[0] - true[0]).mean() < np.abs(linear[0] - true[0]).mean() * 1.5
    data, geometry, _ = read_shot_store(folder / "observed.zarr")
    assert data.shape == geometry.record_shape == (3, 46, 200) and (geometry.nz, geometry.nx) == (15, 46)
    assert np.isfinite(data).all() and np.abs(data).max() > 0
    segy, g2 = shots_from_segy(folder / "observed.sgy")
    assert g2.record_shape == geometry.record_shape and np.allclose(segy, data, atol=1e-6 * np.abs(data).max())
    assert "seis fwi run" in out and "true_model.zarr" in out


def _one_line_error(status: int, out: str, err: str, message: str) -> None:
    assert status == 2, err
    assert err.startswith("seis fwi: error: ") and err.count("\n") == 1 and message in err, err


def test_run_check_prints_the_plan_and_mistakes_are_one_line(seis, made, tmp_path):
    folder, _ = made
    from seiscore.data.velocity import read_velocity_store, write_velocity_store

    shots, true = folder / "observed.zarr", folder / "true_model.zarr"
    smooth, _, grid, _ = read_velocity_store(folder / "initial_smooth.zarr")
    linear = read_velocity_store(folder / "initial_linear.zarr")[0]
    init = write_velocity_store(
        tmp_path / "data" / "two.zarr", np.concatenate([smooth, linear]), grid=grid, names=["smooth", "linear"]
    )
    run, out = tmp_path / "data" / "run", tmp_path / "data" / "model.zarr"
    base = ["fwi", "run", shots, "--run", run, "--out", out, "--true", true]

    status, stdout, err = seis(*base, "--param", "allow_cpu=true", "--check")
    assert status == 0, err
    assert "15 x 46 cells of 200 m" in stdout and "smooth (from true_model.zarr:true)" in stdout
    assert "device     : CPU" in stdout and not run.exists() and not out.exists()

    # no GPU here and CPU not allowed
    _one_line_error(*seis(*base, "--check"), "no GPU worker here; pass the parameter allow_cpu=true")
    # the initial store holds two models: name one
    _one_line_error(*seis(*base, "--initial", init, "--param", "allow_cpu=true", "--check"), "holds 2 models; name one")
    _one_line_error(
        *seis(*base, "--initial", init, "--initial-model", "smoth", "--param", "allow_cpu=true", "--check"),
        "has no model 'smoth'",
    )
    # a derived initial model needs the true model
    _one_line_error(
        *seis("fwi", "run", shots, "--run", run, "--out", out, "--param", "allow_cpu=true", "--check"),
        "derived from a true model: give true_model",
    )
    # an unknown parameter of the method
    _one_line_error(*seis(*base, "--param", "allow_cpu=true", "--param", "iteratons=3", "--check"), "iteratons")
    # observed shots that do not exist / outside the data roots
    _one_line_error(
        *seis("fwi", "run", folder / "nope.zarr", "--run", run, "--out", out, "--true", true, "--check"),
        "do not exist",
    )
    _one_line_error(
        *seis("fwi", "run", shots, "--run", "/tmp/fwi-outside", "--out", out, "--true", true, "--check"),
        "outside the data roots",
    )
    assert not run.exists() and not out.exists()


def test_run_refuses_a_model_on_another_grid_and_a_cpu_grid_too_large(seis, made, tmp_path):
    from seiscore.data.shots import Geometry, write_shot_store
    from seiscore.data.velocity import VelocityGrid, write_velocity_store

    folder, _ = made
    data = tmp_path / "data"
    other = write_velocity_store(
        data / "other.zarr", np.full((1, 20, 46), 2000.0, np.float32), grid=VelocityGrid(dz=200.0, dx=200.0)
    )
    _one_line_error(
        *seis("fwi", "run", folder / "observed.zarr", "--initial", other, "--run", data / "r", "--out", data / "m.zarr",
              "--param", "allow_cpu=true", "--check"),
        "is 20 x 46 cells but the shots' geometry is 15 x 46",
    )  # fmt: skip
    spaced = write_velocity_store(
        data / "spaced.zarr", np.full((1, 15, 46), 2000.0, np.float32), grid=VelocityGrid(dz=100.0, dx=100.0)
    )
    _one_line_error(
        *seis("fwi", "run", folder / "observed.zarr", "--initial", spaced, "--run", data / "r", "--out",
              data / "m.zarr", "--param", "allow_cpu=true", "--check"),
        "spacing dz=100 m, dx=100 m but the shots' geometry uses 200 m cells",
    )  # fmt: skip
    # 150 x 460 cells, 4,000 samples, 5 shots per iteration: too large for the CPU
    g = Geometry.surface(150, 460, 20.0, n_shots=5, dt=0.001, nt=4000, peak_frequency=5.0, receiver_step=46)
    big = write_shot_store(data / "big.zarr", np.zeros(g.record_shape, np.float32), g)
    init = write_velocity_store(
        data / "big_init.zarr", np.full((1, 150, 460), 2500.0, np.float32), grid=VelocityGrid(dz=20.0, dx=20.0)
    )
    _one_line_error(
        *seis("fwi", "run", big, "--initial", init, "--run", data / "r", "--out", data / "m.zarr",
              "--param", "allow_cpu=true", "--check"),
        "grid too large for CPU: 150 x 460 cells x 4000 samples x 5 shots per iteration",
    )  # fmt: skip


def test_make_data_refuses_to_overwrite_and_info_needs_a_run(seis, made, tmp_path):
    folder, _ = made
    _one_line_error(*seis("fwi", "make-data", folder, *TINY), "exists; pass --force")
    _one_line_error(*seis("fwi", "info", folder / "true_model.zarr"), "was not written by seis fwi run")
    _one_line_error(*seis("fwi", "info", folder), "neither an FWI run folder")
    _one_line_error(*seis("fwi", "info", folder / "missing"), "does not exist")


def test_build_velocity_model_is_deployed_for_manual_runs():
    from deployments.serve import build_deployments
    from seiscore.core.settings import get_settings

    deps = {d.flow_name: d for d in build_deployments(get_settings())}
    fwi = deps["build-velocity-model"]
    assert fwi.name == "manual" and not fwi.schedules
    assert fwi.entrypoint == "flows.build_velocity_model.build_velocity_model"
    from prefect.utilities.callables import parameter_schema

    from flows.build_velocity_model import build_velocity_model

    schema = parameter_schema(build_velocity_model).model_dump()
    assert {"observed", "run", "output", "initial", "mode", "params"} <= set(schema["properties"])
