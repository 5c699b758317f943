"""Read batches of traces from a SEG-Y file: raw bytes in, headers and float32 samples out.

Traces are fetched by original trace number in runs of consecutive traces (one
``readinto`` per run), so inline- and crossline-sorted files and irregular geometries
all read in large sequential requests.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .headers import TRACE_HEADER_SIZE
from .plan import runs
from .samples import IBM_FLOAT, decode, raw_dtype

if TYPE_CHECKING:  # geometry imports this module (header_words)
    from .geometry import SegyLayout


class TraceReader:
    """Reads traces of ``layout`` by trace number into a reusable buffer (read-only access)."""

    def __init__(self, layout: SegyLayout, *, reuse_buffer: bool = False):
        """``reuse_buffer``: :meth:`read_raw` returns a view of one buffer kept between calls (no
        allocation and page faults per batch; the previous batch is overwritten)."""
        self.layout = layout
        self._fd = os.open(layout.path, os.O_RDONLY)
        self._dtype = raw_dtype(layout.format, layout.endian)
        self._reuse = reuse_buffer
        self._buf = np.empty((0, layout.trace_size), dtype=np.uint8)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> "TraceReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_raw(self, sorted_traces: np.ndarray) -> np.ndarray:
        """Raw bytes (n, trace_size) of the given sorted unique trace numbers."""
        lay = self.layout
        tsize = lay.trace_size
        if not self._reuse:
            buf = np.empty((sorted_traces.size, tsize), dtype=np.uint8)
        else:
            if self._buf.shape[0] < sorted_traces.size:
                self._buf = np.empty((sorted_traces.size, tsize), dtype=np.uint8)
            buf = self._buf[:sorted_traces.size]
        flat = memoryview(buf.reshape(-1))
        row = 0
        for start, count in runs(sorted_traces, max_len=sorted_traces.size):
            want = count * tsize
            got = os.preadv(self._fd, [flat[row * tsize: row * tsize + want]], lay.data_offset + start * tsize)
            if got != want:
                raise OSError(f"{lay.path}: short read at trace {start} ({got} of {want} bytes); file changed?")
            row += count
        return buf

    def samples(self, raw: np.ndarray, window: slice) -> np.ndarray:
        """On-disk samples (n, window) of a raw batch, as a view."""
        n = raw.shape[0]
        return raw[:, TRACE_HEADER_SIZE:].view(self._dtype).reshape(n, self.layout.n_samples)[:, window]

    def decode_into(self, raw: np.ndarray, window: slice, out: np.ndarray, rows: np.ndarray) -> None:
        """Decode the samples of a raw batch into ``out[rows]`` (float32, one pass when rows are consecutive)."""
        src = self.samples(raw, window)
        consecutive = rows.size > 0 and rows[-1] - rows[0] == rows.size - 1 and bool(np.all(np.diff(rows) == 1))
        if self.layout.format == IBM_FLOAT:
            values = decode(src, IBM_FLOAT, self.layout.endian)
            if consecutive:
                out[rows[0]:rows[-1] + 1] = values
            else:
                out[rows] = values
        elif consecutive:
            np.copyto(out[rows[0]:rows[-1] + 1], src, casting="unsafe")  # byte swap + convert in one pass
        else:
            out[rows] = src

    def decode_block(self, raw: np.ndarray, window: slice, block: np.ndarray, pos: np.ndarray, width: int) -> None:
        """Decode a raw batch into a chunk-major column block.

        ``block`` is ``(n_sc, ci, cx, cs)`` float32: ``block[k]`` is the chunk holding samples
        ``window.start + k*cs ...``. The trace of grid position ``p`` (row ``p // width``, column
        ``p % width`` of the column) fills ``block[:, row, col, :]`` with its samples of ``window``.
        Rows of consecutive positions decode as one strided block copy (byte swap + conversion
        in the same pass); other batches scatter by position.
        """
        src = self.samples(raw, window)
        if self.layout.format == IBM_FLOAT:
            src = decode(src, IBM_FLOAT, self.layout.endian)
        n, length = src.shape
        cs = block.shape[3]
        full, tail = divmod(length, cs)
        head, rest = src[:, :full * cs], src[:, full * cs:]
        p0 = int(pos[0])
        if p0 % width == 0 and n % width == 0 and int(pos[-1]) - p0 == n - 1 and bool(np.all(np.diff(pos) == 1)):
            r0, nr = p0 // width, n // width
            if full:
                np.copyto(block[:full, r0:r0 + nr, :width, :],
                          head.reshape(nr, width, full, cs).transpose(2, 0, 1, 3), casting="unsafe")
            if tail:
                np.copyto(block[full, r0:r0 + nr, :width, :tail], rest.reshape(nr, width, tail), casting="unsafe")
        else:
            rows, cols = np.divmod(pos, width)
            if full:
                block[:full, rows, cols, :] = head.reshape(n, full, cs).transpose(1, 0, 2)
            if tail:
                block[full, rows, cols, :tail] = rest

    def count_inexact(self, raw: np.ndarray, window: slice) -> int:
        """Samples of a raw batch that float32 cannot hold exactly (wide integer / double formats)."""
        n = raw.shape[0]
        src = raw[:, TRACE_HEADER_SIZE:].view(self._dtype).reshape(n, self.layout.n_samples)[:, window]
        return int(np.count_nonzero(src.astype(np.float32).astype(src.dtype) != src))


SCAN_BLOCK_BYTES = 8 * 2**20  # bytes per read while collecting header words (one reused buffer)


def header_words(layout: SegyLayout, fields: list[tuple[int, int]]) -> list[np.ndarray]:
    """Signed trace-header words ``(1-based byte, size)`` of every trace, as int64 arrays.

    Reads the file sequentially in blocks of whole traces into one reused buffer and copies
    out the bytes spanning the requested words: one streaming pass, a few bytes kept per
    trace (several times cheaper than a read call per trace and word).
    """
    lo = min(b for b, _ in fields) - 1
    hi = max(b - 1 + n for b, n in fields)
    if lo < 0 or hi > TRACE_HEADER_SIZE:
        raise ValueError(f"header words {fields} do not lie within the {TRACE_HEADER_SIZE}-byte trace header")
    tsize, ntr = layout.trace_size, layout.tracecount
    span = np.empty((ntr, hi - lo), dtype=np.uint8)
    per_block = max(1, SCAN_BLOCK_BYTES // tsize)
    buf = np.empty((min(per_block, ntr), tsize), dtype=np.uint8)
    fd = os.open(layout.path, os.O_RDONLY)
    try:
        for a in range(0, ntr, per_block):
            block = buf[:min(per_block, ntr - a)]
            want = block.nbytes
            if os.preadv(fd, [memoryview(block.reshape(-1))], layout.data_offset + a * tsize) != want:
                raise OSError(f"{layout.path}: short read at trace {a}; file changed?")
            span[a:a + block.shape[0]] = block[:, lo:hi]
    finally:
        os.close(fd)
    order = ">" if layout.endian == "big" else "<"
    return [np.ascontiguousarray(span[:, b - 1 - lo:b - 1 - lo + n]).view(f"{order}i{n}").reshape(ntr).astype(np.int64)
            for b, n in fields]
