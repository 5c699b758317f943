"""Benchmark ``orchestration``: what process-survey costs per tile beyond the tiles' own work, and its memory.

    python -m seiscore.bench orchestration [--tiles 1000,3000,10000] [--tiles-per-task auto]
        [--before 500] [--workdir /tmp/seis_bench_orch]

Each point is one ``process_survey`` run, in a fresh subprocess (so the flow process's memory is its own),
on a synthetic survey of ``2 N x 8 x 32`` float32 samples planned into ``N`` tiles of 2 inlines (halo 2):
the shape of the issue's measurement (1000 x 8 x 32, 500 tiles), where the tiles' compute is negligible and
the orchestration is what is left. TLSM runs with 2 iterations, on the local cluster (2 workers x 1 thread).

Per point: the wall time of the tiles stage, the task compute (read + denoise + save + write seconds summed
over tiles, as the tasks report them), and

    overhead per tile = (tiles wall - task compute / worker threads) / N

i.e. the wall time the cluster's threads were not running tile code, per tile (a perfectly fed cluster has
0). The flow process's resident memory (this process only: the Dask scheduler lives in it; the workers and
Prefect's temporary server are other processes) is sampled every 20 ms: its peak during the run and its
growth over the run's start. ``--before N`` adds a point with one tile per task (the behaviour before
batching: two Prefect task runs per tile) for comparison.

It runs a Prefect flow, so it lives on the orchestration side (entry point ``seiscore.benchmarks``:
``orchestration = "flows.bench_orchestration:main"``); also ``python -m flows.bench_orchestration``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from seiscore.bench.common import md_table, write_results

TILE, HALO, CROSSLINES, SAMPLES = 2, 2, 8, 32


def write_tiny_survey(
    directory: Path, n_tiles: int, seed: int = 0, *, halo: int = HALO, iterations: int = 2
) -> tuple[Path, Path, np.ndarray]:
    """A ``2 n_tiles x 8 x 32`` survey (smooth events + noise) as ``directory/data/orch.sgy`` and a catalog
    entry ``orch`` planning it into ``n_tiles`` tiles of 2 inlines (``halo`` inlines each side, TLSM with
    ``iterations``); returns (catalog, output store, the cube written)."""
    from seiscore.io.segy_write import write_cube

    rng = np.random.default_rng(seed)
    il = TILE * n_tiles
    t = np.arange(SAMPLES, dtype=np.float32)
    events = np.sin(2 * np.pi * (t[None, None, :] + 0.1 * np.arange(CROSSLINES)[None, :, None]) / 11.0)
    cube = (events + 0.3 * rng.standard_normal((il, CROSSLINES, SAMPLES))).astype(np.float32)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    write_cube(directory / "data" / "orch.sgy", cube)
    catalog = directory / "catalog.yaml"
    catalog.write_text(
        "surveys:\n  orch:\n    source: data/orch.sgy\n    store: data/orch.zarr\n    output: data/orch_out.zarr\n"
        f"    chunks: [{min(il, 256)}, {CROSSLINES}, {SAMPLES}]\n"
        f"    method:\n      name: tlsm\n      preset: synthetic\n      params: {{iterations: {iterations}}}\n"
        "      axes: {smooth: crossline, footprint: sample, tube: inline}\n"
        f"      tiles: {{tile: [{TILE}, null, null], halo: [{halo}, 0, 0]}}\n"
    )
    return catalog, directory / "data" / "orch_out.zarr", cube


class RSSSampler:
    """This process's resident set size sampled every ``interval`` s in a thread: ``start``, ``peak``, ``end``;
    and the CPU seconds (user + system) of this process and of its descendants, each last seen alive, as
    ``cpu_s`` = {"flow": ..., "workers": ..., "other": ...} (workers: Dask's spawned worker processes; other:
    Prefect's temporary server and helpers) over the block."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self._psutil, self._proc, self.interval = psutil, psutil.Process(), interval
        self.start = self.peak = self.end = 0
        self._children: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._n = 0

    @staticmethod
    def _cpu(proc) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    def _sample_children(self) -> None:
        for child in self._proc.children(recursive=True):
            try:
                role = self._children.get(child.pid, (None,))[0]
                if role is None:
                    role = "workers" if "spawn_main" in " ".join(child.cmdline()) else "other"
                self._children[child.pid] = (role, self._cpu(child))
            except self._psutil.Error:
                continue

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._n += 1
            if self._n % 10 == 0:  # CPU of the children every 0.2 s (their last value before they exit counts)
                self._sample_children()

    @property
    def cpu_s(self) -> dict[str, float]:
        """CPU seconds over the block by role (children started before the block count their earlier time too)."""
        out = {"flow": self._cpu_end - self._cpu_start, "workers": 0.0, "other": 0.0}
        for role, cpu in self._children.values():
            out[role] += cpu
        return out

    def __enter__(self) -> RSSSampler:
        self.start = self.peak = self._proc.memory_info().rss
        self._cpu_start = self._cpu(self._proc)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end = self._proc.memory_info().rss
        self.peak = max(self.peak, self.end)
        self._cpu_end = self._cpu(self._proc)


def overhead(result: dict, n_tiles: int, slots: int) -> dict:
    """Per-tile figures of a process_survey result: tiles wall, task compute, overhead per tile (seconds)."""
    m = result["metrics"]
    wall = float(result["stage_seconds"]["tiles"])
    compute = float(sum(m["task_seconds"].values()))
    return {
        "tiles": n_tiles,
        "tiles_per_task": m.get("tiles_per_task", 1),
        "tiles_wall_s": wall,
        "task_compute_s": compute,
        "overhead_per_tile_s": (wall - compute / slots) / n_tiles,
        "wall_per_tile_s": wall / n_tiles,
        "run_wall_s": float(sum(result["stage_seconds"].values())),
    }


def one_point(workdir: Path, n_tiles: int, tiles_per_task: str, slots: int = 2) -> dict:
    """One process_survey run of ``n_tiles`` tiny tiles (in this process): overhead and flow-process memory."""
    from flows.process_survey import run_process_survey

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    catalog, _, _ = write_tiny_survey(workdir, n_tiles)
    os.environ["SEIS_TILES_PER_TASK"] = str(tiles_per_task)
    os.environ.setdefault("SEIS_LINEAGE_DIR", str(workdir / "openlineage"))
    os.environ.setdefault("SEIS_DASK_WORKERS", str(slots))
    os.environ.setdefault("SEIS_DASK_THREADS_PER_WORKER", "1")
    t0 = time.perf_counter()
    with RSSSampler() as rss:
        result = run_process_survey("orch", catalog=str(catalog))
    point = overhead(result, n_tiles, slots)
    point.update(
        total_wall_s=time.perf_counter() - t0,
        stage_seconds=result["stage_seconds"],
        task_seconds=result["metrics"]["task_seconds"],
        flow_rss_start_mb=rss.start / 2**20,
        flow_rss_peak_mb=rss.peak / 2**20,
        flow_rss_growth_mb=(rss.peak - rss.start) / 2**20,
        tiles_rss_start_mb=result["metrics"]["flow_rss_tiles_start_bytes"] / 2**20,
        tiles_rss_peak_mb=result["metrics"]["flow_rss_tiles_peak_bytes"] / 2**20,
        cpu_s=rss.cpu_s,
        task_runs=2 * -(-n_tiles // point["tiles_per_task"]),  # denoise + write batches
    )
    return point


def _subprocess_point(workdir: Path, n_tiles: int, tiles_per_task: str) -> dict:
    out = workdir / f"point_{n_tiles}_{tiles_per_task}.json"
    cmd = [sys.executable, "-m", "flows.bench_orchestration", "--one", str(n_tiles)]
    cmd += ["--tiles-per-task", str(tiles_per_task), "--workdir", str(workdir / f"run_{n_tiles}"), "--out", str(out)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    """Run the points (each in a subprocess) and write ``benchmarks/results/orchestration.{md,json}``."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.bench orchestration", description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", default="1000,3000,10000", help="comma-separated tile counts (one run each)")
    ap.add_argument("--tiles-per-task", default="auto", help="SEIS_TILES_PER_TASK of the runs (auto or a number)")
    ap.add_argument("--before", type=int, default=500, help="also N tiles at one tile per task (0: skip)")
    ap.add_argument("--workdir", default="/tmp/seis_bench_orch")
    ap.add_argument("--name", default="orchestration", help="result file name under benchmarks/results")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one point in this process
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    if args.one:
        point = one_point(work, args.one, args.tiles_per_task)
        Path(args.out).write_text(json.dumps(point))
        shutil.rmtree(work, ignore_errors=True)
        return 0
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        points = [_subprocess_point(work, args.before, "1")] if args.before else []
        points += [_subprocess_point(work, int(n), args.tiles_per_task) for n in args.tiles.split(",") if n.strip()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(points, args.name)
    return 0


def report(points: list[dict], name: str = "orchestration") -> str:
    """Write ``benchmarks/results/NAME.{md,json}`` for the measured ``points`` (one per run); returns the markdown."""
    rows = [
        [
            p["tiles"],
            p["tiles_per_task"],
            p["tiles_wall_s"],
            p["task_compute_s"],
            1e3 * p["overhead_per_tile_s"],
            1e3 * p["wall_per_tile_s"],
            p["flow_rss_start_mb"],
            p["flow_rss_peak_mb"],
            p["flow_rss_growth_mb"],
            p.get("tiles_rss_start_mb", "?"),
            p.get("tiles_rss_peak_mb", "?"),
            1e3 * (p["cpu_s"]["flow"] + p["cpu_s"]["other"]) / p["tiles"],
            p.get("task_runs", "?"),
        ]
        for p in points
    ]
    md = "\n".join(
        [
            "# Orchestration: process-survey per-tile overhead and flow-process memory vs tile count",
            "",
            f"Survey 2N x {CROSSLINES} x {SAMPLES} float32 in N tiles of {TILE} inlines (halo {HALO}), TLSM 2 "
            "iterations, local cluster 2 workers x 1 thread; one run per row, each in a fresh process. "
            "Overhead per tile = (tiles-stage wall - task compute / 2 threads) / N (target <= 10 ms); "
            "flow RSS sampled every 20 ms in the flow process (scheduler included; workers and the Prefect "
            "server are other processes) over the whole run (ingest and QC included), and over the tiles stage "
            "alone (its high-water mark, measured by the flow: what must not grow with the tile count). "
            "flow+server CPU ms/tile: CPU seconds of the flow process (Prefect client, "
            "Dask scheduler, QC) and of Prefect's server over the whole run, per tile: orchestration work that "
            "a loaded machine does not inflate the way it inflates wall times.",
            "",
            md_table(
                [
                    "tiles",
                    "tiles/task",
                    "tiles wall s",
                    "task compute s",
                    "overhead ms/tile",
                    "wall ms/tile",
                    "flow RSS start MB",
                    "flow RSS peak MB",
                    "growth MB",
                    "tiles stage: flow RSS start MB",
                    "tiles stage: flow RSS peak MB",
                    "flow+server CPU ms/tile",
                    "tile task runs",
                ],
                rows,
            ),
        ]
    )
    write_results(name, {"points": points}, md)
    print(md)
    return md


if __name__ == "__main__":
    sys.exit(main())
