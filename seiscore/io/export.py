"""Survey store -> SEG-Y: original headers, original trace order, original (or chosen) sample format.

The file is rebuilt from the store alone: the raw textual, extended textual and binary
headers kept as attributes, the trace headers re-encoded from the per-field integer
variables (they tile all 240 bytes) and the amplitudes encoded in the sample format.
Each trace goes back to its original position (``trace_index``), so an unprocessed
IEEE-float store exports byte for byte identical to its source. Output is written under a
temporary name and renamed when whole, with a sidecar marking it as the product's
(:mod:`seiscore.core.safety`): an existing file is replaced only when this product wrote it.

A destination at an fsspec URL (``s3://bucket/key.sgy``, ...) is written the same way to a local
temporary file (under ``scratch``: the first local data root of ``SEIS_DATA_ROOTS``, else the system's
temporary folder) and then uploaded in one ``put_file`` (a multipart upload for a large file): an object
store shows the object only once the upload completes, so nothing half-written ever appears under the
name. A sidecar object ``.NAME.seiscore-owned`` (size and ETag, :func:`seiscore.core.safety.mark_owned`)
marks the export as the product's; ``overwrite`` replaces only such an object.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

import numpy as np
import zarr
from tqdm.auto import tqdm

from seiscore.core.safety import check_replaceable, check_write_target, mark_owned, replace_file

from . import textual
from .errors import IncompleteStoreError, StoreError
from .headers import TRACE_FIELDS, TRACE_HEADER_SIZE, encode_trace_headers, patch_binary_format
from .location import fs_for, is_remote, zarr_store
from .location import name as location_name
from .os_errors import writing
from .plan import parse_bytes, plan_regions, runs
from .samples import IBM_FLOAT, IEEE_FLOAT, check_format, encode, raw_dtype
from .store import is_complete, run_parallel

FORMAT_CHOICES = {"original": None, "ieee": IEEE_FLOAT, "ibm": IBM_FLOAT}


def _output_format(choice: str, original: int) -> int:
    if choice not in FORMAT_CHOICES:
        raise ValueError(f"format must be one of {', '.join(FORMAT_CHOICES)}, got {choice!r}")
    return check_format(FORMAT_CHOICES[choice] or original)


def file_headers(attrs: dict, fmt: int) -> bytes:
    """Textual + binary + extended textual headers to write for sample format ``fmt``."""
    text = base64.b64decode(attrs["textual_header_b64"])
    if attrs.get("processing"):
        text = textual.add_processing_line(text, str(attrs["processing"]))
    binary = base64.b64decode(attrs["binary_header_b64"])
    if fmt != attrs["sample_format"]:
        binary = patch_binary_format(binary, fmt, attrs["endian"])
    return text + binary + base64.b64decode(attrs.get("extended_textual_headers_b64", ""))


def export(
    store: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    format: str = "original",
    overwrite: bool = False,
    memory_limit: str | int = "1GB",
    progress: bool = False,
    scratch: str | os.PathLike | None = None,
) -> Path | str:
    """Write the survey store ``store`` as the SEG-Y file ``dest`` (a local path or an fsspec URL); return ``dest``.

    ``format``: "original" (the source's sample format), "ieee" (format 5) or "ibm" (format 1).
    Integer formats are rounded to the nearest integer and clipped to the type's range.
    ``overwrite`` replaces a SEG-Y file this product exported, never another file, the store or its source.
    ``scratch``: local folder for the temporary file of a remote ``dest`` (see the module docstring).
    """
    if is_remote(dest):
        return _export_remote(store, str(dest), format, overwrite, memory_limit, progress, scratch)
    src = store if is_remote(store) else Path(store)
    if not is_complete(src):
        raise IncompleteStoreError(
            f"store {src} is missing or not marked complete; finish writing it and call "
            f"seiscore.io.mark_complete before exporting"
        )
    g = zarr.open_group(zarr_store(src, read_only=True), mode="r")
    attrs = dict(g.attrs)
    dest = check_write_target(
        dest,
        what="SEG-Y file",
        roots=None,
        protected=[("store being exported", src), ("SEG-Y source of the store", attrs.get("source_file"))],
    )
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists; pass overwrite=True (--overwrite) to replace it")
    if "binary_header_b64" not in attrs:
        raise StoreError(f"store {src} has no SEG-Y headers (not made by seiscore ingest)")
    endian, fmt = attrs["endian"], _output_format(format, attrs["sample_format"])
    amp = g["amplitude"]
    n_il, n_xl, ns = amp.shape
    trace_index = g["trace_index"][:]
    ntr = int(attrs["tracecount"])
    if np.count_nonzero(trace_index >= 0) != ntr or (ntr and trace_index.max() != ntr - 1):
        raise StoreError(f"store {src}: trace_index does not number {ntr} traces 0..{ntr - 1}")
    head = file_headers(attrs, fmt)
    tsize = TRACE_HEADER_SIZE + ns * raw_dtype(fmt, endian).itemsize
    limit = parse_bytes(memory_limit)
    header_rows = _header_rows(g[TRACE_FIELDS[0].variable].chunks[0], amp.chunks[0], n_xl, limit)
    # fixed: trace_index + the header rows held (fields read, encoded and sliced: ~4 x 240 bytes a trace)
    plan = plan_regions(
        amp.shape,
        amp.chunks,
        tsize + ns * 4,
        limit,
        fixed=trace_index.nbytes + header_rows * n_xl * 4 * TRACE_HEADER_SIZE,
    )
    tmp = check_replaceable(dest.with_name(f".{dest.name}.seiscore-tmp"), "temporary SEG-Y file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=len(head) + ntr * tsize, unit="B", unit_scale=True, desc=f"export {dest.name}", disable=not progress
    )
    # O_TRUNC: a temporary left by a killed export is emptied before anything is written
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with zarr.config.set({"async.concurrency": plan.zarr_concurrency}), writing(tmp):
            _write_traces(fd, g, plan, trace_index, head, tsize, fmt, endian, bar, header_rows)
            os.fsync(fd)
    except BaseException:  # failed (disk full included) or interrupted: no temporary left behind
        os.close(fd)
        tmp.unlink(missing_ok=True)
        bar.close()
        raise
    os.close(fd)
    bar.close()
    return replace_file(tmp, dest)


def scratch_dir(scratch: str | os.PathLike | None = None) -> Path:
    """Local folder for temporary files of remote writes: ``scratch``, else the first local data root
    (``SEIS_DATA_ROOTS``), else the system's temporary folder."""
    if scratch is not None:
        return Path(scratch)
    from seiscore.core.settings import get_settings

    for root in get_settings().data_roots or []:
        if not is_remote(str(root)) and Path(root).is_dir():
            return Path(root)
    return Path(tempfile.gettempdir())


def _export_remote(store, url: str, format: str, overwrite: bool, memory_limit, progress: bool, scratch) -> str:
    """Export to a local temporary file, then upload it to ``url`` in one ``put_file`` (see the module docstring).

    The rules of :mod:`seiscore.core.safety` apply as to a local file: an existing object is replaced only with
    ``overwrite`` and only when the product wrote it (its sidecar object, :func:`~seiscore.core.safety.mark_owned`,
    records its size and ETag, written once the upload completed)."""
    src = store if is_remote(store) else Path(store)
    if not is_complete(src):
        raise IncompleteStoreError(
            f"store {src} is missing or not marked complete; finish writing it and call "
            f"seiscore.io.mark_complete before exporting"
        )
    source_file = zarr.open_group(zarr_store(src, read_only=True), mode="r").attrs.get("source_file")
    check_write_target(
        url,
        what="SEG-Y file",
        roots=None,
        protected=[("store being exported", src), ("SEG-Y source of the store", source_file)],
    )
    fs, key = fs_for(url)
    if fs.exists(key) and not overwrite:
        raise FileExistsError(f"{url} already exists; pass overwrite=True (--overwrite) to replace it")
    folder = Path(tempfile.mkdtemp(prefix=".seiscore-export-", dir=scratch_dir(scratch)))
    try:
        local = folder / location_name(url)
        export(store, local, format=format, memory_limit=memory_limit, progress=progress)
        fs.put_file(str(local), key)
        mark_owned(url)
    finally:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    return url


def _header_rows(chunk_rows: int, band_rows: int, n_xl: int, limit: int) -> int:
    """Inlines of trace headers held at once: whole header chunks (``chunk_rows`` inlines, each read once, as
    each read of a store on object storage is a request), or one band of ``band_rows`` when whole chunks would
    take more than a quarter of ``limit``."""
    rows = chunk_rows + band_rows  # a band may straddle two header chunks
    return rows if rows * n_xl * 4 * TRACE_HEADER_SIZE <= limit // 4 else band_rows


def _write_traces(
    fd, g, plan, trace_index, head: bytes, tsize: int, fmt: int, endian: str, bar, header_rows: int
) -> None:
    """Write the file header and every trace, region by region (see :mod:`seiscore.io.plan`); the trace headers
    are read ``header_rows`` inlines at a time (:func:`_header_rows`)."""
    amp = g["amplitude"]
    n_il, ns = amp.shape[0], amp.shape[2]
    bps = raw_dtype(fmt, endian).itemsize
    ntr = int(np.count_nonzero(trace_index >= 0))
    names = [f.variable for f in TRACE_FIELDS]
    chunk_rows = g[names[0]].chunks[0]
    _pwrite_all(fd, head, 0)  # the headers first: a temporary is recognisable as a SEG-Y from the start
    os.ftruncate(fd, len(head) + ntr * tsize)
    bar.update(len(head))
    held, encoded = slice(0, 0), None
    for band in plan.bands():
        idx_band = trace_index[band]
        if band.stop > held.stop:  # read the header rows from the band's start: whole chunks when they fit
            stop = -(-band.stop // chunk_rows) * chunk_rows if header_rows > band.stop - band.start else band.stop
            held = slice(band.start, min(n_il, stop, band.start + header_rows))
            values = run_parallel(lambda name: g[name][held].reshape(-1), names)
            encoded = encode_trace_headers(dict(zip(names, values)), endian)
            encoded = encoded.reshape((held.stop - held.start, trace_index.shape[1], TRACE_HEADER_SIZE))
            del values
        headers = encoded[band.start - held.start : band.stop - held.start]
        for xs, ss in plan.regions():
            idx = idx_band[:, xs].reshape(-1)
            live = np.flatnonzero(idx >= 0)
            order = np.argsort(idx[live])
            traces, pos = idx[live][order], live[order]
            values = amp[band, xs, ss].reshape(-1, ss.stop - ss.start)[pos]
            samples = encode(values, fmt, endian)
            del values
            if ss.start == 0:
                hdr = headers[:, xs].reshape(-1, TRACE_HEADER_SIZE)[pos]
                if ss.stop == ns:
                    block = np.concatenate([hdr, samples.view(np.uint8).reshape(len(pos), -1)], axis=1)
                    _write_runs(fd, traces, block, len(head), tsize, 0)
                else:
                    _write_runs(fd, traces, hdr, len(head), tsize, 0)
                    _write_runs(fd, traces, samples, len(head), tsize, TRACE_HEADER_SIZE)
            else:
                _write_runs(fd, traces, samples, len(head), tsize, TRACE_HEADER_SIZE + ss.start * bps)
            bar.update(samples.nbytes + (len(pos) * TRACE_HEADER_SIZE if ss.start == 0 else 0))


def _write_runs(fd: int, traces: np.ndarray, rows: np.ndarray, data_offset: int, tsize: int, within: int) -> None:
    """pwrite ``rows`` (one per sorted trace number) at each trace's offset + ``within``."""
    rows = np.ascontiguousarray(rows)
    width = rows.nbytes // max(1, rows.shape[0])
    k = 0
    for start, count in runs(traces, max_len=max(1, traces.size)):
        base = data_offset + start * tsize + within
        if width == tsize:  # whole traces: one contiguous write
            _pwrite_all(fd, rows[k : k + count].data, base)
        else:
            for j in range(count):
                _pwrite_all(fd, rows[k + j].data, base + j * tsize)
        k += count


def _pwrite_all(fd: int, data, offset: int) -> None:
    """``pwrite`` all of ``data``: a short write (a full disk returns one before it raises ENOSPC) is continued,
    so a full disk raises instead of leaving a file with missing traces."""
    view = memoryview(data).cast("B")
    while view.nbytes:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
