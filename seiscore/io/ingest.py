"""SEG-Y -> survey store, streaming band by band under a memory bound.

Steps: probe the layout and scan the (inline, crossline) grid (a few header bytes per
trace); create the store schema under a temporary name; for every band of ``ci`` inlines
read its traces region by region (whole chunks, see :mod:`seiscore.io.plan`), decode the
samples to float32 and hand each region to a writer thread (Blosc compression runs there,
overlapping the next read); decode the band's trace headers into the per-field variables;
finally flag the store complete and rename it into place.
"""

from __future__ import annotations

import base64
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import textual
from .errors import SegyError
from .geometry import Geometry, SegyLayout, probe, scan
from .headers import TRACE_FIELDS, TRACE_HEADER_SIZE, decode_trace_headers
from .plan import parse_bytes, plan_regions, resolve_chunks
from .segy_read import TraceReader
from .store import COMPLETE_ATTR, create_schema, prepare_target, publish

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


def _write_band_headers(group, band: slice, raw_headers: np.ndarray, live: np.ndarray, endian: str) -> None:
    n_b, n_xl = live.shape
    fields = decode_trace_headers(raw_headers.reshape(n_b * n_xl, TRACE_HEADER_SIZE), endian)
    x, y = scaled_coordinates(fields)
    dead = ~live.reshape(-1)
    x[dead] = np.nan
    y[dead] = np.nan
    group["cdp_x"][band] = x.reshape(n_b, n_xl)
    group["cdp_y"][band] = y.reshape(n_b, n_xl)
    for f in TRACE_FIELDS:
        group[f.variable][band] = fields[f.variable].reshape(n_b, n_xl)


def ingest(source: str | os.PathLike, store: str | os.PathLike, *, il_byte: int = 189, xl_byte: int = 193,
           chunks=None, memory_limit: str | int = "1GB", progress: bool = False, overwrite: bool = False,
           sample_unit: str = "ms") -> Path:
    """Convert the post-stack SEG-Y ``source`` into the survey store ``store``; return its path.

    The store appears under its final name only once complete; an interrupted run leaves
    only a hidden temporary that the next run removes. The source is opened read-only.
    """
    if sample_unit not in ("ms", "m"):
        raise ValueError(f"sample_unit must be 'ms' or 'm', got {sample_unit!r}")
    limit = parse_bytes(memory_limit)
    layout = probe(source)
    geom = scan(layout, il_byte, xl_byte)
    n_il, n_xl = geom.shape
    shape = (n_il, n_xl, layout.n_samples)
    chunks = resolve_chunks(chunks, shape)
    band_header_bytes = chunks[0] * n_xl * TRACE_HEADER_SIZE * 3 + chunks[0] * n_xl * 8 * 4
    plan = plan_regions(shape, chunks, layout.trace_size, limit, fixed=geom.trace_index.nbytes + band_header_bytes)
    final, tmp = prepare_target(store, overwrite)
    group = create_schema(tmp, inlines=geom.inlines, crosslines=geom.crosslines, samples=layout.samples,
                          sample_unit=sample_unit, chunks=chunks, trace_index=geom.trace_index,
                          attrs=store_attrs(layout, geom, il_byte, xl_byte, sample_unit))
    amp = group["amplitude"]
    inexact = 0
    bar = tqdm(total=layout.tracecount * layout.trace_size, unit="B", unit_scale=True,
               desc=f"ingest {layout.path.name}", disable=not progress)
    with TraceReader(layout) as reader, ThreadPoolExecutor(max_workers=1) as writer:
        pending = None
        for band in plan.bands():
            band_idx = geom.trace_index[band]
            headers = np.zeros((band_idx.shape[0], n_xl, TRACE_HEADER_SIZE), dtype=np.uint8)
            for xs, ss in plan.regions():
                idx = band_idx[:, xs]
                region = np.zeros(idx.shape + (ss.stop - ss.start,), dtype=np.float32)
                flat_region, flat_pos = region.reshape(-1, region.shape[2]), np.flatnonzero(idx.reshape(-1) >= 0)
                traces = idx.reshape(-1)[flat_pos]
                order = np.argsort(traces)
                traces, flat_pos = traces[order], flat_pos[order]
                first_window = ss.start == 0
                for k in range(0, traces.size, plan.batch_traces):
                    raw = reader.read_raw(traces[k:k + plan.batch_traces])
                    hdr, values = reader.split(raw, ss)
                    pos = flat_pos[k:k + plan.batch_traces]
                    flat_region[pos] = values
                    if layout.format in _INEXACT_FORMATS:
                        inexact += _count_inexact(reader, raw, ss)
                    if first_window:
                        il_local, xl_local = np.divmod(pos, idx.shape[1])
                        headers[il_local, xl_local + xs.start] = hdr
                    if first_window and ss.stop == layout.n_samples:
                        bar.update(raw.nbytes)
                    del raw, hdr, values
                if pending is not None:
                    pending.result()
                pending = writer.submit(amp.__setitem__, (band, xs, ss), region)
                del region, flat_region
            _write_band_headers(group, band, headers, band_idx >= 0, layout.endian)
        if pending is not None:
            pending.result()
    bar.close()
    if inexact:
        warnings.warn(f"{layout.path}: {inexact} samples of format {layout.format} ({layout.format_name}) are not "
                      f"exactly representable as float32; the store holds the nearest float32", stacklevel=2)
        group.attrs["inexact_samples"] = int(inexact)
    group.attrs[COMPLETE_ATTR] = True
    return publish(tmp, final)


def _count_inexact(reader: TraceReader, raw: np.ndarray, window: slice) -> int:
    lay = reader.layout
    n = raw.shape[0]
    src = raw[:, TRACE_HEADER_SIZE:].view(reader._dtype).reshape(n, lay.n_samples)[:, window]
    return int(np.count_nonzero(src.astype(np.float32).astype(src.dtype) != src))
