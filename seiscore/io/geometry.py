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
from .headers import (
    BINARY_FORMAT_BYTE,
    BINARY_HEADER_OFFSET,
    BINARY_HEADER_SIZE,
    TEXTUAL_HEADER_SIZE,
    TRACE_HEADER_SIZE,
    decode_binary_header,
    field_at,
)
from .os_errors import check_regular_file
from .samples import FORMATS, check_format, raw_dtype
from .segy_read import SCAN_BLOCK_BYTES, header_words

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
        """Byte offset of the first trace: textual + binary header + extended textual headers."""
        return TEXTUAL_HEADER_SIZE + BINARY_HEADER_SIZE + TEXTUAL_HEADER_SIZE * self.n_ext_headers

    @property
    def sample_size(self) -> int:
        """Bytes per sample of the file's format."""
        return raw_dtype(self.format, self.endian).itemsize

    @property
    def trace_size(self) -> int:
        """Bytes per trace: 240-byte header + samples."""
        return TRACE_HEADER_SIZE + self.n_samples * self.sample_size

    @property
    def binary_header(self) -> dict[str, int]:
        """The decoded binary file header (field name -> value)."""
        return decode_binary_header(self.binary_raw, self.endian)

    @property
    def format_name(self) -> str:
        """Name of the sample format, e.g. ``4-byte IBM float``."""
        return FORMATS[self.format][1]


def _format_code(raw: bytes, endian: str) -> int:
    start = BINARY_FORMAT_BYTE - 1
    return int.from_bytes(raw[start : start + 2], endian, signed=True)


def detect_endian(path: Path, head: bytes) -> str:
    """Byte order from the binary header's sample format code (valid in only one order)."""
    for endian in ("big", "little"):
        if _format_code(head, endian) in FORMATS:
            return endian
    big, little = _format_code(head, "big"), _format_code(head, "little")
    raise SegyError(
        f"{path} is not a SEG-Y file this reader supports: the sample format code at byte "
        f"{BINARY_FORMAT_BYTE} reads {big} (big-endian) / {little} (little-endian); "
        f"supported codes are {sorted(FORMATS)}"
    )


def probe(path: str | os.PathLike) -> SegyLayout:
    """Open ``path`` with segyio and describe its layout; SegyError for non-SEG-Y or truncated files."""
    path = check_regular_file(path)
    size = path.stat().st_size
    head_len = TEXTUAL_HEADER_SIZE + BINARY_HEADER_SIZE
    if size < head_len + TRACE_HEADER_SIZE:
        raise SegyError(
            f"{path} is not a SEG-Y file: {size} bytes is shorter than the 3600-byte file header plus one trace header"
        )
    with open(path, "rb") as fh:
        head = fh.read(head_len)
    endian = detect_endian(path, head)
    check_format(_format_code(head, endian), str(path))
    try:
        with segyio.open(str(path), "r", ignore_geometry=True, endian=endian) as f:
            n_ext, tracecount, samples = int(f.ext_headers), int(f.tracecount), np.asarray(f.samples, np.float64)
            fmt = int(f.bin[segyio.BinField.Format])
    except RuntimeError as exc:
        raise SegyError(
            f"{path} is not a readable SEG-Y file (truncated, or traces of different lengths?): segyio says: {exc}"
        ) from None
    fmt = check_format(fmt, str(path))
    with open(path, "rb") as fh:
        fh.seek(head_len)
        ext_raw = fh.read(TEXTUAL_HEADER_SIZE * n_ext)
        if not len(samples):  # segyio then reads the file as header-only traces
            fh.seek(head_len + SAMPLE_COUNT_BYTE - 1)
            first = int.from_bytes(fh.read(2), endian, signed=True)
            raise SegyError(
                f"{path}: the binary header gives 0 samples per trace (byte 3221, and byte 3269 of "
                f"SEG-Y rev 2); the first trace header says {first} (byte {SAMPLE_COUNT_BYTE})"
            )
    layout = SegyLayout(
        path=path,
        endian=endian,
        format=fmt,
        n_samples=len(samples),
        samples=samples,
        n_ext_headers=n_ext,
        tracecount=tracecount,
        file_size=size,
        textual_raw=head[:TEXTUAL_HEADER_SIZE],
        binary_raw=head[BINARY_HEADER_OFFSET:head_len],
        ext_raw=ext_raw,
    )
    expected = layout.data_offset + tracecount * layout.trace_size
    if tracecount < 1 or expected != size:
        raise SegyError(
            f"{path} is truncated or has traces of different lengths: {size} bytes, expected "
            f"{expected} for {tracecount} traces of {layout.n_samples} samples"
        )
    return layout


@dataclass(frozen=True)
class Geometry:
    """The (inline, crossline) grid of a post-stack file and where each trace sits on it."""

    inlines: np.ndarray  # sorted unique inline numbers (int64)
    crosslines: np.ndarray  # sorted unique crossline numbers (int64)
    trace_index: np.ndarray = field(repr=False)  # (n_il, n_xl) int64, original trace number or -1
    sorting: str  # "inline" | "crossline" | "unsorted"
    #: False for a grid proposed by :func:`guess_regular` from a few headers: whoever reads the traces
    #: must check every trace's numbers (:meth:`bins_match`) before trusting it
    verified: bool = True

    @property
    def shape(self) -> tuple[int, int]:
        """(number of inlines, number of crosslines)."""
        return len(self.inlines), len(self.crosslines)

    @property
    def live_mask(self) -> np.ndarray:
        """(n_il, n_xl) boolean mask of the bins that hold a trace."""
        return self.trace_index >= 0

    @property
    def n_live(self) -> int:
        """Number of bins that hold a trace."""
        return int(np.count_nonzero(self.trace_index >= 0))

    def bins_match(self, rows: slice, il: np.ndarray, xl: np.ndarray, ns: np.ndarray, n_samples: int) -> bool:
        """True when the header numbers ``il``, ``xl`` of the traces on grid rows ``rows`` (arrays
        ``(rows, n_xl)``, dead bins ignored) are those of their bins, and their sample counts ``ns``
        (byte 115) fit the file's ``n_samples``: what :func:`scan` checks, for the rows of a
        :func:`guess_regular` grid."""
        ok = (il == self.inlines[rows, None]) & (xl == self.crosslines[None, :]) & _sample_counts_fit(ns, n_samples)
        return bool(np.all(ok | (self.trace_index[rows] < 0)))


def _sample_counts_fit(ns: np.ndarray, n_samples: int) -> np.ndarray:
    """Trace-header sample counts that agree with the file's: equal, or 0 (not filled in)."""
    return (ns == n_samples) | (ns == 0)


def _number_words(il_byte: int, xl_byte: int) -> list[tuple[int, int]]:
    """(byte, size) of the inline, crossline and sample-count header words that place a trace."""
    return [
        (il_byte, field_at(il_byte, "inline byte").size),
        (xl_byte, field_at(xl_byte, "crossline byte").size),
        (SAMPLE_COUNT_BYTE, 2),
    ]


def _grouped(slow: np.ndarray, fast: np.ndarray) -> bool:
    """Traces come line by line: ``slow`` numbers monotone, ``fast`` numbers strictly monotone (one
    direction) within each line."""
    ds, df = np.diff(slow), np.diff(fast)
    within = df[ds == 0]
    return bool((np.all(ds >= 0) or np.all(ds <= 0)) and (np.all(within > 0) or np.all(within < 0)))


def _sorting(il: np.ndarray, xl: np.ndarray) -> str:
    """ "inline" when the file holds its traces inline by inline (numbers ascending or descending),
    "crossline" when crossline by crossline, else "unsorted"."""
    if len(il) < 2 or _grouped(il, xl):
        return "inline"
    return "crossline" if _grouped(xl, il) else "unsorted"


GUESS_TRACES = 2**16  # traces read at most to find the first line of a regular file


def guess_regular(
    layout: SegyLayout, il_byte: int = 189, xl_byte: int = 193, buffer_bytes: int = SCAN_BLOCK_BYTES
) -> Geometry | None:
    """The full grid a regular file proposes from its first line and last trace, or None.

    Post-stack files are nearly always a full rectangle of bins written line by line: trace ``t``
    of an inline-sorted file with ``n`` traces per line sits at inline ``i0 + (t // n) di`` and
    crossline ``x0 + (t % n) dx`` (crossline-sorted: the roles swap). The first line (up to the
    first change of the slow number), the trace count and the last trace are enough to propose
    that grid without reading every header; the returned geometry is marked unverified, and ingest
    checks every trace against it (:meth:`Geometry.bins_match`) as it copies the headers, falling
    back to :func:`scan` on the first mismatch. Returns None (use :func:`scan`) when the file does
    not evidently follow the pattern.
    """
    fields = _number_words(il_byte, xl_byte)
    ntr = layout.tracecount
    if il_byte == xl_byte or ntr < 2:
        return None
    n = min(ntr, 256)
    while True:  # read up to the first change of line: the first line and one more trace, or give up
        il, xl, ns = (w.astype(np.int64) for w in header_words(layout, fields, stop=n, buffer_bytes=buffer_bytes))
        slow = il if il[1] == il[0] else xl
        if np.any(slow != slow[0]) or n == ntr or n >= GUESS_TRACES:
            break
        n = min(ntr, 4 * n, GUESS_TRACES)
    if il[1] == il[0] and xl[1] != xl[0]:
        slow, fast, sorting = il, xl, "inline"
    elif xl[1] == xl[0] and il[1] != il[0]:
        slow, fast, sorting = xl, il, "crossline"
    else:
        return None
    change = np.flatnonzero(slow != slow[0])
    n_fast = int(change[0]) if change.size else (ntr if n == ntr else 0)
    if n_fast < 2 or ntr % n_fast:
        return None
    n_slow = ntr // n_fast
    d_fast = int(fast[1] - fast[0])
    d_slow = int(slow[n_fast] - slow[0]) if n_slow > 1 else 1
    t = np.arange(n)
    if not (
        np.array_equal(fast, fast[0] + d_fast * (t % n_fast))
        and np.array_equal(slow, slow[0] + d_slow * (t // n_fast))
        and np.all(_sample_counts_fit(ns, layout.n_samples))
    ):
        return None
    last = [int(w[0]) for w in header_words(layout, fields, start=ntr - 1, buffer_bytes=buffer_bytes)]
    if (
        last[:2]
        != ([slow[0] + d_slow * (n_slow - 1), fast[0] + d_fast * (n_fast - 1)][:: 1 if sorting == "inline" else -1])
    ):
        return None
    grid = np.arange(ntr, dtype=np.int64).reshape(n_slow, n_fast)[
        :: 1 if d_slow > 0 else -1, :: 1 if d_fast > 0 else -1
    ]
    slow_numbers = np.sort(slow[0] + d_slow * np.arange(n_slow, dtype=np.int64))
    fast_numbers = np.sort(fast[0] + d_fast * np.arange(n_fast, dtype=np.int64))
    if sorting == "inline":
        inlines, crosslines, trace_index = slow_numbers, fast_numbers, np.ascontiguousarray(grid)
    else:
        inlines, crosslines, trace_index = fast_numbers, slow_numbers, np.ascontiguousarray(grid.T)
    return Geometry(inlines=inlines, crosslines=crosslines, trace_index=trace_index, sorting=sorting, verified=False)


def scan(layout: SegyLayout, il_byte: int = 189, xl_byte: int = 193, buffer_bytes: int = SCAN_BLOCK_BYTES) -> Geometry:
    """Read the inline/crossline numbers of every trace and build the grid (``buffer_bytes``: read
    buffer of each of the two scanning threads).

    Raises PreStackNotSupportedError when a bin holds traces of several offsets,
    DuplicateTraceError when it holds repeated traces, SegyError for traces whose header
    sample count disagrees with the file's.
    """
    field_at(il_byte, "inline byte"), field_at(xl_byte, "crossline byte")
    if il_byte == xl_byte:
        raise ValueError(f"inline and crossline byte positions must differ, both are {il_byte}")
    path = layout.path
    # one streaming pass over the file (segyio's per-trace attribute reads cost ~7x more CPU)
    il, xl, ns = header_words(layout, _number_words(il_byte, xl_byte), buffer_bytes=buffer_bytes)
    bad = np.flatnonzero(~_sample_counts_fit(ns, layout.n_samples))
    if bad.size:
        raise SegyError(
            f"{path}: inconsistent trace lengths: trace {bad[0]} declares {ns[bad[0]]} samples "
            f"in its header (byte {SAMPLE_COUNT_BYTE}), the file has {layout.n_samples} per trace"
        )
    del ns
    inlines, ii = np.unique(il, return_inverse=True)
    crosslines, xi = np.unique(xl, return_inverse=True)
    inlines, crosslines = inlines.astype(np.int64), crosslines.astype(np.int64)
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
                f"with offsets {offsets[a]} and {offsets[b]}); pre-stack files are not supported yet by the survey "
                f"store (2-D shot records go into a shot store: seiscore.data.shots.shots_from_segy)"
            )
        raise DuplicateTraceError(
            f"{path}: {dup.size} duplicate inline/crossline pairs, e.g. traces {a} and {b} both at inline "
            f"{il[a]} / crossline {xl[a]} (inline byte {il_byte}, crossline byte {xl_byte}; wrong byte positions?)"
        )
    if len(inlines) * len(crosslines) > 50 * len(il) + 1000:
        raise GeometryError(
            f"{path}: {len(il)} traces spread over a {len(inlines)} x {len(crosslines)} grid "
            f"(inline byte {il_byte}, crossline byte {xl_byte}); are the byte positions right?"
        )
    trace_index = np.full(len(inlines) * len(crosslines), -1, dtype=np.int64)
    trace_index[flat] = np.arange(len(il))
    return Geometry(
        inlines=inlines,
        crosslines=crosslines,
        trace_index=trace_index.reshape(len(inlines), len(crosslines)),
        sorting=_sorting(il, xl),
    )
