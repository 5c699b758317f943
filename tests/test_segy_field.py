"""The SEG-Y found in the field (issue 13, Deliver 2): each case written with segyio or by hand, byte by byte.

- trace headers whose sample count (byte 115) disagrees with the binary header's, which agrees with the file
  size: read by the binary header, the disagreement recorded in the store and shown by ``seis info``;
- formats 7 and 15 (SEG-Y rev 2 three-byte integers), both byte orders: read and round-tripped exactly;
- format 4 refused by name;
- rev-2 extended textual headers, a fixed count and -1 with ``((SEG: EndText))`` stanzas: kept and exported;
- rev-2 trace-header extensions refused, naming the binary-header field;
- a zero sample interval: a warning naming the value used.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import segyio

from seiscore.cli import main as seis_main
from seiscore.io import SegyError, export, ingest, open_survey, probe
from seiscore.io.info import describe, format_summary
from seiscore.io.segy_write import SegyWriteSpec, write_cube

SHAPE = (5, 6, 20)  # inlines, crosslines, samples


def _card_image(lines: list[str], encoding: str = "cp037") -> bytes:
    """A 3200-byte textual record of 40 80-character cards."""
    text = "".join(line[:80].ljust(80) for line in (lines + [""] * 40)[:40])
    return text.encode(encoding)


def _binary(
    fmt: int, ns: int, endian: str, *, dt: int = 4000, rev: int = 1, ext: int = 0, extra: int = 0, ns_field=None
) -> bytes:
    """A 400-byte binary header with the fields these tests vary (``ns_field``: (byte 3221, byte 3269) values)."""
    b = bytearray(400)

    def put(byte: int, size: int, value: int) -> None:
        b[byte - 3201 : byte - 3201 + size] = int(value).to_bytes(size, endian, signed=True)

    put(3217, 2, dt)
    short, long = ns_field or (ns, 0)
    put(3221, 2, short)
    put(3269, 4, long)
    put(3225, 2, fmt)
    put(3229, 2, 4)
    b[3501 - 3201] = rev
    put(3503, 2, 1)  # fixed-length traces
    put(3505, 2, ext)
    put(3507, 4, extra)
    return bytes(b)


def _trace_headers(n_il: int, n_xl: int, ns: int, endian: str, dt: int = 4000) -> np.ndarray:
    """(n_il * n_xl, 240) uint8 trace headers, inline-sorted, inline 10.., crossline 100.. (step 2)."""
    e = ">" if endian == "big" else "<"
    n = n_il * n_xl
    h = np.zeros((n, 240), dtype=np.uint8)
    t = np.arange(n)

    def put(byte: int, size: int, values) -> None:
        h[:, byte - 1 : byte - 1 + size] = np.asarray(values, dtype=f"{e}i{size}").reshape(n, 1).view(np.uint8)

    put(1, 4, t + 1)
    put(115, 2, np.full(n, ns))
    put(117, 2, np.full(n, dt))
    put(189, 4, 10 + t // n_xl)
    put(193, 4, 100 + 2 * (t % n_xl))
    return h


def _handmade(path, samples_bytes: np.ndarray, fmt: int, endian: str, *, ext_records=(), **binary) -> bytes:
    """Write a SEG-Y file by hand: textual header, binary header, extended records, traces; return its bytes."""
    n_il, n_xl = SHAPE[:2]
    ns = SHAPE[2]
    head = _card_image([f"C 1 HANDMADE FORMAT {fmt} {endian.upper()}-ENDIAN", "C40 END TEXTUAL HEADER"])
    headers = _trace_headers(n_il, n_xl, ns, endian)
    traces = np.concatenate([headers, samples_bytes.reshape(n_il * n_xl, -1)], axis=1)
    data = head + _binary(fmt, ns, endian, **binary) + b"".join(ext_records) + traces.tobytes()
    path.write_bytes(data)
    return data


def _int24_bytes(values: np.ndarray, endian: str) -> np.ndarray:
    """Reference 3-byte encoding, written independently of seiscore (Python ints, one value at a time)."""
    out = bytearray()
    for v in values.reshape(-1).tolist():
        out += (int(v) % 2**24).to_bytes(3, endian)
    return np.frombuffer(bytes(out), dtype=np.uint8)


# ---------------------------------------------------------------- sample counts


def test_trace_header_sample_counts_disagreeing_are_recorded_and_shown(tmp_path, capsys):
    """Every trace header says 25 samples (byte 115), the binary header 20: the file size agrees with 20."""
    cube = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    src = write_cube(tmp_path / "field.sgy", cube, SegyWriteSpec(first_inline=10))
    with segyio.open(str(src), "r+", ignore_geometry=True) as f:
        for t in range(f.tracecount):
            f.header[t] = {segyio.TraceField.TRACE_SAMPLE_COUNT: 25 if t != 7 else 30}
    with pytest.warns(UserWarning, match=r"30 traces declare \[25, 30\] samples.*binary header's 20 \(byte 3221\)"):
        store = ingest(src, tmp_path / "s.zarr", chunks=(2, 3, 8))  # several bands of the regular-grid path
    ds = open_survey(store)
    np.testing.assert_array_equal(ds["amplitude"].values, cube)
    record = ds.attrs["sample_count_disagreement"]
    assert record["traces"] == 30 and record["trace_header_counts"] == [25, 30] and record["first_trace"] == 0
    assert record["binary_header_count"] == 20
    for path in (store, src):  # seis info shows it for the store and for the file
        assert seis_main(["info", str(path)]) == 0
        out = capsys.readouterr().out
        assert "sample_count_disagreement" in out and "30 traces declare [25, 30] samples" in out
    # what segyio reads agrees with the store: the binary header's count
    with segyio.open(str(src), ignore_geometry=True) as f:
        assert len(f.samples) == 20


def test_binary_count_not_agreeing_with_the_size_is_refused_with_a_hint(tmp_path):
    cube = np.zeros(SHAPE, np.float32)
    src = write_cube(tmp_path / "bad.sgy", cube)
    data = bytearray(src.read_bytes())
    data[3220:3222] = (50).to_bytes(2, "big")  # binary header: 50 samples; traces hold 20
    src.write_bytes(bytes(data))
    with pytest.raises(SegyError, match=r"bad.sgy is truncated.*first trace header's 20 samples.*would fit"):
        probe(src)


def test_rev2_four_byte_sample_count_is_read(tmp_path):
    """SEG-Y rev 2: byte 3221 may be 0 with the count in the 4-byte field at byte 3269."""
    values = np.random.default_rng(2).standard_normal(SHAPE).astype(">f4")
    src = tmp_path / "rev2_ns.sgy"
    _handmade(src, values.view(np.uint8), 5, "big", rev=2, ns_field=(0, SHAPE[2]))
    store = ingest(src, tmp_path / "s.zarr")
    np.testing.assert_array_equal(open_survey(store)["amplitude"].values, values.astype(np.float32))


# ---------------------------------------------------------------- sample formats


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("fmt", [7, 15])
def test_three_byte_integers_read_and_round_trip_exactly(tmp_path, fmt, endian):
    rng = np.random.default_rng(fmt)
    lo, hi = (-(2**23), 2**23 - 1) if fmt == 7 else (0, 2**24 - 1)
    values = rng.integers(lo, hi + 1, size=SHAPE, dtype=np.int64)
    values[0, 0, :4] = [lo, hi, lo + 1, hi - 1]  # the extremes, where a wrong sign extension shows
    values[0, 1, :3] = [0, 1, -1 if fmt == 7 else 2**23]
    src = tmp_path / f"f{fmt}_{endian}.sgy"
    data = _handmade(src, _int24_bytes(values, endian), fmt, endian, rev=2)
    layout = probe(src)
    assert (layout.format, layout.endian, layout.sample_size) == (fmt, endian, 3)
    store = ingest(src, tmp_path / "s.zarr", chunks=(2, 4, 8))
    ds = open_survey(store)
    amp = ds["amplitude"].values
    assert amp.dtype == np.float32
    np.testing.assert_array_equal(amp.astype(np.int64), values)  # every 3-byte integer is exact in float32
    assert ds.attrs["sample_format"] == fmt and "inexact_samples" not in ds.attrs
    out = export(store, tmp_path / "back.sgy")
    assert out.read_bytes() == data  # byte for byte: headers, 3-byte samples, byte order


def test_three_byte_export_from_a_processed_store_rounds_and_clips(tmp_path):
    values = np.zeros(SHAPE, dtype=np.int64)
    src = tmp_path / "f7.sgy"
    _handmade(src, _int24_bytes(values, "big"), 7, "big")
    store = ingest(src, tmp_path / "s.zarr")
    import zarr

    amp = zarr.open_group(str(store), mode="r+")["amplitude"]
    new = np.zeros(SHAPE, np.float32)
    new[0, 0, :4] = [1.4, -2.6, 3e7, -3e7]
    amp[...] = new
    back = export(store, tmp_path / "back.sgy")
    raw = np.frombuffer(back.read_bytes()[3600 + 240 : 3600 + 240 + 12], np.uint8).reshape(4, 3)
    got = [int.from_bytes(r.tobytes(), "big", signed=True) for r in raw]
    assert got == [1, -3, 2**23 - 1, -(2**23)]


@pytest.mark.parametrize("endian", ["big", "little"])
def test_format_4_is_refused_by_name(tmp_path, endian):
    src = tmp_path / "f4.sgy"
    _handmade(src, np.zeros(SHAPE[0] * SHAPE[1] * SHAPE[2] * 4, np.uint8), 4, endian)
    with pytest.raises(SegyError, match=r"f4.sgy: sample format code 4 \(4-byte fixed point with gain, obsolete"):
        ingest(src, tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()


# ---------------------------------------------------------------- extended textual headers


def test_fixed_count_extended_textual_headers_written_by_segyio_are_kept_and_exported(tmp_path):
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount, spec.ext_headers = 5, list(range(SHAPE[2])), SHAPE[0] * SHAPE[1], 2
    cube = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)
    src = tmp_path / "ext2.sgy"
    with segyio.create(str(src), spec) as f:
        f.text[0] = segyio.tools.create_text_header({1: "MAIN TEXTUAL HEADER"})
        f.text[1] = _card_image(
            ["((SEG: Processing History ver 1.0))", "DENOISED NOWHERE YET"], "latin-1"
        )  # segyio encodes
        f.text[2] = _card_image(["((SEG: EndText))"], "latin-1")
        f.bin.update(
            {segyio.BinField.Samples: SHAPE[2], segyio.BinField.Interval: 4000, segyio.BinField.ExtendedHeaders: 2}
        )
        for t in range(spec.tracecount):
            f.header[t] = {189: 1 + t // SHAPE[1], 193: 1 + t % SHAPE[1], 115: SHAPE[2], 117: 4000}
            f.trace[t] = cube.reshape(-1, SHAPE[2])[t]
    store = ingest(src, tmp_path / "s.zarr")
    ds = open_survey(store)
    assert ds.attrs["n_extended_textual_headers"] == 2
    assert ds.attrs["extended_textual_headers"][0].startswith("((SEG: Processing History ver 1.0))")
    np.testing.assert_array_equal(ds["amplitude"].values, cube)
    assert export(store, tmp_path / "back.sgy").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("encoding", ["cp037", "latin-1"])
def test_minus_one_extended_textual_headers_up_to_the_end_stanza(tmp_path, encoding):
    records = [
        _card_image(["((SEG: Location Data ver 1.0))", "Datum = WGS84"], encoding),
        _card_image(["((SEG: Processing History ver 1.0))", "Stack; migration"], encoding),
        _card_image(["((SEG: EndText))"], encoding),
    ]
    values = np.random.default_rng(4).standard_normal(SHAPE).astype(">f4")
    src = tmp_path / "ext_minus1.sgy"
    data = _handmade(src, values.view(np.uint8), 5, "big", rev=2, ext=-1, ext_records=records)
    layout = probe(src)
    assert layout.n_ext_headers == 3 and layout.data_offset == 3600 + 3 * 3200
    store = ingest(src, tmp_path / "s.zarr")
    ds = open_survey(store)
    np.testing.assert_array_equal(ds["amplitude"].values, values.astype(np.float32))
    assert ds.attrs["binary_header"]["ExtendedHeaders"] == -1 and ds.attrs["n_extended_textual_headers"] == 3
    assert "Datum = WGS84" in ds.attrs["extended_textual_headers"][0]
    assert export(store, tmp_path / "back.sgy").read_bytes() == data  # the -1 and the stanzas exported as read
    info = describe(src)
    assert info["extended_textual_headers"] == 3
    assert info["extended_textual_header_first_lines"][1] == "((SEG: Processing History ver 1.0))"


def test_minus_one_without_an_end_stanza_is_refused(tmp_path):
    values = np.zeros(SHAPE, ">f4")
    src = tmp_path / "noend.sgy"
    _handmade(src, values.view(np.uint8), 5, "big", rev=2, ext=-1, ext_records=[_card_image(["((SEG: Notes))"])])
    with pytest.raises(SegyError, match=r"noend.sgy: .*\(\(SEG: EndText\)\) stanza.*none of the \d+ records"):
        ingest(src, tmp_path / "s.zarr")


# ---------------------------------------------------------------- trace-header extensions


def test_rev2_trace_header_extensions_are_refused_naming_them(tmp_path):
    values = np.zeros(SHAPE, ">f4")
    src = tmp_path / "th_ext.sgy"
    _handmade(src, values.view(np.uint8), 5, "big", rev=2, extra=1)
    with pytest.raises(
        SegyError,
        match=r"th_ext.sgy: SEG-Y rev 2 trace-header extensions.*up to 1 additional "
        r"240-byte trace headers per trace \(bytes 3507-3510\)",
    ):
        ingest(src, tmp_path / "s.zarr")
    # before rev 2 those bytes are unassigned: whatever they hold is ignored
    _handmade(src, values.view(np.uint8), 5, "big", rev=1, extra=12345)
    assert probe(src).tracecount == SHAPE[0] * SHAPE[1]


# ---------------------------------------------------------------- sample interval


def test_zero_sample_interval_is_a_warning_naming_the_value_used(tmp_path, capsys):
    cube = np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32)
    src = write_cube(tmp_path / "dt0.sgy", cube)
    with segyio.open(str(src), "r+", ignore_geometry=True) as f:
        f.bin.update({segyio.BinField.Interval: 0})
        for t in range(f.tracecount):
            f.header[t] = {segyio.TraceField.TRACE_SAMPLE_INTERVAL: 0}
    with pytest.warns(
        UserWarning,
        match=r"dt0.sgy: no usable sample interval \(it is 0 in the binary header "
        r"\(byte 3217\) and 0 in the first trace header \(byte 117\)\); using 4 ms \(4000 us\)",
    ):
        store = ingest(src, tmp_path / "s.zarr")
    ds = open_survey(store)
    np.testing.assert_array_equal(ds["sample"].values, np.arange(SHAPE[2]) * 4.0)
    assert "using 4 ms" in ds.attrs["note_sample_interval"]
    with segyio.open(str(src), ignore_geometry=True) as f:  # the same axis as segyio's
        np.testing.assert_array_equal(ds["sample"].values, f.samples)
    assert seis_main(["info", str(store), "--json"]) == 0
    assert "using 4 ms" in json.loads(capsys.readouterr().out)["note_sample_interval"]


def test_a_usable_interval_gives_no_warning(tmp_path):
    src = write_cube(tmp_path / "ok.sgy", np.zeros(SHAPE, np.float32), SegyWriteSpec(sample_interval_us=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layout = probe(src)
    assert layout.samples[1] == 2.0 and not layout.notes
    assert "note_sample_interval" not in format_summary(describe(src))
