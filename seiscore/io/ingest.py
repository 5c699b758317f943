"""SEG-Y -> survey store, streaming chunk column by chunk column under a memory bound.

Steps: probe the layout; propose the (inline, crossline) grid of a regular file from its first line
and last trace (:func:`~seiscore.io.geometry.guess_regular`), or scan every trace's numbers for any
other file; create ``amplitude`` under a temporary name; split the cube into chunk columns (``ci``
inlines x ``cx`` crosslines x a sample window, see :mod:`seiscore.io.plan`) and let a pool of threads
(one per core) read each column's traces in runs into an L2-sized buffer, decode them straight into a
chunk-major block (:mod:`seiscore.io.kernels` for IEEE / IBM samples), Blosc-compress the chunks and
write the shard files directly (:mod:`seiscore.io.chunk_writer`). Meanwhile the main thread creates the
other variables, then decodes each finished band's trace headers into the per-field variables, checking
a proposed grid trace by trace (a mismatch restarts with the full scan). Finally the store is flagged
complete, consolidated and renamed into place.
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

from seiscore.core.safety import check_write_target

from . import textual
from .chunk_writer import ChunkWriter
from .geometry import Geometry, SegyLayout, guess_regular, probe, sample_count_mismatch, scan
from .headers import FIELD_BY_BYTE, FIELD_BY_VARIABLE, TRACE_FIELDS, TRACE_HEADER_SIZE, header_field_rows
from .location import is_remote
from .locks import store_lock
from .os_errors import removed_on_failure, writing
from .plan import PLANNED_SHARE, ColumnPlan, parse_bytes, plan_columns, resolve_chunks
from .segy_read import SCAN_BLOCK_BYTES, ColumnStats, TraceReader
from .store import (
    AMPLITUDE_MAX_ATTR,
    AMPLITUDE_MIN_ATTR,
    COMPLETE_ATTR,
    DEFAULT_COMPRESSION,
    FILL_VALUE,
    HEADER_CHUNK_BANDS,
    compressor,
    create_amplitude,
    create_variables,
    prepare_target,
    publish,
    temp_path,
)

SCALAR_VARIABLE = "header_source_group_scalar"  # byte 71, applies to CDP X/Y (bytes 181/185)
SAMPLE_COUNT_VARIABLE = "header_trace_sample_count"  # byte 115


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def source_name(layout: SegyLayout) -> str:
    """How the store names its source: the resolved local path, or the URL of a remote file."""
    return str(layout.path) if is_remote(layout.path) else str(Path(layout.path).resolve())


def extended_text(layout: SegyLayout) -> list[str]:
    """The extended textual header records decoded for display (one string of 40 lines each)."""
    size = textual.LINE * textual.LINES
    return [textual.decode(layout.ext_raw[k : k + size]) for k in range(0, len(layout.ext_raw), size)]


def store_attrs(layout: SegyLayout, geom: Geometry, il_byte: int, xl_byte: int, sample_unit: str) -> dict:
    """Group attributes that keep the file's headers and layout (enough to rewrite it exactly)."""
    notes = {f"note_{k}": v for k, v in layout.notes.items()}
    return {
        **notes,
        "textual_header": textual.decode(layout.textual_raw),
        "textual_header_encoding": textual.encoding_of(layout.textual_raw),
        "textual_header_b64": _b64(layout.textual_raw),
        "extended_textual_headers_b64": _b64(layout.ext_raw),
        "n_extended_textual_headers": layout.n_ext_headers,
        "extended_textual_headers": extended_text(layout),
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
        "source_file": source_name(layout),
        "source_size": layout.file_size,
        "n_live_traces": geom.n_live,
    }


def scaled_coordinates(fields: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """CDP X/Y in coordinate units: scalar s > 0 multiplies, s < 0 divides by |s|, 0 means 1."""
    s = fields[SCALAR_VARIABLE].astype(np.float64)
    factor = np.where(s > 0, s, np.where(s < 0, -1.0 / np.where(s < 0, s, -1.0), 1.0))
    return fields["header_cdp_x"] * factor, fields["header_cdp_y"] * factor


# per trace of a header group: its decoded fields (int32) + CDP X/Y and their scalar temporaries (the two raw
# band buffers, 2 x 240 bytes per trace of a band, are counted apart)
HEADER_BYTES_PER_TRACE = 4 * len(TRACE_FIELDS) + 10 * 8
FIELD_INDEX = {f.variable: i for i, f in enumerate(TRACE_FIELDS)}


def _header_rows(ci: int, n_il: int, n_xl: int, limit: int) -> int:
    """Inlines per header chunk: up to 4 chunk-rows while their decoded fields use <= 1/4 of the bound."""
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

    def run(self, band: slice, xs: slice, ss: slice, headers: np.ndarray, row0: int) -> tuple[int, ColumnStats]:
        """Write the chunks of column (band, xs, ss) and copy its trace headers into ``headers`` (rows from
        ``row0``); return the trace bytes read (for the progress bar) and what decoding found."""
        reader, block = self._state()
        ci, cx, cs = self.plan.chunks
        idx = self.geom.trace_index[band, xs]
        length = ss.stop - ss.start
        block = block[: -(-length // cs)]
        flat = idx.reshape(-1)
        pos = np.flatnonzero(flat >= 0)
        traces = flat[pos]
        order = np.argsort(traces, kind="stable")
        traces, pos = traces[order], pos[order]
        if pos.size < ci * cx:
            block.fill(FILL_VALUE)  # edge of the grid or dead bins: the chunk padding / dead traces are fill
        elif length % cs:
            block[-1, :, :, length % cs :] = FILL_VALUE
        stats = reader.decode_column(
            traces,
            pos,
            idx.shape,
            ss,
            block,
            self.plan.batch_traces,
            headers=headers if ss.start == 0 else None,
            origin=(band.start - row0, xs.start),
        )
        i, j = band.start // ci, xs.start // cx
        if self.writer.shard_shape is not None:  # one shard file per column: its chunks along the samples
            self.writer.write_shard((i, j, ss.start // self.plan.window), block)
        else:
            k0 = ss.start // cs
            for k in range(block.shape[0]):
                self.writer.write((i, j, k0 + k), block[k])
        return (pos.size * self.layout.trace_size if ss.stop == self.layout.n_samples else 0), stats


def _nan_min(a: float, b: float) -> float:
    return a if a != a else (b if b != b or b < a else a)  # NaN wins: the range is then unknown


def _nan_max(a: float, b: float) -> float:
    return a if a != a else (b if b != b or b > a else a)


class _HeaderBands:
    """Trace headers band by band (one chunk-row of inlines): the workers copy each trace's 240 header bytes
    into one of two raw band buffers (taking turns); :meth:`done` decodes a finished band into the fields of
    its header group (``group_rows`` inlines: one chunk-row of the header variables), checks an unverified
    grid against it, counts traces whose header sample count (byte 115) disagrees with the file's, and writes
    the group once its last band is in."""

    def __init__(self, geom: Geometry, layout: SegyLayout, ci: int, group_rows: int, checked: tuple[str, str]):
        self.geom, self.layout, self.group_rows, self.checked = geom, layout, group_rows, checked
        n_il, n_xl = geom.shape
        self.raw = [np.empty((min(ci, n_il), n_xl, TRACE_HEADER_SIZE), dtype=np.uint8) for _ in range(2)]
        self.fields = np.empty((len(TRACE_FIELDS), min(group_rows, n_il) * n_xl), dtype=np.int32)
        self.writers: dict[str, ChunkWriter] = {}
        self.mismatch = {"traces": 0, "values": set(), "first": None}

    def buffer(self, b: int, band: slice) -> np.ndarray:
        """The raw buffer band number ``b`` is copied into (all zero where a bin has no trace)."""
        raw = self.raw[b % 2][: band.stop - band.start]
        if not np.all(self.geom.trace_index[band] >= 0):
            raw.fill(0)
        return raw

    def done(self, band: slice, raw: np.ndarray, pool: ThreadPoolExecutor | None = None) -> None:
        """Decode the finished ``band``; write its group when complete (the field writes on ``pool`` if given)."""
        n_xl = self.geom.shape[1]
        g0 = band.start - band.start % self.group_rows
        start = (band.start - g0) * n_xl
        header_field_rows(raw.reshape(-1, TRACE_HEADER_SIZE), self.layout.endian, self.fields, start)
        rows = band.stop - band.start
        if not self.geom.verified:
            il, xl = (
                self.fields[FIELD_INDEX[v], start : start + rows * n_xl].reshape(rows, n_xl) for v in self.checked
            )
            if not self.geom.bins_match(band, il, xl):
                raise _GuessRejected(band)
        ns = self.fields[FIELD_INDEX[SAMPLE_COUNT_VARIABLE], start : start + rows * n_xl]
        index = self.geom.trace_index[band].reshape(-1)
        bad = sample_count_mismatch(ns, self.layout.n_samples) & (index >= 0)
        if bad.any():
            m = self.mismatch
            m["traces"] += int(np.count_nonzero(bad))
            m["values"].update(np.unique(ns[bad].astype(np.int64) & 0xFFFF).tolist()[:10])
            first = int(index[bad].min())
            m["first"] = first if m["first"] is None else min(m["first"], first)
        if band.stop == self.geom.shape[0] or (band.stop - g0) == self.group_rows:
            self._write(slice(g0, band.stop), pool)

    def _write(self, rows: slice, pool: ThreadPoolExecutor | None) -> None:
        n_b, n_xl = rows.stop - rows.start, self.geom.shape[1]
        values = self.fields[:, : n_b * n_xl]
        fields = {f.variable: values[i] for i, f in enumerate(TRACE_FIELDS)}  # int32: the writers cast to int16
        x, y = scaled_coordinates(fields)
        dead = self.geom.trace_index[rows].reshape(-1) < 0
        x[dead] = np.nan
        y[dead] = np.nan

        def write(item: tuple[str, np.ndarray]) -> None:
            self.writers[item[0]].write_region((rows.start, 0), item[1].reshape(n_b, n_xl))

        items = [*fields.items(), ("cdp_x", x), ("cdp_y", y)]
        if pool is None:
            for item in items:
                write(item)
        else:
            list(pool.map(write, items))


class _GuessRejected(Exception):
    """A trace's header numbers contradict the grid :func:`guess_regular` proposed: scan and start again."""


def ingest(
    source: str | os.PathLike,
    store: str | os.PathLike,
    *,
    il_byte: int = 189,
    xl_byte: int = 193,
    chunks=None,
    memory_limit: str | int = "1GB",
    progress: bool = False,
    overwrite: bool = False,
    sample_unit: str = "ms",
    compression: str = DEFAULT_COMPRESSION,
    shards: bool = True,
    lock_wait_s: float | None = 0.0,
) -> Path:
    """Convert the post-stack SEG-Y ``source`` into the survey store ``store``; return its path.

    ``shards`` (default True): ``amplitude`` is stored with Zarr v3 sharding, one shard file per
    chunk column (``ci x cx x`` the whole trace, or the sample window the memory bound allows) holding
    its ``chunks``-shaped chunks; readers still see (and dask still splits by) ``chunks``. False: one
    file per chunk.

    A file that looks like a full regular grid from its first line and last trace is converted
    in one pass over the traces, every trace's inline/crossline numbers checked against that grid
    as its header is copied (:func:`~seiscore.io.geometry.guess_regular`); any other file, or one
    that fails the check, is scanned first (:func:`~seiscore.io.geometry.scan`: one more pass).

    The store appears under its final name only once complete; it is built under a hidden temporary name
    that is removed when ingest fails or is interrupted (a killed run leaves it for the next run to remove).
    The store's lock (:mod:`seiscore.io.locks`) is held throughout: another writer is waited for up to
    ``lock_wait_s`` seconds (None: without limit). The source is opened read-only.
    """
    compressor(compression)  # validate before any work
    if sample_unit not in ("ms", "m"):
        raise ValueError(f"sample_unit must be 'ms' or 'm', got {sample_unit!r}")
    limit = parse_bytes(memory_limit)
    layout = probe(source)
    options = dict(
        store=store,
        il_byte=il_byte,
        xl_byte=xl_byte,
        chunks=chunks,
        limit=limit,
        progress=progress,
        overwrite=overwrite,
        sample_unit=sample_unit,
        compression=compression,
        shards=shards,
    )
    # where it may write, before anything (its lock file included) is created beside the store
    check_write_target(store, what="store", roots=None, protected=[("source SEG-Y", source)])
    tmp = temp_path(store)  # local: the sibling; a store at a URL is built in a local temporary folder
    with store_lock(store, wait_s=lock_wait_s), removed_on_failure(tmp), writing(tmp):
        geom = guess_regular(layout, il_byte, xl_byte, buffer_bytes=_scan_buffer(limit))
        if geom is not None:
            try:
                return _convert(layout, geom, **options)
            except _GuessRejected:
                pass  # an irregular file that starts and ends like a regular one: scan it (the temporary is replaced)
        return _convert(layout, scan(layout, il_byte, xl_byte, buffer_bytes=_scan_buffer(limit)), **options)


def _scan_buffer(limit: int) -> int:
    """Read buffer per scan thread: 8 MB, or less under a small memory bound."""
    return max(2**16, min(SCAN_BLOCK_BYTES, limit // 16))


def _convert(
    layout: SegyLayout,
    geom: Geometry,
    *,
    store: str | os.PathLike,
    il_byte: int,
    xl_byte: int,
    chunks,
    limit: int,
    progress: bool,
    overwrite: bool,
    sample_unit: str,
    compression: str,
    shards: bool,
) -> Path:
    """Write the store for ``layout`` on the grid ``geom`` (raises _GuessRejected when an unverified grid
    turns out wrong: the temporary store is then left for the next attempt to replace)."""
    n_il, n_xl = geom.shape
    shape = (n_il, n_xl, layout.n_samples)
    chunks = resolve_chunks(chunks, shape, remote=is_remote(store))
    header_rows = _header_rows(chunks[0], n_il, n_xl, int(limit * PLANNED_SHARE))
    plan = plan_columns(
        shape,
        chunks,
        layout.trace_size,
        limit,
        fixed=geom.trace_index.nbytes
        + header_rows * n_xl * HEADER_BYTES_PER_TRACE
        + 2 * chunks[0] * n_xl * TRACE_HEADER_SIZE,
    )
    final, tmp = prepare_target(store, overwrite, protected=[("source SEG-Y", layout.path)])
    group = create_amplitude(
        tmp,
        shape=shape,
        chunks=chunks,
        compression=compression,
        attrs=store_attrs(layout, geom, il_byte, xl_byte, sample_unit),
        shards=(chunks[0], chunks[1], chunks[2] * -(-plan.window // chunks[2])) if shards else None,
    )
    amplitude = group["amplitude"]
    columns = _Columns(layout, geom, plan, ChunkWriter(amplitude))
    inexact = 0
    bar = tqdm(
        total=layout.tracecount * layout.trace_size,
        unit="B",
        unit_scale=True,
        desc=f"ingest {layout.name}",
        disable=not progress,
    )
    metadata = {"amplitude": amplitude.metadata}
    checked = (FIELD_BY_BYTE[il_byte].variable, FIELD_BY_BYTE[xl_byte].variable)
    headers = _HeaderBands(geom, layout, chunks[0], header_rows, checked)

    def create_the_rest() -> None:
        # the other variables are created while the workers fill the first columns
        metadata.update(
            create_variables(
                group,
                tmp,
                inlines=geom.inlines,
                crosslines=geom.crosslines,
                samples=layout.samples,
                sample_unit=sample_unit,
                trace_index=geom.trace_index,
                header_rows=header_rows,
            )
        )
        headers.writers.update(
            (name, ChunkWriter.for_metadata(metadata[name], tmp / name))
            for name in ("cdp_x", "cdp_y", *FIELD_BY_VARIABLE)
        )

    def finish(band: slice, raw: np.ndarray, futures: list, last: bool) -> None:
        # on the main thread while the workers go on with the next band (after the last band they have
        # nothing else to do: the last group's header variables are written on the pool)
        nonlocal inexact
        for fut in futures:
            nbytes, stats = fut.result()
            bar.update(nbytes)
            inexact += stats.inexact
            live_range[0], live_range[1] = _nan_min(live_range[0], stats.lo), _nan_max(live_range[1], stats.hi)
        headers.done(band, raw, pool if last else None)

    live_range = [np.inf, -np.inf]
    pool = ThreadPoolExecutor(max_workers=plan.workers, thread_name_prefix="seiscore-ingest")
    try:
        pending = None
        mismatch = headers.mismatch
        for b, band in enumerate(plan.bands()):
            raw = headers.buffer(b, band)
            futures = [pool.submit(columns.run, band, xs, ss, raw, band.start) for xs, ss in plan.columns()]
            if not headers.writers:
                create_the_rest()
            if pending is not None:
                finish(*pending, last=False)
            pending = band, raw, futures
            del raw, futures
        finish(*pending, last=True)
        pending = headers = None  # free the last band and the header buffers before publishing (closures see None)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error: drop queued columns, finish running ones
        columns.close()
        bar.close()  # also when a proposed grid is rejected: the retry opens a bar of its own
    final_attrs = {COMPLETE_ATTR: True}
    if mismatch["traces"]:
        final_attrs["sample_count_disagreement"] = record = {
            "traces": mismatch["traces"],
            "trace_header_counts": sorted(mismatch["values"])[:10],
            "first_trace": mismatch["first"],
            "binary_header_count": layout.n_samples,
            "used": "binary header (byte 3221): it agrees with the file size",
        }
        warnings.warn(
            f"{layout.path}: {record['traces']} traces declare {record['trace_header_counts']} samples in their "
            f"headers (byte 115, first trace {record['first_trace']}); the binary header's {layout.n_samples} "
            f"(byte 3221) agrees with the file size and is used",
            stacklevel=3,
        )
    if inexact:
        warnings.warn(
            f"{layout.path}: {inexact} samples of format {layout.format} ({layout.format_name}) are not "
            f"exactly representable as float32; the store holds the nearest float32",
            stacklevel=3,
        )
        final_attrs["inexact_samples"] = int(inexact)
    if np.isfinite(live_range).all():  # NaN samples (IEEE files) or no live trace: leave the range unknown
        final_attrs.update({AMPLITUDE_MIN_ATTR: live_range[0], AMPLITUDE_MAX_ATTR: live_range[1]})
    return publish(tmp, final, metadata, final_attrs)
