"""The shot-gather store (data kind ``shotgather``) and pre-stack SEG-Y shot records in and out."""

from __future__ import annotations

import numpy as np
import pytest
import segyio
import xarray as xr
import zarr

from seiscore.core.safety import UnsafePathError
from seiscore.data.shots import (
    Geometry,
    GeometryError,
    ShotDataError,
    export_shot_segy,
    is_shot_store,
    open_shot_store,
    read_shot_store,
    shots_from_segy,
    write_shot_store,
)
from seiscore.io import PreStackNotSupportedError, ingest

TF = segyio.TraceField


def _geometry(nt: int = 120) -> Geometry:
    return Geometry.surface(20, 48, 12.5, n_shots=4, dt=0.002, nt=nt, peak_frequency=8.0, receiver_step=3)


def _data(geometry: Geometry, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(geometry.record_shape).astype(np.float32)


def _ricker(t: np.ndarray, f: float) -> np.ndarray:
    a = (np.pi * f * t) ** 2
    return (1 - 2 * a) * np.exp(-a)


def _one_line(exc: pytest.ExceptionInfo, *words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message, message
    for w in words:
        assert w in message, message


def test_store_round_trip_exact(tmp_path):
    g = _geometry()
    data = _data(g).astype(np.float64)  # converted to float32 on the way in, caller's array untouched
    before = data.copy()
    path = write_shot_store(tmp_path / "shots.zarr", data, g, attrs={"source": "test"})
    assert np.array_equal(data, before)
    assert is_shot_store(path)
    got, geometry, attrs = read_shot_store(path)
    assert got.dtype == np.float32 and np.array_equal(got, data.astype(np.float32))
    assert geometry == g
    assert attrs["source"] == "test" and attrs["kind"] == "shotgather"
    with pytest.raises(FileExistsError):
        write_shot_store(path, data, g)
    write_shot_store(path, 2 * data, g, overwrite=True)
    assert np.array_equal(read_shot_store(path)[0], 2 * data.astype(np.float32))


def test_xarray_opens_the_store(tmp_path):
    g = _geometry()
    data = _data(g)
    path = write_shot_store(tmp_path / "shots.zarr", data, g)
    ds = xr.open_zarr(path)
    assert ds["amplitude"].dims == ("shot", "receiver", "time")
    assert ds["amplitude"].shape == g.record_shape and ds["amplitude"].dtype == np.float32
    cells_s, cells_r = np.asarray(g.sources), np.asarray(g.receivers)
    assert np.allclose(ds["source_x"].values, cells_s[:, 1] * g.dx)
    assert np.allclose(ds["source_z"].values, cells_s[:, 0] * g.dx)
    assert np.allclose(ds["receiver_x"].values, cells_r[:, 1] * g.dx)
    assert np.allclose(ds["receiver_z"].values, cells_r[:, 0] * g.dx)
    assert np.allclose(ds["time"].values, np.arange(g.nt) * g.dt)
    assert ds["source_x"].dims == ("shot",) and ds["receiver_x"].dims == ("receiver",)
    assert ds.attrs["kind"] == "shotgather" and ds.attrs["seiscore_complete"] is True
    assert Geometry.model_validate_json(ds.attrs["geometry"]) == g
    assert np.array_equal(ds["amplitude"].isel(shot=2).values, data[2])
    assert open_shot_store(path)["amplitude"].shape == g.record_shape


def _write_segy(path, traces, headers, *, interval_us, bin_samples=None, text=None):
    """A pre-stack SEG-Y written by segyio itself: one header dict per trace."""
    spec = segyio.spec()
    spec.format = 5
    spec.samples = list(range(traces.shape[1]))
    spec.tracecount = traces.shape[0]
    with segyio.create(str(path), spec) as f:
        if text:
            f.text[0] = segyio.tools.create_text_header(text)
        f.bin.update(
            {
                segyio.BinField.Interval: interval_us,
                segyio.BinField.Samples: bin_samples or traces.shape[1],
                segyio.BinField.Format: 5,
            }
        )
        for i, (trace, header) in enumerate(zip(traces, headers)):
            f.header[i] = {
                TF.TRACE_SAMPLE_COUNT: traces.shape[1],
                TF.TRACE_SAMPLE_INTERVAL: interval_us,
                **header,
            }
            f.trace[i] = np.ascontiguousarray(trace, dtype=np.float32)
    return path


def _field_survey(n_rx: int = 16, drop=None, duplicate=None, nan=False):
    """3 shots on a land line: receivers every 12.5 m from x = 1000 m (scalar -100), elevations with scalar -10,
    sources 5 m deep; shot 1's traces in reverse receiver order. Returns traces, headers and the truth."""
    ns, dt, f0 = 400, 0.001, 12.0
    t = np.arange(ns) * dt
    rx_x = 1000.0 + 12.5 * np.arange(n_rx)
    src_x = np.array([1025.0, 1100.0, 1175.0])
    traces, headers, truth = [], [], {}
    for s, sx in enumerate(src_x):
        order = np.arange(n_rx)[::-1] if s == 1 else np.arange(n_rx)
        for r in order:
            if drop == (s, r):
                continue
            delay = 0.05 + abs(rx_x[r] - sx) / 2000.0
            trace = (s + 1) * _ricker(t - delay, f0) + 0.01 * r
            if nan and (s, r) == (2, 3):
                trace[7] = np.nan
            truth[(s, r)] = trace.astype(np.float32)
            copies = 2 if duplicate == (s, r) else 1
            for _ in range(copies):
                traces.append(trace)
                headers.append(
                    {
                        TF.FieldRecord: 100 + s,
                        TF.TraceNumber: int(r) + 1,
                        TF.SourceX: int(round(sx * 100)),
                        TF.GroupX: int(round(rx_x[r] * 100)),
                        TF.SourceGroupScalar: -100,
                        TF.SourceSurfaceElevation: 500,  # 50 m
                        TF.SourceDepth: 50,  # 5 m below the surface
                        TF.ReceiverGroupElevation: 500,
                        TF.ElevationScalar: -10,
                        TF.offset: int(round(rx_x[r] - sx)),
                    }
                )
    return np.asarray(traces, dtype=np.float32), headers, truth, dict(ns=ns, dt=dt, f0=f0, rx_x=rx_x, src_x=src_x)


def test_segy_shot_records_in(tmp_path):
    traces, headers, truth, info = _field_survey()
    path = _write_segy(tmp_path / "line.sgy", traces, headers, interval_us=1000)
    data, g = shots_from_segy(path)
    # spacing from the receivers (12.5 m), origin at the first receiver, source depth 5 m -> cell 0
    assert g.dx == 12.5 and g.dt == 0.001 and g.nt == info["ns"]
    assert g.receivers == tuple((0, r) for r in range(16))
    assert g.sources == ((0, 2), (0, 8), (0, 14))
    assert (g.nz, g.nx) == (2, 16)
    assert abs(g.peak_frequency - info["f0"]) <= 2.5  # the spectrum's peak, at 2.5 Hz resolution
    assert data.shape == (3, 16, info["ns"]) and data.dtype == np.float32
    for (s, r), trace in truth.items():  # shot 1's reversed traces land on the right receivers
        assert np.array_equal(data[s, r], trace)
    # a finer grid given: 6.25 m cells, depths 5 m -> cell 1, and the model size
    data2, g2 = shots_from_segy(path, dx=6.25, nz=40, nx=64, peak_frequency=12.0)
    assert g2.receivers == tuple((0, 2 * r) for r in range(16)) and g2.sources[1] == (1, 16)
    assert (g2.nz, g2.nx, g2.peak_frequency) == (40, 64, 12.0)
    assert np.array_equal(data2, data)


def test_export_import_round_trip(tmp_path):
    g = Geometry.surface(30, 90, 7.5, n_shots=5, dt=0.0015, nt=200, peak_frequency=6.5, depth_cells=2)
    data = _data(g, seed=3)
    store = write_shot_store(tmp_path / "obs.zarr", data, g)
    sgy = export_shot_segy(store, tmp_path / "obs.sgy")
    with segyio.open(str(sgy), ignore_geometry=True) as f:  # an ordinary pre-stack file for segyio
        assert f.tracecount == g.n_shots * g.n_receivers
        assert f.bin[segyio.BinField.Interval] == 1500
        h = f.header[g.n_receivers + 3]  # shot 1, receiver 3
        assert h[TF.FieldRecord] == 2 and h[TF.TraceNumber] == 4
        assert h[TF.SourceX] * 0.1 == pytest.approx(g.sources[1][1] * 7.5)  # scalar -10
        assert h[TF.SourceGroupScalar] == -10
        assert h[TF.offset] == round((g.receivers[3][1] - g.sources[1][1]) * 7.5)
        assert np.array_equal(f.trace[g.n_receivers + 3], data[1, 3])
    back, g_back = shots_from_segy(sgy)
    assert g_back == g and np.array_equal(back, data)
    again = write_shot_store(tmp_path / "back.zarr", back, g_back)
    assert np.array_equal(read_shot_store(again)[0], data)
    assert shots_from_segy(sgy, expect=g)[1] == g
    with pytest.raises(PreStackNotSupportedError) as err:  # the post-stack ingest points to the shot reader
        ingest(sgy, tmp_path / "survey.zarr")
    _one_line(err, "looks pre-stack", "shots_from_segy")
    with pytest.raises(FileExistsError):
        export_shot_segy(store, sgy)
    export_shot_segy(store, sgy, overwrite=True)  # our own file: replaced
    foreign = tmp_path / "foreign.sgy"
    foreign.write_bytes(b"not ours")
    with pytest.raises(UnsafePathError):
        export_shot_segy(store, foreign, overwrite=True)
    assert foreign.read_bytes() == b"not ours"


def test_inconsistent_receiver_sets(tmp_path):
    traces, headers, _, _ = _field_survey(drop=(1, 5))
    path = _write_segy(tmp_path / "gap.sgy", traces, headers, interval_us=1000)
    with pytest.raises(ShotDataError) as err:
        shots_from_segy(path)
    _one_line(err, "shot 1", "same receivers", "1062.5")
    traces, headers, _, _ = _field_survey(duplicate=(2, 4))
    path = _write_segy(tmp_path / "dup.sgy", traces, headers, interval_us=1000)
    with pytest.raises(ShotDataError) as err:
        shots_from_segy(path)
    _one_line(err, "shot 2", "2 times")


def test_sample_count_and_rate_checks(tmp_path):
    g = _geometry(nt=120)
    with pytest.raises(GeometryError) as err:  # data vs geometry
        write_shot_store(tmp_path / "bad.zarr", np.zeros((4, g.n_receivers, 100), np.float32), g)
    _one_line(err, "(4, 16, 100)", "(4, 16, 120)")
    assert not (tmp_path / "bad.zarr").exists()

    traces, headers, _, info = _field_survey()
    path = _write_segy(tmp_path / "line.sgy", traces, headers, interval_us=1000)
    _, g_file = shots_from_segy(path)
    with pytest.raises(GeometryError) as err:  # the file vs an expected geometry
        shots_from_segy(path, expect=g_file.model_copy(update={"nt": 500}))
    _one_line(err, "400 samples", "500")
    with pytest.raises(GeometryError) as err:
        shots_from_segy(path, expect=g_file.model_copy(update={"dt": 0.002}))
    _one_line(err, "0.001 s", "0.002")

    headers[7] = {**headers[7], TF.TRACE_SAMPLE_INTERVAL: 2000}  # one trace header disagrees on the rate
    path = _write_segy(tmp_path / "rate.sgy", traces, headers, interval_us=1000)
    with pytest.raises(ShotDataError) as err:
        shots_from_segy(path)
    _one_line(err, "trace 7", "2000 us", "1000 us")

    headers[7] = {**headers[7], TF.TRACE_SAMPLE_INTERVAL: 1000, TF.TRACE_SAMPLE_COUNT: 300}
    path = _write_segy(tmp_path / "count.sgy", traces, headers, interval_us=1000)
    with pytest.raises(ShotDataError) as err:
        shots_from_segy(path)
    _one_line(err, "trace 7", "300 samples", "400")


def test_nan_data_refused(tmp_path):
    g = _geometry()
    data = _data(g)
    data[1, 2, 3] = np.nan
    with pytest.raises(ShotDataError) as err:
        write_shot_store(tmp_path / "nan.zarr", data, g)
    _one_line(err, "NaN", "shot 1, receiver 2, sample 3")
    assert not (tmp_path / "nan.zarr").exists() and not list(tmp_path.iterdir())
    traces, headers, _, _ = _field_survey(nan=True)
    path = _write_segy(tmp_path / "nan.sgy", traces, headers, interval_us=1000)
    with pytest.raises(ShotDataError) as err:
        shots_from_segy(path)
    _one_line(err, "NaN")


def test_no_complete_looking_store_after_a_failure(tmp_path, monkeypatch):
    g = _geometry()
    data = _data(g)
    good = write_shot_store(tmp_path / "keep.zarr", data, g)

    real = xr.Dataset.to_zarr

    def half_then_fail(self, store, *args, **kwargs):  # the amplitudes land, then the disk "fills"
        real(self, store, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_zarr", half_then_fail)
    with pytest.raises(OSError):
        write_shot_store(tmp_path / "new.zarr", data, g)
    with pytest.raises(OSError):
        write_shot_store(good, 2 * data, g, overwrite=True)
    monkeypatch.undo()
    assert not (tmp_path / "new.zarr").exists() and not is_shot_store(tmp_path / "new.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.zarr"]  # no temporary left behind
    assert np.array_equal(read_shot_store(good)[0], data)  # the earlier store is intact

    zarr.open_group(str(good), mode="r+", use_consolidated=False).attrs["seiscore_complete"] = False
    assert not is_shot_store(good)
    with pytest.raises(ShotDataError) as err:
        read_shot_store(good)
    _one_line(err, "incomplete")


def test_positions_outside_the_grid_and_unreadable_files(tmp_path):
    traces, headers, _, _ = _field_survey()
    path = _write_segy(tmp_path / "line.sgy", traces, headers, interval_us=1000)
    with pytest.raises(GeometryError) as err:
        shots_from_segy(path, nx=10)  # receivers reach cell 15
    _one_line(err, "outside the", "x0=1000")
    headers[2] = {**headers[2], TF.DelayRecordingTime: 40}
    path = _write_segy(tmp_path / "delay.sgy", traces, headers, interval_us=1000)
    with pytest.raises(ShotDataError) as err:
        shots_from_segy(path)
    _one_line(err, "trace 2", "40 ms")
    junk = tmp_path / "junk.sgy"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(ShotDataError) as err:
        shots_from_segy(junk)
    _one_line(err, "not a readable SEG-Y")
