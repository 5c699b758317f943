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

from seiscore.tlsm.lsm import group_theta, shrink, shrink_coefs

# Reassociation lets LLVM vectorise the sums of squares; results stay deterministic for a given
# machine and are checked against the literal reference in the tests.
FASTMATH = {"reassoc", "nsz"}


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def d1_step(X, Y, B1, P1, mu1, periodic):
    """D1 = LSM(fdiff_rep(X - Y, axis 2) + B1);  B1 += fdiff0(X - Y, axis 2) - D1;  P1 = D1 - B1."""
    n3, n1, n2 = X.shape
    last = n2 - 1
    for r in numba.prange(n3 * n1):
        k = r // n1
        i = r % n1
        if periodic:
            d_last = (X[k, i, 0] - Y[k, i, 0]) - (X[k, i, last] - Y[k, i, last])
            d0_last = d_last
        else:
            d_last = (X[k, i, last] - Y[k, i, last]) - (X[k, i, last - 1] - Y[k, i, last - 1])
            d0_last = 0.0
        ss = (d_last + B1[k, i, last]) ** 2
        for j in range(last):
            ss += ((X[k, i, j + 1] - Y[k, i, j + 1]) - (X[k, i, j] - Y[k, i, j]) + B1[k, i, j]) ** 2
        th = group_theta(math.sqrt(ss / n2), mu1)
        inv, c = shrink_coefs(th, mu1)
        for j in range(last):
            d = (X[k, i, j + 1] - Y[k, i, j + 1]) - (X[k, i, j] - Y[k, i, j])
            D = shrink(d + B1[k, i, j], th, inv, c)
            bn = B1[k, i, j] + d - D
            B1[k, i, j] = bn
            P1[k, i, j] = D - bn
        D = shrink(d_last + B1[k, i, last], th, inv, c)
        bn = B1[k, i, last] + d0_last - D
        B1[k, i, last] = bn
        P1[k, i, last] = D - bn


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def d2_step(X, B2, P2, mu1, periodic):
    """D2 = LSM(fdiff_rep(X, axis 1) + B2);  B2 += fdiff0(X, axis 1) - D2;  P2 = D2 - B2."""
    n3, n1, n2 = X.shape
    for r in numba.prange(n3 * n1):
        k, i = r // n1, r % n1
        if i < n1 - 1:
            ia, ib, keep = i + 1, i, 1.0
        elif periodic:
            ia, ib, keep = 0, i, 1.0
        else:
            ia, ib, keep = i, i - 1, 0.0  # replicated difference in D2, zero difference in B2
        xa, xb, b2, p2 = X[k, ia], X[k, ib], B2[k, i], P2[k, i]
        ss = 0.0
        for j in range(n2):
            t = xa[j] - xb[j] + b2[j]
            ss += t * t
        th = group_theta(math.sqrt(ss / n2), mu1)
        inv, c = shrink_coefs(th, mu1)
        for j in range(n2):
            d = xa[j] - xb[j]
            D = shrink(d + b2[j], th, inv, c)
            b = b2[j] + keep * d - D
            b2[j] = b
            p2[j] = D - b


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def multiplier_and_rhs(X, Z, B, P1, P2, Yc, R, alpha, beta, gamma):
    """B += X - Z, then the X-step right-hand side in real space:

    R = alpha (Z - B) + beta Dx^T P1 + gamma Dy^T P2 + Yc,
    with periodic adjoint differences Dx^T v[j] = v[j-1] - v[j] (axis 2), Dy^T v[i] = v[i-1] - v[i]
    (axis 1), and Yc = Y + beta Dx^T Dx Y precomputed.
    """
    n3, n1, n2 = X.shape
    for r in numba.prange(n3 * n1):
        k = r // n1
        i = r % n1
        im = i - 1 if i > 0 else n1 - 1
        bj = B[k, i, 0] + X[k, i, 0] - Z[k, i, 0]
        B[k, i, 0] = bj
        R[k, i, 0] = alpha * (Z[k, i, 0] - bj) + beta * (P1[k, i, n2 - 1] - P1[k, i, 0]) + gamma * (P2[k, im, 0] - P2[k, i, 0]) + Yc[k, i, 0]
        for j in range(1, n2):
            bj = B[k, i, j] + X[k, i, j] - Z[k, i, j]
            B[k, i, j] = bj
            R[k, i, j] = alpha * (Z[k, i, j] - bj) + beta * (P1[k, i, j - 1] - P1[k, i, j]) + gamma * (P2[k, im, j] - P2[k, i, j]) + Yc[k, i, j]


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def add_and_change(X_new, X_old, B, W):
    """W = X_new + B; return (||X_new - X_old||^2, ||X_old||^2) for the convergence log."""
    n3, n1, n2 = X_new.shape
    num = np.zeros(n3 * n1)
    den = np.zeros(n3 * n1)
    for r in numba.prange(n3 * n1):
        xn, xo, b, w = X_new[r // n1, r % n1], X_old[r // n1, r % n1], B[r // n1, r % n1], W[r // n1, r % n1]
        a = 0.0
        c = 0.0
        for j in range(n2):
            w[j] = xn[j] + b[j]
            d = xn[j] - xo[j]
            a += d * d
            c += xo[j] * xo[j]
        num[r] = a
        den[r] = c
    return num.sum(), den.sum()
