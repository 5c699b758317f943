"""The Laplacian-scale-mixture (LSM) shrinkage operator, as the authors' demo implements it.

For an array ``y``, a weight ``mu1`` and a scale axis, with ``eps`` the float64 machine
epsilon (MATLAB's ``eps``):

    mu     = mu1 y^2 / 400                       (the demo's W = 20 / |y|, mu = mu1 / W^2)
    theta0 = RMS of y along the scale axis,  u = y / (theta0 + eps)
    a = u^2,  b = -2 u y,  c = 4 mu
    t1, t2 = -b / (4a) +- sqrt(b^2 / (16 a^2) - c / (2a))      (0 where the root is negative)
    f(t)   = a t^2 + b t + c log(t + eps)
    theta  = argmin over {0, t1, t2} of f
    S      = theta * soft(y / (theta + eps), 2 sqrt(2) mu / (theta^2 + eps))

Substituting ``a``, ``b``, ``c`` shows that for ``y != 0`` the candidates and the choice do not
depend on ``y``: with ``theta = theta0 + eps`` and ``q = 1/4 - mu1/200``,

    t1,2 = theta (1/2 +- sqrt(q)),      f(t) / y^2 = (t/theta)^2 - 2 t/theta + (mu1/100) log(t + eps),

so ``theta`` is one value per group (everything sharing one RMS) and the operator becomes an
elementwise shrink with a per-group scale. :func:`lsm_reference` is the literal elementwise
formula (for tests); :func:`lsm_shrink` and the numba helpers use the group form.
"""

from __future__ import annotations

import math

import numba
import numpy as np

EPS = float(np.finfo(np.float64).eps)
LOG_EPS = math.log(EPS)
SQRT8_OVER_400 = 2.0 * math.sqrt(2.0) / 400.0


def lsm_reference(y: np.ndarray, mu1: float, axis: int) -> np.ndarray:
    """Literal elementwise LSM operator (slow; float64 inside). ``y`` is not modified."""
    y = np.asarray(y, dtype=np.float64)
    theta0 = np.sqrt(np.mean(y**2, axis=axis, keepdims=True))
    mu = mu1 * y**2 / 400.0
    u = y / (theta0 + EPS)
    a, b, c = u**2, -2.0 * u * y, 4.0 * mu
    out = np.zeros_like(y)
    nz = y != 0
    a, b, c = a[nz], b[nz], c[nz]
    disc = b**2 / (16 * a**2) - c / (2 * a)
    root = np.sqrt(np.maximum(disc, 0.0))
    t1 = np.where(disc >= 0, -b / (4 * a) + root, 0.0)
    t2 = np.where(disc >= 0, -b / (4 * a) - root, 0.0)
    cands = np.stack([np.zeros_like(t1), t1, t2])
    f = a * cands**2 + b * cands + c * np.log(cands + EPS)
    theta = np.take_along_axis(cands, np.argmin(f, axis=0)[None], axis=0)[0]
    v = y[nz] / (theta + EPS)
    thr = 2.0 * math.sqrt(2.0) * mu[nz] / (theta**2 + EPS)
    out[nz] = theta * np.sign(v) * np.maximum(np.abs(v) - thr, 0.0)
    return out


@numba.njit(cache=True, inline="always")
def group_theta(rms: float, mu1: float) -> float:
    """The scale chosen by the LSM operator for a group whose RMS is ``rms`` (0 = zero the group)."""
    q = 0.25 - mu1 / 200.0
    if q < 0.0:
        return 0.0
    th = rms + EPS
    k1 = 0.5 + math.sqrt(q)
    k2 = 0.5 - math.sqrt(q)
    m = mu1 / 100.0
    best_t, best_f = 0.0, m * LOG_EPS
    f1 = k1 * k1 - 2.0 * k1 + m * math.log(th * k1 + EPS)
    if f1 < best_f:
        best_t, best_f = th * k1, f1
    f2 = k2 * k2 - 2.0 * k2 + m * math.log(th * k2 + EPS)
    if f2 < best_f:
        best_t, best_f = th * k2, f2
    return best_t


@numba.njit(cache=True, inline="always")
def shrink_coefs(theta: float, mu1: float) -> tuple[float, float]:
    """Per-group constants ``(1 / (theta + eps), 2 sqrt(2) mu1 / (400 (theta^2 + eps)))`` of :func:`shrink`."""
    if theta == 0.0:
        return 0.0, 0.0
    return 1.0 / (theta + EPS), SQRT8_OVER_400 * mu1 / (theta * theta + EPS)


@numba.njit(cache=True, inline="always")
def shrink(y, theta, inv, c):
    """S = theta * soft(y / (theta + eps), 2 sqrt(2) mu1 y^2 / (400 (theta^2 + eps))), branch-free,
    with ``inv, c = shrink_coefs(theta, mu1)`` (0 when theta = 0)."""
    v = y * inv
    m = max(abs(v) - c * y * y, 0.0)
    return theta * math.copysign(m, v)


@numba.njit(cache=True)
def _shrink_rows(y2d, rms, mu1, out2d):
    for g in range(y2d.shape[0]):
        th = group_theta(rms[g], mu1)
        inv, c = shrink_coefs(th, mu1)
        for j in range(y2d.shape[1]):
            out2d[g, j] = shrink(y2d[g, j], th, inv, c)


def lsm_shrink(y: np.ndarray, mu1: float, axis: int, weights: np.ndarray | None = None) -> np.ndarray:
    """LSM operator in group form: same result as :func:`lsm_reference`, returned in ``y``'s dtype.

    ``weights`` (length ``y.shape[axis]``) weight the mean of squares in the RMS; the t-SVD step
    uses them to count the conjugate-symmetric frequencies it does not store.
    """
    y = np.asarray(y)
    moved = np.moveaxis(y, axis, -1)
    y2d = np.ascontiguousarray(moved.reshape(-1, moved.shape[-1]), dtype=np.float64)
    if weights is None:
        rms = np.sqrt(np.mean(y2d**2, axis=1))
    else:
        w = np.asarray(weights, dtype=np.float64)
        rms = np.sqrt((y2d**2 @ w) / w.sum())
    out = np.empty_like(y2d)
    _shrink_rows(y2d, rms, float(mu1), out)
    return np.moveaxis(out.reshape(moved.shape), -1, axis).astype(y.dtype, copy=False)
