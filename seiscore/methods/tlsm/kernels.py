"""Fused numba kernels for the elementwise parts of one TLSM iteration.

Arrays live in the solver's internal layout ``(n3, n1, n2)``: frontal slices contiguous,
axis 1 the smooth axis (canonical axis 0), axis 2 the footprint axis (canonical axis 1).
The kernels run in parallel over frontal slices, each slice in one pass; the LSM scale of the
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

from seiscore.methods.tlsm.lsm import group_theta, shrink, shrink_coefs

# No fastmath: with reassociation ({"reassoc"}) LLVM may order the sums of squares differently in
# two compilations of the same kernel, and a kernel compiled now and the same kernel loaded from
# numba's cache gave results up to 1e-6 apart. Without it every sum runs in source order, so the
# output is bitwise the same whatever the cache state and thread count (tests/test_determinism.py);
# it costs ~2 % of TLSM time in float32 (docs/tlsm.md, "Determinism").
FASTMATH = False


@numba.njit(cache=True, fastmath=FASTMATH)
def _d1_slice(X, Y, B1, P1, mu1, periodic):
    """D1 = LSM(fdiff_rep(X - Y, axis 1) + B1);  B1 += fdiff0(X - Y, axis 1) - D1;  P1 = D1 - B1 (one slice)."""
    n1, n2 = X.shape
    last = n2 - 1
    for i in range(n1):
        if periodic:
            d_last = (X[i, 0] - Y[i, 0]) - (X[i, last] - Y[i, last])
            d0_last = d_last
        else:
            d_last = (X[i, last] - Y[i, last]) - (X[i, last - 1] - Y[i, last - 1])
            d0_last = 0.0
        ss = (d_last + B1[i, last]) ** 2
        for j in range(last):
            ss += ((X[i, j + 1] - Y[i, j + 1]) - (X[i, j] - Y[i, j]) + B1[i, j]) ** 2
        th = group_theta(math.sqrt(ss / n2), mu1)
        inv, c = shrink_coefs(th, mu1)
        for j in range(last):
            d = (X[i, j + 1] - Y[i, j + 1]) - (X[i, j] - Y[i, j])
            D = shrink(d + B1[i, j], th, inv, c)
            bn = B1[i, j] + d - D
            B1[i, j] = bn
            P1[i, j] = D - bn
        D = shrink(d_last + B1[i, last], th, inv, c)
        bn = B1[i, last] + d0_last - D
        B1[i, last] = bn
        P1[i, last] = D - bn


@numba.njit(cache=True, fastmath=FASTMATH)
def _d2_slice(X, B2, P2, mu2, periodic):
    """D2 = LSM(fdiff_rep(X, axis 0) + B2);  B2 += fdiff0(X, axis 0) - D2;  P2 = D2 - B2 (one slice)."""
    n1, n2 = X.shape
    for i in range(n1):
        if i < n1 - 1:
            ia, ib, keep = i + 1, i, 1.0
        elif periodic:
            ia, ib, keep = 0, i, 1.0
        else:
            ia, ib, keep = i, i - 1, 0.0  # replicated difference in D2, zero difference in B2
        ss = 0.0
        for j in range(n2):
            t = X[ia, j] - X[ib, j] + B2[i, j]
            ss += t * t
        th = group_theta(math.sqrt(ss / n2), mu2)
        inv, c = shrink_coefs(th, mu2)
        for j in range(n2):
            d = X[ia, j] - X[ib, j]
            D = shrink(d + B2[i, j], th, inv, c)
            b = B2[i, j] + keep * d - D
            B2[i, j] = b
            P2[i, j] = D - b


@numba.njit(cache=True, fastmath=FASTMATH)
def _rhs_slice(X, Z, B, P1, P2, Yc, R, alpha, beta, gamma):
    """B += X - Z, then R = alpha (Z - B) + beta Dx^T P1 + gamma Dy^T P2 + Yc (one slice)."""
    n1, n2 = X.shape
    for i in range(n1):
        im = i - 1 if i > 0 else n1 - 1
        bj = B[i, 0] + X[i, 0] - Z[i, 0]
        B[i, 0] = bj
        R[i, 0] = alpha * (Z[i, 0] - bj) + beta * (P1[i, n2 - 1] - P1[i, 0]) + gamma * (P2[im, 0] - P2[i, 0]) + Yc[i, 0]
        for j in range(1, n2):
            bj = B[i, j] + X[i, j] - Z[i, j]
            B[i, j] = bj
            R[i, j] = (
                alpha * (Z[i, j] - bj) + beta * (P1[i, j - 1] - P1[i, j]) + gamma * (P2[im, j] - P2[i, j]) + Yc[i, j]
            )


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def multiplier_and_rhs(X, Z, B, P1, P2, Yc, R, alpha, beta, gamma):
    """B += X - Z, then the X-step right-hand side in real space:

    R = alpha (Z - B) + beta Dx^T P1 + gamma Dy^T P2 + Yc,
    with periodic adjoint differences Dx^T v[j] = v[j-1] - v[j] (axis 2), Dy^T v[i] = v[i-1] - v[i]
    (axis 1), and Yc = Y + beta Dx^T Dx Y precomputed.
    """
    for k in numba.prange(X.shape[0]):
        _rhs_slice(X[k], Z[k], B[k], P1[k], P2[k], Yc[k], R[k], alpha, beta, gamma)


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def dsteps_multipliers_and_rhs(X, Y, Z, B, B1, B2, P1, P2, Yc, R, alpha, beta, gamma, mu1, mu2, periodic):
    """Steps 3-5 of the iteration and the next right-hand side, fused: per frontal slice, the D1
    step, the D2 step and :func:`multiplier_and_rhs` (all of a slice's data stays in cache)."""
    for k in numba.prange(X.shape[0]):
        _d1_slice(X[k], Y[k], B1[k], P1[k], mu1, periodic)
        _d2_slice(X[k], B2[k], P2[k], mu2, periodic)
        _rhs_slice(X[k], Z[k], B[k], P1[k], P2[k], Yc[k], R[k], alpha, beta, gamma)


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
