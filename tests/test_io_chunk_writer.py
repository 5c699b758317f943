"""Direct chunk / shard writes produce the files zarr itself writes; ingest's sharded store reads back exactly."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from seiscore.io import ingest, open_survey
from seiscore.io.chunk_writer import ChunkWriter
from seiscore.io.segy_write import SegyWriteSpec, write_cube

SHAPE, CHUNKS, SHARDS = (8, 8, 100), (4, 4, 32), (4, 4, 128)


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "zarr.json"
    }


@pytest.mark.parametrize("compressed", [True, False])
def test_write_shard_matches_zarr_bytes(tmp_path, compressed):
    data = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    data[:, :, 64:] = 0.0  # absent chunks inside a shard
    data[4:, 4:] = 0.0  # a shard with nothing to store
    comp = [BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")] if compressed else None
    arrays = {}
    for name in ("zarr", "direct"):
        g = zarr.create_group(str(tmp_path / f"{name}.zarr"), zarr_format=3)
        arrays[name] = g.create_array(
            "a", shape=SHAPE, chunks=CHUNKS, shards=SHARDS, dtype="float32", fill_value=0.0, compressors=comp
        )
    arrays["zarr"][:] = data
    w = ChunkWriter(arrays["direct"])
    assert w.chunk_shape == CHUNKS and w.shard_shape == SHARDS
    for i in range(2):
        for j in range(2):
            block = np.zeros((4, *CHUNKS), np.float32)  # the shard's chunks along the samples, edge padded
            for k in range(4):
                part = data[4 * i : 4 * i + 4, 4 * j : 4 * j + 4, 32 * k : 32 * k + 32]
                block[k, :, :, : part.shape[2]] = part
            w.write_shard((i, j, 0), block[:-1] if (i, j) == (1, 0) else block)  # fewer chunks: the rest absent
    ref, got = _files(tmp_path / "zarr.zarr" / "a"), _files(tmp_path / "direct.zarr" / "a")
    assert sorted(got) == sorted(ref) == ["c/0/0/0", "c/0/1/0", "c/1/0/0"]
    assert got == ref
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "direct.zarr"))["a"][:], data)
    with pytest.raises(ValueError, match="write_shard"):
        w.write((0, 0, 0), block[0])


@pytest.mark.parametrize("shards", [True, False])
def test_ingest_sharded_or_not_reads_back_exactly(tmp_path, shards):
    cube = np.random.default_rng(1).standard_normal((20, 30, 150)).astype(np.float32)
    src = write_cube(tmp_path / "s.sgy", cube, SegyWriteSpec())
    store = ingest(src, tmp_path / "s.zarr", chunks=(8, 16, 64), shards=shards)
    amp = zarr.open_group(str(store), mode="r")["amplitude"]
    assert amp.chunks == (8, 16, 64)
    assert amp.shards == ((8, 16, 192) if shards else None)
    n_files = sum(1 for p in (store / "amplitude" / "c").rglob("*") if p.is_file())
    assert n_files == (3 * 2 if shards else 3 * 2 * 3)  # one file per chunk column vs per chunk
    ds = open_survey(store)
    assert ds["amplitude"].chunks == ((8, 8, 4), (16, 14), (64, 64, 22))  # dask still splits by chunk
    np.testing.assert_array_equal(ds["amplitude"].values, cube)
    np.testing.assert_array_equal(
        xr.open_zarr(str(store))["amplitude"][3:17, 5:29, 40:130].values, cube[3:17, 5:29, 40:130]
    )


def test_ingest_shards_follow_the_memory_window(tmp_path):
    """Under a bound too small for a whole chunk column, a shard is one sample window of the column."""
    cube = np.random.default_rng(2).standard_normal((16, 16, 700)).astype(np.float32)
    src = write_cube(tmp_path / "w.sgy", cube, SegyWriteSpec())
    store = ingest(src, tmp_path / "w.zarr", chunks=(16, 16, 32), memory_limit=600_000)
    amp = zarr.open_group(str(store), mode="r")["amplitude"]
    assert amp.shards is not None and amp.shards[2] < 700 and amp.shards[2] % 32 == 0
    np.testing.assert_array_equal(open_survey(store)["amplitude"].values, cube)
