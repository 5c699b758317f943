"""Peak memory stays under the configured bound on a file several times larger than the bound."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from seiscore.io.segy_write import SegyWriteSpec, write_cube

BOUND = 16 * 2**20
SHAPE = (300, 100, 500)  # 30 000 traces x 2240 bytes = 67 MB, four times the bound

_CHILD = r"""
import json, sys, tracemalloc
from seiscore.io import ingest, export
from seiscore.io.kernels import warm_up
src, store, out, bound = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
warm_up()  # loading the compiled kernels is a one-off cost of the process, like its imports
tracemalloc.start()
ingest(src, store, memory_limit=bound)
ingest_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
export(store, out, memory_limit=bound)
export_peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"ingest": ingest_peak, "export": export_peak}))
"""


@pytest.mark.parametrize("fmt", [5, 1])  # IEEE, and IBM whose encoding once needed ~50 bytes a sample
def test_ingest_and_export_stay_under_memory_bound(tmp_path, fmt):
    rng = np.random.default_rng(0)
    cube = rng.standard_normal(SHAPE, dtype=np.float32)
    src = write_cube(tmp_path / "big.sgy", cube, SegyWriteSpec(format=fmt))
    del cube
    size = src.stat().st_size
    assert size > 4 * BOUND
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), str(tmp_path / "s.zarr"), str(tmp_path / "o.sgy"), str(BOUND)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    peaks = json.loads(res.stdout.strip().splitlines()[-1])
    assert peaks["ingest"] < BOUND, f"ingest peak {peaks['ingest'] / 2**20:.1f} MiB over the 16 MiB bound"
    assert peaks["export"] < BOUND, f"export peak {peaks['export'] / 2**20:.1f} MiB over the 16 MiB bound"
    assert (tmp_path / "o.sgy").read_bytes() == src.read_bytes()
