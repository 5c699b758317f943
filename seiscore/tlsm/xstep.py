"""The X-step: an exact solve per frontal slice in the 2-D Fourier domain.

With periodic forward differences Dx (axis 1 of the canonical cube) and Dy (axis 0), whose
optical transfer functions are Kx, Ky, the X-step minimises

    1/2 ||X - Y||^2 + alpha/2 ||X - Z + B||^2 + beta/2 ||Dx (X - Y) - D1 + B1||^2 + gamma/2 ||Dy X - D2 + B2||^2

per frontal slice, i.e. solves the normal equations

    (1 + alpha + beta Dx^T Dx + gamma Dy^T Dy) X = Y + alpha (Z - B) + beta Dx^T Dx Y + beta Dx^T (D1 - B1) + gamma Dy^T (D2 - B2),

which the 2-D FFT diagonalises: X^ = rhs^ / (alpha + beta |Kx|^2 + gamma |Ky|^2 + 1 + 1e-6)
(the demo's formula). The right-hand side is assembled in real space by
:func:`seiscore.tlsm.kernels.multiplier_and_rhs`, so each iteration costs one real 2-D FFT
pair over all slices at once.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

DENOM_EPS = 1e-6


def otf_power(n: int) -> np.ndarray:
    """|K|^2 of the periodic forward difference on n points: 2 - 2 cos(2 pi f / n)."""
    return 2.0 - 2.0 * np.cos(2.0 * np.pi * np.arange(n) / n)


class FourierXSolver:
    """Solve the X-step for stacks shaped (n3, n1, n2) (internal layout, slices contiguous)."""

    def __init__(self, shape: tuple[int, int, int], alpha: float, beta: float, gamma: float, dtype, workers: int):
        _, n1, n2 = shape
        kx2 = otf_power(n2)[: n2 // 2 + 1]  # rfft along the last axis keeps n2//2+1 frequencies
        ky2 = otf_power(n1)
        denom = alpha + beta * kx2[None, :] + gamma * ky2[:, None] + 1.0 + DENOM_EPS
        self.inv_denom = (1.0 / denom).astype(dtype)
        self.n2 = n2
        self.workers = workers
        self.beta = beta

    def data_term(self, Y: np.ndarray) -> np.ndarray:
        """Yc = Y + beta Dx^T Dx Y (periodic), the constant part of the right-hand side."""
        dx = np.roll(Y, -1, axis=2) - Y
        return Y + self.beta * (np.roll(dx, 1, axis=2) - dx)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        spec = sfft.rfft2(rhs, axes=(1, 2), workers=self.workers, overwrite_x=False)
        spec *= self.inv_denom
        return sfft.irfft2(spec, s=(rhs.shape[1], self.n2), axes=(1, 2), workers=self.workers, overwrite_x=True)
