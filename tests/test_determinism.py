"""TLSM output is bitwise identical whatever numba's cache state and the thread count.

Each run is a fresh Python process sharing one ``NUMBA_CACHE_DIR``: the first compiles every
kernel (cold cache), the next ones load them from the cache (warm) with other thread counts.
Kernels compiled with reassociating fastmath failed this (up to 1e-6 apart in float32).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
import numpy as np
from seiscore.data.synth import SynthConfig, make_survey, to_canonical
from seiscore.methods.tlsm import denoise

out, workers = sys.argv[1], int(sys.argv[2])
res = {}
for dtype in (np.float32, np.float64):
    noisy, _ = make_survey(SynthConfig(n_inline=12, n_crossline=30, n_time=40, seed=1), dtype=dtype)
    res[np.dtype(dtype).name] = denoise(to_canonical(noisy), {"iterations": 6}, preset="synthetic", workers=workers)
np.savez(out, **res)
"""


def _run(tmp: Path, cache: Path, name: str, threads: int) -> dict[str, np.ndarray]:
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(cache),
        "NUMBA_NUM_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp / f"{name}.npz"
    subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(threads)], env=env, check=True, timeout=600)
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.slow
def test_tlsm_bitwise_equal_cold_and_warm_cache_any_threads(tmp_path):
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    cold = _run(tmp_path, cache, "cold", threads=2)
    assert any(cache.rglob("*.nbi")), "the first run should have filled the numba cache"
    warm = _run(tmp_path, cache, "warm", threads=2)
    warm1 = _run(tmp_path, cache, "warm1", threads=1)
    for dtype in ("float32", "float64"):
        a = cold[dtype]
        assert a.dtype == np.dtype(dtype) and np.isfinite(a).all()
        for name, other in (("warm cache", warm), ("warm cache, 1 thread", warm1)):
            b = other[dtype]
            assert a.tobytes() == b.tobytes(), (
                f"{dtype}: cold-cache run and {name} differ by up to {np.abs(a.astype(float) - b).max():.3g}"
            )
