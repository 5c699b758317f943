"""Fused numba kernels for the elementwise parts of one TLSM iteration.

Arrays live in the solver's internal layout ``(n3, n1, n2)``: frontal slices contiguous,
axis 1 the smooth axis (canonical axis 0), axis 2 the footprint axis (canonical axis 1).
Each kernel makes one pass over its rows, in parallel over rows; the LSM scale of the
D-steps is the RMS along axis 2 (the canonical axis 1), so one row is one LSM group.

Boundary conventions (``periodic`` flag):
- demo: D-steps difference with the last difference repeated (``forward_diff_rep``) and
  update the multipliers with the last difference zero (``fdiff0``);
- periodic: both use the periodic difference ``A[0] - A[n-1]`` at the end, consistent with
  the periodic differences of the Fourier X-step.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from seiscore.tlsm.lsm import group_theta, shrink


@numba.njit(parallel=True, cache=True)
def d1_step(X, Y, B1, P1, mu1, periodic):
    """D1 = LSM(fdiff_rep(X - Y, axis 2) + B1);  B1 += fdiff0(X - Y, axis 2) - D1;  P1 = D1 - B1."""
    n3, n1, n2 = X.shape
    for r in numba.prange(n3 * n1):
        k, i = r // n1, r % n1
        ss = 0.0
        for j in range(n2):
            if j < n2 - 1:
                d = (X[k, i, j + 1] - Y[k, i, j + 1]) - (X[k, i, j] - Y[k, i, j])
            elif periodic:
                d = (X[k, i, 0] - Y[k, i, 0]) - (X[k, i, j] - Y[k, i, j])
            else:
                d = (X[k, i, j] - Y[k, i, j]) - (X[k, i, j - 1] - Y[k, i, j - 1])
            t = d + B1[k, i, j]
            ss += t * t
        th = group_theta(math.sqrt(ss / n2), mu1)
        for j in range(n2):
            if j < n2 - 1:
                d = (X[k, i, j + 1] - Y[k, i, j + 1]) - (X[k, i, j] - Y[k, i, j])
                d0 = d
            elif periodic:
                d = (X[k, i, 0] - Y[k, i, 0]) - (X[k, i, j] - Y[k, i, j])
                d0 = d
            else:
                d = (X[k, i, j] - Y[k, i, j]) - (X[k, i, j - 1] - Y[k, i, j - 1])
                d0 = 0.0
            b = B1[k, i, j]
            D = shrink(d + b, th, mu1)
            b = b + d0 - D
            B1[k, i, j] = b
            P1[k, i, j] = D - b


@numba.njit(parallel=True, cache=True)
def d2_step(X, B2, P2, mu1, periodic):
    """D2 = LSM(fdiff_rep(X, axis 1) + B2);  B2 += fdiff0(X, axis 1) - D2;  P2 = D2 - B2."""
    n3, n1, n2 = X.shape
    for r in numba.prange(n3 * n1):
        k, i = r // n1, r % n1
        if i < n1 - 1:
            ia, ib, zero_last = i + 1, i, False
        elif periodic:
            ia, ib, zero_last = 0, i, False
        else:
            ia, ib, zero_last = i, i - 1, True
        ss = 0.0
        for j in range(n2):
            t = X[k, ia, j] - X[k, ib, j] + B2[k, i, j]
            ss += t * t
        th = group_theta(math.sqrt(ss / n2), mu1)
        for j in range(n2):
            d = X[k, ia, j] - X[k, ib, j]
            d0 = 0.0 if zero_last else d
            b = B2[k, i, j]
            D = shrink(d + b, th, mu1)
            b = b + d0 - D
            B2[k, i, j] = b
            P2[k, i, j] = D - b


@numba.njit(parallel=True, cache=True)
def multiplier_and_rhs(X, Z, B, P1, P2, Yc, R, alpha, beta, gamma):
    """B += X - Z, then the X-step right-hand side in real space:

    R = alpha (Z - B) + beta Dx^T P1 + gamma Dy^T P2 + Yc,
    with periodic adjoint differences Dx^T v[j] = v[j-1] - v[j] (axis 2), Dy^T v[i] = v[i-1] - v[i]
    (axis 1), and Yc = Y + beta Dx^T Dx Y precomputed.
    """
    n3, n1, n2 = X.shape
    for r in numba.prange(n3 * n1):
        k, i = r // n1, r % n1
        im = i - 1 if i > 0 else n1 - 1
        for j in range(n2):
            jm = j - 1 if j > 0 else n2 - 1
            b = B[k, i, j] + X[k, i, j] - Z[k, i, j]
            B[k, i, j] = b
            R[k, i, j] = (
                alpha * (Z[k, i, j] - b)
                + beta * (P1[k, i, jm] - P1[k, i, j])
                + gamma * (P2[k, im, j] - P2[k, i, j])
                + Yc[k, i, j]
            )


@numba.njit(parallel=True, cache=True)
def add_and_change(X_new, X_old, B, W):
    """W = X_new + B; return (||X_new - X_old||^2, ||X_old||^2) for the convergence log."""
    n3, n1, n2 = X_new.shape
    num = np.zeros(n3)
    den = np.zeros(n3)
    for k in numba.prange(n3):
        a = 0.0
        c = 0.0
        for i in range(n1):
            for j in range(n2):
                x = X_new[k, i, j]
                W[k, i, j] = x + B[k, i, j]
                d = x - X_old[k, i, j]
                a += d * d
                c += X_old[k, i, j] * X_old[k, i, j]
        num[k] = a
        den[k] = c
    return num.sum(), den.sum()
