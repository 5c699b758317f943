"""Conventional codecs for 2-D velocity models, to a byte budget or to a maximum error (``SIREN.md`` §6).

Every codec turns one model ``(nz, nx)`` in m/s into a self-describing payload: given the payload, the model's
shape and the codec's shared state (the PCA basis), :meth:`Codec.decode` restores it — every knob the decoder
needs is inside the payload and counted in its bytes. The codec *name* is not in the payload (an archive stores
it per model).

- ``zstd``: lossless reference, Zstandard level 19 on the float32 bytes (numcodecs). Payload: the zstd frame.
- ``zfp``: ZFP on float32 (zfpy), fixed rate for budgets (knob: rate up), fixed accuracy for errors (knob:
  tolerance down). Payload: zfpy's stream with its header.
- ``sz3``: SZ3 with an absolute error bound on float32 (pysz); knob: bound down. Payload: the SZ3 stream
  (its config is inside).
- ``jpeg2k``: JPEG 2000 (OpenJPEG via imagecodecs) of the map quantised to 16 bit over its own [min, max];
  knob: target PSNR up. Payload: min, max (2 float32) + the J2K codestream.
- ``pca``: the first ``k`` coefficients on a shared PCA basis (:class:`PCABasis`); knob: k up. Payload: k float32.
- ``downsample``: a ``kz x kx`` coarse grid with bilinear up-sampling (corner-aligned, like ``linspace(-1, 1)``);
  knob: k up. Payload: kz * kx float32.
- ``qzstd``: uniform quantiser (step 2e) + Zstandard, the hybrid's residual coder alone (not in the paper);
  knob: bound down. Payload: tag, step, offset + the zstd frame.

``imagecodecs.jpeg2k_encode(level=...)`` takes a *target PSNR in dB* (of the 16-bit image), not a ratio: the
searches move that value. ZFP fixed rate is clamped to >= 9/16 bit per value (below it zfpy 1.0.1 writes past
its buffer). The down-sampling codec stores the least-squares coarse grid: with the bilinear up-sampling
matrices ``U_z`` (nz x kz) and ``U_x`` (nx x kx), ``C = U_z^+ V (U_x^+)^T`` minimises ``||U_z C U_x^T - V||``.

Searches (sizes and errors are not strictly monotone in a knob, so both scan then refine):
- :func:`encode_to_budget`: the largest quality whose payload fits ``max_bytes``; a scan over the knob's range,
  then bisection between the best fitting knob and the next one up.
- :func:`encode_to_error`: the smallest payload whose decoded maximum absolute error is <= ``max_error`` m/s,
  checked after decoding (SZ3 and qzstd: the bound itself, shrunk only if a decode exceeds it).
- :func:`equal_bytes_table`: every codec at one budget over a collection: PSNR_g, SSIM, bytes (the §6 table).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

NAMES = ("zstd", "zfp", "sz3", "jpeg2k", "pca", "downsample", "qzstd")
ZFP_MIN_RATE = 9.0 / 16.0  # bits per value: below it zfpy's fixed-rate mode corrupts memory
ZFP_MAX_RATE = 32.0
SZ3_MIN_BOUND = 1e-4  # m/s; float32 resolution at 4,500 m/s is 2.4e-4
JPEG2K_MAX_LEVEL = 120.0  # dB; above it OpenJPEG's irreversible path gives the same stream
SCAN = 12  # knob values scanned before refining
REFINE = 14  # bisection steps after the scan


class CodecError(ValueError):
    """Bad codec input (unknown name, bad model or payload, missing shared state); one line."""


class BudgetError(CodecError):
    """No setting of the codec fits the byte budget."""


class BoundError(CodecError):
    """No setting of the codec meets the maximum error."""


def as_model(model: np.ndarray, what: str = "model") -> np.ndarray:
    """``model`` as a C-contiguous float32 ``(nz, nx)`` copy-if-needed, checked finite and 2-D."""
    arr = np.asarray(model)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise CodecError(f"{what} must be one (nz, nx) velocity model, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise CodecError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise CodecError(f"{what} holds NaN or infinite values")
    return arr


def _shape(shape: Sequence[int]) -> tuple[int, int]:
    try:
        nz, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise CodecError(f"shape must be (nz, nx), got {shape!r}") from None
    if nz < 1 or nx < 1:
        raise CodecError(f"shape must be positive, got {shape!r}")
    return nz, nx


# -- shared state: the PCA basis ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PCABasis:
    """Mean model and principal components (rows, orthonormal, by decreasing variance) of training models."""

    mean: np.ndarray  # (P,) float32, m/s
    components: np.ndarray  # (K, P) float32
    shape: tuple[int, int]

    @property
    def n_components(self) -> int:
        """Number of components K."""
        return int(self.components.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the shared state (mean + components as float32): counted once per collection."""
        return int(self.mean.nbytes + self.components.nbytes)


def fit_pca(models: np.ndarray, n_components: int = 256) -> PCABasis:
    """PCA basis of ``models (N, nz, nx)`` (m/s): SVD of the centred ``(N, nz*nx)`` matrix; ``K = min(n_components,
    N, nz*nx)``. The PCA-256 basis of 70 x 70 maps is 256 x 4,900 floats, the SIREN decoder's size."""
    arr = np.asarray(models)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise CodecError(f"PCA training models must be (N, nz, nx), got shape {arr.shape}")
    if int(n_components) < 1:
        raise CodecError(f"n_components must be at least 1, got {n_components}")
    x = arr.reshape(arr.shape[0], -1).astype(np.float64)
    if not np.isfinite(x).all():
        raise CodecError("PCA training models hold NaN or infinite values")
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(int(n_components), vt.shape[0])
    return PCABasis(mean.astype(np.float32), np.ascontiguousarray(vt[:k], dtype=np.float32), tuple(arr.shape[1:]))


# -- codecs ---------------------------------------------------------------------------------------------------
class Codec:
    """One codec. ``encode(model) -> bytes`` at the codec's configured knob, ``decode(payload, shape) -> (nz, nx)
    float32``. ``encode_at(model, q)`` encodes at knob ``q`` in ``knob_range(model)`` (larger ``q``: more bytes,
    smaller error); ``error_knob_range``/``encode_error_at`` do the same for the error search when it uses
    another knob (ZFP's fixed accuracy)."""

    name = "codec"
    integer_knob = False
    lossless = False

    def __init__(self, **options: Any):
        self.options = options

    # knob interface
    def knob_range(self, model: np.ndarray) -> tuple[float, float]:
        """``(lo, hi)`` of the quality knob for ``model``."""
        raise NotImplementedError

    def encode_at(self, model: np.ndarray, q: float) -> bytes:
        """Payload at quality knob ``q``."""
        raise NotImplementedError

    def error_knob_range(self, model: np.ndarray) -> tuple[float, float]:
        """Knob range the error search moves (default: the budget knob)."""
        return self.knob_range(model)

    def encode_error_at(self, model: np.ndarray, q: float) -> bytes:
        """Payload at error-search knob ``q`` (default: :meth:`encode_at`)."""
        return self.encode_at(model, q)

    def default_knob(self, model: np.ndarray) -> float:
        """The knob :meth:`encode` uses when no option sets one."""
        return self.knob_range(model)[1]

    def encode(self, model: np.ndarray) -> bytes:
        """Payload of ``model`` at the configured knob."""
        m = as_model(model)
        return self.encode_at(m, self.default_knob(m))

    def decode(self, payload: bytes, shape: Sequence[int]) -> np.ndarray:
        """The model of ``payload`` (float32 ``shape``)."""
        raise NotImplementedError

    def _payload(self, payload: bytes | bytearray | memoryview | np.ndarray) -> bytes:
        if isinstance(payload, np.ndarray):
            payload = payload.tobytes()
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise CodecError(f"{self.name} payload must be bytes, got {type(payload).__name__}")
        return bytes(payload)


def _f32_view(raw: bytes, n: int, what: str) -> np.ndarray:
    if len(raw) != 4 * n:
        raise CodecError(f"{what}: payload holds {len(raw)} bytes, expected {4 * n} for the shape")
    return np.frombuffer(raw, dtype=np.float32)


class ZstdCodec(Codec):
    """Lossless reference: Zstandard (numcodecs) of the float32 bytes, level ``level`` (default 19)."""

    name = "zstd"
    lossless = True

    def knob_range(self, model):
        """See :meth:`Codec.knob_range`."""
        return (0.0, 0.0)

    def encode_at(self, model, q):
        """See :meth:`Codec.encode_at`."""
        from numcodecs import Zstd

        return bytes(Zstd(level=int(self.options.get("level", 19))).encode(as_model(model).tobytes()))

    def decode(self, payload, shape):
        """See :meth:`Codec.decode`."""
        from numcodecs import Zstd

        nz, nx = _shape(shape)
        try:
            raw = bytes(Zstd().decode(self._payload(payload)))
        except Exception as exc:  # noqa: BLE001 - the library's message is not one line
            raise CodecError(f"zstd payload does not decode: {str(exc).splitlines()[0]}") from None
        return _f32_view(raw, nz * nx, "zstd").reshape(nz, nx).copy()


class ZfpCodec(Codec):
    """ZFP on float32: fixed rate ``rate`` bits/value (budget knob) or fixed accuracy ``tolerance`` m/s (error
    knob, as ``q = -log2(tolerance)``); zfpy's stream header (mode, rate/tolerance, shape) is in the payload."""

    name = "zfp"

    def knob_range(self, model):
        """See :meth:`Codec.knob_range`."""
        return (ZFP_MIN_RATE, ZFP_MAX_RATE)

    def default_knob(self, model):
        """See :meth:`Codec.default_knob`."""
        return float(self.options.get("rate", 8.0))

    def encode(self, model):
        """See :meth:`Codec.encode`."""
        m = as_model(model)
        if "tolerance" in self.options:
            return self.encode_error_at(m, -math.log2(float(self.options["tolerance"])))
        return self.encode_at(m, self.default_knob(m))

    def encode_at(self, model, q):
        """See :meth:`Codec.encode_at`."""
        import zfpy

        rate = float(np.clip(q, ZFP_MIN_RATE, ZFP_MAX_RATE))
        return bytes(zfpy.compress_numpy(as_model(model), rate=rate))

    def error_knob_range(self, model):
        """See :meth:`Codec.error_knob_range`."""
        span = float(np.ptp(model)) or 1.0
        return (-math.log2(span), 20.0)

    def encode_error_at(self, model, q):
        """See :meth:`Codec.encode_error_at`."""
        import zfpy

        return bytes(zfpy.compress_numpy(as_model(model), tolerance=float(2.0**-q)))

    def decode(self, payload, shape):
        """See :meth:`Codec.decode`."""
        import zfpy

        nz, nx = _shape(shape)
        try:
            out = zfpy.decompress_numpy(self._payload(payload))
        except Exception as exc:  # noqa: BLE001
            raise CodecError(f"zfp payload does not decode: {str(exc).splitlines()[0]}") from None
        if out.shape != (nz, nx):
            raise CodecError(f"zfp payload holds a {out.shape} model, expected {(nz, nx)}")
        return np.asarray(out, dtype=np.float32)


def sz3_compress(array: np.ndarray, bound: float) -> bytes:
    """SZ3 (pysz) stream of a float32 array under the absolute error bound ``bound``."""
    import pysz

    arr = np.ascontiguousarray(array, dtype=np.float32)
    cfg = pysz.szConfig(arr.shape)
    cfg.errorBoundMode = pysz.szErrorBoundMode.ABS
    cfg.absErrorBound = float(bound)
    data, _ = pysz.sz.compress(arr, cfg)
    return bytes(data)


def sz3_decompress(payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 array of an SZ3 stream (one-line error when the stream does not match ``shape``)."""
    import pysz

    try:
        out, _ = pysz.sz.decompress(np.frombuffer(payload, dtype=np.uint8).copy(), np.float32, tuple(shape))
    except Exception as exc:  # noqa: BLE001
        raise CodecError(f"sz3 payload does not decode for shape {tuple(shape)}: {str(exc).splitlines()[0]}") from None
    return np.asarray(out, dtype=np.float32).reshape(shape)


_QUANT_DTYPES = {1: np.uint8, 2: np.uint16, 3: np.uint32}


def quantise_compress(array: np.ndarray, bound: float) -> bytes:
    """Uniform quantiser + Zstandard: ``q = rint(a / 2e) - q_min`` as the narrowest unsigned integers, zstd level
    19; header = dtype tag (1 B), step ``2e`` (float32), ``q_min`` (int32). ``|a^ - a| <= e`` up to float
    rounding (callers verify)."""
    from numcodecs import Zstd

    if not bound > 0:
        raise CodecError(f"the quantiser needs a positive error bound, got {bound!r}")
    step = np.float32(2.0 * bound)
    q = np.rint(np.asarray(array, dtype=np.float64) / float(step))
    lo, hi = float(q.min()), float(q.max())
    if not (-(2.0**31) <= lo and hi - lo < 2.0**32):
        raise CodecError(f"error bound {bound:g} is too small for the value range of the quantiser")
    codes = q - lo
    for tag, dtype in _QUANT_DTYPES.items():
        if hi - lo <= np.iinfo(dtype).max:
            body = Zstd(level=19).encode(np.ascontiguousarray(codes.astype(dtype)).tobytes())
            header = bytes([tag]) + np.array([step], "<f4").tobytes() + np.array([int(lo)], "<i4").tobytes()
            return header + bytes(body)
    raise AssertionError("unreachable")  # pragma: no cover


def quantise_decompress(payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The float64 array of a :func:`quantise_compress` payload."""
    from numcodecs import Zstd

    if len(payload) < 10 or payload[0] not in _QUANT_DTYPES:
        raise CodecError("quantised payload has no valid header")
    dtype = np.dtype(_QUANT_DTYPES[payload[0]])
    step = float(np.frombuffer(payload[1:5], "<f4")[0])
    lo = int(np.frombuffer(payload[5:9], "<i4")[0])
    try:
        raw = bytes(Zstd().decode(payload[9:]))
    except Exception as exc:  # noqa: BLE001
        raise CodecError(f"quantised payload does not decode: {str(exc).splitlines()[0]}") from None
    n = int(np.prod(shape))
    if len(raw) != dtype.itemsize * n:
        raise CodecError(f"quantised payload holds {len(raw)} bytes, not {n} values of {dtype.name}")
    return ((np.frombuffer(raw, dtype=dtype).astype(np.float64) + lo) * step).reshape(shape)


class _ErrorBoundCodec(Codec):
    """A codec driven by an absolute error bound ``error_bound`` m/s; knob ``q = -log10(bound)``, from the map's
    value span down to :data:`SZ3_MIN_BOUND`. Subclasses give ``_compress(model, bound)`` / ``_decompress(payload,
    shape)``."""

    def knob_range(self, model):
        """See :meth:`Codec.knob_range`."""
        span = max(float(np.ptp(model)), 1.0)
        return (-math.log10(span), -math.log10(SZ3_MIN_BOUND))

    def default_knob(self, model):
        """See :meth:`Codec.default_knob`."""
        return -math.log10(float(self.options.get("error_bound", 1.0)))

    def encode_at(self, model, q):
        """See :meth:`Codec.encode_at`."""
        return self._compress(as_model(model), 10.0**-q)

    def decode(self, payload, shape):
        """See :meth:`Codec.decode`."""
        return self._decompress(self._payload(payload), _shape(shape)).astype(np.float32, copy=False)


class QuantZstdCodec(_ErrorBoundCodec):
    """Error-bounded uniform quantiser + Zstandard (:func:`quantise_compress`). Not in the paper: a plain baseline
    that isolates what the hybrid's residual coder gains without a prediction."""

    name = "qzstd"
    _compress = staticmethod(quantise_compress)
    _decompress = staticmethod(quantise_decompress)


class Sz3Codec(_ErrorBoundCodec):
    """SZ3 with an absolute error bound (:func:`sz3_compress`)."""

    name = "sz3"
    _compress = staticmethod(sz3_compress)
    _decompress = staticmethod(sz3_decompress)


class Jpeg2kCodec(Codec):
    """JPEG 2000 of the model quantised to uint16 over its own ``[min, max]`` (stored as two float32 ahead of the
    J2K codestream); knob = OpenJPEG's target PSNR ``level`` in dB (above 120 dB: the reversible, lossless
    wavelet)."""

    name = "jpeg2k"
    HEADER = 8

    def knob_range(self, model):
        """See :meth:`Codec.knob_range`."""
        return (5.0, JPEG2K_MAX_LEVEL + 1.0)

    def default_knob(self, model):
        """See :meth:`Codec.default_knob`."""
        return float(self.options.get("level", 60.0))

    def encode_at(self, model, q):
        """See :meth:`Codec.encode_at`."""
        import imagecodecs

        m = as_model(model)
        lo, hi = float(m.min()), float(m.max())
        lo32, hi32 = np.float32(lo), np.float32(hi)
        span = float(hi32) - float(lo32)
        scaled = (m.astype(np.float64) - float(lo32)) / span * 65535.0 if span > 0 else np.zeros(m.shape)
        q16 = np.clip(np.rint(scaled), 0, 65535).astype(np.uint16)
        kwargs: dict[str, Any] = {"codecformat": imagecodecs.JPEG2K.CODEC.J2K}
        if q > JPEG2K_MAX_LEVEL:
            kwargs["reversible"] = True
        else:
            kwargs["level"] = float(q)
        stream = imagecodecs.jpeg2k_encode(q16, **kwargs)
        return np.array([lo32, hi32], dtype="<f4").tobytes() + bytes(stream)

    def decode(self, payload, shape):
        """See :meth:`Codec.decode`."""
        import imagecodecs

        nz, nx = _shape(shape)
        raw = self._payload(payload)
        if len(raw) <= self.HEADER:
            raise CodecError(f"jpeg2k payload of {len(raw)} bytes is shorter than its header")
        lo, hi = (float(v) for v in np.frombuffer(raw[: self.HEADER], dtype="<f4"))
        try:
            q16 = imagecodecs.jpeg2k_decode(raw[self.HEADER :])
        except Exception as exc:  # noqa: BLE001
            raise CodecError(f"jpeg2k payload does not decode: {str(exc).splitlines()[0]}") from None
        if q16.shape != (nz, nx):
            raise CodecError(f"jpeg2k payload holds a {q16.shape} image, expected {(nz, nx)}")
        return (lo + q16.astype(np.float64) / 65535.0 * (hi - lo)).astype(np.float32)


class PcaCodec(Codec):
    """Coefficients ``c = B_k (v - mean)`` on the first ``k`` components of a shared :class:`PCABasis` (option
    ``basis``), stored float32; ``k = len(payload) / 4``; decode ``mean + c B_k``."""

    name = "pca"
    integer_knob = True

    def __init__(self, **options):
        super().__init__(**options)
        basis = options.get("basis")
        if not isinstance(basis, PCABasis):
            raise CodecError("the pca codec needs its shared basis: get_codec('pca', basis=fit_pca(training_models))")
        self.basis = basis

    def _check(self, shape):
        if tuple(shape) != tuple(self.basis.shape):
            raise CodecError(f"model shape {tuple(shape)} differs from the PCA basis shape {self.basis.shape}")

    def knob_range(self, model):
        """See :meth:`Codec.knob_range`."""
        return (1.0, float(self.basis.n_components))

    def default_knob(self, model):
        """See :meth:`Codec.default_knob`."""
        return float(self.options.get("k", self.basis.n_components))

    def encode_at(self, model, q):
        """See :meth:`Codec.encode_at`."""
        m = as_model(model)
        self._check(m.shape)
        k = int(np.clip(round(q), 1, self.basis.n_components))
        c = self.basis.components[:k].astype(np.float64) @ (m.ravel().astype(np.float64) - self.basis.mean)
        return c.astype("<f4").tobytes()

    def decode(self, payload, shape):
        """See :meth:`Codec.decode`."""
        shape = _shape(shape)
        self._check(shape)
        raw = self._payload(payload)
        k = len(raw) // 4
        if len(raw) % 4 or not 1 <= k <= self.basis.n_components:
            raise CodecError(
                f"pca payload of {len(raw)} bytes is not 1..{self.basis.n_components} float32 coefficients"
            )
        c = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        v = self.basis.mean.astype(np.float64) + c @ self.basis.components[:k].astype(np.float64)
        return v.reshape(shape).astype(np.float32)


def coarse_shape(k: int, shape: tuple[int, int]) -> tuple[int, int]:
    """Coarse grid of the down-sampling codec at knob ``k``: ``k`` points along the longer axis, the other axis in
    proportion (at least 1), neither more than the model's own size."""
    nz, nx = shape
    if nz >= nx:
        return min(k, nz), min(nx, max(1, round(k * nx / nz)))
    return min(nz, max(1, round(k * nz / nx))), min(k, nx)


@functools.lru_cache(maxsize=256)
def _pinv(n: int, k: int) -> np.ndarray:
    # U has full column rank for k <= n (hat functions), so U^+ = (U^T U)^-1 U^T; a solve of the small banded
    # normal matrix is ~400x faster than an SVD-based pinv on the shared BLAS threads
    u = bilinear_matrix(n, k)
    out = np.linalg.solve(u.T @ u, u.T)
    out.setflags(write=False)
    return out


def bilinear_matrix(n: int, k: int) -> np.ndarray:
    """``(n, k)`` linear-interpolation weights from ``k`` corner-aligned coarse points to ``n`` fine points
    (both ``linspace`` over the same extent)."""
    if k == 1:
        return np.ones((n, 1))
    pos = np.arange(n) * (k - 1) / max(n - 1, 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), k - 2)
    frac = pos - i0
    u = np.zeros((n, k))
    rows = np.arange(n)
    u[rows, i0] = 1.0 - frac
    u[rows, i0 + 1] += frac
    return u


class DownsampleCodec(Codec):
    """``kz x kx`` coarse model (least-squares fit for bilinear up-sampling), float32; ``k`` from the payload
    length and the shape (:func:`coarse_shape`)."""

    name = "downsample"
    integer_knob = True

    def knob_range(self, model):
        """See :meth:`Codec.knob_range`."""
        return (1.0, float(max(model.shape)))

    def default_knob(self, model):
        """See :meth:`Codec.default_knob`."""
        return float(self.options.get("k", 16))

    def encode_at(self, model, q):
        """See :meth:`Codec.encode_at`."""
        m = as_model(model)
        kz, kx = coarse_shape(int(round(q)), m.shape)
        c = _pinv(m.shape[0], kz) @ m.astype(np.float64) @ _pinv(m.shape[1], kx).T
        return c.astype("<f4").tobytes()

    def decode(self, payload, shape):
        """See :meth:`Codec.decode`."""
        nz, nx = _shape(shape)
        raw = self._payload(payload)
        for k in range(1, max(nz, nx) + 1):
            kz, kx = coarse_shape(k, (nz, nx))
            if kz * kx * 4 == len(raw):
                break
        else:
            raise CodecError(f"downsample payload of {len(raw)} bytes matches no coarse grid of a {(nz, nx)} model")
        c = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(kz, kx)
        return (bilinear_matrix(nz, kz) @ c @ bilinear_matrix(nx, kx).T).astype(np.float32)


_CODECS: dict[str, type[Codec]] = {
    "zstd": ZstdCodec,
    "zfp": ZfpCodec,
    "sz3": Sz3Codec,
    "jpeg2k": Jpeg2kCodec,
    "pca": PcaCodec,
    "qzstd": QuantZstdCodec,
    "downsample": DownsampleCodec,
}


def get_codec(name: str, **options: Any) -> Codec:
    """The codec ``name`` (one of :data:`NAMES`) with ``options`` (``basis`` for pca; knob defaults ``rate``,
    ``tolerance``, ``error_bound``, ``level``, ``k``)."""
    cls = _CODECS.get(name)
    if cls is None:
        raise CodecError(f"unknown codec {name!r}; known: {', '.join(NAMES)}")
    return cls(**options)


def decode(name: str, payload: bytes, shape: Sequence[int], **options: Any) -> np.ndarray:
    """Decode ``payload`` of codec ``name`` to a float32 ``shape`` model."""
    return get_codec(name, **options).decode(payload, shape)


# -- searches -------------------------------------------------------------------------------------------------
def _knobs(lo: float, hi: float, integer: bool, n: int = SCAN) -> list[float]:
    if integer:
        return sorted({float(round(v)) for v in np.linspace(lo, hi, n)})
    return [float(v) for v in np.linspace(lo, hi, n)]


def _refine(lo: float, hi: float, integer: bool, test: Callable[[float], bool]) -> None:
    """Bisect between ``lo`` (test true) and ``hi`` (test false) calling ``test`` on midpoints."""
    for _ in range(REFINE):
        if integer and hi - lo <= 1:
            return
        mid = float(round((lo + hi) / 2)) if integer else (lo + hi) / 2
        if mid in (lo, hi):
            return
        if test(mid):
            lo = mid
        else:
            hi = mid


def encode_to_budget(name: str, model: np.ndarray, max_bytes: int, **options: Any) -> bytes:
    """The highest-quality payload of codec ``name`` no longer than ``max_bytes`` (knob scanned, then bisected;
    the largest knob that fits wins). Lossless ``zstd`` has no knob: its payload, if it fits.

    Raises :class:`BudgetError` when even the lowest setting does not fit."""
    codec = get_codec(name, **options)
    m = as_model(model)
    try:
        budget = int(max_bytes)
    except (TypeError, ValueError):
        raise CodecError(f"max_bytes must be an integer, got {max_bytes!r}") from None
    if budget < 1:
        raise CodecError(f"max_bytes must be positive, got {max_bytes!r}")
    if codec.lossless:
        payload = codec.encode(m)
        if len(payload) > budget:
            raise BudgetError(f"{name} (lossless) needs {len(payload)} bytes, over the budget of {budget}")
        return payload
    lo, hi = codec.knob_range(m)
    integer = codec.integer_knob
    best: dict[str, Any] = {}

    def fits(q: float) -> bool:
        payload = codec.encode_at(m, q)
        ok = len(payload) <= budget
        if ok and ("q" not in best or q > best["q"]):
            best.update(q=q, payload=payload)
        return ok

    grid = _knobs(lo, hi, integer)
    ok = [fits(q) for q in grid]
    if not any(ok):
        smallest = len(codec.encode_at(m, lo))
        raise BudgetError(f"{name} needs at least {smallest} bytes for this model, over the budget of {budget}")
    top = max(i for i, v in enumerate(ok) if v)
    if top + 1 < len(grid):
        _refine(grid[top], grid[top + 1], integer, fits)
    return best["payload"]


def encode_to_error(name: str, model: np.ndarray, max_error: float, **options: Any) -> bytes:
    """The smallest payload of codec ``name`` whose decoded model is within ``max_error`` m/s of ``model``
    everywhere (checked after decoding). SZ3 and qzstd use the bound itself (shrunk by 10 % steps if a decode exceeds
    it); the others scan their knob and bisect to the boundary, keeping the smallest payload that meets it.

    Raises :class:`BoundError` when no setting meets the bound (PCA with too few components, for instance)."""
    codec = get_codec(name, **options)
    m = as_model(model)
    bound = _check_bound(max_error)
    shape = m.shape

    def error(payload: bytes) -> float:
        return float(np.abs(codec.decode(payload, shape).astype(np.float64) - m).max())

    if codec.lossless:
        payload = codec.encode(m)
        if error(payload) > bound:
            raise BoundError(f"{name} round trip differs from the model by more than {bound:g} m/s")
        return payload
    if name in ("sz3", "qzstd"):
        eb = bound
        for _ in range(20):
            if eb < SZ3_MIN_BOUND / 10:
                break
            payload = sz3_compress(m, eb) if name == "sz3" else quantise_compress(m, eb)
            if error(payload) <= bound:
                return payload
            eb *= 0.9
        raise BoundError(f"{name} cannot meet a maximum error of {bound:g} m/s for this model")
    lo, hi = codec.error_knob_range(m)
    integer = codec.integer_knob
    best: dict[str, Any] = {}

    def meets(q: float) -> bool:
        payload = codec.encode_error_at(m, q)
        ok = error(payload) <= bound
        if ok and ("payload" not in best or len(payload) < len(best["payload"])):
            best.update(payload=payload)
        return ok

    grid = _knobs(lo, hi, integer)
    ok = [meets(q) for q in grid]
    if not any(ok):
        raise BoundError(f"{name} cannot meet a maximum error of {bound:g} m/s for this model (best setting tried)")
    first = min(i for i, v in enumerate(ok) if v)
    if first > 0:
        # the boundary between the last failing and the first passing knob: bisect with "fails" as the lower side
        _refine(grid[first - 1], grid[first], integer, lambda q: not meets(q))
    return best["payload"]


def _check_bound(max_error: float) -> float:
    try:
        bound = float(max_error)
    except (TypeError, ValueError):
        raise CodecError(f"max_error must be a number of m/s, got {max_error!r}") from None
    if not math.isfinite(bound) or bound < 0:
        raise CodecError(f"max_error must be a finite, non-negative number of m/s, got {max_error!r}")
    return bound


# -- the equal-bytes table ------------------------------------------------------------------------------------
def equal_bytes_table(
    models: np.ndarray,
    budget: int,
    pca_basis: PCABasis | None = None,
    codecs: Sequence[str] = NAMES,
    families: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Every codec of ``codecs`` at ``budget`` bytes per model over ``models (N, nz, nx)`` (``SIREN.md`` §6).

    One row per codec: ``codec`` (``pca-K`` with the basis's size), ``budget``, ``n``, ``psnr_g`` (mean, dB;
    inf as soon as one model is reconstructed exactly) and ``psnr_g_std``, ``psnr_g_median``,
    ``psnr_g_pooled`` (``10 log10(1 / mean MSE_n)``, finite unless every model is exact), ``n_exact``,
    ``psnr_l``, ``ssim``, ``max_abs_error`` (mean, m/s), ``mean_bytes``, ``n_failed`` (models the codec could
    not fit into the budget; left out of the means) and, with ``families``, ``psnr_g_by_family`` and
    ``psnr_g_pooled_by_family``. ``zstd`` is
    the lossless reference: its own size, whatever the budget. ``pca`` is skipped without a basis."""
    from seiscore.metrics.velocity import summary

    arr = np.asarray(models)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise CodecError(f"models must be (N, nz, nx), got shape {arr.shape}")
    if families is not None and len(families) != arr.shape[0]:
        raise CodecError(f"{len(families)} family labels for {arr.shape[0]} models")
    rows = []
    for name in codecs:
        if name == "pca" and pca_basis is None:
            continue
        options = {"basis": pca_basis} if name == "pca" else {}
        codec = get_codec(name, **options)
        decoded, sizes, kept = [], [], []
        for i in range(arr.shape[0]):
            m = as_model(arr[i], what=f"model {i}")
            try:
                payload = codec.encode(m) if codec.lossless else encode_to_budget(name, m, budget, **options)
            except BudgetError:
                continue
            decoded.append(codec.decode(payload, m.shape))
            sizes.append(len(payload))
            kept.append(i)
        label = f"pca-{pca_basis.n_components}" if name == "pca" else name
        row: dict[str, Any] = {"codec": label, "budget": int(budget), "n": len(kept)}
        row["n_failed"] = arr.shape[0] - len(kept)
        if kept:
            s = summary(np.stack(decoded), arr[kept])
            psnr = s["psnr_g"]
            pooled = float(np.mean(s["mse_n"]))
            row.update(
                psnr_g=float(np.mean(psnr)),
                psnr_g_std=float(np.std(psnr)) if np.isfinite(psnr).all() else float("nan"),
                psnr_g_median=float(np.median(psnr)),
                psnr_g_pooled=float(10 * np.log10(1.0 / pooled)) if pooled > 0 else float("inf"),
                n_exact=int(np.sum(s["mse_n"] == 0)),
                psnr_l=float(np.nanmean(s["psnr_l"])),
                ssim=float(np.mean(s["ssim"])),
                max_abs_error=float(np.mean(s["max_abs_error"])),
                mean_bytes=float(np.mean(sizes)),
            )
            if families is not None:
                labels = np.asarray(families, dtype=object)[kept]
                fams = list(dict.fromkeys(labels.tolist()))
                row["psnr_g_by_family"] = {str(f): float(np.mean(psnr[labels == f])) for f in fams}
                mse = s["mse_n"]
                row["psnr_g_pooled_by_family"] = {
                    str(f): float(10 * np.log10(1.0 / np.mean(mse[labels == f])))
                    if np.mean(mse[labels == f]) > 0
                    else float("inf")
                    for f in fams
                }
        rows.append(row)
    return rows


def equal_error_table(
    models: np.ndarray,
    max_error: float,
    pca_basis: PCABasis | None = None,
    codecs: Sequence[str] = ("zfp", "sz3", "jpeg2k", "qzstd", "downsample", "pca", "zstd"),
    families: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Every codec of ``codecs`` at one maximum error (m/s) over ``models``: the bytes each needs.

    One row per codec: ``codec``, ``max_error``, ``n``, ``n_failed`` (models it cannot bring within the bound),
    ``mean_bytes``, ``max_abs_error`` (the largest over models, m/s), ``psnr_g`` (mean) and, with ``families``,
    ``bytes_by_family``. Also returned as the last row: ``best-single-per-model`` = the smallest payload per
    model over these codecs (the per-model choice without the SIREN)."""
    from seiscore.metrics.velocity import psnr_global

    arr = np.asarray(models)
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise CodecError(f"models must be (N, nz, nx), got shape {arr.shape}")
    bound = _check_bound(max_error)
    if families is not None and len(families) != arr.shape[0]:
        raise CodecError(f"{len(families)} family labels for {arr.shape[0]} models")
    labels = np.asarray(families, dtype=object) if families is not None else None
    best = np.full(arr.shape[0], np.inf)
    rows = []
    for name in codecs:
        if name == "pca" and pca_basis is None:
            continue
        options = {"basis": pca_basis} if name == "pca" else {}
        codec = get_codec(name, **options)
        sizes = np.full(arr.shape[0], np.nan)
        errors, psnrs = [], []
        for i in range(arr.shape[0]):
            m = as_model(arr[i], what=f"model {i}")
            try:
                payload = encode_to_error(name, m, bound, **options)
            except BoundError:
                continue
            out = codec.decode(payload, m.shape)
            sizes[i] = len(payload)
            errors.append(float(np.abs(out.astype(np.float64) - m).max()))
            psnrs.append(float(psnr_global(out, m)[0]))
        ok = np.isfinite(sizes)
        best = np.where(ok, np.minimum(best, np.where(ok, sizes, np.inf)), best)
        row: dict[str, Any] = {
            "codec": f"pca-{pca_basis.n_components}" if name == "pca" else name,
            "max_error": bound,
            "n": int(ok.sum()),
            "n_failed": int((~ok).sum()),
        }
        if ok.any():
            row.update(
                mean_bytes=float(np.mean(sizes[ok])),
                max_abs_error=float(max(errors)),
                psnr_g=float(np.mean(psnrs)),
            )
            if labels is not None:
                row["bytes_by_family"] = {
                    str(f): float(np.mean(sizes[ok & (labels == f)])) for f in dict.fromkeys(labels[ok].tolist())
                }
        rows.append(row)
    covered = np.isfinite(best)
    row = {"codec": "best-single-per-model", "max_error": bound, "n": int(covered.sum())}
    row["n_failed"] = int((~covered).sum())
    if covered.any():
        row["mean_bytes"] = float(np.mean(best[covered]))
        if labels is not None:
            row["bytes_by_family"] = {
                str(f): float(np.mean(best[covered & (labels == f)])) for f in dict.fromkeys(labels[covered].tolist())
            }
    rows.append(row)
    return rows
