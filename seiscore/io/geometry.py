"""Scan a post-stack SEG-Y file: layout (format, byte order, sizes) and the (inline, crossline) grid.

Only a handful of header fields are read for the whole file (inline, crossline, offset and
trace sample count through segyio's ``attributes``), so the scan costs a few bytes per
trace whatever the file size. Traces land on the grid ``inline x crossline`` of the sorted
unique header numbers; bins with no trace are marked dead in ``live_mask`` (never shifted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import segyio

from .errors import DuplicateTraceError, GeometryError, PreStackNotSupportedError, SegyError
from .headers import (BINARY_FORMAT_BYTE, BINARY_HEADER_OFFSET, BINARY_HEADER_SIZE, TEXTUAL_HEADER_SIZE,
                      TRACE_HEADER_SIZE, decode_binary_header, field_at)
from .samples import FORMATS, check_format, raw_dtype
from .segy_read import header_words

OFFSET_BYTE = 37
SAMPLE_COUNT_BYTE = 115


@dataclass(frozen=True)
class SegyLayout:
    """Where everything lives in a SEG-Y file with fixed-length traces."""

    path: Path
    endian: str  # "big" | "little"
    format: int
    n_samples: int
    samples: np.ndarray = field(repr=False)  # sample positions (ms or m) from segyio
    n_ext_headers: int
    tracecount: int
    file_size: int
    textual_raw: bytes = field(repr=False)
    binary_raw: bytes = field(repr=False)
    ext_raw: bytes = field(repr=False)

    @property
    def data_offset(self) -> int:
        return TEXTUAL_HEADER_SIZE + BINARY_HEADER_SIZE + TEXTUAL_HEADER_SIZE * self.n_ext_headers

    @property
    def sample_size(self) -> int:
        return raw_dtype(self.format, self.endian).itemsize

    @property
    def trace_size(self) -> int:
        return TRACE_HEADER_SIZE + self.n_samples * self.sample_size

    @property
    def binary_header(self) -> dict[str, int]:
        return decode_binary_header(self.binary_raw, self.endian)

    @property
    def format_name(self) -> str:
        return FORMATS[self.format][1]


def _format_code(raw: bytes, endian: str) -> int:
    start = BINARY_FORMAT_BYTE - 1
    return int.from_bytes(raw[start:start + 2], endian, signed=True)


def detect_endian(path: Path, head: bytes) -> str:
    """Byte order from the binary header's sample format code (valid in only one order)."""
    for endian in ("big", "little"):
        if _format_code(head, endian) in FORMATS:
            return endian
    big, little = _format_code(head, "big"), _format_code(head, "little")
    raise SegyError(f"{path} is not a SEG-Y file this reader supports: the sample format code at byte "
                    f"{BINARY_FORMAT_BYTE} reads {big} (big-endian) / {little} (little-endian); "
                    f"supported codes are {sorted(FORMATS)}")


def probe(path: str | os.PathLike) -> SegyLayout:
    """Open ``path`` with segyio and describe its layout; SegyError for non-SEG-Y or truncated files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SEG-Y file not found: {path}")
    size = path.stat().st_size
    head_len = TEXTUAL_HEADER_SIZE + BINARY_HEADER_SIZE
    if size < head_len + TRACE_HEADER_SIZE:
        raise SegyError(f"{path} is not a SEG-Y file: {size} bytes is shorter than the 3600-byte "
                        f"file header plus one trace header")
    with open(path, "rb") as fh:
        head = fh.read(head_len)
    endian = detect_endian(path, head)
    check_format(_format_code(head, endian), str(path))
    try:
        with segyio.open(str(path), "r", ignore_geometry=True, endian=endian) as f:
            n_ext, tracecount, samples = int(f.ext_headers), int(f.tracecount), np.asarray(f.samples, np.float64)
            fmt = int(f.bin[segyio.BinField.Format])
    except RuntimeError as exc:
        raise SegyError(f"{path} is not a readable SEG-Y file (truncated, or traces of different "
                        f"lengths?): segyio says: {exc}") from None
    fmt = check_format(fmt, str(path))
    with open(path, "rb") as fh:
        fh.seek(head_len)
        ext_raw = fh.read(TEXTUAL_HEADER_SIZE * n_ext)
    layout = SegyLayout(path=path, endian=endian, format=fmt, n_samples=len(samples), samples=samples,
                        n_ext_headers=n_ext, tracecount=tracecount, file_size=size,
                        textual_raw=head[:TEXTUAL_HEADER_SIZE], binary_raw=head[BINARY_HEADER_OFFSET:head_len],
                        ext_raw=ext_raw)
    expected = layout.data_offset + tracecount * layout.trace_size
    if tracecount < 1 or expected != size:
        raise SegyError(f"{path} is truncated or has traces of different lengths: {size} bytes, expected "
                        f"{expected} for {tracecount} traces of {layout.n_samples} samples")
    return layout


@dataclass(frozen=True)
class Geometry:
    """The (inline, crossline) grid of a post-stack file and where each trace sits on it."""

    inlines: np.ndarray  # sorted unique inline numbers (int64)
    crosslines: np.ndarray  # sorted unique crossline numbers (int64)
    trace_index: np.ndarray = field(repr=False)  # (n_il, n_xl) int64, original trace number or -1
    sorting: str  # "inline" | "crossline" | "unsorted"

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.inlines), len(self.crosslines)

    @property
    def live_mask(self) -> np.ndarray:
        return self.trace_index >= 0

    @property
    def n_live(self) -> int:
        return int(np.count_nonzero(self.trace_index >= 0))


def _sorting(il: np.ndarray, xl: np.ndarray) -> str:
    if len(il) < 2:
        return "inline"
    dil, dxl = np.diff(il), np.diff(xl)
    if np.all(dil >= 0) and np.all((dil != 0) | (dxl > 0)):
        return "inline"
    if np.all(dxl >= 0) and np.all((dxl != 0) | (dil > 0)):
        return "crossline"
    return "unsorted"


def scan(layout: SegyLayout, il_byte: int = 189, xl_byte: int = 193) -> Geometry:
    """Read the inline/crossline numbers of every trace and build the grid.

    Raises PreStackNotSupportedError when a bin holds traces of several offsets,
    DuplicateTraceError when it holds repeated traces, SegyError for traces whose header
    sample count disagrees with the file's.
    """
    field_at(il_byte, "inline byte"), field_at(xl_byte, "crossline byte")
    if il_byte == xl_byte:
        raise ValueError(f"inline and crossline byte positions must differ, both are {il_byte}")
    path = layout.path
    # one streaming pass over the file (segyio's per-trace attribute reads cost ~7x more CPU)
    il, xl, ns = header_words(layout, [(il_byte, field_at(il_byte).size), (xl_byte, field_at(xl_byte).size),
                                       (SAMPLE_COUNT_BYTE, 2)])
    bad = np.flatnonzero((ns != layout.n_samples) & (ns != 0))
    if bad.size:
        raise SegyError(f"{path}: inconsistent trace lengths: trace {bad[0]} declares {ns[bad[0]]} samples "
                        f"in its header (byte {SAMPLE_COUNT_BYTE}), the file has {layout.n_samples} per trace")
    del ns
    inlines, ii = np.unique(il, return_inverse=True)
    crosslines, xi = np.unique(xl, return_inverse=True)
    flat = ii.astype(np.int64) * len(crosslines) + xi
    order = np.argsort(flat, kind="stable")
    dup = np.flatnonzero(np.diff(flat[order]) == 0)
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        offsets = header_words(layout, [(OFFSET_BYTE, 4)])[0]
        same_bin = flat[order]
        first = same_bin[dup]
        varying = np.unique(first[offsets[order[dup]] != offsets[order[dup + 1]]])
        if varying.size:
            raise PreStackNotSupportedError(
                f"{path} looks pre-stack (traces {a} and {b} share inline {il[a]} / crossline {xl[a]} "
                f"with offsets {offsets[a]} and {offsets[b]}); pre-stack files are not supported yet")
        raise DuplicateTraceError(
            f"{path}: {dup.size} duplicate inline/crossline pairs, e.g. traces {a} and {b} both at inline "
            f"{il[a]} / crossline {xl[a]} (inline byte {il_byte}, crossline byte {xl_byte}; wrong byte positions?)")
    if len(inlines) * len(crosslines) > 50 * len(il) + 1000:
        raise GeometryError(f"{path}: {len(il)} traces spread over a {len(inlines)} x {len(crosslines)} grid "
                            f"(inline byte {il_byte}, crossline byte {xl_byte}); are the byte positions right?")
    trace_index = np.full(len(inlines) * len(crosslines), -1, dtype=np.int64)
    trace_index[flat] = np.arange(len(il))
    return Geometry(inlines=inlines, crosslines=crosslines,
                    trace_index=trace_index.reshape(len(inlines), len(crosslines)), sorting=_sorting(il, xl))
