"""Read batches of traces from a SEG-Y file: raw bytes in, headers and float32 samples out.

Traces are fetched by original trace number in runs of consecutive traces (one
``readinto`` per run), so inline- and crossline-sorted files and irregular geometries
all read in large sequential requests.
"""

from __future__ import annotations

import os

import numpy as np

from .geometry import SegyLayout
from .headers import TRACE_HEADER_SIZE
from .plan import runs
from .samples import IBM_FLOAT, decode, raw_dtype


class TraceReader:
    """Reads traces of ``layout`` by trace number into a reusable buffer (read-only access)."""

    def __init__(self, layout: SegyLayout):
        self.layout = layout
        self._fd = os.open(layout.path, os.O_RDONLY)
        self._dtype = raw_dtype(layout.format, layout.endian)

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
        buf = np.empty((sorted_traces.size, tsize), dtype=np.uint8)
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

    def count_inexact(self, raw: np.ndarray, window: slice) -> int:
        """Samples of a raw batch that float32 cannot hold exactly (wide integer / double formats)."""
        n = raw.shape[0]
        src = raw[:, TRACE_HEADER_SIZE:].view(self._dtype).reshape(n, self.layout.n_samples)[:, window]
        return int(np.count_nonzero(src.astype(np.float32).astype(src.dtype) != src))
