"""Benchmark ``tile_memory``: does a real tile task stay within the peak memory the planner planned for it?

    python -m seiscore.bench tile_memory [--size 48 512 500] [--budget 256MiB] [--iterations 2]

Writes a realistic-shape synthetic survey (:mod:`seiscore.data.synth_realistic`) as SEG-Y, ingests it,
plans TLSM tiles for the task memory ``--budget`` (the default tiling under ``SEIS_TASK_MEMORY_BYTES``),
then runs every tile's :func:`seiscore.execution.blockwise.jobs.denoise_tile` in a fresh Python process
(as a Dask worker would: reading the input store, denoising, saving the scratch block) and compares each
tile's measured RSS high-water increment (``tile_rss_bytes``) with TLSM's memory model for its block.
TLSM's arrays are all allocated in the first ADMM iteration, so a couple of ``--iterations`` give the
peak of a full run. Results: ``benchmarks/results/tile_memory.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from seiscore.bench.common import machine, md_table, write_results

_PROBE = """
import json, sys
import numpy as np
from seiscore.data.kinds import POSTSTACK3D
from seiscore.execution.blockwise.jobs import TileJob, denoise_tile
from seiscore.methods.tlsm.method import TLSMMethod, TLSMSpec
TLSMMethod().build(TLSMSpec(), POSTSTACK3D)(np.zeros((6, 8, 10), np.float32))  # numba caches loaded
job = TileJob.model_validate_json(open(sys.argv[1]).read())
for t in job.plan.tiles():
    print(json.dumps({**denoise_tile(job, t.key), "block": [b - a for a, b in t.ext]}), flush=True)
"""


def main(argv: list[str] | None = None) -> int:
    """Plan from a budget, run every tile in a fresh process, compare measured and planned peaks."""
    from dask.utils import parse_bytes

    ap = argparse.ArgumentParser(prog="python -m seiscore.bench tile_memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, nargs=3, default=[48, 512, 500], metavar=("IL", "XL", "T"))
    ap.add_argument("--budget", default="256MiB", help="task memory budget (SEIS_TASK_MEMORY_BYTES)")
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunks", type=int, nargs=3, default=None, help="input store chunks (default: the kind's)")
    args = ap.parse_args(argv)
    budget = int(parse_bytes(args.budget))

    from seiscore import io
    from seiscore.data.synth_realistic import realistic_slab
    from seiscore.execution.pipeline import make_job, prepare_output
    from seiscore.io.segy_write import write_cube
    from seiscore.methods.tlsm.method import TLSMMethod, TLSMSpec

    os.environ["SEIS_TASK_MEMORY_BYTES"] = str(budget)
    shape = tuple(args.size)
    with tempfile.TemporaryDirectory(prefix="seis-tile-memory-") as tmp:
        tmp = Path(tmp)
        noisy, _ = realistic_slab(0, shape[0], shape, seed=0)
        segy = write_cube(tmp / "noisy.sgy", noisy)
        del noisy
        chunks = tuple(args.chunks) if args.chunks else None  # None: the default chunking of post-stack stores
        store = io.ingest(segy, tmp / "in.zarr", chunks=chunks)
        spec = TLSMSpec(threads_per_task=args.threads, params={"iterations": args.iterations})
        job = make_job(store, str(tmp / "out.zarr"), spec)
        prepare_output(job, "run")
        (tmp / "job.json").write_text(job.model_dump_json())
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, str(tmp / "job.json")], check=True, capture_output=True, text=True, env=env
        )
    method = TLSMMethod()
    infos = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    rows, tiles = [], []
    for info in infos:
        planned = method.peak_memory(spec, tuple(info["block"]))
        ratio = info["tile_rss_bytes"] / planned
        tiles.append({**info, "planned_bytes": planned, "ratio": ratio})
        rows.append(
            [info["tile"], "x".join(map(str, info["block"])), planned / 2**20, info["tile_rss_bytes"] / 2**20, ratio]
        )
    worst = max(t["ratio"] for t in tiles)
    payload = {
        "size": shape,
        "budget_bytes": budget,
        "config": {"tile": _tile_cfg(job), "halo": job.plan.halo, "grid": job.plan.grid},
        "per_tile": tiles,
        "max_ratio": worst,
        "machine": machine(),
    }
    md = "\n".join(
        [
            "# Tile memory: measured peak of each tile task vs the planned peak (TLSM memory model)",
            "",
            f"Command: `python -m seiscore.bench tile_memory --size {' '.join(map(str, shape))} --budget "
            f"{args.budget} --iterations {args.iterations}"
            + (f" --chunks {' '.join(map(str, args.chunks))}" if args.chunks else "")
            + "`. Realistic-shape synthetic survey "
            f"{'x'.join(map(str, shape))} as SEG-Y, ingested (chunks {chunks or 'default'}); "
            "TLSM tiles planned for a task budget of "
            f"{budget / 2**20:.0f} MiB: grid {'x'.join(map(str, job.plan.grid))}, halo {job.plan.halo}. Every "
            "tile's denoise_tile ran in one fresh process (as on a worker); measured = RSS high-water increment "
            "over the RSS at the tile's start (`tile_rss_bytes`, VmHWM reset per tile).",
            "",
            f"**Largest measured / planned: {worst:.2f}** (target: <= 1.20).",
            "",
            md_table(["tile", "block", "planned MiB", "measured MiB", "measured / planned"], rows),
        ]
    )
    write_results("tile_memory", payload, md)
    print(md)
    return 0


def _tile_cfg(job) -> list:
    return [int(np.diff(e).max()) for e in job.plan.edges]
