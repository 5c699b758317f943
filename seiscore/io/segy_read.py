"""Read batches of traces from a SEG-Y file: raw bytes in, headers and float32 samples out.

Traces are fetched by original trace number in runs of consecutive traces (one ``preadv``
per run of a local file, one ranged GET per run of an object at an fsspec URL, see
:mod:`seiscore.io.segy_source`) into a reused buffer of about the size of a core's L2 cache, so inline- and
crossline-sorted files and irregular geometries all read in large sequential requests and
are decoded while the bytes are still in cache: 4-byte IEEE and IBM samples (the common
formats) in a numba kernel (:mod:`seiscore.io.kernels`), the other formats with numpy (3-byte
integers through :func:`seiscore.io.samples.int24_to_int32`).
"""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .headers import TRACE_HEADER_SIZE
from .kernels import KEY_NONE, decode_float_traces, keys_to_floats
from .plan import runs
from .samples import IBM_FLOAT, IEEE_FLOAT, INEXACT_FORMATS, decode, needs_decode, raw_dtype

if TYPE_CHECKING:  # geometry imports this module (header_words)
    from .geometry import SegyLayout


@dataclass
class ColumnStats:
    """What decoding one column found: the min and max of its live samples (+inf / -inf for none;
    NaN when a sample was NaN) and how many samples float32 could not hold exactly."""

    lo: float = np.inf
    hi: float = -np.inf
    inexact: int = 0


_NO_HEADERS = np.zeros((1, 1, TRACE_HEADER_SIZE), dtype=np.uint8)  # the kernel's headers argument when not copying


class TraceReader:
    """Reads traces of ``layout`` by trace number into a reusable buffer (read-only access)."""

    def __init__(self, layout: SegyLayout, *, reuse_buffer: bool = False):
        """``reuse_buffer``: :meth:`read_raw` returns a view of one buffer kept between calls (no
        allocation and page faults per batch; the previous batch is overwritten)."""
        self.layout = layout
        self._src = layout.open()
        self._dtype = raw_dtype(layout.format, layout.endian)
        self._reuse = reuse_buffer
        self._buf = np.empty((0, layout.trace_size), dtype=np.uint8)
        #: 4-byte float samples (rows a whole number of words) decode in the numba kernel
        self.kernel_decodes = layout.trace_size % 4 == 0 and layout.format in (IBM_FLOAT, IEEE_FLOAT)

    def close(self) -> None:
        """Close the file."""
        self._src.close()

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
            buf = self._buf[: sorted_traces.size]
        flat = memoryview(buf.reshape(-1))
        ranges, row = [], 0
        for start, count in runs(sorted_traces, max_len=sorted_traces.size):
            ranges.append((lay.data_offset + start * tsize, flat[row * tsize : (row + count) * tsize]))
            row += count
        self._src.read_into(ranges)
        return buf

    def decode_column(
        self,
        traces: np.ndarray,
        pos: np.ndarray,
        grid: tuple[int, int],
        window: slice,
        block: np.ndarray,
        batch: int,
        headers: np.ndarray | None = None,
        origin: tuple[int, int] = (0, 0),
    ) -> ColumnStats:
        """Decode the samples ``window`` of ``traces`` (sorted) into the chunk-major column ``block``.

        ``block`` is ``(n_k, ci, cx, cs)`` float32 (``block[k]``: the chunk of samples
        ``window.start + k*cs ...``); trace ``traces[i]`` sits at position ``pos[i]`` (row
        ``pos // width``, column ``pos % width``) of the column, a ``grid = (rows, width)`` of bins.
        ``batch`` traces are read at a time. With ``headers``, each trace's 240 header bytes are
        copied to ``headers[origin[0] + row, origin[1] + col]``.
        """
        stats = ColumnStats()
        width = grid[1]
        length = window.stop - window.start
        step = batch if batch < width else batch - batch % width  # whole rows: one block copy per batch
        kmin, kmax = KEY_NONE
        for k in range(0, traces.size, step):
            p = pos[k : k + step]
            raw = self.read_raw(traces[k : k + step])
            if self.kernel_decodes:
                dummy = headers is None
                key_lo, key_hi = decode_float_traces(
                    raw.view(np.uint32),
                    p,
                    width,
                    window.start,
                    length,
                    self.layout.endian == "big",
                    self.layout.format == IBM_FLOAT,
                    block,
                    _NO_HEADERS if dummy else headers,
                    raw,
                    origin[0],
                    origin[1],
                    not dummy,
                )
                kmin, kmax = min(kmin, key_lo), max(kmax, key_hi)
                continue
            self.decode_block(raw, window, block, p, width)
            if self.layout.format in INEXACT_FORMATS:
                stats.inexact += self.count_inexact(raw, window)
            if headers is not None:
                rows, cols = np.divmod(p, width)
                headers[rows + origin[0], cols + origin[1]] = raw[:, :TRACE_HEADER_SIZE]
        if self.kernel_decodes:
            stats.lo, stats.hi = keys_to_floats(kmin, kmax)
        else:
            stats.lo, stats.hi = live_range(block, pos, grid, length)
        return stats

    def samples(self, raw: np.ndarray, window: slice) -> np.ndarray:
        """On-disk samples (n, window) of a raw batch, as a view."""
        n = raw.shape[0]
        return raw[:, TRACE_HEADER_SIZE:].view(self._dtype).reshape(n, self.layout.n_samples)[:, window]

    def decode_into(self, raw: np.ndarray, window: slice, out: np.ndarray, rows: np.ndarray) -> None:
        """Decode the samples of a raw batch into ``out[rows]`` (float32, one pass when rows are consecutive)."""
        src = self.samples(raw, window)
        consecutive = rows.size > 0 and rows[-1] - rows[0] == rows.size - 1 and bool(np.all(np.diff(rows) == 1))
        if needs_decode(self.layout.format):
            values = decode(src, self.layout.format, self.layout.endian)
            if consecutive:
                out[rows[0] : rows[-1] + 1] = values
            else:
                out[rows] = values
        elif consecutive:
            np.copyto(out[rows[0] : rows[-1] + 1], src, casting="unsafe")  # byte swap + convert in one pass
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
        if needs_decode(self.layout.format):
            src = decode(src, self.layout.format, self.layout.endian)
        n, length = src.shape
        cs = block.shape[3]
        full, tail = divmod(length, cs)
        head, rest = src[:, : full * cs], src[:, full * cs :]
        p0 = int(pos[0])
        if p0 % width == 0 and n % width == 0 and int(pos[-1]) - p0 == n - 1 and bool(np.all(np.diff(pos) == 1)):
            r0, nr = p0 // width, n // width
            if full:
                np.copyto(
                    block[:full, r0 : r0 + nr, :width, :],
                    head.reshape(nr, width, full, cs).transpose(2, 0, 1, 3),
                    casting="unsafe",
                )
            if tail:
                np.copyto(block[full, r0 : r0 + nr, :width, :tail], rest.reshape(nr, width, tail), casting="unsafe")
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


def live_range(block: np.ndarray, pos: np.ndarray, grid: tuple[int, int], length: int) -> tuple[float, float]:
    """(min, max) of the live samples of a chunk-major column ``block`` (n_k, ci, cx, cs): the traces at
    flat positions ``pos`` of the column's ``grid`` (rows, width), the first ``length`` samples. Views
    when every slot of the block is live (the common case), a gather otherwise."""
    if pos.size == 0:
        return np.inf, -np.inf
    n_k, ci, cx, cs = block.shape
    rows, width = grid
    if pos.size == ci * cx and (rows, width) == (ci, cx):
        values = block
    else:
        il, xl = np.divmod(pos, width)
        values = block[:, il, xl]  # (n_k, live traces, cs)
    full, rest = divmod(length, cs)
    parts = [v for v in (values[:full], values[full : full + 1, ..., :rest]) if v.size]
    return min(float(v.min()) for v in parts), max(float(v.max()) for v in parts)


SCAN_BLOCK_BYTES = 8 * 2**20  # bytes per read while collecting header words (one reused buffer per thread)
SCAN_THREADS = 2  # copying the file out of the page cache is most of a scan's cost, and it runs in parallel


def header_words(
    layout: SegyLayout,
    fields: list[tuple[int, int]],
    start: int = 0,
    stop: int | None = None,
    buffer_bytes: int = SCAN_BLOCK_BYTES,
) -> list[np.ndarray]:
    """Signed trace-header words ``(1-based byte, size)`` (size 2 or 4) of traces ``start .. stop - 1``
    (default: every trace), as int32 arrays.

    Reads the file in blocks of whole traces (two threads, one reused buffer of about ``buffer_bytes``
    each) and copies out each word: one streaming pass, 4 bytes kept per trace and word.
    """
    for b, n in fields:
        if n not in (2, 4) or b < 1 or b - 1 + n > TRACE_HEADER_SIZE:
            raise ValueError(
                f"header word at byte {b} of {n} bytes does not lie within the {TRACE_HEADER_SIZE}-byte trace header"
            )
    tsize = layout.trace_size
    stop = layout.tracecount if stop is None else stop
    ntr = stop - start
    order = ">" if layout.endian == "big" else "<"
    out = [np.empty(ntr, dtype=np.int32) for _ in fields]
    per_block = max(1, min(ntr, buffer_bytes // tsize))
    buffers = queue.SimpleQueue()
    for _ in range(SCAN_THREADS):
        buffers.put(np.empty((per_block, tsize), dtype=np.uint8))
    src = layout.open()

    def one(a: int) -> None:
        end = min(ntr, a + per_block)
        buf = buffers.get()
        try:
            block = buf[: end - a]
            src.read_into([(layout.data_offset + (start + a) * tsize, memoryview(block.reshape(-1)))])
            for (b, n), dest in zip(fields, out):
                dest[a:end] = block[:, b - 1 : b - 1 + n].view(f"{order}i{n}")[:, 0]
        finally:
            buffers.put(buf)

    try:
        with ThreadPoolExecutor(max_workers=SCAN_THREADS, thread_name_prefix="seiscore-scan") as pool:
            list(pool.map(one, range(0, ntr, per_block)))
    finally:
        src.close()
    return out
