"""Waveform ingest through ObsPy (files the tests write), the STEAD layout, MiniSEED export, bad-input one-liners."""

from __future__ import annotations

import os

import numpy as np
import obspy
import pytest

from seiscore.core.safety import UnsafePathError, is_owned
from seiscore.data.trace_io import (
    expand_paths,
    ingest_traces,
    read_stead,
    read_waveforms,
    records_from_arrays,
    write_mseed,
)
from seiscore.data.traces import TraceDataError, read_trace_store, records_to_windows, windows_to_records

OBSPY_DATA = os.path.dirname(obspy.__file__)


def _stream(rate=100.0, n=3000, seed=0, channels=("HHZ", "HHN", "HHE"), start="2026-03-01T12:00:00Z", sta="STA1"):
    rng = np.random.default_rng(seed)
    return obspy.Stream(
        [
            obspy.Trace(
                (rng.standard_normal(n) * 1000).astype(np.float32),
                header={
                    "network": "XX",
                    "station": sta,
                    "location": "00",
                    "channel": c,
                    "sampling_rate": rate,
                    "starttime": obspy.UTCDateTime(start),
                },  # fmt: skip
            )
            for c in channels
        ]
    )


# formats ObsPy writes and reads back with the channel codes: (format, one file per channel, keeps the network)
FORMATS = [
    ("MSEED", False, True),
    ("SAC", True, True),
    ("SACXY", True, True),
    ("GSE2", False, True),
    ("AH", False, False),
    ("SH_ASC", False, False),
    ("SLIST", False, True),
    ("TSPAIR", False, True),
    ("PICKLE", False, True),
]


def test_example_event_through_every_format_obspy_writes(tmp_path):
    st = obspy.read()  # BW.RJOB EHZ/EHN/EHE, 100 Hz, 3000 samples
    for tr in st:
        tr.data = tr.data.astype(np.int32)  # GSE2 holds integers; the others take them too
    expected = np.stack([tr.data for tr in st]).astype(np.float32)
    for fmt, per_channel, keeps_network in FORMATS:
        stem = tmp_path / f"ex_{fmt.lower()}"
        if per_channel:
            for tr in st:
                tr.write(f"{stem}.{tr.stats.channel}", format=fmt)
            source = f"{stem}.*"
        else:
            st.write(str(stem), format=fmt)
            source = stem
        (rec,) = read_waveforms(source)
        assert rec.id == ("BW" if keeps_network else "") + ".RJOB..EH?", fmt
        assert rec.channels == ("EHZ", "EHN", "EHE") and rec.sampling_rate == 100.0, fmt
        assert rec.starttime == "2009-08-24T00:20:03.000000Z" and rec.notes == [], fmt
        np.testing.assert_array_equal(rec.data, expected, err_msg=fmt)


def test_seisan_file_shipped_with_obspy_is_resampled_with_a_note():
    (rec,) = read_waveforms(f"{OBSPY_DATA}/io/seisan/tests/data/2005-07-23-1452-04S.CER___030")
    assert rec.data.shape[0] == 3 and rec.sampling_rate == 100.0
    assert "resampled from 150 Hz to 100 Hz (polyphase 2/3)" in rec.notes


def test_gaps_and_overlaps_merged_with_notes(tmp_path):
    full = _stream(n=6000)
    t0 = full[0].stats.starttime
    pieces = obspy.Stream()
    for tr in full:
        pieces += tr.slice(t0, t0 + 19.99)  # samples 0..1999
        pieces += tr.slice(t0 + 25.0, t0 + 59.99)  # gap of 5 s
        pieces += tr.slice(t0 + 40.0, t0 + 45.0)  # overlap inside the second piece (same data)
    for i, tr in enumerate(pieces):
        tr.write(str(tmp_path / f"piece{i:02d}.mseed"), format="MSEED")
    (rec,) = read_waveforms(tmp_path)  # a folder: all its files
    assert rec.n_samples == 6000
    np.testing.assert_array_equal(rec.data[:, :2000], np.stack([t.data[:2000] for t in full]))
    np.testing.assert_array_equal(rec.data[:, 2500:], np.stack([t.data[2500:] for t in full]))
    ramp = np.linspace(full[0].data[1999], full[0].data[2500], 502)[1:-1]
    np.testing.assert_allclose(rec.data[0, 2000:2500], ramp, rtol=1e-5, atol=1e-2)  # linear interpolation
    notes = [n for n in rec.notes if n.startswith("channel HHZ")]
    assert notes == ["channel HHZ: 1 gap(s), 5.000 s, filled by linear interpolation; 1 overlap(s), 5.000 s, later "
                     "data kept"]  # fmt: skip


def test_components_1_2_and_common_span(tmp_path):
    st = _stream(channels=("HHZ", "HH1", "HH2"))
    st[0].trim(st[0].stats.starttime + 1.0)  # Z starts 1 s later
    st.write(str(tmp_path / "a.mseed"), format="MSEED")
    (rec,) = read_waveforms(tmp_path / "a.mseed")
    assert rec.channels == ("HHZ", "HH1", "HH2") and rec.n_samples == 2900
    assert rec.starttime == "2026-03-01T12:00:01.000000Z"
    assert "components 1/2 taken as N/E (not rotated)" in rec.notes
    assert any(n.startswith("components cut to their common span") for n in rec.notes)
    np.testing.assert_array_equal(rec.data[1], st[1].data[100:])


def test_missing_component_error_or_zero(tmp_path):
    _stream(channels=("HHZ", "HHN")).write(str(tmp_path / "two.mseed"), format="MSEED")
    with pytest.raises(TraceDataError, match=r"^record XX.STA1.00.HH\?: missing component\(s\) E \(has Z, N\)"):
        read_waveforms(tmp_path / "two.mseed")
    (rec,) = read_waveforms(tmp_path / "two.mseed", missing="zero")
    assert not rec.data[2].any() and rec.channels[2] == "HHE"
    assert "component E missing: filled with zeros" in rec.notes


def test_wrong_rate_resampled_and_picks_from_sac(tmp_path):
    st = _stream(rate=200.0, n=6000)
    for tr in st:
        tr.stats.sac = obspy.core.AttribDict({"a": 12.5, "t0": 20.0, "b": 0.0})
        tr.write(str(tmp_path / f"r.{tr.stats.channel}.sac"), format="SAC")
    (rec,) = read_waveforms(str(tmp_path / "r.*.sac"))
    assert rec.sampling_rate == 100.0 and rec.n_samples == 3000
    assert rec.notes[-1] == "resampled from 200 Hz to 100 Hz (polyphase 1/2)"
    assert rec.p_sample == pytest.approx(1250.0) and rec.s_sample == pytest.approx(2000.0)
    (native,) = read_waveforms(str(tmp_path / "r.*.sac"), sampling_rate=None)
    assert native.sampling_rate == 200.0 and native.p_sample == pytest.approx(2500.0)


def test_nan_samples_and_unreadable_files(tmp_path):
    st = _stream()
    st[1].data[17] = np.nan
    st.write(str(tmp_path / "nan.mseed"), format="MSEED", encoding="FLOAT32")
    with pytest.raises(TraceDataError, match=r"^record XX.STA1.00.HH\? holds 1 NaN or infinite samples \(first: "
                       r"component N, sample 17\)$"):  # fmt: skip
        read_waveforms(tmp_path / "nan.mseed", sampling_rate=None)
    (tmp_path / "junk.mseed").write_bytes(b"not a waveform at all" * 10)
    with pytest.raises(TraceDataError, match=r"junk.mseed is not a waveform file ObsPy reads"):
        read_waveforms(tmp_path / "junk.mseed")
    with pytest.raises(FileNotFoundError, match="no waveform file matches"):
        expand_paths(str(tmp_path / "*.sac"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_waveforms(tmp_path / "none.mseed")


def test_records_from_arrays_orders_and_checks():
    rng = np.random.default_rng(1)
    enz = rng.standard_normal((2, 3, 500)).astype(np.float32)
    recs = records_from_arrays(enz, 50.0, order="ENZ", p_sample=[10, 20], resample_to=100.0)
    assert [r.id for r in recs] == ["XX.T00000..HH?", "XX.T00001..HH?"]
    assert recs[0].n_samples == 1000 and recs[1].p_sample == 40.0
    same = records_from_arrays(enz, 50.0, order="ENZ")
    np.testing.assert_array_equal(same[0].data, enz[0, ::-1])
    enz[1, 0, 3] = np.inf
    with pytest.raises(TraceDataError, match=r"record XX.T00001..HH\? holds 1 NaN or infinite samples"):
        records_from_arrays(enz, 50.0, order="ENZ")


def _write_stead(tmp_path, n=3, columns=None, nan_trace=None):
    import h5py
    import pandas as pd

    rng = np.random.default_rng(3)
    names = [f"ST{i}.XX_2026010{i}_EV" for i in range(n)]
    data = rng.standard_normal((n, 6000, 3)).astype(np.float32)  # E, N, Z columns
    if nan_trace is not None:
        data[nan_trace, 10, 1] = np.nan
    with h5py.File(tmp_path / "stead.hdf5", "w") as f:
        g = f.create_group("data")
        for name, arr in zip(names, data):
            g.create_dataset(name, data=arr)
    table = pd.DataFrame(
        {
            "network_code": ["XX"] * n,
            "receiver_code": [f"ST{i}" for i in range(n)],
            "receiver_type": ["HH"] * n,
            "p_arrival_sample": [700.0 + i for i in range(n - 1)] + [None],
            "s_arrival_sample": [1500.0 + i for i in range(n - 1)] + [None],
            "trace_start_time": [f"2026-01-0{i + 1} 10:00:00.5" for i in range(n)],
            "trace_category": ["earthquake_local"] * (n - 1) + ["noise"],
            "trace_name": names,
        }
    )
    table[columns or list(table.columns)].to_csv(tmp_path / "stead.csv", index=False)
    return names, data


def test_stead_layout_read_and_windowed(tmp_path):
    names, data = _write_stead(tmp_path)
    recs = read_stead(tmp_path / "stead.hdf5", tmp_path / "stead.csv")
    assert [r.id for r in recs] == ["XX.ST0..HH?", "XX.ST1..HH?", "XX.ST2..HH?"]
    np.testing.assert_array_equal(recs[1].data, data[1][:, ::-1].T)  # Z, N, E rows
    assert recs[0].p_sample == 700.0 and recs[1].s_sample == 1501.0 and np.isnan(recs[2].p_sample)
    assert recs[0].starttime == "2026-01-01T10:00:00.500000Z"
    assert recs[2].notes == [f"STEAD trace {names[2]}", "category noise"]
    sub = read_stead(tmp_path / "stead.hdf5", tmp_path / "stead.csv", names=[names[2], names[0]])
    assert [r.id for r in sub] == ["XX.ST2..HH?", "XX.ST0..HH?"]
    ws = records_to_windows(recs)
    p_win = ws.picks()[0]
    assert ws.n_windows == 3 * 3 and p_win[0] == 700.0 and np.isnan(p_win[1])  # P of record 0 only in window 0
    store = ingest_traces(tmp_path / "stead.hdf5", tmp_path / "s.zarr", csv=tmp_path / "stead.csv")
    back = read_trace_store(store)
    np.testing.assert_array_equal(back.data, ws.data)


def test_stead_bad_inputs(tmp_path):
    _write_stead(tmp_path, columns=["trace_name", "p_arrival_sample", "network_code"])
    with pytest.raises(TraceDataError, match=r"^STEAD CSV .*stead.csv lacks column\(s\) s_arrival_sample \(needs "):
        read_stead(tmp_path / "stead.hdf5", tmp_path / "stead.csv")
    names, _ = _write_stead(tmp_path, nan_trace=1)
    with pytest.raises(TraceDataError, match=rf"^STEAD trace {names[1]}: record XX.ST1..HH\? holds 1 NaN"):
        read_stead(tmp_path / "stead.hdf5", tmp_path / "stead.csv")
    with pytest.raises(TraceDataError, match="has no trace 'nope'"):
        read_stead(tmp_path / "stead.hdf5", tmp_path / "stead.csv", names=["nope"])
    with pytest.raises(FileNotFoundError):
        read_stead(tmp_path / "other.hdf5", tmp_path / "stead.csv")


def test_mseed_export_round_trip_and_ownership(tmp_path):
    recs = read_waveforms(f"{OBSPY_DATA}/io/seisan/tests/data/2005-07-23-1452-04S.CER___030")
    ws = records_to_windows(recs)
    merged = windows_to_records(ws, ws.data * 0.5)  # "denoised" windows back to records
    out = write_mseed(merged, tmp_path / "out" / "den.mseed")
    assert is_owned(out)
    (back,) = read_waveforms(out)
    assert back.id == merged[0].id and back.channels == merged[0].channels
    assert back.starttime == merged[0].starttime and back.sampling_rate == 100.0
    np.testing.assert_array_equal(back.data, merged[0].data)
    with pytest.raises(FileExistsError):
        write_mseed(merged, out)
    stream = write_mseed(iter(merged * 2), tmp_path / "two.mseed")  # an iterator, written record by record
    assert len(obspy.read(str(stream))) == 6
    with pytest.raises(TraceDataError, match="no records to write"):
        write_mseed(iter([]), tmp_path / "none.mseed")
    assert not (tmp_path / "none.mseed").exists() and not list(tmp_path.glob(".none.mseed*"))
    write_mseed(merged, out, overwrite=True)
    foreign = tmp_path / "foreign.mseed"
    foreign.write_bytes(b"someone else's")
    with pytest.raises(UnsafePathError):
        write_mseed(merged, foreign, overwrite=True)
    assert foreign.read_bytes() == b"someone else's"
    with pytest.raises(TraceDataError, match="station code 'TOOLONG' is longer than MiniSEED's 5"):
        write_mseed(records_from_arrays(np.zeros((3, 10)), 100.0, ids=["XX.TOOLONG..HH?"]), tmp_path / "x.mseed")


def test_stead_frame_layout(tmp_path):
    import pandas as pd

    from seiscore.data.trace_io import read_stead_frame

    rng = np.random.default_rng(5)
    z, n, e = (rng.standard_normal((2, 3000)).astype(np.float32) for _ in range(3))
    frame = pd.DataFrame(
        {"trace_name": ["a_EV", "b_EV"], "Z_channel": list(z), "N_channel": list(n), "E_channel": list(e),
         "p_arrival_sample": [500, 600], "s_arrival_sample": [900, None], "receiver_code": ["AB", "CD"]}
    )  # fmt: skip
    recs = read_stead_frame(frame)
    assert [r.id for r in recs] == ["XX.AB..HH?", "XX.CD..HH?"] and np.isnan(recs[1].s_sample)
    np.testing.assert_array_equal(recs[1].data, np.stack([z[1], n[1], e[1]]))
    frame.to_pickle(tmp_path / "df_train.csv")  # the subsample's pickles carry a .csv name
    with pytest.raises(TraceDataError, match="runs code when loaded; pass trusted=True"):
        read_stead_frame(tmp_path / "df_train.csv")
    assert len(read_stead_frame(tmp_path / "df_train.csv", trusted=True)) == 2
    with pytest.raises(TraceDataError, match=r"^STEAD frame lacks column\(s\) s_arrival_sample"):
        read_stead_frame(frame.drop(columns="s_arrival_sample"))
    assert len(read_stead_frame(frame.drop(columns=["p_arrival_sample", "s_arrival_sample"]), picks=False)) == 2
    ragged = frame.copy()
    ragged.at[1, "E_channel"] = e[1][:2000]
    with pytest.raises(TraceDataError, match=r"trace b_EV has 3000, 3000, 2000 samples \(Z, N, E\)"):
        read_stead_frame(ragged)
