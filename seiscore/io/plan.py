"""Memory budget and the chunk-aligned regions that ingest and export stream through.

Work proceeds band by band: a band is one chunk-row of inlines (``ci`` inlines, all
crosslines); a band is cut into regions ``(ci, W, S)`` whose crossline width ``W`` and
sample window ``S`` are whole multiples of the chunk shape, sized so that two regions
in flight (one being read, one being compressed and written) plus the raw trace buffer
fit in the memory bound. Every Zarr write then covers whole chunks: no read-modify-write.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

DEFAULT_CHUNKS = (64, 64, 64)
# Stores on object storage: 4 MiB chunks, whole 256-sample stretches of a trace. Each object request costs a
# round trip and CPU at both ends (moto on loopback: ~22 CPU-ms per MB at 1 MiB objects, ~8 at 4 MiB), and
# tiles, QC and export read whole traces, so fewer, larger chunks cost less there (docs/store.md).
REMOTE_DEFAULT_CHUNKS = (64, 64, 256)
DEFAULT_MEMORY_LIMIT = "1GB"
ZARR_MAX_CONCURRENCY = 8  # chunks the Zarr codec pipeline may encode at once (each holds ~2 chunk copies)
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_bytes(value: str | int | float, what: str = "memory_limit") -> int:
    """'1GB', '512 MiB', 2e9 -> bytes (decimal units for KB/MB/GB, binary for KiB/MiB/GiB)."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        n = int(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).upper() not in _UNITS:
            raise ValueError(f"{what} must be a size like '1GB' or '512MiB', got {value!r}")
        n = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if n <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return n


def resolve_chunks(chunks, shape: tuple[int, int, int], *, remote: bool = False) -> tuple[int, int, int]:
    """Validate a chunk shape (None -> the default: :data:`REMOTE_DEFAULT_CHUNKS` for a store on object storage,
    else :data:`DEFAULT_CHUNKS`) and clip it to the array shape."""
    if chunks is None:
        chunks = REMOTE_DEFAULT_CHUNKS if remote else DEFAULT_CHUNKS
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != 3 or min(chunks) < 1:
        raise ValueError(f"chunks must be three positive ints (inline, crossline, sample), got {chunks}")
    return tuple(min(c, n) for c, n in zip(chunks, shape))


def _bands(n_il: int, ci: int, rows: slice | None):
    lo, hi = (0, n_il) if rows is None else (rows.start, rows.stop)
    for a in range(lo, hi, ci):
        yield slice(a, min(a + ci, hi))


@dataclass(frozen=True)
class RegionPlan:
    """Region sizes for a (n_il, n_xl, n_samples) cube with the given chunks and budget."""

    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    width: int  # crosslines per region (multiple of chunks[1], or all)
    window: int  # samples per region (multiple of chunks[2], or all)
    batch_traces: int  # traces read from the file per I/O batch
    zarr_concurrency: int = ZARR_MAX_CONCURRENCY  # value for zarr's "async.concurrency" while streaming

    def bands(self, rows: slice | None = None):
        """Chunk-rows of inlines (within ``rows``, whose start must be chunk-aligned)."""
        return _bands(self.shape[0], self.chunks[0], rows)

    def regions(self):
        """(crossline slice, sample slice) pairs covering one band."""
        for x in range(0, self.shape[1], self.width):
            for s in range(0, self.shape[2], self.window):
                yield slice(x, min(x + self.width, self.shape[1])), slice(s, min(s + self.window, self.shape[2]))


def plan_regions(shape, chunks, trace_bytes: int, limit: int, fixed: int = 0) -> RegionPlan:
    """Choose region width / window and read batch so the working set stays under ``limit`` bytes.

    Working set ~ ``fixed`` + 3 regions (two in flight + one decode temporary)
    + one raw batch (``batch_traces * trace_bytes``) + the Zarr codec pipeline's chunks
    (``zarr_concurrency`` chunks encoded at once, about two copies each).
    """
    ci, cx, cs = chunks
    n_il, n_xl, ns = shape
    chunk_bytes = ci * cx * cs * 4
    concurrency = int(max(2, min(ZARR_MAX_CONCURRENCY, (limit - fixed) // (8 * 2 * chunk_bytes))))
    avail = limit - fixed - 2 * concurrency * chunk_bytes
    need = 4 * chunk_bytes + ci * trace_bytes
    if avail < need:
        raise ValueError(
            f"memory_limit of {limit / 1e6:.1f} MB is too small for chunks {chunks} of this survey "
            f"(needs about {(need + limit - avail) / 1e6:.1f} MB); raise memory_limit or use smaller chunks"
        )
    region_cap = min(avail // 4, 256 * 2**20)
    col_bytes = ci * cx * ns * 4  # one chunk column, all samples
    if col_bytes <= region_cap:
        window = ns
        width = min(n_xl, cx * max(1, region_cap // col_bytes))
    else:
        width = min(n_xl, cx)
        window = min(ns, cs * max(1, region_cap // (ci * cx * cs * 4)))
    batch = max(ci, int((avail - 3 * ci * width * window * 4) // trace_bytes))
    batch = min(batch, ci * width, max(ci, (64 * 2**20) // trace_bytes))
    return RegionPlan(
        shape=tuple(shape),
        chunks=tuple(chunks),
        width=int(width),
        window=int(window),
        batch_traces=int(batch),
        zarr_concurrency=concurrency,
    )


# share of the memory bound given to the buffers an ingest plan itemises; the rest is headroom for what it
# does not (Python objects, Zarr metadata, allocator slack: 1-2 MB, which matters under small bounds)
PLANNED_SHARE = 0.85
DECODE_BYTES_PER_SAMPLE = 32  # raw sample + decode temporaries (IBM: uint32, float64 x2, int32, float32)
READ_BATCH_BYTES = 2**20  # raw bytes per read: about one core's L2 cache, so the decode finds the batch in cache


@dataclass(frozen=True)
class ColumnPlan:
    """Ingest work units: chunk columns ``(ci, cx, window)`` decoded and compressed by ``workers`` threads.

    Each worker holds one column block in chunk-major layout (``window / cs`` whole chunks),
    one read batch of ``batch_traces`` traces with its decode temporaries, and one encoded chunk.
    """

    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    window: int  # samples per work unit (multiple of chunks[2], or all)
    batch_traces: int  # traces per read
    workers: int

    def bands(self, rows: slice | None = None):
        """Chunk-rows of inlines (within ``rows``, whose start must be chunk-aligned)."""
        return _bands(self.shape[0], self.chunks[0], rows)

    def columns(self):
        """(crossline slice, sample slice) of every work unit of one band."""
        cx = self.chunks[1]
        for x in range(0, self.shape[1], cx):
            for s in range(0, self.shape[2], self.window):
                yield slice(x, min(x + cx, self.shape[1])), slice(s, min(s + self.window, self.shape[2]))


def default_workers() -> int:
    """Ingest worker threads by default: the CPU count, between 1 and 4."""
    return max(1, min(4, os.cpu_count() or 1))


def plan_columns(shape, chunks, trace_bytes: int, limit: int, fixed: int = 0, workers: int | None = None) -> ColumnPlan:
    """Choose the column window, read batch and worker count so the working set stays under ``limit`` bytes.

    Working set ~ ``fixed`` + workers x (column block + one encoded chunk + one read batch
    with its decode temporaries), planned within ``PLANNED_SHARE`` of ``limit``. Fewer workers are
    used when the bound cannot hold one set each.
    """
    ci, cx, cs = chunks
    ns = shape[2]
    chunk_bytes = ci * cx * cs * 4
    avail = int(limit * PLANNED_SHARE) - fixed
    per_trace = trace_bytes + DECODE_BYTES_PER_SAMPLE * min(ns, cs)
    need = 2 * chunk_bytes + ci * per_trace  # one-chunk window, a batch of one trace per inline
    workers = max(1, workers or default_workers())
    while workers > 1 and workers * need > avail:
        workers -= 1
    if avail < need:
        raise ValueError(
            f"memory_limit of {limit / 1e6:.1f} MB is too small for chunks {chunks} of this survey "
            f"(needs about {(need + fixed) / PLANNED_SHARE / 1e6:.1f} MB); raise memory_limit or use smaller chunks"
        )
    per = avail // workers
    n_sc = -(-ns // cs)  # sample chunks in a whole column
    fit = max(1, (per // 2) // chunk_bytes)  # half the share for the column block
    window = ns if n_sc <= fit else cs * fit
    left = per - chunk_bytes * (-(-window // cs) + 1)
    batch = min(left // (trace_bytes + DECODE_BYTES_PER_SAMPLE * window), max(1, READ_BATCH_BYTES // trace_bytes))
    batch = max(1, int(batch))
    if batch >= cx:
        batch -= batch % cx  # whole rows of a column: the decode is one block copy
    return ColumnPlan(shape=tuple(shape), chunks=tuple(chunks), window=int(window), batch_traces=batch, workers=workers)


def runs(sorted_indices: np.ndarray, max_len: int):
    """Split sorted unique trace numbers into (start, count) runs of consecutive traces (<= max_len)."""
    n = sorted_indices.size
    if n == 0:
        return
    breaks = (np.flatnonzero(np.diff(sorted_indices) != 1) + 1).tolist()
    for a, b in zip([0, *breaks], [*breaks, n]):
        first = int(sorted_indices[a])
        for k in range(0, b - a, max_len):
            yield first + k, min(max_len, b - a - k)
