"""Summaries of SEG-Y files and survey stores for ``seis info``: geometry, format, sizes, headers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .geometry import describe_mismatch, probe, scan
from .headers import TRACE_FIELDS
from .location import fs_for, is_remote
from .segy_read import header_words
from .store import _looks_like_store, is_complete, open_survey

_KEY_FIELDS = (
    "header_inline_3d",
    "header_crossline_3d",
    "header_cdp_x",
    "header_cdp_y",
    "header_source_group_scalar",
    "header_trace_sample_count",
    "header_trace_sample_interval",
    "header_delay_recording_time",
    "header_offset",
)


def _ranges(values: dict[str, np.ndarray]) -> dict[str, list[int]]:
    return {k: [int(v.min()), int(v.max())] for k, v in values.items() if v.size}


def describe_segy(path: Path | str, il_byte: int = 189, xl_byte: int = 193) -> dict:
    """Geometry, sample format, sizes and a summary of the key trace headers of a SEG-Y file (local or at an
    fsspec URL), with any disagreement of the trace headers' sample counts with the binary header's."""
    layout = probe(path)
    geom = scan(layout, il_byte, xl_byte)
    key = [f for f in TRACE_FIELDS if f.variable in _KEY_FIELDS]
    words = header_words(layout, [(f.byte, f.size) for f in key])
    fields = {f.variable: w if f.size == 4 else w.astype(np.int16) for f, w in zip(key, words)}
    from .ingest import extended_text

    return {
        "kind": "SEG-Y file",
        "path": str(path),
        "size_bytes": layout.file_size,
        "sample_format": f"{layout.format} ({layout.format_name})",
        "endian": layout.endian,
        "traces": layout.tracecount,
        "samples": layout.n_samples,
        "sample_range": [float(layout.samples[0]), float(layout.samples[-1])],
        "extended_textual_headers": layout.n_ext_headers,
        "extended_textual_header_first_lines": [t.splitlines()[0] for t in extended_text(layout)][:4] or None,
        "sample_count_disagreement": describe_mismatch(fields["header_trace_sample_count"], layout.n_samples),
        **{f"note_{k}": v for k, v in layout.notes.items()},
        "inlines": [int(geom.inlines[0]), int(geom.inlines[-1]), len(geom.inlines)],
        "crosslines": [int(geom.crosslines[0]), int(geom.crosslines[-1]), len(geom.crosslines)],
        "live_traces": geom.n_live,
        "missing_traces": int(geom.trace_index.size - geom.n_live),
        "sorting": geom.sorting,
        "header_ranges": _ranges(fields),
        "textual_header_first_lines": layout.textual_raw and _first_lines(layout.textual_raw),
    }


def _first_lines(raw: bytes, n: int = 4) -> list[str]:
    from .textual import decode

    return [line for line in decode(raw).splitlines()[:n]]


def describe_store(path: Path | str) -> dict:
    """Shape, chunks, sample format, sizes and a summary of the key trace headers of a survey store."""
    ds = open_survey(path, require_complete=False)
    amp = ds["amplitude"]
    live = ds["live_mask"].values
    fields = {k: ds[k].values[live] for k in _KEY_FIELDS if k in ds}
    a = ds.attrs
    return {
        "kind": "survey store",
        "path": str(path),
        "complete": is_complete(path),
        "dims": dict(amp.sizes),
        "chunks": list(amp.encoding.get("chunks") or amp.data.chunksize),
        "amplitude_bytes": int(amp.size * 4),
        "size_on_disk_bytes": _du(path),
        "sample_format": f"{a.get('sample_format')} ({a.get('sample_format_name')})",
        "endian": a.get("endian"),
        "sample_range": [float(ds["sample"][0]), float(ds["sample"][-1])],
        "sample_unit": ds["sample"].attrs.get("units"),
        "inlines": [int(ds["inline"][0]), int(ds["inline"][-1]), int(ds.sizes["inline"])],
        "crosslines": [int(ds["crossline"][0]), int(ds["crossline"][-1]), int(ds.sizes["crossline"])],
        "live_traces": int(live.sum()),
        "missing_traces": int(live.size - live.sum()),
        "sorting": a.get("sorting"),
        "source_file": a.get("source_file"),
        "processing": a.get("processing"),
        "extended_textual_headers": a.get("n_extended_textual_headers"),
        "sample_count_disagreement": a.get("sample_count_disagreement"),
        **{k: v for k, v in a.items() if k.startswith("note_")},
        "header_ranges": _ranges(fields),
        "textual_header_first_lines": a.get("textual_header", "").splitlines()[:4],
    }


def _du(path: Path | str) -> int:
    if is_remote(path):
        fs, key = fs_for(str(path))
        return int(fs.du(key))
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def describe(path: str | os.PathLike, il_byte: int = 189, xl_byte: int = 193) -> dict:
    """Summary dict of a SEG-Y file or a survey store (dispatching on what ``path`` is); a SEG-Y file may be
    at an fsspec URL (``s3://...``)."""
    if is_remote(path):
        fs, key = fs_for(str(path))
        if not fs.exists(key):
            raise FileNotFoundError(f"no such file or store: {path}")
        if fs.isdir(key):
            if not _looks_like_store(str(path)):
                raise ValueError(f"{path} is a prefix but not a Zarr survey store")
            return describe_store(str(path))
        return describe_segy(str(path), il_byte, xl_byte)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or store: {path}")
    if path.is_dir():
        if not _looks_like_store(path):
            raise ValueError(f"{path} is a folder but not a Zarr survey store")
        return describe_store(path)
    return describe_segy(path, il_byte, xl_byte)


def format_summary(info: dict) -> str:
    """Human-readable lines of a :func:`describe` result."""
    lines = []
    for key, value in info.items():
        if key == "header_ranges":
            lines.append("header ranges (min..max over live traces):")
            lines += [f"  {k.removeprefix('header_'):28s} {lo} .. {hi}" for k, (lo, hi) in value.items()]
        elif key == "textual_header_first_lines":
            lines.append("textual header:")
            lines += [f"  {line}" for line in value]
        elif key == "sample_count_disagreement" and value:
            lines.append(
                f"{key:26s} {value['traces']} traces declare {value['trace_header_counts']} samples (byte 115, "
                f"first trace {value['first_trace']}); used the binary header's {value['binary_header_count']} "
                f"(byte 3221), which agrees with the file size"
            )
        elif key in ("inlines", "crosslines"):
            lines.append(f"{key:26s} {value[0]} .. {value[1]} ({value[2]})")
        elif value is not None:
            lines.append(f"{key:26s} {value}")
    return "\n".join(lines)
