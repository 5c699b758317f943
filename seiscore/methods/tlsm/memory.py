"""Memory model of one TLSM tile task: peak bytes as a formula of the block shape, dtype and threads.

A tile task (:func:`seiscore.execution.blockwise.jobs.denoise_tile`) holds its extended block and
runs :func:`seiscore.methods.tlsm.denoise` on it in the canonical orientation ``(n1, n2, n3)``
(smooth, footprint, tube). With ``s`` the item size (4 for float32), the arrays alive at the peak
(the Z-step of an ADMM iteration, :mod:`seiscore.methods.tlsm.admm` / ``tsvd``) are

- **input**: the block read and scaled, its transposed copy, the internal ``Y``, the data term ``Yc``
  and the X-step's right-hand side and two output buffers: ``n_in`` blocks of ``s n1 n2 n3`` bytes;
- **ADMM state**: the multipliers ``B, B1, B2``, the D-step terms ``P1, P2``, ``Z``, ``W`` and the new ``Z``;
- **FFT workspaces**: the X-step's half spectrum ``(n3, n1, n2/2+1)`` and the t-SVD's ``(n3/2+1, n1, n2)``
  in complex (``2 s`` bytes each), about one block each;
- **t-SVD workspace**: the eigenvectors of every Gram matrix, ``(n3/2+1) r^2`` complex with
  ``r = min(n1, n2)`` - up to one more block for a square cross-section, less for a thin one;
- **per thread**: one ``n1 x n2`` complex slice plus ``r x r`` Gram, weight and LAPACK ``heevd`` work
  arrays (``lwork = r^2 + 2r`` complex, ``lrwork = 2r^2 + 5r + 1`` real).

Hence the model

    peak = a * s n1 n2 n3  +  b * 2 s (n3/2 + 1) r^2  +  threads * s (2 n1 n2 + 10 r^2)  +  c

with ``a`` (blocks alive: ~17 by the count above; fitted 17.3) and ``b`` (share of the eigenvector stack alive at
the peak; fitted 0.34), ``c``
(fixed overhead: numba/LAPACK scratch) fitted to RSS high-water increments of tile-like runs measured
by :func:`measure` (``python -m seiscore.methods.tlsm.memory``; the table is :data:`CALIBRATION`).
Everything else a task holds (weights of the blend support, the weighted block) is at most a few blocks
and comes after the solver has freed its arrays, so it never sets the peak. :data:`MARGIN` is added on
top so that a planned peak is an upper bound of the measured one.

The torch backend on the CPU (``TLSMSpec.backend="torch"``) peaks higher for the same arrays (its temporaries
stay in the heap): measured with ``measure(..., backend="torch")`` on 256 x 256 x 48 (the tube tile 44 + 2 x 2)
float32, 273 MB (1 thread) and 318 MB (2 threads) against numba's 220 MB, up to 1.37 times the numba plan over
three shapes; its plan is :data:`TORCH_FACTOR` (1.5) times the numba model (details next to the constant).

Device memory of the torch backend on CUDA (:func:`tlsm_gpu_bytes`, ``TLSMMethod.gpu_memory``) is derived from
the same model: the torch CPU plan with one thread (CUDA runs each step as one batched call: no per-thread copies)
and the eigenvector term counted as :data:`GPU_GRAM_STACKS` whole stacks instead of the fitted share ``b``. It has
not been measured on a GPU yet, so it is a deliberate upper bound, checked against what can be measured here: the
torch backend's own allocations (the tensors it also allocates on CUDA), read from torch's profiler on the CPU by
:func:`torch_allocated_peak`, peak at ~18.1 blocks + 2.0 eigenvector stacks (below); the GPU plan is 1.7-2.1
times that, room for what only CUDA adds (cuFFT plans, cuSOLVER workspaces). The GPU device check
(``python -m seiscore.bench gpu``, section ``tlsm``) records ``torch.cuda.max_memory_allocated()`` next to this plan.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

# Fitted on CALIBRATION (least squares: a = 17.28, b = 0.34, c = 2 MiB), rounded up; MARGIN on top makes the
# plan an upper bound: measured / planned = 0.83-0.94 over the table.
A_BLOCKS = 17.3
B_GRAM = 0.4
C_FIXED = 4 * 2**20
MARGIN = 1.08

# The torch backend (seiscore.methods.tlsm.torch_backend) on the CPU holds about the same arrays, but torch's
# temporaries (eigh's column-major copies and results, FFT workspaces) stay in the heap, in one malloc arena per
# pool thread: measured with `measure(..., backend="torch")` (float32, 2 iterations, torch 2.13 CPU):
# 256 x 256 x 48 273 MB with 1 thread, 318 MB with 2 (numba: 220 / 222 MB); (400, 400, 24) 337 / 411 MB,
# (64, 64, 400) 136 / 160 MB: 1.09-1.15 (1 thread) and 1.29-1.37 (2 threads) times the numba plan (numba:
# 0.91-0.93). TORCH_FACTOR on top of the numba model keeps the plan an upper bound (measured / planned <= 0.91).
TORCH_FACTOR = 1.5

# Device memory (tlsm_gpu_bytes): eigenvector stacks of the t-SVD counted whole on the GPU - the Gram matrices G and
# the eigenvectors U the torch backend keeps, plus one for eigh's copy or cuSOLVER's workspace - rather than the
# share B_GRAM fitted to the numba backend's RSS. Torch's own allocations on the CPU (torch_allocated_peak, float32,
# 2 iterations, one thread, torch 2.13) peak at 18.1 blocks + 2.0 stacks: (64, 64, 48) 15.9 MB, (128, 128, 48) 63.6 MB,
# (256, 256, 48) 254 MB, (64, 256, 48) 58.7 MB, (256, 64, 48) 58.8 MB, (200, 400, 24) 148 MB, (100, 100, 400)
# 321 MB (that formula within 1 % of each); tlsm_gpu_bytes plans 1.66-2.08x those (measured / planned 0.48-0.60, the
# smallest block lowest: the fixed term), an upper bound by design until the GPU device check measures
# torch.cuda.max_memory_allocated (CUDA adds cuFFT / cuSOLVER workspaces, unknown here).
GPU_GRAM_STACKS = 3.0

# (canonical block n1, n2, n3, threads) -> RSS high-water increment in bytes of :func:`measure` (float32,
# 2 iterations, seiscore 0.1, numpy 2 / scipy / pyFFTW of constraints.txt; `python -m seiscore.methods.tlsm.memory`).
CALIBRATION: dict[tuple[int, int, int, int], int] = {
    (100, 100, 48, 1): 34754560,
    (200, 400, 48, 1): 273399808,
    (400, 400, 24, 1): 286420992,
    (100, 1000, 48, 1): 332414976,
    (1000, 100, 48, 1): 332771328,
    (512, 1000, 24, 1): 882925568,
    (1000, 1000, 12, 1): 893464576,
    (256, 1000, 48, 2): 862269440,
    (64, 64, 400, 1): 118972416,
}


def canonical_shape(block_shape, perm) -> tuple[int, int, int]:
    """The block's shape in TLSM's canonical order (smooth, footprint, tube) from its store-order shape and
    the permutation ``perm`` (store axes of each role, :meth:`TLSMAxes.permutation`)."""
    return tuple(int(block_shape[p]) for p in perm)


def terms(n1: int, n2: int, n3: int, itemsize: int = 4, threads: int = 1) -> dict[str, float]:
    """The model's terms in bytes: ``block`` (one block), ``gram`` (the eigenvector stack), ``thread`` (the
    per-thread workspaces of all threads)."""
    r = min(n1, n2)
    return {
        "block": float(itemsize) * n1 * n2 * n3,
        "gram": 2.0 * itemsize * (n3 // 2 + 1) * r * r,
        "thread": float(threads) * itemsize * (2.0 * n1 * n2 + 10.0 * r * r),
    }


def tlsm_peak_bytes(canonical, itemsize: int = 4, threads: int = 1, backend: str = "numba") -> int:
    """Planned peak bytes of one TLSM tile task on a block of ``canonical`` shape (n1, n2, n3); the torch
    backend on the CPU gets :data:`TORCH_FACTOR` times the numba model."""
    n1, n2, n3 = (int(n) for n in canonical)
    t = terms(n1, n2, n3, itemsize, threads)
    peak = MARGIN * (A_BLOCKS * t["block"] + B_GRAM * t["gram"] + t["thread"] + C_FIXED)
    return int(peak * (TORCH_FACTOR if backend == "torch" else 1.0))


def tlsm_gpu_bytes(canonical, itemsize: int = 4) -> int:
    """Planned device memory of one TLSM tile task run by the torch backend on CUDA, for a block of ``canonical``
    shape (n1, n2, n3): :data:`TORCH_FACTOR` times the numba model with one thread and :data:`GPU_GRAM_STACKS`
    whole eigenvector stacks (see the module docstring; unmeasured on a GPU: a deliberate upper bound)."""
    n1, n2, n3 = (int(n) for n in canonical)
    t = terms(n1, n2, n3, itemsize, 1)
    peak = MARGIN * (A_BLOCKS * t["block"] + GPU_GRAM_STACKS * t["gram"] + t["thread"] + C_FIXED)
    return int(TORCH_FACTOR * peak)


def torch_allocated_peak(canonical, iterations: int = 2, dtype=np.float32) -> int:
    """Peak bytes the torch backend allocates through torch (its tensors: what it allocates on CUDA too) while it
    denoises a random block of ``canonical`` shape (n1, n2, n3) on the CPU with one thread, read from torch's
    profiler memory timeline (a private torch API: ``torch.profiler._memory_profiler``; torch of constraints.txt)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import MemoryProfileTimeline

    from seiscore.methods.tlsm.params import resolve_params
    from seiscore.methods.tlsm.torch_backend import denoise_torch

    y = np.random.default_rng(0).standard_normal(tuple(int(n) for n in canonical)).astype(dtype)
    p = resolve_params({"iterations": int(iterations)}, "synthetic")
    denoise_torch(y[:4, :4, :4].copy(), p, device="cpu", workers=1)  # first-call allocations outside the profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        denoise_torch(y, p, device="cpu", workers=1)
    _, sizes = MemoryProfileTimeline(prof._memory_profile())._coalesce_timeline(torch.device("cpu"))
    return int(np.asarray(sizes, dtype=np.int64).sum(axis=1).max())


# --- measurement ------------------------------------------------------------------------------------------------

_PROBE = r"""
import json, sys
import numpy as np
from seiscore.core.rss import PeakRSS
from seiscore.data.kinds import POSTSTACK3D
from seiscore.execution.blockwise.tiling import TileConfig, denoise_block, plan_tiles
from seiscore.methods.tlsm.method import TLSMMethod, TLSMSpec
n1, n2, n3, threads, iterations = (int(v) for v in sys.argv[1:6])
spec = TLSMSpec(threads_per_task=threads, params={"iterations": iterations}, backend=sys.argv[6], device="cpu")
run = TLSMMethod().build(spec, POSTSTACK3D)
run(np.random.default_rng(0).standard_normal((6, 8, 10), dtype=np.float32))  # compile / load numba caches
raw = np.random.default_rng(1).standard_normal((n3, n1, n2), dtype=np.float32)  # store order: inline, crossline, sample
plan = plan_tiles(raw.shape, TileConfig(tile=(None, None, None), halo=(0, 0, 0)))
tile = next(plan.tiles())
with PeakRSS() as p:
    block = (raw - np.float32(0.1)) / np.float32(2.0)
    weighted = denoise_block(block, tile, plan, run)
    del block
print(json.dumps({"increment": p.increment, "start": p.start, "peak": p.peak}))
"""


def measure(
    canonical, threads: int = 1, iterations: int = 2, python: str | None = None, backend: str = "numba"
) -> dict:
    """Measure, in a fresh Python process, the RSS high-water increment of a tile-like TLSM run (scale the
    block, denoise, weight) on a random float32 block of ``canonical`` shape (n1, n2, n3), with ``backend``
    (``"numba"`` or ``"torch"``, on the CPU).

    The peak is reached in the first iteration's Z-step, so a couple of ``iterations`` suffice."""
    n1, n2, n3 = (int(n) for n in canonical)
    args = (n1, n2, n3, threads, iterations, backend)
    out = subprocess.run(
        [python or sys.executable, "-c", _PROBE, *(str(a) for a in args)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit(rows: dict[tuple[int, int, int, int], int]) -> tuple[float, float, float]:
    """Least-squares ``(a, b, c)`` of ``increment - thread term = a block + b gram + c`` over measured rows."""
    X, y = [], []
    for (n1, n2, n3, threads), inc in rows.items():
        t = terms(n1, n2, n3, 4, threads)
        X.append([t["block"], t["gram"], 1.0])
        y.append(inc - t["thread"])
    coef, *_ = np.linalg.lstsq(np.asarray(X), np.asarray(y), rcond=None)
    return float(coef[0]), float(coef[1]), float(coef[2])


DEFAULT_SHAPES = (
    (100, 100, 48, 1),
    (200, 400, 48, 1),
    (400, 400, 24, 1),
    (100, 1000, 48, 1),
    (1000, 100, 48, 1),
    (512, 1000, 24, 1),
    (1000, 1000, 12, 1),
    (256, 1000, 48, 2),
    (64, 64, 400, 1),
)


def main(argv: list[str] | None = None) -> int:
    """Measure the default shapes, fit the model and print both (JSON lines)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m seiscore.methods.tlsm.memory", description=main.__doc__)
    ap.add_argument("--iterations", type=int, default=2)
    args = ap.parse_args(argv)
    rows = {}
    for n1, n2, n3, threads in DEFAULT_SHAPES:
        m = measure((n1, n2, n3), threads, args.iterations)
        rows[(n1, n2, n3, threads)] = m["increment"]
        planned = tlsm_peak_bytes((n1, n2, n3), 4, threads)
        print(json.dumps({"shape": [n1, n2, n3], "threads": threads, **m, "planned": planned}), flush=True)
    a, b, c = fit(rows)
    print(json.dumps({"fit": {"a_blocks": a, "b_gram": b, "c_fixed": c}}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
