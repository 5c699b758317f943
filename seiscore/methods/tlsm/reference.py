"""A literal, slow TLSM written straight from docs/TLSM.md: the yardstick for the fast solver.

Canonical layout throughout, ``numpy.fft`` per the spec, a full SVD of every one of the n3
frequency slices (no conjugate-symmetry shortcut), the elementwise LSM formula. Used by the
tests and by ``python -m seiscore.bench tlsm`` to check that the fast route stays within
1e-4 relative and 0.01 dB of it. Float64 inside.
"""

from __future__ import annotations

import numpy as np

from seiscore.methods.tlsm.lsm import lsm_reference
from seiscore.methods.tlsm.params import TLSMParams, resolve_params


def _otf_forward_diff(shape: tuple[int, int], axis: int) -> np.ndarray:
    """OTF of the periodic forward difference along ``axis`` (MATLAB psf2otf([1, -1]))."""
    h = np.zeros(shape)
    h[0, 0] = -1.0
    h[(-1, 0) if axis == 0 else (0, -1)] = 1.0
    return np.fft.fft2(h)


def _fdiff(a: np.ndarray, axis: int, last: str) -> np.ndarray:
    """Forward difference; the last entry is 'rep' (repeat), 'zero' or 'periodic'."""
    d = np.diff(a, axis=axis, append=np.take(a, [0], axis=axis))  # periodic
    if last == "periodic":
        return d
    idx = [slice(None)] * a.ndim
    idx[axis] = -1
    src = [slice(None)] * a.ndim
    src[axis] = -2
    d[tuple(idx)] = d[tuple(src)] if last == "rep" else 0.0
    return d


def tsvd_lsm_reference(A: np.ndarray, rho: float) -> np.ndarray:
    """prox_tSVD_LSM with the FFT along axis 2 and a full SVD of every frequency slice."""
    F = np.fft.fft(A, axis=2)
    U, s, Vh = np.linalg.svd(np.moveaxis(F, 2, 0), full_matrices=False)  # s: (n3, r)
    s_new = lsm_reference(s.T, rho, axis=1).T
    Z = np.moveaxis((U * s_new[:, None, :]) @ Vh, 0, 2)
    return np.real(np.fft.ifft(Z, axis=2))


def denoise_reference(
    y: np.ndarray, params: TLSMParams | dict | None = None, *, preset: str | None = None
) -> np.ndarray:
    """TLSM exactly as the spec states it (canonical orientation, returns float64)."""
    p = resolve_params(params, preset)
    Y = np.asarray(y, dtype=np.float64)
    n1, n2, _ = Y.shape
    Kx = _otf_forward_diff((n1, n2), axis=1)[:, :, None]
    Ky = _otf_forward_diff((n1, n2), axis=0)[:, :, None]
    denom = p.alpha + p.beta * np.abs(Kx) ** 2 + p.gamma * np.abs(Ky) ** 2 + 1 + 1e-6
    rep, zero = ("periodic", "periodic") if p.boundary == "periodic" else ("rep", "zero")
    fft2 = lambda a: np.fft.fft2(a, axes=(0, 1))  # noqa: E731
    Yh = fft2(Y)
    Z = Y.copy()
    B, B1, B2, D1, D2 = (np.zeros_like(Y) for _ in range(5))
    X = Y
    for _ in range(p.iterations):
        num = p.alpha * fft2(Z - B) + p.beta * np.abs(Kx) ** 2 * Yh + p.beta * np.conj(Kx) * fft2(D1 - B1)
        num += p.gamma * np.conj(Ky) * fft2(D2 - B2) + Yh
        X = np.real(np.fft.ifft2(num / denom, axes=(0, 1)))
        Z = tsvd_lsm_reference(X + B, p.tau / p.alpha)
        D1 = lsm_reference(_fdiff(X - Y, 1, rep) + B1, p.lambda1 / p.beta, axis=1)
        D2 = lsm_reference(_fdiff(X, 0, rep) + B2, p.lambda2 / p.gamma, axis=1)
        B = B + X - Z
        B1 = B1 + _fdiff(X, 1, zero) - _fdiff(Y, 1, zero) - D1
        B2 = B2 + _fdiff(X, 0, zero) - D2
    return X
