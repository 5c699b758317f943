"""The Z-step: LSM shrinkage of t-SVD singular values (tensor nuclear norm proximal step).

For ``A`` shaped (n3, n1, n2) (tube axis first), the t-SVD takes the FFT along the tube axis,
``A^_k = fft(A)[k]``, and the SVD of every frequency slice, ``A^_k = U_k diag(s_k) V_k^H``.
The LSM operator (:mod:`seiscore.methods.tlsm.lsm`) shrinks the matrix ``s[r, k]`` with the scale of
singular index ``r`` taken as the RMS over all n3 frequencies, and the slices are rebuilt as
``U_k diag(s'_k) V_k^H`` before the inverse FFT.

Since ``A`` is real, ``A^_{n3-k} = conj(A^_k)`` has the same singular values: only the
``n3//2 + 1`` slices of ``rfft`` are decomposed, and the RMS counts every other slice twice.

Spectral routes (same result up to rounding):
- ``"svd"``: batched SVD of each slice (LAPACK gesdd).
- ``"gram"`` (default): eigen-decomposition of the smaller Gram matrix ``G_k = A^_k A^_k^H``
  (or ``A^_k^H A^_k``; BLAS ``herk`` + LAPACK ``heevd`` called from numba with the GIL released,
  :mod:`seiscore.methods.tlsm.lapack`), ``s = sqrt(lambda)``, and the rebuild in the stable form
  ``Z^_k = A^_k - U_k diag(1 - s'/s) U_k^H A^_k``, which never divides by a small singular value
  where the shrinkage leaves it alone.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Literal

import numba
import numpy as np
import scipy.fft as sfft

from seiscore.methods.tlsm.lapack import heevd, heevd_workspace, hemm, herk
from seiscore.methods.tlsm.lsm import lsm_shrink

SpectralRoute = Literal["svd", "gram"]


def symmetry_weights(n3: int) -> np.ndarray:
    """How many of the n3 FFT frequencies each rfft frequency stands for (1 or 2)."""
    w = np.full(n3 // 2 + 1, 2.0)
    w[0] = 1.0
    if n3 % 2 == 0:
        w[-1] = 1.0
    return w


@numba.njit(nogil=True, cache=True)
def _gram_eigh(F, lam, V):
    """Eigen-decompose the Gram matrix of every slice of the batch ``F`` (nb, n1, n2).

    In the Fortran view a slice is ``A`` (n2 x n1); its r x r Gram matrix (r = min(n1, n2)) is
    ``A^H A`` or ``A A^H`` (``herk``), decomposed in place by ``heevd``: ``lam[k]`` ascending,
    row j of ``V[k]`` the eigenvector of ``lam[k, j]``. Runs without the GIL, so the batches of
    :func:`tsvd_lsm` really run in parallel threads. Returns the first non-zero LAPACK ``info``.
    """
    nb, n1, n2 = F.shape
    r = min(n1, n2)
    work, rwork, iwork = heevd_workspace(V[0])
    for k in range(nb):
        if n1 <= n2:
            herk("C", r, n2, F[k], n2, V[k])
        else:
            herk("N", r, n1, F[k], n2, V[k])
        info = heevd(V[k], lam[k], work, rwork, iwork)
        if info != 0:
            return info
    return 0


@numba.njit(nogil=True, cache=True)
def _gram_rebuild(F, V, cut):
    """Overwrite every slice of ``F`` with ``A - A M`` (or ``A - M A``), ``M = V diag(cut) V^H``.

    Fortran view as in :func:`_gram_eigh`. ``0 <= cut <= 1`` (the LSM shrinkage never grows a
    singular value), so ``M = W W^H`` with ``W = V diag(sqrt(cut))``: ``herk`` forms it and
    ``hemm`` applies it, both using its symmetry (a third fewer flops than two ``gemm``).
    """
    nb, n1, n2 = F.shape
    r = min(n1, n2)
    Ws = np.empty((r, r), dtype=F.dtype)
    M = np.empty((r, r), dtype=F.dtype)
    T = np.empty((n1, n2), dtype=F.dtype)
    for k in range(nb):
        for j in range(r):
            c = np.sqrt(max(cut[k, j], 0.0))
            for i in range(r):
                Ws[j, i] = V[k, j, i] * c
        herk("N", r, r, Ws, r, M)
        T[:] = F[k]
        if n1 <= n2:
            hemm("R", n2, n1, -1.0, M, r, T, n2, 1.0, F[k], n2)
        else:
            hemm("L", n2, n1, -1.0, M, r, T, n2, 1.0, F[k], n2)


def _decompose(F: np.ndarray, route: SpectralRoute):
    """Singular values (ascending) and the vectors needed for the rebuild, for a batch of slices."""
    if route == "svd":
        U, s, Vh = np.linalg.svd(F, full_matrices=False)
        return s[:, ::-1], (U, Vh)
    r = min(F.shape[1:])
    lam = np.empty((F.shape[0], r), dtype=F.real.dtype)
    V = np.zeros((F.shape[0], r, r), dtype=F.dtype)
    info = _gram_eigh(F, lam, V)
    if info != 0:
        raise np.linalg.LinAlgError(f"t-SVD: heevd failed on a frequency slice (info={info})")
    return np.sqrt(np.maximum(lam, 0)), (V,)


def _rebuild(F: np.ndarray, route: SpectralRoute, s: np.ndarray, s_new: np.ndarray, vecs) -> None:
    """Overwrite the batch ``F`` with its rebuilt slices (Gram route: ``cut = 1 - s'/s``)."""
    if route == "svd":
        U, Vh = vecs
        F[...] = (U * s_new[:, None, ::-1].astype(F.real.dtype)) @ Vh
        return
    (V,) = vecs
    _gram_rebuild(F, V, (1.0 - s_new / s).astype(F.real.dtype))  # s > 0: see tsvd_lsm


def tsvd_lsm(
    A: np.ndarray,
    rho: float,
    *,
    route: SpectralRoute = "gram",
    workers: int = 1,
    executor: Executor | None = None,
) -> np.ndarray:
    """Z = prox_tSVD_LSM(A, rho) for A shaped (n3, n1, n2); returns a new real array.

    The frequency slices are split into ``workers`` contiguous batches, each decomposed with one
    batched LAPACK call in its own thread (keep BLAS single-threaded around this call, as
    :func:`seiscore.methods.tlsm.denoise` does, or the threads oversubscribe the cores).
    """
    if route not in ("svd", "gram"):
        raise ValueError(f"unknown spectral route {route!r}; use 'svd' or 'gram'")
    n3 = A.shape[0]
    F = sfft.rfft(A, axis=0, workers=workers)
    batches = [b for b in np.array_split(np.arange(F.shape[0]), max(1, min(workers, F.shape[0]))) if len(b)]
    slices = [slice(int(b[0]), int(b[-1]) + 1) for b in batches]
    own = executor is None
    ex = ThreadPoolExecutor(len(slices)) if own else executor
    try:
        parts = list(ex.map(lambda sl: _decompose(F[sl], route), slices))
        s = np.concatenate([p[0] for p in parts], axis=0)  # (n3//2+1, r), ascending per slice
        # Gram eigenvalues that rounding put at or below zero stand for singular values too small
        # to resolve, not for empty directions: give them the limit of the shrinkage as s -> 0
        # (keep the component unless its whole group is zeroed) instead of removing them.
        s = np.maximum(s, np.finfo(s.dtype).tiny)
        s_new = lsm_shrink(s, rho, axis=0, weights=symmetry_weights(n3))
        list(ex.map(lambda a: _rebuild(F[a[0]], route, s[a[0]], s_new[a[0]], a[1][1]), zip(slices, parts)))
    finally:
        if own:
            ex.shutdown()
    return sfft.irfft(F, n=n3, axis=0, workers=workers)
