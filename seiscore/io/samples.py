"""Sample formats of SEG-Y traces: decode raw bytes to float32 and encode back.

IBM System/360 single precision (format 1) is ``(-1)^s * 0.F * 16^(E - 64)`` with a 7-bit
exponent ``E`` and a 24-bit fraction ``F``; every normalised IBM value fits a float32
exactly, so decode -> encode reproduces the original bytes. Integer formats decode
exactly while ``|v| <= 2**24`` (float32's integer range); encoding rounds to the
nearest integer and clips to the type's range.

The SEG-Y rev 2 three-byte integers (format 7: two's complement, ``-2^23 .. 2^23 - 1``; format 15:
unsigned, ``0 .. 2^24 - 1``) have no numpy type: their samples are held as 3-byte void items and
assembled as ``v = b_0 2^16 + b_1 2^8 + b_2`` (bytes in file order, big-endian; reversed for
little-endian files), sign-extended for format 7 (``v - 2^24`` when ``v >= 2^23``). Every value of
both fits a float32 exactly (``|v| <= 2^24``), so they decode and round-trip exactly.
Format 4 (4-byte fixed point with gain, obsolete since rev 1) is refused by name.
"""

from __future__ import annotations

import sys

import numpy as np

from .errors import SegyError
from .kernels import float32_to_ibm

IBM_FLOAT = 1
IEEE_FLOAT = 5
INEXACT_FORMATS = frozenset({2, 6, 9, 10, 12})  # sample types float32 cannot always hold exactly

# SEG-Y sample format code -> (numpy kind+size without byte order, name)
FORMATS: dict[int, tuple[str, str]] = {
    1: ("u4", "4-byte IBM float"),
    2: ("i4", "4-byte signed integer"),
    3: ("i2", "2-byte signed integer"),
    5: ("f4", "4-byte IEEE float"),
    6: ("f8", "8-byte IEEE float"),
    8: ("i1", "1-byte signed integer"),
    9: ("i8", "8-byte signed integer"),
    10: ("u4", "4-byte unsigned integer"),
    11: ("u2", "2-byte unsigned integer"),
    12: ("u8", "8-byte unsigned integer"),
    7: ("V3", "3-byte signed integer"),
    15: ("V3", "3-byte unsigned integer"),
    16: ("u1", "1-byte unsigned integer"),
}
THREE_BYTE = {7: True, 15: False}  # 3-byte integer formats -> signed
#: every code SEG-Y rev 2 defines (supported or not): what tells the byte order of a binary header
DEFINED_FORMATS = frozenset(FORMATS) | {4}
REFUSED = {4: "4-byte fixed point with gain, obsolete since SEG-Y rev 1 and not supported"}


def check_format(fmt: int, what: str = "SEG-Y file") -> int:
    """``fmt`` as an int when it is a supported sample format code; a one-line ``SegyError`` naming ``what``
    otherwise."""
    if int(fmt) in REFUSED:
        raise SegyError(
            f"{what}: sample format code {fmt} ({REFUSED[int(fmt)]}); convert it to IEEE or IBM floats (format 5 or 1)"
        )
    if int(fmt) not in FORMATS:
        known = ", ".join(f"{k} ({v[1]})" for k, v in FORMATS.items())
        raise SegyError(f"{what}: sample format code {fmt} is not supported; supported codes: {known}")
    return int(fmt)


def raw_dtype(fmt: int, endian: str) -> np.dtype:
    """On-disk numpy dtype of one sample of format ``fmt``."""
    code = FORMATS[check_format(fmt)][0]
    if code == "V3":
        return np.dtype("V3")
    order = "|" if code.endswith("1") else (">" if endian == "big" else "<")
    return np.dtype(order + code)


def ibm_to_float32(words: np.ndarray) -> np.ndarray:
    """uint32 IBM words (native order) -> float32 (exact for normalised values)."""
    u = words.astype(np.uint32, copy=False)
    mant = (u & np.uint32(0x00FFFFFF)).astype(np.float64)
    expo = ((u >> np.uint32(24)) & np.uint32(0x7F)).astype(np.int32)
    val = np.ldexp(mant, 4 * (expo - 64) - 24)
    val[(u >> np.uint32(31)).astype(bool)] *= -1.0
    return val.astype(np.float32)


def float_to_ibm(x: np.ndarray) -> np.ndarray:
    """float -> uint32 IBM words (native order), rounding the fraction to nearest even; zeros and NaN -> 0,
    +-inf -> the largest magnitude (the reference of :func:`seiscore.io.kernels.float32_to_ibm`)."""
    x = np.asarray(x, dtype=np.float64)
    m, e = np.frexp(np.abs(x))  # |x| = m 2^e, 0.5 <= m < 1
    e16 = -((-e) // 4)  # ceil(e / 4)
    frac = np.rint(np.ldexp(m, 24 + e - 4 * e16))  # in [2^20, 2^24]
    carry = frac >= 2**24
    frac = np.where(carry, np.rint(frac / 16), frac)
    e16 = e16 + carry
    biased = e16 + 64
    frac = np.where(biased > 127, 0xFFFFFF, frac)
    biased = np.clip(biased, 0, 127)
    finite = np.isfinite(x)
    zero = (x == 0) | (e16 + 64 < 0)
    with np.errstate(invalid="ignore"):
        words = (biased.astype(np.uint32) << np.uint32(24)) | np.where(finite, frac, 0).astype(np.uint32)
    words |= np.signbit(x).astype(np.uint32) << np.uint32(31)
    words[zero & finite] = 0
    words[np.isinf(x)] |= np.uint32(0x7FFFFFFF)  # IBM has no infinity: the largest magnitude
    words[np.isnan(x)] = 0
    return words


def int24_to_int32(raw: np.ndarray, signed: bool, endian: str) -> np.ndarray:
    """3-byte samples (any shape, dtype ``V3``) -> int32 values (see the module docstring)."""
    b = np.ascontiguousarray(raw).view(np.uint8).reshape(raw.shape + (3,)).astype(np.int32)
    hi, lo = (b[..., 0], b[..., 2]) if endian == "big" else (b[..., 2], b[..., 0])
    v = (hi << 16) | (b[..., 1] << 8) | lo
    return (v ^ 0x800000) - 0x800000 if signed else v


def int32_to_int24(values: np.ndarray, endian: str) -> np.ndarray:
    """Integers (any shape, within 24 bits) -> 3-byte samples (dtype ``V3``) in ``endian`` byte order."""
    v = np.asarray(values, dtype=np.int64)
    parts = [(v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF]
    if endian != "big":
        parts.reverse()
    return np.stack(parts, axis=-1).astype(np.uint8).view("V3")[..., 0]


def decode(raw: np.ndarray, fmt: int, endian: str) -> np.ndarray:
    """Raw samples (any shape, on-disk dtype) -> float32."""
    if fmt == IBM_FLOAT:
        return ibm_to_float32(raw.astype(np.uint32))
    if fmt in THREE_BYTE:
        return int24_to_int32(raw, THREE_BYTE[fmt], endian).astype(np.float32)
    return raw.astype(np.float32)


def needs_decode(fmt: int) -> bool:
    """True for formats numpy cannot convert by a cast of the on-disk dtype (IBM floats, 3-byte integers)."""
    return fmt == IBM_FLOAT or fmt in THREE_BYTE


def encode(values: np.ndarray, fmt: int, endian: str) -> np.ndarray:
    """float32 samples -> on-disk dtype of format ``fmt`` in ``endian`` byte order (IBM: one pass of
    :func:`seiscore.io.kernels.float32_to_ibm`, no float64 temporaries)."""
    dt = raw_dtype(fmt, endian)
    if fmt == IBM_FLOAT:
        values = np.ascontiguousarray(values, dtype=np.float32)
        out = np.empty(values.shape, dtype=np.uint32)
        return float32_to_ibm(values, out, dt.byteorder == (">" if sys.byteorder == "little" else "<")).view(dt)
    if fmt in THREE_BYTE:
        lo, hi = (-(2**23), 2**23 - 1) if THREE_BYTE[fmt] else (0, 2**24 - 1)
        return int32_to_int24(np.clip(np.rint(np.asarray(values, dtype=np.float64)), lo, hi), endian)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dt)
