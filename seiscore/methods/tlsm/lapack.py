"""BLAS / LAPACK routines callable from numba ``nogil`` code, bound to SciPy's own library.

The t-SVD step (:mod:`seiscore.methods.tlsm.tsvd`) runs a few hundred small Hermitian problems per
iteration. Calling the routines directly through the function pointers SciPy exports
(``scipy.linalg.cython_blas`` / ``cython_lapack``) lets numba run a whole batch without the GIL,
without per-call workspace queries and without the copies ``np.linalg.eigh`` makes, and lets the
Hermitian products use ``herk`` / ``hemm`` (``herk``: half the flops of ``gemm``).

All arrays are read as Fortran (column-major) matrices: a C-contiguous ``(rows, cols)`` slice is
the Fortran matrix of shape ``(cols, rows)``. Every argument is passed by pointer, as Fortran
expects; the wrappers below take NumPy arrays and build the scalar arguments themselves.

Single precision (complex64) uses ``cherk / chemm / cheevd``, double precision (complex128)
``zherk / zhemm / zheevd``.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import get_cython_function_address


def _bind(module: str, name: str, n_args: int) -> types.ExternalFunction:
    """Declare SciPy's ``name`` as an external symbol (every argument a pointer).

    The symbol is registered with LLVM by name at import, so functions that call it can be cached
    on disk: the cached code refers to the name, resolved again in every new process.
    """
    symbol = f"seiscore_{module}_{name}"
    llvm.add_symbol(symbol, get_cython_function_address(f"scipy.linalg.cython_{module}", name))
    return types.ExternalFunction(symbol, types.void(*([types.voidptr] * n_args)))


# herk(uplo, trans, n, k, alpha, a, lda, beta, c, ldc)
_cherk = _bind("blas", "cherk", 10)
_zherk = _bind("blas", "zherk", 10)
# hemm(side, uplo, m, n, alpha, a, lda, b, ldb, beta, c, ldc)
_chemm = _bind("blas", "chemm", 12)
_zhemm = _bind("blas", "zhemm", 12)
# heevd(jobz, uplo, n, a, lda, w, work, lwork, rwork, lrwork, iwork, liwork, info)
_cheevd = _bind("lapack", "cheevd", 13)
_zheevd = _bind("lapack", "zheevd", 13)


@numba.njit(nogil=True, cache=True)
def _char(c):
    return np.array([ord(c)], dtype=np.uint8)


@numba.njit(nogil=True, cache=True)
def _int(v):
    return np.array([v], dtype=np.int32)


@numba.njit(nogil=True, cache=True)
def herk(trans, n, k, a, lda, c):
    """Lower triangle of ``C = A^H A`` (trans='C', A is k x n) or ``C = A A^H`` (trans='N', A is n x k)."""
    one = np.ones(1, dtype=a.real.dtype)
    zero = np.zeros(1, dtype=a.real.dtype)
    fn_args = (
        _char("L").ctypes,
        _char(trans).ctypes,
        _int(n).ctypes,
        _int(k).ctypes,
        one.ctypes,
        a.ctypes,
        _int(lda).ctypes,
        zero.ctypes,
        c.ctypes,
        _int(n).ctypes,
    )
    if a.itemsize == 8:
        _cherk(*fn_args)
    else:
        _zherk(*fn_args)


@numba.njit(nogil=True, cache=True)
def hemm(side, m, n, alpha, a, lda, b, ldb, beta, c, ldc):
    """``C = alpha A B + beta C`` (side='L') or ``alpha B A + beta C`` (side='R'), A Hermitian
    (lower triangle), C m x n (Fortran view)."""
    al = np.full(1, alpha, dtype=c.dtype)
    be = np.full(1, beta, dtype=c.dtype)
    fn_args = (
        _char(side).ctypes,
        _char("L").ctypes,
        _int(m).ctypes,
        _int(n).ctypes,
        al.ctypes,
        a.ctypes,
        _int(lda).ctypes,
        b.ctypes,
        _int(ldb).ctypes,
        be.ctypes,
        c.ctypes,
        _int(ldc).ctypes,
    )
    if c.itemsize == 8:
        _chemm(*fn_args)
    else:
        _zhemm(*fn_args)


@numba.njit(nogil=True, cache=True)
def heevd_workspace(a):
    """Workspace arrays (work, rwork, iwork) for :func:`heevd` on the n x n matrices like ``a``."""
    n = a.shape[0]
    work = np.empty(1, dtype=a.dtype)
    rwork = np.empty(1, dtype=a.real.dtype)
    iwork = np.empty(1, dtype=np.int32)
    w = np.empty(n, dtype=a.real.dtype)
    info = _int(0)
    fn_args = (
        _char("V").ctypes,
        _char("L").ctypes,
        _int(n).ctypes,
        a.ctypes,
        _int(n).ctypes,
        w.ctypes,
        work.ctypes,
        _int(-1).ctypes,
        rwork.ctypes,
        _int(-1).ctypes,
        iwork.ctypes,
        _int(-1).ctypes,
        info.ctypes,
    )
    if a.itemsize == 8:
        _cheevd(*fn_args)
    else:
        _zheevd(*fn_args)
    return (
        np.empty(int(work[0].real) + 1, dtype=a.dtype),
        np.empty(int(rwork[0]) + 1, dtype=a.real.dtype),
        np.empty(int(iwork[0]) + 1, dtype=np.int32),
    )


@numba.njit(nogil=True, cache=True)
def heevd(a, w, work, rwork, iwork):
    """Eigen-decompose the Hermitian n x n matrix ``a`` (lower triangle) in place.

    On return ``w`` holds the eigenvalues in ascending order and column j of ``a`` (Fortran view,
    i.e. row j of the C array) the eigenvector of ``w[j]``. Returns LAPACK's ``info`` (0: success).
    """
    n = a.shape[0]
    info = _int(0)
    fn_args = (
        _char("V").ctypes,
        _char("L").ctypes,
        _int(n).ctypes,
        a.ctypes,
        _int(n).ctypes,
        w.ctypes,
        work.ctypes,
        _int(work.size).ctypes,
        rwork.ctypes,
        _int(rwork.size).ctypes,
        iwork.ctypes,
        _int(iwork.size).ctypes,
        info.ctypes,
    )
    if a.itemsize == 8:
        _cheevd(*fn_args)
    else:
        _zheevd(*fn_args)
    return info[0]
