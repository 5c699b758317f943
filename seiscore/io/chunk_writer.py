"""Write whole chunks of a local Zarr v3 array straight to their chunk files.

zarr-python's write path runs every chunk through an asyncio codec pipeline (task per
chunk, buffer prototypes, fill checks, store abstraction): on two cores that costs more
than the compression itself. For arrays whose codecs are ``bytes`` (little-endian) and an
optional ``blosc`` compressor, a chunk file is just ``blosc(chunk.tobytes())`` at
``<array>/<chunk key>``, which this writer produces directly (numcodecs' Blosc with the
array's own parameters, called from the caller's thread: it releases the GIL, so several
threads compress in parallel). The files are byte-for-byte what zarr would write, so any
Zarr v3 reader (``xarray.open_zarr``) reads them. Like zarr's default
(``write_empty_chunks=False``) a chunk whose bits all equal the fill value is not written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.core.chunk_grids import RegularChunkGrid

_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


def supports(array: zarr.Array) -> bool:
    """True when :class:`ChunkWriter` can write ``array``'s chunks (local v3, regular grid, bytes [+ blosc])."""
    meta = array.metadata
    if array.metadata.zarr_format != 3 or sys.byteorder != "little":
        return False
    codecs = list(meta.codecs)
    ok_bytes = bool(codecs) and isinstance(codecs[0], BytesCodec) and \
        (codecs[0].endian is None or codecs[0].endian.value == "little")
    ok_rest = len(codecs) == 1 or (len(codecs) == 2 and isinstance(codecs[1], BloscCodec))
    root = getattr(array.store, "root", None)
    return ok_bytes and ok_rest and isinstance(meta.chunk_grid, RegularChunkGrid) and root is not None


class ChunkWriter:
    """Encode and write whole chunks of ``array`` (thread-safe: no shared mutable state but the file system)."""

    def __init__(self, array: zarr.Array):
        if not supports(array):
            raise ValueError(f"array {array.path!r}: chunk files can only be written directly for a local Zarr v3 "
                             f"array with a regular chunk grid and bytes (+ blosc) codecs")
        meta = array.metadata
        self.chunk_shape = tuple(meta.chunk_grid.chunk_shape)
        self.dtype = np.dtype(array.dtype).newbyteorder("<")
        self._dir = Path(array.store.root) / array.path
        self._key = meta.encode_chunk_key
        blosc = meta.codecs[1] if len(meta.codecs) == 2 else None
        self._codec = None if blosc is None else Blosc(cname=blosc.cname.value, clevel=blosc.clevel,
                                                       shuffle=_SHUFFLE[blosc.shuffle.value],
                                                       blocksize=blosc.blocksize, typesize=blosc.typesize)
        self.shape = tuple(meta.shape)
        self.fill_value = np.asarray(meta.fill_value, dtype=self.dtype)
        self._fill = self.fill_value.tobytes()
        self._made: set[str] = set()

    def _is_fill(self, chunk: np.ndarray) -> bool:
        """All bits equal the fill value (so -0.0 is kept when the fill is 0.0, as zarr does)."""
        if self._fill == b"\0" * len(self._fill):
            return not chunk.view(np.uint8).any()
        bits = np.dtype(f"u{self.dtype.itemsize}")
        return bool(np.all(chunk.view(bits) == np.frombuffer(self._fill, dtype=bits)[0]))

    def write(self, coords: tuple[int, ...], chunk: np.ndarray) -> int:
        """Write the full-shape C-contiguous ``chunk`` at chunk grid position ``coords``; return bytes written."""
        if chunk.shape != self.chunk_shape or chunk.dtype != self.dtype or not chunk.flags.c_contiguous:
            raise ValueError(f"chunk must be a C-contiguous {self.dtype} array of shape {self.chunk_shape}, "
                             f"got {chunk.dtype} {chunk.shape}")
        data = chunk if self._codec is None else self._codec.encode(chunk)
        # an all-fill chunk compresses to almost nothing: only small outputs need the (full-pass) check
        if (self._codec is None or len(data) < chunk.nbytes // 32) and self._is_fill(chunk):
            return 0
        path = self._dir / self._key(tuple(int(c) for c in coords))
        parent = str(path.parent)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        with open(path, "wb") as fh:
            fh.write(data)
        return len(data) if self._codec is not None else chunk.nbytes

    def write_region(self, origin: tuple[int, ...], values: np.ndarray) -> None:
        """Write ``values`` at the chunk-aligned index ``origin``; the region must cover whole chunks
        except where it ends at the array's end (those edge chunks are padded with the fill value)."""
        values = np.asarray(values)
        for o, n, c, size in zip(origin, values.shape, self.chunk_shape, self.shape):
            if o % c or ((o + n) % c and o + n != size):
                raise ValueError(f"region at {origin} of shape {values.shape} is not aligned to chunks "
                                 f"{self.chunk_shape} of an array of shape {self.shape}")
        grid = [range(-(-n // c)) for n, c in zip(values.shape, self.chunk_shape)]
        for idx in np.ndindex(*(len(g) for g in grid)):
            part = values[tuple(slice(i * c, (i + 1) * c) for i, c in zip(idx, self.chunk_shape))]
            if part.shape == self.chunk_shape:
                chunk = np.ascontiguousarray(part, dtype=self.dtype)
            else:
                chunk = np.full(self.chunk_shape, self.fill_value, dtype=self.dtype)
                chunk[tuple(slice(0, n) for n in part.shape)] = part
            self.write(tuple(o // c + i for o, c, i in zip(origin, self.chunk_shape, idx)), chunk)
