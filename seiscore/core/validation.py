"""Input checks shared by the public APIs: every message names the argument and the problem."""

from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_volume(name: str, a: object, *, ndim: int = 3, min_len: int = 2) -> np.ndarray:
    """Validate a real floating-point array of ``ndim`` dims and return it as an ndarray (no copy).

    Raises ``ValueError`` for a wrong number of dims, an axis shorter than ``min_len``,
    integer / boolean / complex dtypes, and NaN or Inf samples.
    """
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got {a.ndim}-D with shape {a.shape}")
    short = [i for i, n in enumerate(a.shape) if n < min_len]
    if short:
        raise ValueError(
            f"{name} has axis {short[0]} of length {a.shape[short[0]]}; every axis needs >= {min_len} samples (shape "
            f"{a.shape})"
        )
    if a.dtype not in FLOAT_DTYPES:
        kind = {"c": "complex", "i": "integer", "u": "unsigned integer", "b": "boolean"}.get(a.dtype.kind, str(a.dtype))
        raise ValueError(
            f"{name} must be float32 or float64, got {kind} dtype {a.dtype}; convert it first (e.g. "
            "a.astype(np.float32))"
        )
    if not np.isfinite(a).all():
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} contains {bad} NaN or Inf samples; fill or mask them before processing")
    return a


def check_same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise a one-line ``ValueError`` naming both arrays when their shapes differ."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}")
