"""Sample formats of SEG-Y traces: decode raw bytes to float32 and encode back.

IBM System/360 single precision (format 1) is ``(-1)^s * 0.F * 16^(E - 64)`` with a 7-bit
exponent ``E`` and a 24-bit fraction ``F``; every normalised IBM value fits a float32
exactly, so decode -> encode reproduces the original bytes. Integer formats decode
exactly while ``|v| <= 2**24`` (float32's integer range); encoding rounds to the
nearest integer and clips to the type's range.
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
    16: ("u1", "1-byte unsigned integer"),
}


def check_format(fmt: int, what: str = "SEG-Y file") -> int:
    """``fmt`` as an int when it is a supported sample format code; a one-line ``SegyError`` naming ``what``
    otherwise."""
    if int(fmt) not in FORMATS:
        known = ", ".join(f"{k} ({v[1]})" for k, v in FORMATS.items())
        raise SegyError(f"{what}: sample format code {fmt} is not supported; supported codes: {known}")
    return int(fmt)


def raw_dtype(fmt: int, endian: str) -> np.dtype:
    """On-disk numpy dtype of one sample of format ``fmt``."""
    code = FORMATS[check_format(fmt)][0]
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


def decode(raw: np.ndarray, fmt: int, endian: str) -> np.ndarray:
    """Raw samples (any shape, on-disk dtype) -> float32."""
    if fmt == IBM_FLOAT:
        return ibm_to_float32(raw.astype(np.uint32))
    return raw.astype(np.float32)


def encode(values: np.ndarray, fmt: int, endian: str) -> np.ndarray:
    """float32 samples -> on-disk dtype of format ``fmt`` in ``endian`` byte order (IBM: one pass of
    :func:`seiscore.io.kernels.float32_to_ibm`, no float64 temporaries)."""
    dt = raw_dtype(fmt, endian)
    if fmt == IBM_FLOAT:
        values = np.ascontiguousarray(values, dtype=np.float32)
        out = np.empty(values.shape, dtype=np.uint32)
        return float32_to_ibm(values, out, dt.byteorder == (">" if sys.byteorder == "little" else "<")).view(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dt)
