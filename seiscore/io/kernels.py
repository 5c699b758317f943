"""numba kernels of the ingest hot path: 4-byte float traces -> chunk-major blocks, header fields.

Both run without the GIL, so ingest's worker threads decode in parallel, one pass over each
sample of a batch of raw traces still in cache from the read.

- :func:`decode_float_traces`: 4-byte IEEE (format 5) or IBM (format 1) samples, either byte
  order, into a ``(n_k, ci, cx, cs)`` block (``block[k]`` is one chunk) while keeping the min and
  max of what it decoded; optionally copies each trace's 240 header bytes next to it.
- :func:`header_fields`: raw 240-byte trace headers -> one int32 row per field (sign-extended,
  either byte order): one read of each header instead of one strided pass per field.
- :func:`float32_to_ibm`: export's IBM encoder, integer arithmetic on the float32 bits.
"""

from __future__ import annotations

import numba
import numpy as np

HEADER_WORDS = 60  # 240-byte trace header = 60 uint32 words before the samples


@numba.njit(inline="always")
def _bswap32(w):
    return np.uint32(
        (w >> np.uint32(24))
        | ((w >> np.uint32(8)) & np.uint32(0xFF00))
        | ((w << np.uint32(8)) & np.uint32(0xFF0000))
        | ((w & np.uint32(0xFF)) << np.uint32(24))
    )


# IBM single (-1)^s 0.F 16^(E-64), F a 24-bit fraction: value = F * IBM_SCALE[word >> 24] with
# IBM_SCALE[s*128 + E] = (-1)^s 2^(4E - 280) (a normal float64 for every E): exact in float64, then one
# float32 rounding (overflow to inf, gradual underflow), the same as numpy's ldexp route
IBM_SCALE = np.array([(-1.0 if s else 1.0) * 2.0 ** (4 * e - 280) for s in (0, 1) for e in range(128)])


@numba.njit(inline="always")
def _ibm_to_float(w, scale):
    """IBM single (native-order word) -> float32 (exact for normalised values)."""
    return np.float32(np.float64(w & np.uint32(0x00FFFFFF)) * scale[w >> np.uint32(24)])


@numba.njit(inline="always")
def _order_key(u):
    """int32 whose order is the order of the float32 with bits ``u`` (for non-NaN values): min/max of
    floats as integer reductions, which vectorise where float comparisons with NaN care do not."""
    i = np.int32(u)
    return i ^ ((i >> np.int32(31)) & np.int32(0x7FFFFFFF))


KEY_NONE = (2**31 - 1, -(2**31))  # (min, max) keys before any sample
KEY_NEG_INF = -0x7F800001  # _order_key of -inf; NaNs with the sign bit set lie below it
KEY_POS_INF = 0x7F800000  # _order_key of +inf; other NaNs lie above it


@numba.njit(nogil=True, cache=True)
def decode_float_traces(words, pos, width, s0, length, swap, ibm, out, headers, header_bytes, row0, col0, copy_headers):
    """Decode samples ``s0 .. s0+length`` of a batch of raw traces into a chunk-major block.

    ``words``: the raw traces as uint32 ``(n, trace_size / 4)`` (samples from word 60); trace
    ``i`` goes to column position ``pos[i]`` = ``row * width + col`` and fills
    ``out[k, row, col, :]`` (a C-contiguous float32 block) with its samples ``s0 + k*cs ...``: IEEE
    samples are their bits after the optional byte swap, IBM samples are converted. With ``copy_headers`` the
    trace's header bytes (``header_bytes``: the same batch as uint8) go to ``headers[row0 + row, col0 + col]``.

    Returns the order keys (see :func:`_order_key`) of the smallest and largest decoded sample
    ((INT32_MAX, INT32_MIN) when nothing was decoded): NaNs order beyond the infinities, so they
    show in the keys themselves (:func:`keys_to_floats`).
    """
    n_k, _, _, cs = out.shape
    out_bits = out.view(np.uint32)
    scale = IBM_SCALE
    kmin, kmax = np.int32(2**31 - 1), np.int32(-(2**31))
    for i in range(pos.size):
        r = pos[i] // width
        c = pos[i] - r * width
        src = words[i, HEADER_WORDS + s0 : HEADER_WORDS + s0 + length]
        for k in range(n_k):
            a = k * cs
            m = min(cs, length - a)
            bits = out_bits[k, r, c]
            if ibm:
                values = out[k, r, c]
                if swap:
                    for j in range(m):
                        values[j] = _ibm_to_float(_bswap32(src[a + j]), scale)
                else:
                    for j in range(m):
                        values[j] = _ibm_to_float(src[a + j], scale)
            elif swap:
                for j in range(m):
                    bits[j] = _bswap32(src[a + j])
            else:
                for j in range(m):
                    bits[j] = src[a + j]
            for j in range(m):
                key = _order_key(bits[j])
                kmin = min(kmin, key)
                kmax = max(kmax, key)
        if copy_headers:
            headers[row0 + r, col0 + c, :] = header_bytes[i, : headers.shape[2]]
    return kmin, kmax


def keys_to_floats(kmin: int, kmax: int) -> tuple[float, float]:
    """Values of the min / max order keys :func:`decode_float_traces` returns: (+inf, -inf) for none,
    (NaN, NaN) when a NaN was among the samples."""
    if kmin > kmax:
        return np.inf, -np.inf
    if kmin < KEY_NEG_INF or kmax > KEY_POS_INF:
        return np.nan, np.nan
    keys = np.array([kmin, kmax], dtype=np.int32)
    bits = keys ^ ((keys >> 31) & np.int32(0x7FFFFFFF))
    lo, hi = bits.view(np.float32)
    return float(lo), float(hi)


@numba.njit(nogil=True, cache=True)
def header_fields(raw, offsets, sizes, big, out, start):
    """``raw`` uint8 ``(n, 240)`` trace headers -> ``out[:, start:start + n]`` (int32, one row per field):
    field f is the signed ``sizes[f]``-byte integer (2 or 4) at the even byte ``offsets[f]`` (0-based),
    big- or little-endian. Each header is read once as 120 half-words, then the fields are picked out.
    """
    n = raw.shape[0]
    nf = offsets.size
    h = np.empty(raw.shape[1] // 2, dtype=np.uint16)
    for t in range(n):
        row = raw[t]
        for i in range(h.size):
            a, b = np.uint16(row[2 * i]), np.uint16(row[2 * i + 1])
            h[i] = (a << np.uint16(8)) | b if big else (b << np.uint16(8)) | a
        for f in range(nf):
            i = offsets[f] >> 1
            if sizes[f] == 4:
                hi, lo = (h[i], h[i + 1]) if big else (h[i + 1], h[i])
                out[f, start + t] = np.int32((np.uint32(hi) << np.uint32(16)) | np.uint32(lo))
            else:
                out[f, start + t] = np.int16(h[i])
    return out


@numba.njit(inline="always")
def _ibm_word(b):
    """IBM single word for the float32 with bits ``b`` (see :func:`float32_to_ibm`)."""
    a = b & np.uint32(0x7FFFFFFF)
    sign = b & np.uint32(0x80000000)
    ex = np.int32(a >> np.uint32(23))
    f = np.int32(a & np.uint32(0x7FFFFF))
    if ex == 0:  # zero or subnormal: normalise the significand (rare: a loop is fine)
        if f == 0:
            return np.uint32(0)
        e = np.int32(-125)
        while f < 0x800000:
            f <<= 1
            e -= 1
    elif ex == 255:  # inf -> largest magnitude; NaN -> 0
        return sign | np.uint32(0x7FFFFFFF) if f == 0 else np.uint32(0)
    else:
        f |= np.int32(0x800000)
        e = ex - np.int32(126)
    e16 = (e + np.int32(3)) >> np.int32(2)  # ceil(e / 4), arithmetic shift floors
    rsh = np.int32(4) * e16 - e  # 0..3
    half = (np.int32(1) << rsh) >> np.int32(1)
    odd = (f >> rsh) & np.int32(1)
    q = (f + half - np.int32(1) + odd) >> rsh if rsh > 0 else f  # round half to even
    if q == 0x1000000:  # rounded up to 2^24: one hex digit more
        q = np.int32(0x100000)
        e16 += 1
    return sign | (np.uint32(e16 + 64) << np.uint32(24)) | np.uint32(q)


@numba.njit(inline="always")
def _ibm_word_fast(b):
    """:func:`_ibm_word` without branches for normal floats, zeros, inf and NaN (vectorisable); 0 for a
    subnormal, which the caller redoes with :func:`_ibm_word`."""
    a = b & np.uint32(0x7FFFFFFF)
    sign = b & np.uint32(0x80000000)
    ex = np.int32(a >> np.uint32(23))
    f = np.int32(a & np.uint32(0x7FFFFF)) | np.int32(0x800000)
    e = ex - np.int32(126)
    e16 = (e + np.int32(3)) >> np.int32(2)
    rsh = np.int32(4) * e16 - e
    half = (np.int32(1) << rsh) >> np.int32(1)
    odd = (f >> rsh) & np.int32(1)
    q = (f + half - np.int32(1) + odd) >> rsh
    q = f if rsh == 0 else q
    carry = np.int32(q == np.int32(0x1000000))
    q = np.int32(0x100000) if carry else q
    w = sign | (np.uint32(e16 + carry + 64) << np.uint32(24)) | np.uint32(q)
    w = (sign | np.uint32(0x7FFFFFFF)) if a == np.uint32(0x7F800000) else w
    return np.uint32(0) if (ex == 0 or a > np.uint32(0x7F800000)) else w


@numba.njit(nogil=True, cache=True)
def float32_to_ibm(values, out, swap):
    """float32 ``values`` -> IBM single words in ``out`` (uint32, same shape, byte-swapped when ``swap``).

    Integer arithmetic on the float32 bits: the significand ``F`` (24 bits, leading one at bit 23) and
    frexp exponent ``e`` give the hex exponent ``ceil(e / 4)``; ``F`` shifted right by ``4 ceil(e/4) - e``
    (0-3) bits, rounded half to even, is the IBM fraction (a carry to 2^24 renormalises). Every float32
    is in IBM's range, so nothing clips. Zeros (either sign) -> 0, NaN -> 0, +-inf -> the largest IBM
    magnitude with its sign (IBM has neither). One branch-free pass, then subnormals (if any) redone.
    """
    bits = values.reshape(-1).view(np.uint32)
    o = out.reshape(-1)
    subnormal = False
    for i in range(bits.size):
        b = bits[i]
        subnormal |= (b & np.uint32(0x7F800000)) == 0 and (b & np.uint32(0x7FFFFF)) != 0
        o[i] = _ibm_word_fast(b)
    if subnormal:
        for i in range(bits.size):
            if (bits[i] & np.uint32(0x7F800000)) == 0:
                o[i] = _ibm_word(bits[i])
    if swap:
        for i in range(o.size):
            o[i] = _bswap32(o[i])
    return out


def warm_up() -> None:
    """Load (or compile, on first use on a machine) the kernels for the argument types ingest and export pass,
    e.g. before measuring memory: loading them costs a one-off ~20 MB of Python allocations."""
    words = np.zeros((2, HEADER_WORDS + 4), dtype=np.uint32)
    raw = words.view(np.uint8)
    block = np.zeros((1, 1, 2, 4), dtype=np.float32)
    for copy_headers in (False, True):
        decode_float_traces(
            words,
            np.arange(2),
            2,
            0,
            4,
            True,
            False,
            block,
            np.zeros((1, 2, 240), dtype=np.uint8),
            raw,
            0,
            0,
            copy_headers,
        )
    header_fields(
        np.zeros((1, 240), dtype=np.uint8),
        np.array([0, 4]),
        np.array([4, 2]),
        True,
        np.empty((2, 1), dtype=np.int32),
        0,
    )
    for swap in (False, True):
        float32_to_ibm(np.ones((1, 2), dtype=np.float32), np.empty((1, 2), dtype=np.uint32), swap)
