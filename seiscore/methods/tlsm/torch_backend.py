"""TLSM on PyTorch: the ADMM iterations of :func:`seiscore.methods.tlsm.admm.denoise` on ``cpu`` or ``cuda``.

Same method, same iterations, same boundary conventions and the same Z-step route as the numba backend
(:mod:`~seiscore.methods.tlsm.kernels`, :mod:`~seiscore.methods.tlsm.xstep`, :mod:`~seiscore.methods.tlsm.tsvd`),
written as batched tensor operations; used through ``denoise(..., backend="torch")``. The cube is held in the
internal layout ``(n3, n1, n2)`` (frontal slices contiguous), float32 or float64 (complex64 / complex128 inside).

- X-step: ``X = irfft2(rfft2(R) / (alpha + beta |Kx|^2 + gamma |Ky|^2 + 1 + 1e-6))`` over all slices at once.
- Z-step: ``F = rfft(W, dim=0)`` (the ``n3//2 + 1`` non-redundant frequency slices), the Gram matrix of the
  smaller side ``G = A A^H`` (n1 <= n2) or ``A^H A``, batched ``eigh``: ``s = sqrt(max(lambda, 0))`` (at least
  the smallest normal number), LSM shrinkage of ``s`` with the scale of singular index r the RMS over all n3
  frequencies (weights 1 / 2 for the stored / conjugate-symmetric ones), and the stable rebuild
  ``Z^ = A - M A`` (or ``A - A M``) with ``M = U diag(max(1 - s'/s, 0)) U^H``, then ``irfft``.
- D-steps: per row (one LSM group) ``t = d + B``, ``theta`` from the group RMS (float64), and
  ``D = theta sign(t) max(|t| / (theta + eps) - c t^2, 0) = t max(a - b |t|, 0)`` with per-row
  ``a = theta / (theta + eps)``, ``b = theta c``; then ``B' = t - D`` (the demo's zero last difference:
  ``B'[last] -= d[last]``) and ``P = D - B'``, all in preallocated buffers (``out=`` / in place).

On CPU with ``workers > 1`` every step runs on contiguous parts of its batch axis in a pool of threads with
torch single-threaded inside (torch's intra-op threads were up to 9x slower for ``eigh`` and 2.7x for the
elementwise steps on shared cores); on CUDA each step is one batched call.

Torch is imported by this module only; :mod:`seiscore.methods.tlsm.admm` imports it on first use.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch

from seiscore.core.torch_threads import torch_threads
from seiscore.methods.tlsm.lsm import EPS, LOG_EPS, SQRT8_OVER_400
from seiscore.methods.tlsm.params import TLSMParams
from seiscore.methods.tlsm.xstep import DENOM_EPS, otf_power

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``: None / ``"auto"`` -> ``cuda`` when torch sees a CUDA device, else
    ``cpu``. Raises a one-line ``ValueError`` for a CUDA device when none is available or a device that is
    neither CPU nor CUDA."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown TLSM device {device!r}; use 'cpu', 'cuda' or 'auto'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"TLSM device {str(device)!r}: no CUDA device is available here; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"TLSM device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type != "cpu":
        raise ValueError(f"TLSM runs on 'cpu' or 'cuda', not {str(device)!r}")
    return dev


# --- the LSM operator in group form (seiscore.methods.tlsm.lsm), per-group values in float64 -------------------


def group_theta(rms: torch.Tensor, mu1: float) -> torch.Tensor:
    """The scale the LSM operator picks for groups of RMS ``rms``: ``argmin f`` over ``{0, t1, t2}`` with
    ``t1,2 = (rms + eps)(1/2 +- sqrt(q))``, ``q = 1/4 - mu1/200``, ``f(t) = (t/th)^2 - 2 t/th + mu1/100 log(t + eps)``
    (0 when ``q < 0``); the order of the comparisons is that of :func:`seiscore.methods.tlsm.lsm.group_theta`."""
    q = 0.25 - mu1 / 200.0
    if q < 0.0:
        return torch.zeros_like(rms)
    th = rms + EPS
    k1, k2, m = 0.5 + math.sqrt(q), 0.5 - math.sqrt(q), mu1 / 100.0
    t1, t2 = th * k1, th * k2
    f1 = (k1 * k1 - 2.0 * k1) + m * torch.log(t1 + EPS)
    f2 = (k2 * k2 - 2.0 * k2) + m * torch.log(t2 + EPS)
    f0 = torch.full_like(rms, m * LOG_EPS)
    take1 = f1 < f0
    best_t = torch.where(take1, t1, torch.zeros_like(rms))
    best_f = torch.where(take1, f1, f0)
    return torch.where(f2 < best_f, t2, best_t)


def shrink_coefs(theta: torch.Tensor, mu1: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1 / (theta + eps), 2 sqrt(2) mu1 / (400 (theta^2 + eps)))`` per group, both 0 where ``theta = 0``."""
    zero = theta == 0
    inv = torch.where(zero, 0.0, 1.0 / (theta + EPS))
    c = torch.where(zero, 0.0, SQRT8_OVER_400 * mu1 / (theta * theta + EPS))
    return inv, c


def lsm_shrink_weighted(s: torch.Tensor, mu1: float, weights: torch.Tensor) -> torch.Tensor:
    """LSM shrinkage of the non-negative ``s`` (nf, r) along dim 0 (groups: the columns), RMS weighted by
    ``weights`` (nf,); float64, as :func:`seiscore.methods.tlsm.lsm.lsm_shrink` computes it."""
    rms = torch.sqrt((s * s * weights[:, None]).sum(dim=0) / weights.sum())
    theta = group_theta(rms, mu1)
    inv, c = shrink_coefs(theta, mu1)
    return theta * torch.clamp(s * inv - c * s * s, min=0.0)


def _row_factors(rms: torch.Tensor, n: int, mu1: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row ``a = theta / (theta + eps)`` and ``b = theta c`` of ``D = t max(a - b |t|, 0)`` from the row
    norms ``rms`` (``sqrt(sum t^2)``; the RMS divides by ``sqrt(n)``)."""
    theta = group_theta(rms.to(torch.float64) / math.sqrt(n), mu1)
    inv, c = shrink_coefs(theta, mu1)
    return (theta * inv).to(dtype), (theta * c).to(dtype)


# --- the solver ---------------------------------------------------------------------------------------------


class TorchTLSM:
    """State and buffers of one TLSM run on a ``(n3, n1, n2)`` tensor (internal layout); :meth:`run` iterates.

    Buffers are allocated once: one X (a second one only for the callback's relative change), the Z-step's
    spectrum, Gram / eigenvector stacks and a rebuilt spectrum that shares its storage with the X-step's, and
    three scratch blocks for the D-steps that also hold W = X + B and the right-hand side R.
    """

    def __init__(self, Y: torch.Tensor, p: TLSMParams, route: str = "gram", threads: int = 1):
        if route not in ("gram", "svd"):
            raise ValueError(f"unknown spectral route {route!r}; use 'svd' or 'gram'")
        self.p, self.route = p, route
        self.threads = max(1, int(threads)) if Y.device.type == "cpu" else 1
        self.pool: ThreadPoolExecutor | None = None
        self.periodic = p.boundary == "periodic"
        self.rho, self.mu1, self.mu2 = p.tau / p.alpha, p.lambda1 / p.beta, p.lambda2 / p.gamma
        n3, n1, n2 = Y.shape
        self.shape = (n3, n1, n2)
        dev, rdt = Y.device, Y.dtype
        cdt = _COMPLEX[rdt]
        new = lambda *shape, dtype=rdt: torch.empty(shape, dtype=dtype, device=dev)  # noqa: E731
        # X-step: 1 / denominator on the rfft2 grid (float64, then the working dtype, as the numba backend)
        kx2 = otf_power(n2)[: n2 // 2 + 1]
        ky2 = otf_power(n1)
        denom = p.alpha + p.beta * kx2[None, :] + p.gamma * ky2[:, None] + 1.0 + DENOM_EPS
        self.inv_denom = torch.as_tensor(1.0 / denom, dtype=rdt, device=dev)
        # Z-step
        nf, r = n3 // 2 + 1, min(n1, n2)
        w = np.full(nf, 2.0)
        w[0] = 1.0
        if n3 % 2 == 0:
            w[-1] = 1.0
        self.weights = torch.as_tensor(w, device=dev)
        self.F = new(nf, n1, n2, dtype=cdt)
        # the X-step's half spectrum and the Z-step's rebuilt spectrum are never alive together: one storage
        spec = new(max(n3 * n1 * (n2 // 2 + 1), nf * n1 * n2), dtype=cdt)
        self.xspec = spec[: n3 * n1 * (n2 // 2 + 1)].view(n3, n1, n2 // 2 + 1)
        self.Fz = spec[: nf * n1 * n2].view(nf, n1, n2)
        if route == "gram":  # Gram matrices (then M), eigenvalues, eigenvectors
            self.G, self.lam, self.U = new(nf, r, r, dtype=cdt), new(nf, r), new(nf, r, r, dtype=cdt)
        self.tiny = torch.finfo(rdt).tiny
        # scratch: the D-steps' (d, t, D); W = X + B lives in t, the right-hand side R in D (see run)
        self.bufs = (new(n3, n1, n2), new(n3, n1, n2), new(n3, n1, n2))
        self.R = self.bufs[2]
        # constant terms: Yc = Y + beta Dx^T Dx Y with periodic Dx (no temporaries), and the footprint-axis
        # difference of Y that the D1 step subtracts
        dx, self.Yc = self.bufs[0], new(n3, n1, n2)
        torch.sub(Y[..., 1:], Y[..., :-1], out=dx[..., :-1])
        torch.sub(Y[..., 0], Y[..., -1], out=dx[..., -1])
        torch.sub(dx[..., :-1], dx[..., 1:], out=self.Yc[..., 1:])
        torch.sub(dx[..., -1], dx[..., 0], out=self.Yc[..., 0])
        self.Yc.mul_(p.beta).add_(Y)
        self.dY = self._fdiff(Y, 2, new(n3, n1, n2))
        # ADMM state
        self.B, self.B1, self.B2, self.P1, self.P2 = (torch.zeros_like(Y) for _ in range(5))
        self.Z = Y.clone()
        self.X = Y.clone()
        self._rhs(self.X, slice(None))  # X = Z = Y at start: B stays 0

    # -- steps -----------------------------------------------------------------------------------------
    def _fdiff(self, A: torch.Tensor, dim: int, out: torch.Tensor) -> torch.Tensor:
        """Forward difference ``A[i+1] - A[i]`` along ``dim`` with the last entry ``A[0] - A[-1]`` (periodic)
        or repeated from the one before (demo)."""
        n = A.shape[dim]
        torch.sub(A.narrow(dim, 1, n - 1), A.narrow(dim, 0, n - 1), out=out.narrow(dim, 0, n - 1))
        last = out.select(dim, n - 1)
        if self.periodic:
            torch.sub(A.select(dim, 0), A.select(dim, n - 1), out=last)
        else:
            last.copy_(out.select(dim, n - 2))
        return out

    # -- threads on CPU: each step on contiguous parts of its batch axis, one part per thread -------------------
    def _parts(self, n: int) -> list[slice]:
        k = min(self.threads, n)
        return [slice(i * n // k, (i + 1) * n // k) for i in range(k)]

    def _each(self, fn: Callable[[slice], object], n: int) -> None:
        """``fn(part)`` for the parts of ``range(n)``: in the pool's threads on CPU (torch single-threaded inside,
        so no intra-op barriers: 2.7x faster elementwise steps than two intra-op threads on shared cores), else
        ``fn(slice(None))`` once."""
        if self.pool is None:
            fn(slice(None))
        else:
            list(self.pool.map(fn, self._parts(n)))

    def _xstep(self, X: torch.Tensor, W: torch.Tensor, sl: slice) -> None:
        """X = the exact Fourier solve of the X-step for the right-hand side in :attr:`R`, then W = X + B
        (frontal slices ``sl``)."""
        n1, n2 = self.shape[1:]
        spec = torch.fft.rfft2(self.R[sl], out=self.xspec[sl])
        spec.mul_(self.inv_denom)
        torch.fft.irfft2(spec, s=(n1, n2), out=X[sl])
        torch.add(X[sl], self.B[sl], out=W[sl])

    def _zstep(self, W: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Z = prox_tSVD_LSM(W, rho) (see the module docstring); ``W`` is not modified."""
        n3, n1, n2 = self.shape
        A = self.F
        self._each(lambda sl: torch.fft.rfft(W[:, sl], dim=0, out=A[:, sl]), n1)
        if self.route == "svd":
            U, s, Vh = torch.linalg.svd(A, full_matrices=False)
            s_new = lsm_shrink_weighted(s.to(torch.float64), self.rho, self.weights).to(s.dtype)
            torch.matmul(U * s_new[:, None, :].to(A.dtype), Vh, out=self.Fz)
        else:
            left, G, U = n1 <= n2, self.G, self.U

            def decompose(sl: slice) -> None:  # Gram matrices and their eigen-decompositions
                torch.matmul(A[sl], A[sl].mH, out=G[sl]) if left else torch.matmul(A[sl].mH, A[sl], out=G[sl])
                torch.linalg.eigh(G[sl], out=(self.lam[sl], U[sl]))

            def rebuild(sl: slice) -> None:  # Z^ = A - M A (or A - A M), M = W W^H into G's buffer
                M = torch.matmul(U[sl], U[sl].mH, out=G[sl])
                As, Fz = A[sl], self.Fz[sl]
                torch.baddbmm(As, M, As, alpha=-1, out=Fz) if left else torch.baddbmm(As, As, M, alpha=-1, out=Fz)

            self._each(decompose, A.shape[0])
            # Eigenvalues rounding put at or below zero: tiny singular values (the shrink's limit as s -> 0).
            s = self.lam.clamp_(min=0).sqrt_().clamp_(min=self.tiny)
            s_new = lsm_shrink_weighted(s.to(torch.float64), self.rho, self.weights).to(s.dtype)
            # M = U diag(cut) U^H = W W^H with W = U diag(sqrt(cut)), 0 <= cut = 1 - s'/s <= 1
            U.mul_(torch.clamp(1.0 - s_new / s, min=0.0).sqrt_()[:, None, :])
            self._each(rebuild, A.shape[0])
        self._each(lambda sl: torch.fft.irfft(self.Fz[:, sl], n=n3, dim=0, out=out[:, sl]), n1)
        return out

    def _dstep(self, X, dim: int, mu: float, B, P, bufs, dY=None) -> None:
        """D = LSM(fdiff_rep(X [- Y], dim) + B) (groups: rows along the last axis); B += fdiff0(...) - D;
        P = D - B (views of the same frontal slices; ``bufs`` the scratch d, t, D)."""
        d, t, D = bufs
        self._fdiff(X, dim, d)
        if dY is not None:
            d.sub_(dY)
        torch.add(d, B, out=t)
        a, b = _row_factors(torch.linalg.vector_norm(t, dim=-1, keepdim=True), X.shape[-1], mu, X.dtype)
        torch.abs(t, out=D)
        torch.addcmul(a, b, D, value=-1, out=D)
        D.clamp_(min=0).mul_(t)
        torch.sub(t, D, out=B)
        if not self.periodic:  # the multiplier update uses a zero last difference
            n = X.shape[dim]
            B.select(dim, n - 1).sub_(d.select(dim, n - 1))
        torch.sub(D, B, out=P)

    def _rhs(self, X: torch.Tensor, sl: slice) -> None:
        """B += X - Z, then R = alpha (Z - B) + beta Dx^T P1 + gamma Dy^T P2 + Yc (periodic adjoint differences
        ``Dx^T v[j] = v[j-1] - v[j]`` along axis 2, ``Dy^T v[i] = v[i-1] - v[i]`` along axis 1), frontal slices
        ``sl``."""
        p, B, R, Z, X = self.p, self.B[sl], self.R[sl], self.Z[sl], X[sl]
        B.add_(X).sub_(Z)
        torch.sub(Z, B, out=R)
        torch.add(self.Yc[sl], R, alpha=p.alpha, out=R)
        T = self.bufs[0][sl]
        for P, dim, w in ((self.P1[sl], 2, p.beta), (self.P2[sl], 1, p.gamma)):
            n = P.shape[dim]
            torch.sub(P.narrow(dim, 0, n - 1), P.narrow(dim, 1, n - 1), out=T.narrow(dim, 1, n - 1))
            torch.sub(P.select(dim, n - 1), P.select(dim, 0), out=T.select(dim, 0))
            R.add_(T, alpha=w)

    def _local(self, X: torch.Tensor, sl: slice) -> None:
        """Steps 3-5 on the frontal slices ``sl``: the D1 and D2 steps with their multipliers, then B and the
        next right-hand side (each frontal slice on its own, like the numba kernels)."""
        bufs = tuple(b[sl] for b in self.bufs)
        Xs = X[sl]
        self._dstep(Xs, 2, self.mu1, self.B1[sl], self.P1[sl], bufs, dY=self.dY[sl])
        self._dstep(Xs, 1, self.mu2, self.B2[sl], self.P2[sl], bufs)
        self._rhs(X, sl)

    def run(self, callback: Callable[[int, float], None] | None = None) -> torch.Tensor:
        """All iterations; returns X (internal layout). ``callback(iteration, ||X_k - X_{k-1}|| / ||X_{k-1}||)``.

        On CPU with ``threads > 1`` the steps run in a pool of that many threads, torch single-threaded."""
        W = self.bufs[1]  # W = X + B lives in the D-steps' scratch block (consumed by the Z-step's rfft)
        # the previous X is kept (a second buffer) only for the callback's relative change
        xs = [self.X, torch.empty_like(self.X) if callback is not None else self.X]
        n3 = self.shape[0]
        before = torch.get_num_threads()
        if self.threads > 1:
            self.pool = ThreadPoolExecutor(self.threads)
            torch.set_num_threads(1)
        try:
            for it in range(1, self.p.iterations + 1):
                prev, X = xs
                self._each(lambda sl: self._xstep(X, W, sl), n3)  # noqa: B023 - used before X changes
                xs = [X, prev]
                if callback is not None:
                    den = float(torch.linalg.vector_norm(prev)) ** 2
                    num = float(torch.linalg.vector_norm(X - prev)) ** 2
                self._zstep(W, self.Z)
                self._each(lambda sl: self._local(X, sl), n3)  # noqa: B023
                if callback is not None:
                    callback(it, math.sqrt(num / den) if den > 0 else 0.0)
        finally:
            if self.pool is not None:
                self.pool.shutdown()
                self.pool = None
                torch.set_num_threads(before)
        self.X = xs[0]
        return self.X


def denoise_torch(
    y: np.ndarray,
    p: TLSMParams,
    *,
    device: str | torch.device | None = None,
    callback: Callable[[int, float], None] | None = None,
    route: str = "gram",
    workers: int | None = None,
) -> np.ndarray:
    """TLSM of the validated canonical cube ``y`` (n1, n2, n3) with the resolved parameters ``p`` on ``device``;
    returns a new NumPy array of ``y``'s shape and dtype (``y`` is not modified)."""
    dev = resolve_device(device)
    with torch_threads(workers if dev.type == "cpu" else None), torch.no_grad():
        Y = torch.from_numpy(np.ascontiguousarray(np.transpose(y, (2, 0, 1)))).to(dev).contiguous()
        threads = (workers or torch.get_num_threads()) if dev.type == "cpu" else 1
        solver = TorchTLSM(Y, p, route=route, threads=threads)
        del Y
        X = solver.run(callback)
        return X.permute(1, 2, 0).contiguous().cpu().numpy()  # a new array (X is the solver's own buffer)
