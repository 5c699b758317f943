"""Bad inputs fail clearly and leave nothing that looks complete; stores appear only when whole."""

from __future__ import annotations

import os

import numpy as np
import pytest
import segyio
import zarr

from seiscore.io import (
    DuplicateTraceError,
    IncompleteStoreError,
    PreStackNotSupportedError,
    SegyError,
    export,
    ingest,
    open_survey,
    segy_read,
)
from seiscore.io.segy_write import write_cube
from seiscore.io.store import temp_path

SHAPE = (6, 7, 16)


@pytest.fixture
def segy(tmp_path):
    cube = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    return write_cube(tmp_path / "in.sgy", cube), cube


def _no_store(path):
    assert not path.exists() and not temp_path(path).exists()


def test_truncated_file(tmp_path, segy):
    src, _ = segy
    os.truncate(src, os.path.getsize(src) - 10)
    with pytest.raises(SegyError, match="truncated"):
        ingest(src, tmp_path / "s.zarr")
    _no_store(tmp_path / "s.zarr")


@pytest.mark.parametrize("size", [100, 20000])
def test_garbage_and_short_files(tmp_path, size):
    junk = tmp_path / "junk.sgy"
    junk.write_bytes(np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes())
    with pytest.raises(SegyError, match="not a SEG-Y file"):
        ingest(junk, tmp_path / "s.zarr")
    _no_store(tmp_path / "s.zarr")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.sgy"):
        ingest(tmp_path / "nope.sgy", tmp_path / "s.zarr")


def _rewrite_headers(path, updates):
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        for i, fields in updates.items():
            f.header[i].update(fields)


def test_duplicate_pairs(tmp_path, segy):
    src, _ = segy
    _rewrite_headers(src, {3: {189: 1, 193: 1}})  # trace 3 now claims the first bin too
    with pytest.raises(DuplicateTraceError, match=r"inline 1 / crossline 1"):
        ingest(src, tmp_path / "s.zarr")
    _no_store(tmp_path / "s.zarr")


def test_prestack_is_refused(tmp_path, segy):
    src, _ = segy
    _rewrite_headers(src, {i: {189: 1 + i // 14, 193: 1 + (i % 14) // 2, 37: 100 * (i % 2)} for i in range(42)})
    with pytest.raises(PreStackNotSupportedError, match="pre-stack.*not supported yet") as err:
        ingest(src, tmp_path / "s.zarr")
    assert str(src) in str(err.value)


def test_trace_header_sample_count_disagreeing_with_the_binary_header(tmp_path, segy):
    """The binary header's count agrees with the file size: it wins (as segyio reads it), the disagreement
    is a warning and recorded in the store (issue 13; before, such files were refused)."""
    src, cube = segy
    _rewrite_headers(src, {5: {segyio.TraceField.TRACE_SAMPLE_COUNT: SHAPE[2] + 3}})
    with pytest.warns(UserWarning, match=r"1 traces declare \[19\] samples.*first trace 5.*binary header's 16"):
        store = ingest(src, tmp_path / "s.zarr")
    ds = open_survey(store)
    np.testing.assert_array_equal(ds["amplitude"].values, cube)
    assert ds.attrs["sample_count_disagreement"]["traces"] == 1


def test_interrupted_ingest_leaves_nothing_complete_and_restarts(tmp_path, segy, monkeypatch):
    src, cube = segy
    store = tmp_path / "s.zarr"
    calls = {"n": 0}
    real = segy_read.TraceReader.decode_column

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
        return real(self, *args, **kwargs)

    monkeypatch.setattr(segy_read.TraceReader, "decode_column", failing)
    with pytest.raises(KeyboardInterrupt):
        ingest(src, store, chunks=(2, 7, 16))
    assert not store.exists() and not temp_path(store).exists()  # the interrupted ingest removed its temporary
    monkeypatch.setattr(segy_read.TraceReader, "decode_column", real)
    temp_path(store).mkdir()  # what a process killed outright (SIGKILL) leaves behind
    (temp_path(store) / "amplitude").mkdir()
    (temp_path(store) / "amplitude" / "c").write_bytes(b"partial")
    ingest(src, store, chunks=(2, 7, 16))  # the rerun clears the leftover and completes
    assert not temp_path(store).exists()
    np.testing.assert_array_equal(open_survey(store)["amplitude"].values, cube)


def test_existing_store_and_export_target_are_protected(tmp_path, segy):
    src, _ = segy
    store = ingest(src, tmp_path / "s.zarr")
    with pytest.raises(FileExistsError, match="already exists"):
        ingest(src, store)
    ingest(src, store, overwrite=True)
    dest = tmp_path / "out.sgy"
    dest.write_bytes(b"keep me")
    for overwrite in (False, True):  # a file seiscore did not write is never replaced (seiscore.core.safety)
        with pytest.raises(ValueError, match="not something seiscore wrote"):
            export(store, dest, overwrite=overwrite)
    assert dest.read_bytes() == b"keep me"
    dest.unlink()
    export(store, dest)
    with pytest.raises(FileExistsError, match="overwrite"):
        export(store, dest)
    export(store, dest, overwrite=True)  # its own export: replaced
    assert dest.read_bytes()[:3600] == src.read_bytes()[:3600]


def test_incomplete_store_is_not_exported(tmp_path, segy):
    src, _ = segy
    store = ingest(src, tmp_path / "s.zarr")
    zarr.open_group(str(store), mode="r+").attrs["seiscore_complete"] = False
    with pytest.raises(IncompleteStoreError, match="mark_complete"):
        export(store, tmp_path / "o.sgy")
    assert not (tmp_path / "o.sgy").exists()


def test_bad_arguments_name_the_problem(tmp_path, segy):
    src, _ = segy
    with pytest.raises(ValueError, match="inline byte 190"):
        ingest(src, tmp_path / "s.zarr", il_byte=190)
    with pytest.raises(ValueError, match="memory_limit"):
        ingest(src, tmp_path / "s.zarr", memory_limit="lots")
    with pytest.raises(ValueError, match="chunks"):
        ingest(src, tmp_path / "s.zarr", chunks=(4, 4))
    with pytest.raises(ValueError, match=r"memory_limit of 0\.0 MB is too small for chunks \(6, 7, 16\)"):
        ingest(src, tmp_path / "s.zarr", memory_limit=2000)
    _no_store(tmp_path / "s.zarr")
