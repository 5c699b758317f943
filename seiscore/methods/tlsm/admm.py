"""TLSM denoising by ADMM (Pan et al.; docs/TLSM.md).

Solves

    X* = argmin_X 1/2 ||X - Y||_F^2 + tau ||X||_{LSM,*} + lambda1 ||grad_1 (X - Y)||_LSM + lambda2 ||grad_2 X||_LSM

with splitting variables Z (low rank), D1 (footprint gradient), D2 (signal gradient), scaled
multipliers B, B1, B2 (zero at start) and Z = Y at start. Each iteration:

1. X-step: exact Fourier solve per frontal slice (:mod:`seiscore.methods.tlsm.xstep`);
2. Z-step: Z = prox_tSVD_LSM(X + B, tau / alpha) (:mod:`seiscore.methods.tlsm.tsvd`);
3. D1 = LSM(fdiff_rep(X - Y, axis 1) + B1, lambda1 / beta);
4. D2 = LSM(fdiff_rep(X, axis 0) + B2, lambda2 / gamma);
5. B += X - Z, B1 += fdiff0(X - Y, axis 1) - D1, B2 += fdiff0(X, axis 0) - D2.

The cube is held in the internal layout (n3, n1, n2) so frontal slices are contiguous; the
elementwise work is fused in :mod:`seiscore.methods.tlsm.kernels`.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Literal

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from seiscore.core.validation import as_float_volume
from seiscore.methods.tlsm import kernels
from seiscore.methods.tlsm.params import TLSMParams, resolve_params
from seiscore.methods.tlsm.tsvd import SpectralRoute, tsvd_lsm
from seiscore.methods.tlsm.xstep import FourierXSolver

Callback = Callable[[int, float], None]
Backend = Literal["numba", "torch"]


@functools.cache
def _blas_pools() -> ThreadpoolController:
    """The process's BLAS thread pools, found once: ``threadpool_limits`` scans the loaded libraries on every
    call (~5 ms, a third of TLSM on a tiny tile)."""
    return ThreadpoolController()


def default_workers() -> int:
    """Threads TLSM uses by default: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def denoise(
    y: np.ndarray,
    params: TLSMParams | dict | None = None,
    *,
    preset: str | None = None,
    callback: Callback | None = None,
    route: SpectralRoute = "gram",
    workers: int | None = None,
    backend: Backend = "numba",
    device: str | None = None,
) -> np.ndarray:
    """Denoise a cube in canonical orientation with TLSM.

    Parameters
    ----------
    y : ndarray (n1, n2, n3), float32 or float64
        Axis 0 the smooth axis, axis 1 the footprint axis, axis 2 the tube axis. Not modified.
    params : TLSMParams or dict, optional
        Full parameters, or a dict of overrides on top of ``preset``.
    preset : {"synthetic", "penobscot", "kerry"}, optional
        Parameter preset (default ``synthetic``).
    callback : callable(iteration, relative_change), optional
        Called after every iteration with the iteration number (1-based) and
        ||X_k - X_{k-1}||_F / ||X_{k-1}||_F.
    route : {"gram", "svd"}
        Spectral route of the Z-step (same result up to rounding).
    workers : int, optional
        Threads for everything TLSM runs in parallel: FFTs, the t-SVD batches and the numba
        kernels (default: the CPUs this process may use). In a Dask worker that runs several
        tasks at once, give each task its share of the cores. With ``backend="torch"`` on CPU:
        torch's intra-op threads for the call (restored afterwards).
    backend : {"numba", "torch"}
        ``"numba"``: this module's CPU solver; ``"torch"``: the same iterations on PyTorch
        (:mod:`seiscore.methods.tlsm.torch_backend`, imported on first use), on ``device``.
    device : {"cpu", "cuda", "auto"} or a torch device string, optional
        Torch backend only: default ``"cuda"`` when torch sees a CUDA device, else ``"cpu"``;
        ``"cuda"`` without one raises a one-line ``ValueError``. The numba backend runs on CPU.

    Returns
    -------
    ndarray, same shape and dtype as ``y``.
    """
    y = as_float_volume("y", y)
    p = resolve_params(params, preset)
    if backend == "torch":
        from seiscore.methods.tlsm.torch_backend import denoise_torch

        return denoise_torch(y, p, device=device, callback=callback, route=route, workers=workers)
    if backend != "numba":
        raise ValueError(f"unknown TLSM backend {backend!r}; use 'numba' or 'torch'")
    if device not in (None, "auto", "cpu"):
        raise ValueError(f"the numba backend runs on the CPU only, not on device {device!r}; use backend='torch'")
    workers = workers or default_workers()
    dtype = y.dtype
    Y = np.ascontiguousarray(np.transpose(y, (2, 0, 1)))  # a copy: the caller's array is never touched
    solver = FourierXSolver(Y.shape, p.alpha, p.beta, p.gamma, dtype, workers)
    Yc = solver.data_term(Y)
    periodic = p.boundary == "periodic"
    rho, mu_d1, mu_d2 = p.tau / p.alpha, p.lambda1 / p.beta, p.lambda2 / p.gamma

    zeros = lambda: np.zeros_like(Y)  # noqa: E731
    B, B1, B2, P1, P2 = zeros(), zeros(), zeros(), zeros(), zeros()
    Z = Y.copy()
    R = solver.rhs  # the X-step reads its right-hand side from its own (aligned) buffer
    W = np.empty_like(Y)
    X = Y.copy()  # "previous X" for the first relative change
    kernels.multiplier_and_rhs(Z, Z, B, P1, P2, Yc, R, p.alpha, p.beta, p.gamma)  # X = Z: B stays 0
    # BLAS stays single-threaded: the t-SVD runs one batch of frequency slices per thread instead.
    numba_threads = numba.get_num_threads()
    numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
    try:
        with _blas_pools().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            for it in range(1, p.iterations + 1):
                X_new = solver.solve()
                num, den = kernels.add_and_change(X_new, X, B, W)  # W = X + B
                X = X_new
                Z = tsvd_lsm(W, rho, route=route, workers=workers, executor=pool)
                kernels.dsteps_multipliers_and_rhs(
                    X, Y, Z, B, B1, B2, P1, P2, Yc, R, p.alpha, p.beta, p.gamma, mu_d1, mu_d2, periodic
                )
                if callback is not None:
                    callback(it, float(np.sqrt(num / den)) if den > 0 else 0.0)
    finally:
        numba.set_num_threads(numba_threads)
    return np.ascontiguousarray(np.transpose(X, (1, 2, 0)))
