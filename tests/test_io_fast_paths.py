"""Ingest's fast paths agree with the reference ones they stand in for.

- the numba decode kernel with numpy's decoding of the same bytes (IEEE and IBM, both byte orders,
  NaN / inf / -0.0), and the header kernel with a structured-dtype view of the headers;
- the grid proposed from a file's first line and last trace with the full scan, and a file that
  only looks regular (an anomaly past the first line) still lands every trace in its own bin;
- python-blosc's frames with numcodecs' (zarr's encoder), our consolidated metadata with zarr's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import segyio
import zarr
from numcodecs import Blosc

from seiscore.io import DuplicateTraceError, ingest, open_survey
from seiscore.io.chunk_writer import _BloscEncoder
from seiscore.io.geometry import guess_regular, probe, scan
from seiscore.io.headers import TRACE_FIELDS, decode_trace_headers, trace_header_dtype
from seiscore.io.kernels import decode_float_traces, float32_to_ibm, keys_to_floats
from seiscore.io.samples import IBM_FLOAT, IEEE_FLOAT, decode, encode, float_to_ibm, ibm_to_float32, raw_dtype
from seiscore.io.segy_write import SegyWriteSpec, write_cube
from seiscore.io.store import consolidate, temp_path


def _raw_traces(values: np.ndarray, fmt: int, endian: str, rng) -> np.ndarray:
    """uint8 (n, 240 + 4 ns): random header bytes, then ``values`` in the on-disk format."""
    n, ns = values.shape
    raw = np.empty((n, 240 + 4 * ns), dtype=np.uint8)
    raw[:, :240] = rng.integers(0, 256, (n, 240), dtype=np.uint8)
    raw[:, 240:] = encode(values, fmt, endian).view(np.uint8).reshape(n, 4 * ns)
    return raw


@pytest.mark.parametrize("fmt", [IEEE_FLOAT, IBM_FLOAT])
@pytest.mark.parametrize("endian", ["big", "little"])
def test_decode_kernel_matches_numpy(fmt, endian):
    rng = np.random.default_rng(fmt)
    n, ns, width, cs = 10, 70, 4, 16  # 10 traces on a 3 x 4 column (2 bins dead), 70 samples in 16-sample chunks
    values = (rng.standard_normal((n, ns)) * 10.0 ** rng.integers(-3, 4, (n, 1))).astype(np.float32)
    values[0, :3] = (0.0, -0.0, 1e-30)
    raw = _raw_traces(values, fmt, endian, rng)
    pos = np.array([0, 1, 2, 3, 4, 6, 7, 8, 9, 11])
    s0, length = 5, 60  # a window: samples 5..64, 3 full chunks and a 12-sample tail
    block = np.full((4, 3, width, cs), 7.0, dtype=np.float32)
    headers = np.zeros((5, 6, 240), dtype=np.uint8)
    kmin, kmax = decode_float_traces(
        raw.view(np.uint32), pos, width, s0, length, endian == "big", fmt == IBM_FLOAT, block, headers, raw, 2, 1, True
    )

    expected = decode(raw[:, 240:].view(raw_dtype(fmt, endian)).reshape(n, ns), fmt, endian)[:, s0 : s0 + length]
    rows, cols = np.divmod(pos, width)
    got = block.transpose(1, 2, 0, 3).reshape(3, width, 4 * cs)[rows, cols, :length]
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # bit for bit, -0.0 included
    assert np.all(block[3, :, :, length - 3 * cs :] == 7.0), "samples past the window are left alone"
    assert np.all(block[:, 1, 1] == 7.0) and np.all(block[:, 2, 2] == 7.0), "dead bins are left alone"
    assert np.array_equal(headers[rows + 2, cols + 1], raw[:, :240])
    assert keys_to_floats(kmin, kmax) == (float(expected.min()), float(expected.max()))


@pytest.mark.parametrize("special,expected", [(np.nan, "nan"), (np.inf, (-1.0, np.inf)), (-np.inf, (-np.inf, 1.0))])
def test_decode_kernel_range_with_special_values(special, expected):
    values = np.array([[-1.0, 0.5, 1.0, special]], dtype=np.float32)
    raw = _raw_traces(values, IEEE_FLOAT, "big", np.random.default_rng(0))
    block = np.zeros((1, 1, 1, 4), dtype=np.float32)
    lo, hi = keys_to_floats(
        *decode_float_traces(
            raw.view(np.uint32),
            np.array([0]),
            1,
            0,
            4,
            True,
            False,
            block,
            np.zeros((1, 1, 240), np.uint8),
            raw,
            0,
            0,
            False,
        )
    )
    if expected == "nan":
        assert np.isnan(lo) and np.isnan(hi)
    else:
        assert (lo, hi) == expected
    assert keys_to_floats(2**31 - 1, -(2**31)) == (np.inf, -np.inf)  # nothing decoded


def test_ibm_encoder_matches_numpy_reference():
    bits = np.random.default_rng(7).integers(0, 2**32, 500_000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32).copy()  # every kind of float32: normal, subnormal, zero, inf, NaN
    x[:8] = (0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -3.4e38, 1.0)
    with np.errstate(all="ignore"):
        expected = float_to_ibm(x)
    np.testing.assert_array_equal(float32_to_ibm(x, np.empty(x.shape, np.uint32), False), expected)
    big = encode(x.reshape(500, 1000), IBM_FLOAT, "big")
    assert big.dtype == np.dtype(">u4") and np.array_equal(big.reshape(-1).astype(np.uint32), expected)
    ibm = expected[np.isfinite(x)]  # IBM -> float32 -> IBM is exact for the words float32 can reach
    np.testing.assert_array_equal(float32_to_ibm(ibm_to_float32(ibm), np.empty(ibm.shape, np.uint32), False), ibm)


@pytest.mark.parametrize("endian", ["big", "little"])
def test_header_kernel_matches_structured_dtype(endian):
    raw = np.random.default_rng(3).integers(0, 256, (1000, 240), dtype=np.uint8)
    rec = raw.view(trace_header_dtype(endian)).reshape(-1)
    fields = decode_trace_headers(raw, endian)
    for f in TRACE_FIELDS:
        assert fields[f.variable].dtype == f.dtype
        np.testing.assert_array_equal(fields[f.variable], rec[f.variable].astype(f.dtype), err_msg=f.variable)


def _reverse_crosslines(path, n_xl):
    """Renumber crosslines n_xl..1 in file order (descending numbers along each inline)."""
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        for i in range(f.tracecount):
            xl = f.header[i][segyio.TraceField.CROSSLINE_3D]
            f.header[i].update({segyio.TraceField.CROSSLINE_3D: n_xl + 1 - xl})


@pytest.mark.parametrize("sorting", ["inline", "crossline"])
@pytest.mark.parametrize("descending", [False, True])
def test_proposed_grid_is_the_scanned_grid(tmp_path, sorting, descending):
    shape = (5, 7, 8)
    src = write_cube(
        tmp_path / "in.sgy",
        np.zeros(shape, np.float32),
        SegyWriteSpec(sorting=sorting, first_inline=10, inline_increment=2),
    )
    if descending:
        _reverse_crosslines(src, shape[1])
    layout = probe(src)
    guess, truth = guess_regular(layout), scan(layout)
    assert guess is not None and not guess.verified and truth.verified
    np.testing.assert_array_equal(guess.inlines, truth.inlines)
    np.testing.assert_array_equal(guess.crosslines, truth.crosslines)
    np.testing.assert_array_equal(guess.trace_index, truth.trace_index)
    assert guess.sorting == truth.sorting == sorting


def test_no_grid_is_proposed_for_irregular_files(tmp_path):
    missing = np.zeros((5, 7), bool)
    missing[2, 3] = True
    src = write_cube(tmp_path / "gap.sgy", np.zeros((5, 7, 8), np.float32), missing=missing)
    assert guess_regular(probe(src)) is None


SHAPE = (20, 30, 8)  # 600 traces: the first line and the last trace say nothing of trace 400


def _traces_at(path, index):
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        return {
            i: (f.header[i][segyio.TraceField.INLINE_3D], f.header[i][segyio.TraceField.CROSSLINE_3D]) for i in index
        }


def test_file_that_only_looks_regular_lands_every_trace_in_its_bin(tmp_path):
    cube = np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32)
    src = write_cube(tmp_path / "in.sgy", cube)
    a, b = _traces_at(src, [400, 401]).values()
    with segyio.open(str(src), "r+", ignore_geometry=True) as f:  # traces 400 and 401 claim each other's bins
        f.header[400].update({segyio.TraceField.INLINE_3D: b[0], segyio.TraceField.CROSSLINE_3D: b[1]})
        f.header[401].update({segyio.TraceField.INLINE_3D: a[0], segyio.TraceField.CROSSLINE_3D: a[1]})
    assert guess_regular(probe(src)) is not None  # it does look regular from its first line and last trace
    store = ingest(src, tmp_path / "s.zarr", chunks=(4, 8, 8))
    expected = cube.copy()
    (i0, j0), (i1, j1) = divmod(400, SHAPE[1]), divmod(401, SHAPE[1])
    expected[i0, j0], expected[i1, j1] = cube[i1, j1], cube[i0, j0]
    ds = open_survey(store)
    np.testing.assert_array_equal(ds["amplitude"].values, expected)
    assert ds["trace_index"].values[i0, j0] == 401 and ds["trace_index"].values[i1, j1] == 400
    assert not temp_path(store).exists()


def test_duplicate_past_the_first_line_is_still_refused(tmp_path):
    src = write_cube(tmp_path / "in.sgy", np.zeros(SHAPE, np.float32))
    ((il, xl),) = _traces_at(src, [399]).values()
    with segyio.open(str(src), "r+", ignore_geometry=True) as f:
        f.header[400].update({segyio.TraceField.INLINE_3D: il, segyio.TraceField.CROSSLINE_3D: xl})
    with pytest.raises(DuplicateTraceError, match="traces 399 and 400"):
        ingest(src, tmp_path / "s.zarr", chunks=(4, 8, 8))
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.int32, np.float64, np.bool_])
@pytest.mark.parametrize("shuffle", ["bitshuffle", "shuffle", "noshuffle"])
@pytest.mark.parametrize("cname", ["lz4", "zstd"])
def test_python_blosc_frames_are_numcodecs_frames(dtype, shuffle, cname):
    x = (np.random.default_rng(1).standard_normal((16, 16, 16)) * 100).astype(dtype)
    size = np.dtype(dtype).itemsize
    ours = _BloscEncoder(cname, 5, shuffle, 0, size).encode(x)
    theirs = Blosc(
        cname=cname, clevel=5, shuffle={"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[shuffle], typesize=size
    ).encode(x)
    assert ours == theirs
    assert np.array_equal(np.frombuffer(Blosc().decode(ours), dtype=dtype).reshape(x.shape), x)


def test_consolidated_metadata_is_zarrs(tmp_path):
    src = write_cube(tmp_path / "in.sgy", np.ones((4, 5, 8), np.float32))
    store = ingest(src, tmp_path / "s.zarr")
    ours = json.loads((store / "zarr.json").read_text())
    consolidate(store)
    assert ours == json.loads((store / "zarr.json").read_text())
    assert set(ours["consolidated_metadata"]["metadata"]) == set(zarr.open_group(str(store), mode="r").array_keys())
