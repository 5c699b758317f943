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
from .samples import decode, raw_dtype


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

    def split(self, raw: np.ndarray, window: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(headers uint8 (n, 240), samples float32 (n, window)) of a raw batch."""
        n = raw.shape[0]
        samples = raw[:, TRACE_HEADER_SIZE:].view(self._dtype).reshape(n, self.layout.n_samples)
        if window is not None:
            samples = samples[:, window]
        return raw[:, :TRACE_HEADER_SIZE], decode(samples, self.layout.format, self.layout.endian)
