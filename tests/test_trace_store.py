"""Three-component records, sliding windows with cosine cross-fade, and the trace store (kind traces3c)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import zarr

from seiscore.core.safety import UnsafePathError
from seiscore.data.kinds import TRACES3C, get_kind
from seiscore.data.traces import (
    Record,
    TraceDataError,
    create_trace_output,
    crossfade_weights,
    is_trace_store,
    mark_trace_store_complete,
    open_trace_store,
    read_trace_store,
    records_to_windows,
    resample_record,
    trace_store_info,
    window_offsets,
    windows_to_records,
    write_trace_store,
)


def _records(lengths, seed=0, rate=100.0):
    rng = np.random.default_rng(seed)
    return [
        Record(
            f"XX.S{i:02d}.00.HH?",
            rng.standard_normal((3, n)),
            rate,
            f"2026-01-0{i + 1}T10:00:00Z",
            p_sample=400.0 + i,
            s_sample=900.0 if i % 2 else float("nan"),
            notes=[f"note {i}"],
        )
        for i, n in enumerate(lengths)
    ]


def test_kind_is_registered_with_the_agreed_layout():
    kind = get_kind("traces3c")
    assert kind is TRACES3C
    assert kind.dims == ("trace", "component", "time") and kind.variable == "amplitude"
    assert kind.chunks == (256, 3, None) and kind.tileable == ("trace",) and kind.qc_sections == ("trace",)


def test_record_checks_and_copies():
    raw = np.ones((3, 10), dtype=np.float64)
    r = Record("BW.RJOB..EH?", raw, 100, "2009-08-24T00:20:03+00:00")
    assert r.data.dtype == np.float32 and r.channels == ("EHZ", "EHN", "EHE")
    assert r.starttime == "2009-08-24T00:20:03.000000Z"
    r.data[0, 0] = 5.0
    assert raw[0, 0] == 1.0  # never the caller's array
    bad = raw.copy()
    bad[1, 7] = np.nan
    bad[2, 2] = np.inf
    with pytest.raises(TraceDataError, match=r"record BW.RJOB..EH\? holds 2 NaN or infinite samples \(first: "
                       r"component N, sample 7\)"):  # fmt: skip
        Record("BW.RJOB..EH?", bad, 100)
    with pytest.raises(TraceDataError, match=r"data must be \[3, samples\] \(Z, N, E\), got shape \(2, 10\)"):
        Record("X.Y..HH?", raw[:2], 100)
    with pytest.raises(TraceDataError, match="sampling rate must be positive"):
        Record("X.Y..HH?", raw, 0)
    with pytest.raises(TraceDataError, match="not an ISO 8601"):
        Record("X.Y..HH?", raw, 100, "yesterday")


def test_window_offsets_cover_the_record_without_padding():
    assert window_offsets(3000, 3000, 1500).tolist() == [0]
    assert window_offsets(4600, 3000, 1500).tolist() == [0, 1500, 1600]
    assert window_offsets(9000, 3000, 1500).tolist() == [0, 1500, 3000, 4500, 6000]


@pytest.mark.parametrize("hop", [1500, 1000, 3000, 700])
def test_windows_round_trip_exactly(hop):
    recs = _records([3000, 4600, 9001, 1600, 12345])
    ws = records_to_windows(recs, 3000, hop)
    assert ws.data.shape[1:] == (3, 3000) and ws.data.dtype == np.float32
    back = windows_to_records(ws)
    for a, b in zip(recs, back):
        assert b.id == a.id and b.starttime == a.starttime and b.channels == a.channels
        assert b.n_samples == a.n_samples
        np.testing.assert_array_equal(b.data, a.data)  # agreeing overlaps: exact
        assert b.p_sample == a.p_sample and np.array_equal(b.s_sample, a.s_sample, equal_nan=True)


def test_crossfade_is_a_partition_of_unity_and_blends_disagreeing_windows():
    recs = _records([9000])
    ws = records_to_windows(recs, 3000, 1500)
    w = crossfade_weights(ws)
    total = np.zeros(9000)
    for o, wk in zip(ws.offset, w):
        total[o : o + 3000] += wk
    np.testing.assert_allclose(total, 1.0, atol=1e-12)  # regular hop: sin^2 + cos^2
    assert w[0, 0] == 1.0 and w[-1, -1] == 1.0  # record edges unweighted
    # windows holding constants 1, 2, 3, ... merge into a smooth monotone ramp between the plateaus
    const = np.broadcast_to(np.arange(1, ws.n_windows + 1, dtype=np.float32)[:, None, None], ws.data.shape)
    merged = windows_to_records(ws, const)[0].data[0]
    assert merged[0] == 1.0 and merged[-1] == ws.n_windows
    assert np.all(np.diff(merged) >= -1e-6) and np.all(np.diff(merged) < 0.01)


def test_short_records_padded_or_refused():
    ws = records_to_windows(_records([1600]), 3000, 1500)
    assert ws.n_windows == 1 and ws.records[0].pad == 1400
    assert "padded with 1400 zero samples" in ws.records[0].notes[-1]
    assert not ws.data[0, :, 1600:].any()
    with pytest.raises(TraceDataError, match=r"record XX.S00.00.HH\? holds 1499 samples \(14.99 s\); at least 1500"):
        records_to_windows(_records([1499]), 3000, 1500)
    with pytest.raises(TraceDataError, match=r"hop must lie in \[1, 3000\]"):
        records_to_windows(_records([3000]), 3000, 0)


def test_wrong_rate_refused_or_resampled_with_a_note():
    recs = _records([3000]) + _records([4500], seed=1, rate=150.0)
    with pytest.raises(TraceDataError, match=r"record XX.S00.00.HH\? is sampled at 150 Hz but record .* at 100 Hz"):
        records_to_windows(recs)
    ws = records_to_windows(recs, sampling_rate=100.0)
    assert ws.sampling_rate == 100.0 and ws.records[1].length == 3000
    assert ws.records[1].notes[-1] == "resampled from 150 Hz to 100 Hz (polyphase 2/3)"
    assert ws.records[1].p_sample == pytest.approx(400.0 * 2 / 3)
    # a 2 Hz sine survives resampling
    t = np.arange(1500) / 150.0
    sine = Record("X.Y..HH?", np.tile(np.sin(2 * np.pi * 2 * t), (3, 1)), 150.0)
    down = resample_record(sine, 100.0)
    ref = np.sin(2 * np.pi * 2 * np.arange(1000) / 100.0)
    assert np.abs(down.data[0, 50:-50] - ref[50:-50]).max() < 1e-2


def test_store_round_trip_and_xarray(tmp_path):
    recs = _records([3000, 4600, 1600])
    ws = records_to_windows(recs)
    path = write_trace_store(tmp_path / "t.zarr", ws, attrs={"source": "test"})
    assert is_trace_store(path)
    ds = xr.open_zarr(path)  # plain xarray
    assert ds["amplitude"].dims == TRACES3C.dims and ds["amplitude"].shape == (5, 3, 3000)
    assert zarr.open_group(str(path))["amplitude"].chunks == (5, 3, 3000)
    assert list(ds["component"].values) == ["Z", "N", "E"]
    assert ds["station"].values[1] == "XX.S01.00.HH?" and ds["start"].values[2] == "2026-01-02T10:00:15.000000Z"
    assert ds["p_sample"].values[1] == 401.0 and np.isnan(ds["p_sample"].values[2])  # 401 - 1500 is outside
    assert ds.attrs["sampling_rate"] == 100.0 and ds.attrs["source"] == "test"
    assert json.loads(str(ds["record_notes"].values[2]))[-1].startswith("padded with 1400")
    back = read_trace_store(path)
    np.testing.assert_array_equal(back.data, ws.data)
    assert repr(back.records) == repr(ws.records) and back.hop == 1500  # NaN picks compare by repr
    info = trace_store_info(path)
    assert info["windows"] == 5 and [r["windows"] for r in info["records"]] == [1, 3, 1]
    with pytest.raises(FileExistsError, match="already exists"):
        write_trace_store(path, ws)
    write_trace_store(path, ws, overwrite=True)


def test_store_refuses_bad_windows_and_foreign_paths(tmp_path):
    ws = records_to_windows(_records([3000]))
    bad = ws.with_data(ws.data)
    bad.data[0, 2, 5] = np.nan
    with pytest.raises(TraceDataError, match=r"window 0 \(record XX.S00.00.HH\?\) holds NaN or infinite samples"):
        write_trace_store(tmp_path / "bad.zarr", bad)
    assert not (tmp_path / "bad.zarr").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(UnsafePathError):
        write_trace_store(foreign, ws, overwrite=True)
    with pytest.raises(UnsafePathError, match="outside the data roots"):
        write_trace_store(tmp_path / "x.zarr", ws, roots=[tmp_path / "root"])
    with pytest.raises(FileNotFoundError):
        open_trace_store(tmp_path / "nothing.zarr")


def test_output_store_is_incomplete_until_marked(tmp_path):
    ws = records_to_windows(_records([4600, 3000]))
    src = write_trace_store(tmp_path / "in.zarr", ws)
    out = create_trace_output(src, tmp_path / "out.zarr", chunks=(2, 3, 3000))
    assert not is_trace_store(out)
    with pytest.raises(TraceDataError, match="incomplete"):
        read_trace_store(out)
    zarr.open_group(str(out), mode="r+")["amplitude"][:] = -ws.data
    mark_trace_store_complete(out)
    back = read_trace_store(out)
    np.testing.assert_array_equal(back.data, -ws.data)
    assert repr(back.records) == repr(ws.records)
    assert zarr.open_group(str(out))["amplitude"].chunks == (2, 3, 3000)
    with pytest.raises(UnsafePathError):
        create_trace_output(src, src / "inside.zarr")


def test_per_item_run_mode_processes_a_trace_store(tmp_path):
    """The generic per_item machinery plans, reads and writes batches of a trace store by its kind."""
    from typing import Literal

    from seiscore.execution.per_item import PerItemSpec, pending_batches, plan_items, process_batch
    from seiscore.methods.base import Method
    from seiscore.methods.registry import register_method

    class NegateSpec(PerItemSpec):
        name: Literal["test-trace-negate"] = "test-trace-negate"
        item_dim: str = "trace"
        batch_size: int = 4
        scale: Literal["minmax", "none"] = "none"

    class Negate(Method):
        name = "test-trace-negate"
        spec_model = NegateSpec
        data_kinds = ("traces3c",)
        mode = "per_item"

        def build(self, spec, kind):
            return lambda batch: -batch

    register_method(Negate)
    ws = records_to_windows(_records([9000, 3000]))
    src = write_trace_store(tmp_path / "in.zarr", ws)
    attrs = dict(zarr.open_group(str(src)).attrs)
    assert attrs["amplitude_min"] == float(ws.data.min()) and attrs["amplitude_max"] == float(ws.data.max())
    job = plan_items(src, tmp_path / "out.zarr", {"name": "test-trace-negate"}, kind="traces3c")
    assert job.n_items == 6 and job.chunks == (4, 3, 3000)
    out = create_trace_output(src, job.output_store, chunks=job.chunks)
    job.state().begin("key", job)
    for b in pending_batches(job):
        process_batch(job, b)
    assert pending_batches(job) == []
    mark_trace_store_complete(out)
    back = read_trace_store(out)
    np.testing.assert_array_equal(back.data, -ws.data)
    merged = windows_to_records(back)
    np.testing.assert_array_equal(merged[0].data, -_records([9000, 3000])[0].data)


def test_records_one_at_a_time_from_a_store(tmp_path):
    from seiscore.data.traces import iter_store_records

    recs = _records([9000, 1600, 4600])
    path = write_trace_store(tmp_path / "t.zarr", records_to_windows(recs))
    it = iter_store_records(path)
    first = next(it)  # a generator: one record's windows read at a time
    assert first.id == recs[0].id
    for a, b in zip(recs, [first, *it]):
        np.testing.assert_array_equal(b.data, a.data)
        assert b.starttime == a.starttime and b.notes[: len(a.notes)] == a.notes
