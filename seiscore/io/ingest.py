"""SEG-Y -> survey store, streaming chunk column by chunk column under a memory bound.

Steps: probe the layout and scan the (inline, crossline) grid (a few header bytes per
trace); create the store schema under a temporary name; split the cube into chunk columns
(``ci`` inlines x ``cx`` crosslines x a sample window, see :mod:`seiscore.io.plan`) and let a
pool of threads (one per core) read each column's traces in large runs, decode them straight
into a chunk-major block (byte swap + conversion in one pass), Blosc-compress the chunks and
write the chunk files directly (:mod:`seiscore.io.chunk_writer`); decode each group of bands'
trace headers into the per-field variables on a background thread; finally flag the store
complete and rename it into place.
"""

from __future__ import annotations

import base64
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import textual
from .errors import SegyError
from .geometry import Geometry, SegyLayout, probe, scan
from .headers import FIELD_BY_VARIABLE, TRACE_HEADER_SIZE, decode_trace_headers
from .chunk_writer import ChunkWriter
from .plan import ColumnPlan, parse_bytes, plan_columns, resolve_chunks
from .segy_read import TraceReader
from .store import (AMPLITUDE_MAX_ATTR, AMPLITUDE_MIN_ATTR, COMPLETE_ATTR, DEFAULT_COMPRESSION, FILL_VALUE,
                    HEADER_CHUNK_BANDS, compressor, create_schema, prepare_target, publish)

SCALAR_VARIABLE = "header_source_group_scalar"  # byte 71, applies to CDP X/Y (bytes 181/185)
_INEXACT_FORMATS = {2, 6, 9, 10, 12}  # sample types float32 cannot always hold exactly


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def store_attrs(layout: SegyLayout, geom: Geometry, il_byte: int, xl_byte: int, sample_unit: str) -> dict:
    """Group attributes that keep the file's headers and layout (enough to rewrite it exactly)."""
    return {
        "textual_header": textual.decode(layout.textual_raw),
        "textual_header_encoding": textual.encoding_of(layout.textual_raw),
        "textual_header_b64": _b64(layout.textual_raw),
        "extended_textual_headers_b64": _b64(layout.ext_raw),
        "n_extended_textual_headers": layout.n_ext_headers,
        "binary_header": layout.binary_header,
        "binary_header_b64": _b64(layout.binary_raw),
        "sample_format": layout.format,
        "sample_format_name": layout.format_name,
        "endian": layout.endian,
        "tracecount": layout.tracecount,
        "n_samples": layout.n_samples,
        "sample_unit": sample_unit,
        "sorting": geom.sorting,
        "il_byte": il_byte,
        "xl_byte": xl_byte,
        "source_file": str(layout.path.resolve()),
        "source_size": layout.file_size,
        "n_live_traces": geom.n_live,
    }


def scaled_coordinates(fields: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """CDP X/Y in coordinate units: scalar s > 0 multiplies, s < 0 divides by |s|, 0 means 1."""
    s = fields[SCALAR_VARIABLE].astype(np.float64)
    factor = np.where(s > 0, s, np.where(s < 0, -1.0 / np.where(s < 0, s, -1.0), 1.0))
    return fields["header_cdp_x"] * factor, fields["header_cdp_y"] * factor


# raw bytes of the band being filled + decoded fields and coordinates + encoded chunks of the band being written
HEADER_BYTES_PER_TRACE = 3 * TRACE_HEADER_SIZE + 10 * 8


def _header_rows(ci: int, n_il: int, n_xl: int, limit: int) -> int:
    """Inlines per header chunk: up to 4 chunk-rows while the header buffers use <= 1/4 of the bound."""
    per_band = ci * n_xl * HEADER_BYTES_PER_TRACE
    return min(n_il, ci * max(1, min(HEADER_CHUNK_BANDS, (limit // 4) // max(1, per_band))))


class _Columns:
    """Reads, decodes, compresses and writes chunk columns; called from worker threads.

    Each thread keeps its own reader (reused read buffer) and column block, so a work unit
    touches no shared state but its own chunk files and its own cells of the band's header array.
    """

    def __init__(self, layout: SegyLayout, geom: Geometry, plan: ColumnPlan, writer: ChunkWriter):
        self.layout, self.geom, self.plan, self.writer = layout, geom, plan, writer
        self._local, self._lock, self._readers = threading.local(), threading.Lock(), []

    def _state(self) -> tuple[TraceReader, np.ndarray]:
        if not hasattr(self._local, "reader"):
            ci, cx, cs = self.plan.chunks
            reader = TraceReader(self.layout, reuse_buffer=True)
            with self._lock:
                self._readers.append(reader)
            self._local.reader = reader
            self._local.block = np.empty((-(-self.plan.window // cs), ci, cx, cs), dtype=np.float32)
        return self._local.reader, self._local.block

    def close(self) -> None:
        for reader in self._readers:
            reader.close()

    def run(self, band: slice, xs: slice, ss: slice, headers: np.ndarray, row0: int) -> tuple[int, int, float, float]:
        """Write the chunks of column (band, xs, ss) and copy its trace headers into ``headers`` (rows from
        ``row0``); return (trace bytes read for the progress bar, samples not exact in float32, and the
        min and max of the column's live samples, +inf / -inf when it has none)."""
        reader, block = self._state()
        ci, cx, cs = self.plan.chunks
        idx = self.geom.trace_index[band, xs]
        width = idx.shape[1]
        length = ss.stop - ss.start
        block = block[:-(-length // cs)]
        flat = idx.reshape(-1)
        pos = np.flatnonzero(flat >= 0)
        traces = flat[pos]
        order = np.argsort(traces, kind="stable")
        traces, pos = traces[order], pos[order]
        if pos.size < ci * cx:
            block.fill(FILL_VALUE)  # edge of the grid or dead bins: the chunk padding / dead traces are fill
        elif length % cs:
            block[-1, :, :, length % cs:] = FILL_VALUE
        batch = self.plan.batch_traces
        step = batch if batch < width else batch - batch % width  # whole rows: one block copy per batch
        inexact = 0
        for k in range(0, pos.size, step):
            raw = reader.read_raw(traces[k:k + step])
            p = pos[k:k + step]
            reader.decode_block(raw, ss, block, p, width)
            if self.layout.format in _INEXACT_FORMATS:
                inexact += reader.count_inexact(raw, ss)
            if ss.start == 0:
                il_local, xl_local = np.divmod(p, width)
                headers[il_local + band.start - row0, xl_local + xs.start] = raw[:, :TRACE_HEADER_SIZE]
        lo, hi = _live_range(block, pos, idx.shape, length)
        i, j = band.start // ci, xs.start // cx
        if self.writer.shard_shape is not None:  # one shard file per column: its chunks along the samples
            self.writer.write_shard((i, j, ss.start // self.plan.window), block)
        else:
            k0 = ss.start // cs
            for k in range(block.shape[0]):
                self.writer.write((i, j, k0 + k), block[k])
        return (pos.size * self.layout.trace_size if ss.stop == self.layout.n_samples else 0), inexact, lo, hi


def _live_range(block: np.ndarray, pos: np.ndarray, grid: tuple[int, int], length: int) -> tuple[float, float]:
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
    parts = [v for v in (values[:full], values[full:full + 1, ..., :rest]) if v.size]
    return min(float(v.min()) for v in parts), max(float(v.max()) for v in parts)


def _write_header_rows(writers: dict[str, ChunkWriter], rows: slice, raw_headers: np.ndarray, live: np.ndarray,
                       endian: str) -> None:
    """Decode the raw trace headers of inlines ``rows`` into the per-field variables and CDP X/Y."""
    n_b, n_xl = live.shape
    fields = decode_trace_headers(raw_headers.reshape(n_b * n_xl, TRACE_HEADER_SIZE), endian)
    x, y = scaled_coordinates(fields)
    dead = ~live.reshape(-1)
    x[dead] = np.nan
    y[dead] = np.nan
    fields.update(cdp_x=x, cdp_y=y)
    for name, values in fields.items():
        writers[name].write_region((rows.start, 0), values.reshape(n_b, n_xl))


def ingest(source: str | os.PathLike, store: str | os.PathLike, *, il_byte: int = 189, xl_byte: int = 193,
           chunks=None, memory_limit: str | int = "1GB", progress: bool = False, overwrite: bool = False,
           sample_unit: str = "ms", compression: str = DEFAULT_COMPRESSION, shards: bool = True) -> Path:
    """Convert the post-stack SEG-Y ``source`` into the survey store ``store``; return its path.

    ``shards`` (default True): ``amplitude`` is stored with Zarr v3 sharding, one shard file per
    chunk column (``ci x cx x`` the whole trace, or the sample window the memory bound allows) holding
    its ``chunks``-shaped chunks; readers still see (and dask still splits by) ``chunks``. False: one
    file per chunk.

    The store appears under its final name only once complete; an interrupted run leaves
    only a hidden temporary that the next run removes. The source is opened read-only.
    """
    compressor(compression)  # validate before any work
    if sample_unit not in ("ms", "m"):
        raise ValueError(f"sample_unit must be 'ms' or 'm', got {sample_unit!r}")
    limit = parse_bytes(memory_limit)
    layout = probe(source)
    geom = scan(layout, il_byte, xl_byte)
    n_il, n_xl = geom.shape
    shape = (n_il, n_xl, layout.n_samples)
    chunks = resolve_chunks(chunks, shape)
    header_rows = _header_rows(chunks[0], n_il, n_xl, limit)
    plan = plan_columns(shape, chunks, layout.trace_size, limit,
                        fixed=geom.trace_index.nbytes + header_rows * n_xl * HEADER_BYTES_PER_TRACE)
    final, tmp = prepare_target(store, overwrite)
    group = create_schema(tmp, inlines=geom.inlines, crosslines=geom.crosslines, samples=layout.samples,
                          sample_unit=sample_unit, chunks=chunks, trace_index=geom.trace_index,
                          attrs=store_attrs(layout, geom, il_byte, xl_byte, sample_unit), compression=compression,
                          header_rows=header_rows,
                          shards=(chunks[0], chunks[1], chunks[2] * -(-plan.window // chunks[2])) if shards else None)
    columns = _Columns(layout, geom, plan, ChunkWriter(group["amplitude"]))
    inexact = 0
    bar = tqdm(total=layout.tracecount * layout.trace_size, unit="B", unit_scale=True,
               desc=f"ingest {layout.path.name}", disable=not progress)
    header_writers = {name: ChunkWriter(group[name]) for name in ("cdp_x", "cdp_y", *FIELD_BY_VARIABLE)}

    def finish(rows: slice, headers: np.ndarray, futures: list) -> None:
        # runs on the main thread while the workers go on with the next group of bands
        nonlocal inexact
        for fut in futures:
            nbytes, n_inexact, lo, hi = fut.result()
            bar.update(nbytes)
            inexact += n_inexact
            live_range[0], live_range[1] = min(live_range[0], lo), max(live_range[1], hi)
        _write_header_rows(header_writers, rows, headers, geom.trace_index[rows] >= 0, layout.endian)

    live_range = [np.inf, -np.inf]
    pool = ThreadPoolExecutor(max_workers=plan.workers, thread_name_prefix="seiscore-ingest")
    try:
        pending = None
        for rows in range(0, n_il, header_rows):
            rows = slice(rows, min(rows + header_rows, n_il))
            headers = np.zeros((rows.stop - rows.start, n_xl, TRACE_HEADER_SIZE), dtype=np.uint8)
            futures = [pool.submit(columns.run, band, xs, ss, headers, rows.start)
                       for band in plan.bands(rows) for xs, ss in plan.columns()]
            if pending is not None:
                finish(*pending)
            pending = rows, headers, futures
            del headers, futures
        finish(*pending)
        del pending
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error: drop queued columns, finish running ones
        columns.close()
    bar.close()
    if inexact:
        warnings.warn(f"{layout.path}: {inexact} samples of format {layout.format} ({layout.format_name}) are not "
                      f"exactly representable as float32; the store holds the nearest float32", stacklevel=2)
        group.attrs["inexact_samples"] = int(inexact)
    if np.isfinite(live_range).all():  # NaN samples (IEEE files) or no live trace: leave the range unknown
        group.attrs.update({AMPLITUDE_MIN_ATTR: live_range[0], AMPLITUDE_MAX_ATTR: live_range[1]})
    group.attrs[COMPLETE_ATTR] = True
    return publish(tmp, final)
