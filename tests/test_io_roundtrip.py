"""SEG-Y -> store -> SEG-Y on files written with segyio: formats, byte orders, sortings, layouts, gaps."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import segyio
import xarray as xr

from seiscore.io import export, ingest, open_survey
from seiscore.io.segy_write import SegyWriteSpec, write_cube

SHAPE = (9, 13, 24)


def _cube(fmt: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cube = rng.standard_normal(SHAPE).astype(np.float32) * 40
    if fmt == 8:
        return np.clip(np.rint(cube), -128, 127)
    return np.rint(cube) if fmt in (2, 3) else cube


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _decoded(path, endian):
    with segyio.open(str(path), ignore_geometry=True, endian=endian) as f:
        return f.trace.raw[:], [dict(f.header[i]) for i in range(f.tracecount)], bytes(f.text[0]), dict(f.bin)


@pytest.mark.parametrize("fmt", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("sorting", ["inline", "crossline"])
def test_round_trip(tmp_path, fmt, endian, sorting):
    cube = _cube(fmt)
    src = write_cube(
        tmp_path / "in.sgy",
        cube,
        SegyWriteSpec(format=fmt, endian=endian, sorting=sorting, first_inline=300, first_crossline=20),
    )
    before = _digest(src)
    store = ingest(src, tmp_path / "s.zarr", chunks=(4, 8, 16))
    assert _digest(src) == before, "the source file must never be modified"

    ds = xr.open_zarr(store)  # plain xarray, no seiscore
    assert ds["amplitude"].dims == ("inline", "crossline", "sample") and ds["amplitude"].dtype == np.float32
    np.testing.assert_array_equal(ds["amplitude"].values, cube)
    np.testing.assert_array_equal(ds["inline"].values, np.arange(300, 309))
    np.testing.assert_array_equal(ds["crossline"].values, np.arange(20, 33))
    assert ds.attrs["sorting"] == sorting and ds.attrs["endian"] == endian and ds.attrs["sample_format"] == fmt
    assert ds["sample"].attrs["units"] == "ms"
    np.testing.assert_allclose(ds["sample"].values, np.arange(SHAPE[2]) * 4.0)

    out = export(store, tmp_path / "out.sgy")
    if fmt == 5:
        assert _digest(out) == before, "IEEE-float round trip must be byte for byte"
    a, b = _decoded(src, endian), _decoded(out, endian)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and a[2] == b[2] and a[3] == b[3]


@pytest.mark.parametrize("il_byte,xl_byte", [(9, 21), (5, 17)])
def test_other_header_layouts_and_coordinates(tmp_path, il_byte, xl_byte):
    cube = _cube(5, seed=1)
    spec = SegyWriteSpec(
        il_byte=il_byte,
        xl_byte=xl_byte,
        first_inline=7,
        first_crossline=100,
        crossline_increment=2,
        origin_x=1000.0,
        origin_y=2000.0,
        inline_step=(0.0, 12.5),
        crossline_step=(25.0, 0.0),
        coord_scalar=-100,
    )
    src = write_cube(tmp_path / "in.sgy", cube, spec)
    with pytest.raises(ValueError, match="duplicate|grid|byte"):
        ingest(src, tmp_path / "wrong.zarr")  # default bytes 189/193 are all zero in this layout
    assert not (tmp_path / "wrong.zarr").exists()
    ds = open_survey(ingest(src, tmp_path / "s.zarr", il_byte=il_byte, xl_byte=xl_byte))
    np.testing.assert_array_equal(ds["crossline"].values, 100 + 2 * np.arange(SHAPE[1]))
    i, j = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    np.testing.assert_allclose(ds["cdp_x"].values, 1000.0 + 25.0 * j)
    np.testing.assert_allclose(ds["cdp_y"].values, 2000.0 + 12.5 * i)
    assert int(ds[f"header_{ {9: 'field_record', 5: 'trace_sequence_file'}[il_byte] }"][2, 3]) == 9
    np.testing.assert_array_equal(ds["amplitude"].values, cube)
    assert _digest(export(tmp_path / "s.zarr", tmp_path / "o.sgy")) == _digest(src)


def test_irregular_geometry_fill_and_mask_never_shift(tmp_path):
    cube = _cube(5, seed=2)
    missing = np.zeros(SHAPE[:2], bool)
    missing[0, :4] = True  # ragged start of the first inline
    missing[5, 6] = True
    missing[:, -1] = True  # a whole crossline absent: still on the grid? no, it vanishes from the numbering
    missing[8, :] = True  # a whole inline absent too
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(sorting="crossline"), missing=missing)
    ds = open_survey(ingest(src, tmp_path / "s.zarr", chunks=(4, 4, 8)))
    # grid = the numbers present in the headers: last crossline and inline 9 are gone entirely
    np.testing.assert_array_equal(ds["inline"].values, np.arange(1, 9))
    np.testing.assert_array_equal(ds["crossline"].values, np.arange(1, SHAPE[1]))
    kept = missing[:8, :-1]
    np.testing.assert_array_equal(ds["live_mask"].values, ~kept)
    amp = ds["amplitude"].values
    np.testing.assert_array_equal(amp[~kept], cube[:8, :-1][~kept])  # every live trace at its own bin
    assert np.all(amp[kept] == 0.0) and np.isnan(ds["cdp_x"].values[kept]).all()
    assert (ds["trace_index"].values[kept] == -1).all()
    assert _digest(export(tmp_path / "s.zarr", tmp_path / "o.sgy")) == _digest(src)


def test_export_formats_ieee_and_ibm(tmp_path):
    cube = _cube(1, seed=3)
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(format=1, endian="little"))
    store = ingest(src, tmp_path / "s.zarr")
    ieee = export(store, tmp_path / "ieee.sgy", format="ieee")
    ibm = export(ieee and store, tmp_path / "ibm.sgy", format="ibm")
    with segyio.open(str(ieee), ignore_geometry=True, endian="little") as f:
        assert int(f.format) == 5 and f.bin[segyio.BinField.Format] == 5
        np.testing.assert_array_equal(f.trace.raw[:].reshape(SHAPE), cube)
    assert _digest(ibm) == _digest(src)
    with pytest.raises(ValueError, match="format must be one of"):
        export(store, tmp_path / "x.sgy", format="int16")


@pytest.mark.parametrize("chunks", [(4, 4, 8), (4, 5, 7), (9, 13, 24)])
def test_ingest_records_the_range_of_live_samples_only(tmp_path, chunks):
    cube = np.abs(_cube(5, seed=3)) + 1.0  # every live sample >= 1: counting the fill (0) would show
    cube[3, 7, 20] = peak = float(cube.max()) + 10.0  # one sample sets the maximum
    missing = np.zeros(SHAPE[:2], bool)
    missing[0, :4] = True
    missing[5, 6] = True
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(), missing=missing)
    ds = open_survey(ingest(src, tmp_path / "s.zarr", chunks=chunks))
    live = cube[~missing]
    assert ds.attrs["amplitude_min"] == float(live.min()) and ds.attrs["amplitude_max"] == peak


def test_export_reads_each_header_chunk_once_and_stays_byte_identical(tmp_path, monkeypatch):
    """Bands of 2 inlines under header chunks of 8: every header chunk is read once (each read of a store on
    object storage is a request), and the IEEE-float round trip is still byte for byte."""
    import zarr.storage

    from seiscore.io.export import _header_rows

    cube = np.random.default_rng(3).standard_normal((20, 13, 32)).astype(np.float32)
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(format=5, endian="big", first_inline=300))
    store = ingest(src, tmp_path / "s.zarr", chunks=(2, 8, 16))
    reads: dict[str, int] = {}
    get = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        if key.startswith("header_inline_3d/c/"):
            reads[key] = reads.get(key, 0) + 1
        return await get(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    out = export(store, tmp_path / "out.sgy")
    assert _digest(out) == _digest(src)
    assert sorted(reads) == ["header_inline_3d/c/0/0", "header_inline_3d/c/1/0", "header_inline_3d/c/2/0"]
    assert set(reads.values()) == {1}
    # under a small bound the headers are held one band at a time
    assert _header_rows(8, 2, 13, 2**30) == 10 and _header_rows(8, 2, 13, 10**5) == 2
