"""SEG-Y header layouts: the 240-byte trace header field table and the 400-byte binary header.

The standard trace-header fields (SEG-Y rev 1, segyio's ``TraceField`` names) tile the
240 bytes with no gap, so the per-field integer variables of a store reproduce the raw
header exactly: 4-byte fields are kept as ``int32`` and 2-byte fields as ``int16``
(two's complement, the bit pattern is preserved whatever the field's meaning).
Decoding and encoding are vectorised through a numpy structured dtype.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import segyio

from .kernels import header_fields

TRACE_HEADER_SIZE = 240
BINARY_HEADER_SIZE = 400
TEXTUAL_HEADER_SIZE = 3200
BINARY_HEADER_OFFSET = 3200  # byte offset (0-based) of the binary header in the file
VARIABLE_PREFIX = "header_"


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name)
    return name.lower().replace("__", "_")


@dataclass(frozen=True)
class HeaderField:
    """One trace-header field: segyio name, 1-based byte position and size in bytes."""

    segyio_name: str
    byte: int
    size: int

    @property
    def variable(self) -> str:
        """Name of the store variable holding this field, e.g. ``header_cdp_x``."""
        return VARIABLE_PREFIX + _snake(self.segyio_name)

    @property
    def dtype(self) -> np.dtype:
        """The field's integer type: int32 for 4-byte fields, int16 for 2-byte ones."""
        return np.dtype(np.int32 if self.size == 4 else np.int16)


def _field_table() -> tuple[HeaderField, ...]:
    members = sorted((v, k) for k, v in vars(segyio.TraceField).items() if isinstance(v, int))
    fields = []
    for (byte, name), nxt in zip(members, [b for b, _ in members[1:]] + [TRACE_HEADER_SIZE + 1]):
        fields.append(HeaderField(name, byte, nxt - byte))
    assert sum(f.size for f in fields) == TRACE_HEADER_SIZE and fields[0].byte == 1
    return tuple(fields)


TRACE_FIELDS: tuple[HeaderField, ...] = _field_table()
FIELD_BY_BYTE = {f.byte: f for f in TRACE_FIELDS}
FIELD_BY_VARIABLE = {f.variable: f for f in TRACE_FIELDS}


def field_at(byte: int, what: str = "header byte") -> HeaderField:
    """The field starting at 1-based ``byte``; ValueError naming ``what`` otherwise."""
    try:
        return FIELD_BY_BYTE[int(byte)]
    except KeyError:
        raise ValueError(
            f"{what} {byte} is not the first byte of a standard trace-header field (e.g. 189/193, 9/21 or 5/17)"
        ) from None


def trace_header_dtype(endian: str) -> np.dtype:
    """Structured dtype of one 240-byte trace header in ``endian`` ('big' or 'little') byte order."""
    e = ">" if endian == "big" else "<"
    return np.dtype([(f.variable, f"{e}i{f.size}") for f in TRACE_FIELDS])


_OFFSETS = np.array([f.byte - 1 for f in TRACE_FIELDS], dtype=np.int64)
_SIZES = np.array([f.size for f in TRACE_FIELDS], dtype=np.int64)


def header_field_rows(raw: np.ndarray, endian: str, out: np.ndarray | None = None, start: int = 0) -> np.ndarray:
    """``raw`` uint8 (n, 240) -> int32 ``(len(TRACE_FIELDS), n)``, row f the values of ``TRACE_FIELDS[f]``
    (one pass over the headers, :func:`seiscore.io.kernels.header_fields`). ``out``: a C-contiguous int32
    ``(len(TRACE_FIELDS), >= start + n)`` array to fill from column ``start`` (returned whole)."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1, TRACE_HEADER_SIZE)
    if out is None:
        out = np.empty((len(TRACE_FIELDS), start + raw.shape[0]), dtype=np.int32)
    return header_fields(raw, _OFFSETS, _SIZES, endian == "big", out, start)


def decode_trace_headers(raw: np.ndarray, endian: str) -> dict[str, np.ndarray]:
    """``raw`` uint8 (n, 240) -> {variable name: native int array (n,)} (2-byte fields as int16)."""
    rows = header_field_rows(raw, endian)
    return {f.variable: row if f.size == 4 else row.astype(np.int16) for f, row in zip(TRACE_FIELDS, rows)}


def encode_trace_headers(fields: dict[str, np.ndarray], endian: str) -> np.ndarray:
    """Inverse of :func:`decode_trace_headers`: uint8 (n, 240)."""
    n = len(next(iter(fields.values())))
    rec = np.empty(n, dtype=trace_header_dtype(endian))
    for f in TRACE_FIELDS:
        rec[f.variable] = fields[f.variable]
    return rec.view(np.uint8).reshape(n, TRACE_HEADER_SIZE)


BINARY_FORMAT_BYTE = 3225  # 1-based file position of the sample format code (2 bytes)


def binary_header_fields() -> list[tuple[str, int, int]]:
    """(segyio name, 1-based file byte, size) of the documented binary-header fields."""
    sizes = {3201: 4, 3205: 4, 3209: 4, 3261: 4, 3265: 4, 3269: 4, 3289: 4, 3293: 4, 3501: 1, 3502: 1}
    seen, out = set(), []
    for name, byte in sorted(
        ((k, v) for k, v in vars(segyio.BinField).items() if isinstance(v, int)), key=lambda kv: kv[1]
    ):
        if byte in seen or name.startswith("Unassigned"):
            continue
        seen.add(byte)
        out.append((name, byte, sizes.get(byte, 2)))
    return out


def decode_binary_header(raw: bytes, endian: str) -> dict[str, int]:
    """The 400-byte binary header as {segyio name: int}."""
    if len(raw) != BINARY_HEADER_SIZE:
        raise ValueError(f"binary header must be {BINARY_HEADER_SIZE} bytes, got {len(raw)}")
    order = "big" if endian == "big" else "little"
    out = {}
    for name, byte, size in binary_header_fields():
        start = byte - BINARY_HEADER_OFFSET - 1
        out[name] = int.from_bytes(raw[start : start + size], order, signed=size > 1)
    return out


def patch_binary_format(raw: bytes, fmt: int, endian: str) -> bytes:
    """Copy of the binary header with its sample format code replaced by ``fmt``."""
    start = BINARY_FORMAT_BYTE - BINARY_HEADER_OFFSET - 1
    code = int(fmt).to_bytes(2, "big" if endian == "big" else "little", signed=True)
    return raw[:start] + code + raw[start + 2 :]
