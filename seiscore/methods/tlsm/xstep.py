"""The X-step: an exact solve per frontal slice in the 2-D Fourier domain.

With periodic forward differences Dx (axis 1 of the canonical cube) and Dy (axis 0), whose
optical transfer functions are Kx, Ky, the X-step minimises

    1/2 ||X - Y||^2 + alpha/2 ||X - Z + B||^2 + beta/2 ||Dx (X - Y) - D1 + B1||^2 + gamma/2 ||Dy X - D2 + B2||^2

per frontal slice, i.e. solves the normal equations

    (1 + alpha + beta Dx^T Dx + gamma Dy^T Dy) X
        = Y + alpha (Z - B) + beta Dx^T Dx Y + beta Dx^T (D1 - B1) + gamma Dy^T (D2 - B2),

which the 2-D FFT diagonalises: X^ = rhs^ / (alpha + beta |Kx|^2 + gamma |Ky|^2 + 1 + 1e-6)
(the demo's formula). The right-hand side is assembled in real space by
:func:`seiscore.methods.tlsm.kernels.multiplier_and_rhs`, so each iteration costs one real 2-D FFT
pair over all slices at once (FFTW through pyfftw, or ``scipy.fft``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.fft as sfft

try:  # FFTW halves the X-step's FFT time here (measured: BENCHMARKS.md); scipy.fft otherwise
    import pyfftw
except ImportError:  # pragma: no cover - pyfftw is a declared dependency
    pyfftw = None

DENOM_EPS = 1e-6
FFTBackend = Literal["fftw", "scipy"]


def otf_power(n: int) -> np.ndarray:
    """|K|^2 of the periodic forward difference on n points: 2 - 2 cos(2 pi f / n)."""
    return 2.0 - 2.0 * np.cos(2.0 * np.pi * np.arange(n) / n)


def default_fft_backend() -> FFTBackend:
    """``fftw`` when pyFFTW is installed, else ``scipy``."""
    return "fftw" if pyfftw is not None else "scipy"


class FourierXSolver:
    """Solve the X-step for stacks shaped (n3, n1, n2) (internal layout, slices contiguous).

    The solver owns its buffers: :attr:`rhs` (write the right-hand side there to skip a copy) and
    two output buffers used in turn, so the array :meth:`solve` returns stays valid until the
    call after next. With the ``"fftw"`` backend the transforms are FFTW plans made once
    (``FFTW_ESTIMATE``: no planning time) and run on those buffers; the 1 / (n1 n2) of the inverse
    transform is folded into the precomputed denominator.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        alpha: float,
        beta: float,
        gamma: float,
        dtype,
        workers: int,
        backend: FFTBackend | None = None,
    ):
        backend = backend or default_fft_backend()
        if backend not in ("fftw", "scipy"):
            raise ValueError(f"unknown FFT backend {backend!r}; use 'fftw' or 'scipy'")
        if backend == "fftw" and pyfftw is None:
            raise ValueError("FFT backend 'fftw' needs the pyfftw package, which is not installed")
        n3, n1, n2 = shape
        dtype = np.dtype(dtype)
        kx2 = otf_power(n2)[: n2 // 2 + 1]  # rfft along the last axis keeps n2//2+1 frequencies
        ky2 = otf_power(n1)
        denom = alpha + beta * kx2[None, :] + gamma * ky2[:, None] + 1.0 + DENOM_EPS
        scale = 1.0 / (n1 * n2) if backend == "fftw" else 1.0
        self.inv_denom = (scale / denom).astype(dtype)
        self.shape = (n3, n1, n2)
        self.workers = workers
        self.beta = beta
        self.backend = backend
        spec_shape, cdtype = (n3, n1, n2 // 2 + 1), np.result_type(dtype, np.complex64)
        empty = pyfftw.empty_aligned if backend == "fftw" else np.empty
        self.rhs = empty(self.shape, dtype=dtype)
        self._out = [empty(self.shape, dtype=dtype), empty(self.shape, dtype=dtype)]
        self._turn = 0
        if backend == "fftw":
            self._spec = empty(spec_shape, dtype=cdtype)
            plan = dict(axes=(1, 2), threads=workers)
            self._forward = pyfftw.FFTW(
                self.rhs, self._spec, direction="FFTW_FORWARD", flags=("FFTW_ESTIMATE",), **plan
            )
            self._inverse = [
                pyfftw.FFTW(
                    self._spec, out, direction="FFTW_BACKWARD", flags=("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT"), **plan
                )
                for out in self._out
            ]

    def data_term(self, Y: np.ndarray) -> np.ndarray:
        """Yc = Y + beta Dx^T Dx Y (periodic), the constant part of the right-hand side."""
        dx = np.roll(Y, -1, axis=2) - Y
        return Y + self.beta * (np.roll(dx, 1, axis=2) - dx)

    def solve(self, rhs: np.ndarray | None = None) -> np.ndarray:
        """X for the right-hand side ``rhs`` (default: what is in :attr:`rhs`); not modified."""
        if rhs is not None and rhs is not self.rhs:
            if rhs.shape != self.shape:
                raise ValueError(f"X-step: right-hand side of shape {rhs.shape}, solver made for {self.shape}")
            self.rhs[...] = rhs
        out = self._out[self._turn]
        if self.backend == "fftw":
            self._forward.execute()
            self._spec *= self.inv_denom
            self._inverse[self._turn].execute()
        else:
            spec = sfft.rfft2(self.rhs, axes=(1, 2), workers=self.workers)
            spec *= self.inv_denom
            out[...] = sfft.irfft2(spec, s=self.shape[1:], axes=(1, 2), workers=self.workers, overwrite_x=True)
        self._turn = 1 - self._turn
        return out
