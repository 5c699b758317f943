"""Scan a post-stack SEG-Y file: layout (format, byte order, sizes) and the (inline, crossline) grid.

:func:`probe` reads the file header (and the extended textual headers) itself, from a local file or an
fsspec URL (:mod:`seiscore.io.segy_source`), following the readers in common use (segyio):

- samples per trace: the binary header's (byte 3221, unsigned; SEG-Y rev 2's 4-byte count at byte 3269
  when byte 3221 is 0, or when the revision is >= 2 and it is set). It must agree with the file size
  (``data offset + traces x trace size``); trace headers (byte 115) that say otherwise do not matter for
  reading and are counted by ingest (recorded in the store, shown by ``seis info``);
- sample interval: the binary header's (byte 3217) and the first trace header's (byte 117) when they
  agree or only one is set; otherwise 4 ms, with a warning naming the value used;
- extended textual headers: the count at bytes 3505-3506; -1 means records up to the one holding the
  ``((SEG: EndText))`` stanza (``((EndText))`` accepted too);
- refused with a message naming them: sample format 4, rev-2 trace-header extensions (bytes 3507-3510)
  and rev-2 data trailer stanzas (bytes 3529-3532).

Only a handful of header fields are read for the whole file (inline, crossline, offset and
trace sample count), so the scan costs a few bytes per trace whatever the file size. Traces land on
the grid ``inline x crossline`` of the sorted unique header numbers; bins with no trace are marked
dead in ``live_mask`` (never shifted).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
from .samples import DEFINED_FORMATS, FORMATS, check_format, raw_dtype
from .segy_read import SCAN_BLOCK_BYTES, header_words
from .segy_source import ByteSource, open_source

OFFSET_BYTE = 37
SAMPLE_COUNT_BYTE = 115
INTERVAL_BYTE = 117
FALLBACK_INTERVAL_US = 4000  # what segyio and most readers assume when the headers give no interval
MAX_EXT_RECORDS = 1000  # extended textual header records searched for the end stanza (count -1)
END_TEXT = re.compile(r"\(\(\s*(?:SEG\s*:\s*)?EndText\s*\)\)", re.IGNORECASE)


@dataclass(frozen=True)
class SegyLayout:
    """Where everything lives in a SEG-Y file with fixed-length traces."""

    path: Path | str  # a local path, or the fsspec URL of a remote file
    endian: str  # "big" | "little"
    format: int
    n_samples: int
    samples: np.ndarray = field(repr=False)  # sample positions (ms or m), as segyio computes them
    n_ext_headers: int
    tracecount: int
    file_size: int
    textual_raw: bytes = field(repr=False)
    binary_raw: bytes = field(repr=False)
    ext_raw: bytes = field(repr=False)
    #: what probe had to decide for the user (e.g. the sample interval it assumed): {key: sentence}
    notes: dict = field(default_factory=dict, repr=False, compare=False)

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

    @property
    def name(self) -> str:
        """The file's name (last path or URL segment)."""
        return str(self.path).rstrip("/").rsplit("/", 1)[-1]

    def open(self) -> ByteSource:
        """A reader of the file's bytes (close it after use)."""
        return open_source(self.path, self.file_size if isinstance(self.path, str) else None)


def _int(raw: bytes, byte: int, size: int, endian: str, signed: bool = True, base: int = BINARY_HEADER_OFFSET) -> int:
    """The integer at 1-based file byte ``byte`` of a header starting at file byte ``base``."""
    a = byte - 1 - base
    return int.from_bytes(raw[a : a + size], endian, signed=signed)


def _format_code(raw: bytes, endian: str) -> int:
    return _int(raw, BINARY_FORMAT_BYTE, 2, endian, base=0)


def detect_endian(path, head: bytes) -> str:
    """Byte order from the binary header's sample format code (valid in only one order)."""
    for endian in ("big", "little"):
        if _format_code(head, endian) in DEFINED_FORMATS:
            return endian
    big, little = _format_code(head, "big"), _format_code(head, "little")
    raise SegyError(
        f"{path} is not a SEG-Y file this reader supports: the sample format code at byte "
        f"{BINARY_FORMAT_BYTE} reads {big} (big-endian) / {little} (little-endian); "
        f"supported codes are {sorted(FORMATS)}"
    )


def sample_count(binary: bytes, endian: str) -> int:
    """Samples per trace from the binary header (segyio's rule): byte 3221 (unsigned), or rev 2's 4-byte count
    at byte 3269 when byte 3221 is 0 or the revision (byte 3501) is >= 2, and that count is positive."""
    samples = _int(binary, 3221, 2, endian, signed=False)
    ext = _int(binary, 3269, 4, endian)
    revision = binary[3501 - 1 - BINARY_HEADER_OFFSET]
    if ext > 0 and (samples == 0 or revision >= 2):
        return ext
    return samples


def sample_interval(binary: bytes, first_trace: bytes, endian: str, path) -> tuple[float, str | None]:
    """(interval in microseconds, a warning when it had to be assumed): the binary header's (byte 3217) and the
    first trace header's (byte 117) when they agree or only one is positive, else 4000 us (segyio's rule)."""
    bindt = _int(binary, 3217, 2, endian)
    trdt = _int(first_trace, INTERVAL_BYTE, 2, endian, base=0)
    if bindt > 0 and trdt > 0 and bindt != trdt:
        why = f"the binary header (byte 3217) says {bindt} us and the first trace header (byte 117) {trdt} us"
    elif bindt <= 0 and trdt <= 0:
        why = f"it is {bindt} in the binary header (byte 3217) and {trdt} in the first trace header (byte 117)"
    else:
        return float(bindt if bindt > 0 else trdt), None
    return float(FALLBACK_INTERVAL_US), (
        f"{path}: no usable sample interval ({why}); using {FALLBACK_INTERVAL_US / 1000:g} ms "
        f"({FALLBACK_INTERVAL_US} us): check the sample axis"
    )


def _has_end_stanza(record: bytes) -> bool:
    return any(END_TEXT.search(record.decode(enc, errors="replace")) for enc in ("cp037", "latin-1"))


def extended_textual_count(src: ByteSource, binary: bytes, endian: str) -> int:
    """Number of 3200-byte extended textual header records after the binary header (bytes 3505-3506; -1: up to
    and including the record with the ``((SEG: EndText))`` stanza)."""
    declared = _int(binary, 3505, 2, endian)
    head = TEXTUAL_HEADER_SIZE + BINARY_HEADER_SIZE
    if declared >= 0:
        return declared
    if declared != -1:
        raise SegyError(
            f"{src.path}: the binary header declares {declared} extended textual headers (bytes 3505-3506); "
            f"expected a count >= 0, or -1 for records up to a ((SEG: EndText)) stanza"
        )
    most = min(MAX_EXT_RECORDS, max(0, (src.size - head) // TEXTUAL_HEADER_SIZE))
    step = 16
    for first in range(0, most, step):
        n = min(step, most - first)
        block = src.read(head + first * TEXTUAL_HEADER_SIZE, n * TEXTUAL_HEADER_SIZE)
        for k in range(n):
            if _has_end_stanza(block[k * TEXTUAL_HEADER_SIZE : (k + 1) * TEXTUAL_HEADER_SIZE]):
                return first + k + 1
    raise SegyError(
        f"{src.path}: the binary header says extended textual headers run up to a ((SEG: EndText)) stanza "
        f"(-1 at bytes 3505-3506), but none of the {most} records after the binary header holds one"
    )


def _refuse_rev2_extensions(path, binary: bytes, endian: str) -> None:
    """Trace-header extensions and data trailers of SEG-Y rev 2 (fields unassigned before rev 2)."""
    if binary[3501 - 1 - BINARY_HEADER_OFFSET] < 2:
        return
    extra = _int(binary, 3507, 4, endian)
    if extra > 0:
        raise SegyError(
            f"{path}: SEG-Y rev 2 trace-header extensions are not supported: the binary header declares up to "
            f"{extra} additional 240-byte trace headers per trace (bytes 3507-3510)"
        )
    trailers = _int(binary, 3529, 4, endian)
    if trailers != 0:
        raise SegyError(
            f"{path}: SEG-Y rev 2 data trailer stanzas are not supported: the binary header declares "
            f"{trailers} (bytes 3529-3532)"
        )


def probe(path: str | os.PathLike) -> SegyLayout:
    """Describe the layout of the SEG-Y file ``path`` (a local path or an fsspec URL such as ``s3://...``);
    SegyError for non-SEG-Y, unsupported or truncated files. Warns when the sample interval is assumed."""
    with open_source(path) as src:
        return _probe(src)


def _probe(src: ByteSource) -> SegyLayout:
    path, size = src.path, src.size
    head_len = TEXTUAL_HEADER_SIZE + BINARY_HEADER_SIZE
    if size < head_len + TRACE_HEADER_SIZE:
        raise SegyError(
            f"{path} is not a SEG-Y file: {size} bytes is shorter than the 3600-byte file header plus one trace header"
        )
    head = src.read(0, head_len)
    endian = detect_endian(path, head)
    fmt = check_format(_format_code(head, endian), str(path))
    binary = head[BINARY_HEADER_OFFSET:head_len]
    _refuse_rev2_extensions(path, binary, endian)
    n_ext = extended_textual_count(src, binary, endian)
    data_offset = head_len + TEXTUAL_HEADER_SIZE * n_ext
    if data_offset + TRACE_HEADER_SIZE > size:
        raise SegyError(
            f"{path} is truncated: {size} bytes hold no trace after the file header and the {n_ext} extended "
            f"textual headers the binary header declares (bytes 3505-3506)"
        )
    ext_raw = src.read(head_len, TEXTUAL_HEADER_SIZE * n_ext)
    first = src.read(data_offset, TRACE_HEADER_SIZE)
    trace_ns = _int(first, SAMPLE_COUNT_BYTE, 2, endian, signed=False, base=0)
    n_samples = sample_count(binary, endian)
    if n_samples == 0:
        raise SegyError(
            f"{path}: the binary header gives 0 samples per trace (byte 3221, and byte 3269 of "
            f"SEG-Y rev 2); the first trace header says {trace_ns} (byte {SAMPLE_COUNT_BYTE})"
        )
    trace_size = TRACE_HEADER_SIZE + n_samples * raw_dtype(fmt, endian).itemsize
    tracecount, rest = divmod(size - data_offset, trace_size)
    if tracecount < 1 or rest:
        hint = ""
        other = TRACE_HEADER_SIZE + trace_ns * raw_dtype(fmt, endian).itemsize
        if trace_ns and trace_ns != n_samples and (size - data_offset) % other == 0:
            hint = (
                f"; the first trace header's {trace_ns} samples (byte {SAMPLE_COUNT_BYTE}) would fit the file size: "
                f"is the binary header's count (byte 3221) wrong?"
            )
        raise SegyError(
            f"{path} is truncated or has traces of different lengths: {size} bytes, expected a whole number of "
            f"{trace_size}-byte traces of {n_samples} samples (the binary header's count, byte 3221) after "
            f"{data_offset} bytes of file headers{hint}"
        )
    dt_us, note = sample_interval(binary, first, endian, path)
    notes = {}
    if note:
        warnings.warn(note, stacklevel=3)
        notes["sample_interval"] = note
    scalar = _int(first, 215, 2, endian, base=0)
    factor = 1 if scalar == 0 else (1.0 / scalar if scalar < 0 else scalar)
    t0 = _int(first, 109, 2, endian, base=0) * abs(factor)
    samples = np.arange(n_samples) * (dt_us / 1000.0) + t0
    return SegyLayout(
        path=path,
        endian=endian,
        format=fmt,
        n_samples=n_samples,
        samples=samples,
        n_ext_headers=n_ext,
        tracecount=int(tracecount),
        file_size=size,
        textual_raw=head[:TEXTUAL_HEADER_SIZE],
        binary_raw=binary,
        ext_raw=ext_raw,
        notes=notes,
    )


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

    def bins_match(self, rows: slice, il: np.ndarray, xl: np.ndarray) -> bool:
        """True when the header numbers ``il``, ``xl`` of the traces on grid rows ``rows`` (arrays
        ``(rows, n_xl)``, dead bins ignored) are those of their bins: what :func:`scan` establishes,
        checked for the rows of a :func:`guess_regular` grid."""
        ok = (il == self.inlines[rows, None]) & (xl == self.crosslines[None, :])
        return bool(np.all(ok | (self.trace_index[rows] < 0)))


def sample_count_mismatch(ns: np.ndarray, n_samples: int) -> np.ndarray:
    """Mask of trace-header sample counts (byte 115, read as unsigned) that disagree with the file's
    ``n_samples``: neither equal nor 0 (not filled in)."""
    ns = np.asarray(ns).astype(np.int64) & 0xFFFF
    return (ns != n_samples) & (ns != 0)


def describe_mismatch(ns: np.ndarray, n_samples: int, positions: np.ndarray | None = None) -> dict | None:
    """What the store records when trace headers disagree with the binary header's sample count (None when
    none does): traces concerned, their counts (up to 10 distinct), the first one, and what was used."""
    bad = sample_count_mismatch(ns, n_samples)
    count = int(np.count_nonzero(bad))
    if not count:
        return None
    values = np.unique(np.asarray(ns).astype(np.int64)[bad] & 0xFFFF)
    first = int(np.flatnonzero(bad)[0] if positions is None else positions[bad].min())
    return {
        "traces": count,
        "trace_header_counts": [int(v) for v in values[:10]],
        "first_trace": first,
        "binary_header_count": int(n_samples),
        "used": "binary header (byte 3221): it agrees with the file size",
    }


def _number_words(il_byte: int, xl_byte: int) -> list[tuple[int, int]]:
    """(byte, size) of the inline and crossline header words that place a trace."""
    return [(il_byte, field_at(il_byte, "inline byte").size), (xl_byte, field_at(xl_byte, "crossline byte").size)]


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
        il, xl = (w.astype(np.int64) for w in header_words(layout, fields, stop=n, buffer_bytes=buffer_bytes))
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
        np.array_equal(fast, fast[0] + d_fast * (t % n_fast)) and np.array_equal(slow, slow[0] + d_slow * (t // n_fast))
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
    DuplicateTraceError when it holds repeated traces. Trace-header sample counts are not checked
    here: the binary header's count, which agrees with the file size, is the file's (see :func:`probe`).
    """
    field_at(il_byte, "inline byte"), field_at(xl_byte, "crossline byte")
    if il_byte == xl_byte:
        raise ValueError(f"inline and crossline byte positions must differ, both are {il_byte}")
    path = layout.path
    # one streaming pass over the file (segyio's per-trace attribute reads cost ~7x more CPU)
    il, xl = header_words(layout, _number_words(il_byte, xl_byte), buffer_bytes=buffer_bytes)
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
