"""The realistic-shape run of the pipeline benchmark (``python -m seiscore.bench pipeline --shape realistic``).

A survey of ``inlines x 1024 x 1000`` float32 samples at 2 ms (the realistic synthetic of
:mod:`seiscore.data.synth_realistic`: dipping and curved events, a fault, amplitude variation, acquisition
footprint, noise; 1000 inlines = 4.1 GB of samples) is written as SEG-Y slab by slab (``realistic_slab``, a few
inlines at a time, never the whole cube in memory) and runs SEG-Y -> ingest -> TLSM tiles on the local cluster
-> denoised SEG-Y through the process-survey flow. Reported: end-to-end samples/s, wall time per stage and
its share, task seconds per tile stage (read / denoise / save / write), and the peak resident memory of every
Dask worker process (sampled every 0.5 s from this process's children) against the worker's memory limit.

``--stores s3`` runs the same with the input, output and scratch stores on an S3 server on loopback (moto's
``ThreadedMotoServer``; the SEG-Y source and the exported SEG-Y stay local): ``--stores local,s3`` runs both
and gives the S3 / local throughput ratio (target >= 0.7). Small shapes (``--quick``, or ``--inlines`` /
``--crosslines`` / ``--samples``) exercise the same code path in seconds.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from seiscore.bench.common import md_table, write_results

QUICK_SHAPE = (16, 64, 200)
BUCKET = "seis-bench"


# ---------------------------------------------------------------- SEG-Y written slab by slab


def _textual_header(lines: list[str]) -> bytes:
    text = "".join(f"C{i + 1:2d} {line}"[:80].ljust(80) for i, line in enumerate((lines + [""] * 40)[:40]))
    return text.encode("cp037")


def write_realistic_segy(path: Path, shape: tuple[int, int, int], *, seed: int = 0, slab: int = 8) -> Path:
    """Write the realistic survey of ``shape`` (inline, crossline, time) as SEG-Y rev 1, IEEE floats (format 5),
    big endian, inline/crossline numbers at bytes 189/193, ``slab`` inlines at a time (memory: one slab).

    Written by hand (headers vectorised per slab), to ``path.partial`` first and renamed when whole."""
    from seiscore.data.synth_realistic import RealisticConfig, realistic_slab

    n_il, n_xl, ns = (int(v) for v in shape)
    dt_us = int(round(RealisticConfig().dt * 1e6))
    trace = np.dtype([("h", "u1", 240), ("d", ">f4", ns)])
    binary = np.zeros(400, np.uint8)

    def put(buf: np.ndarray, byte: int, value, fmt: str) -> None:  # byte: 1-based within the header
        raw = np.asarray(value, dtype=fmt)
        buf[..., byte - 1 : byte - 1 + raw.dtype.itemsize] = raw[..., None].view(np.uint8).reshape(*raw.shape, -1)

    for byte, value in ((3217, dt_us), (3221, ns), (3225, 5), (3229, 4), (3501, 0x0100), (3503, 1)):
        put(binary, byte - 3200, value, ">i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    xl = np.arange(n_xl)
    with open(partial, "wb") as f:
        f.write(
            _textual_header(
                [
                    f"seiscore realistic synthetic {n_il} x {n_xl} x {ns}, seed {seed}",
                    "INLINE BYTE 189 CROSSLINE BYTE 193, IEEE FLOAT, 2 MS",
                ]
            )
        )
        f.write(binary.tobytes())
        for i0 in range(0, n_il, slab):
            i1 = min(i0 + slab, n_il)
            noisy, _ = realistic_slab(i0, i1, (n_il, n_xl, ns), seed)
            rec = np.zeros((i1 - i0) * n_xl, trace)
            il = np.repeat(np.arange(i0, i1), n_xl)
            seq = il * n_xl + np.tile(xl, i1 - i0) + 1
            h = rec["h"]
            put(h, 1, seq, ">i4")
            put(h, 5, seq, ">i4")
            put(h, 71, np.full(seq.size, -100), ">i2")
            put(h, 115, np.full(seq.size, ns), ">i2")
            put(h, 117, np.full(seq.size, dt_us), ">i2")
            put(h, 181, np.tile(xl, i1 - i0) * 2500, ">i4")
            put(h, 185, il * 2500, ">i4")
            put(h, 189, il + 1, ">i4")
            put(h, 193, np.tile(xl, i1 - i0) + 1, ">i4")
            rec["d"] = noisy.reshape(-1, ns)
            f.write(rec.tobytes())
    os.replace(partial, path)
    return path


# ---------------------------------------------------------------- memory of the worker processes


class WorkerRSS:
    """Peak RSS of this process and of each Dask worker process among its descendants, sampled every ``interval``.

    A worker is a ``multiprocessing`` spawn child (how Dask's nanny starts workers); other children (Prefect's
    temporary server, the resource tracker) are left out."""

    def __init__(self, interval: float = 0.5):
        import psutil

        self._psutil, self._proc, self.interval = psutil, psutil.Process(), interval
        self.flow_peak, self.workers = 0, {}
        self._stop = threading.Event()

    def _sample(self) -> None:
        self.flow_peak = max(self.flow_peak, self._proc.memory_info().rss)
        for child in self._proc.children(recursive=True):
            try:
                cmd = " ".join(child.cmdline())
                if "spawn_main" not in cmd or "resource_tracker" in cmd:
                    continue
                self.workers[child.pid] = max(self.workers.get(child.pid, 0), child.memory_info().rss)
            except self._psutil.Error:
                continue

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> WorkerRSS:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def worker_memory_limit() -> int:
    """The memory limit of one local-cluster worker (``SEIS_DASK_MEMORY_LIMIT``; ``auto``: Dask's system limit
    divided among the workers)."""
    from dask.utils import parse_bytes
    from distributed.system import MEMORY_LIMIT

    from seiscore.core.settings import get_settings

    s = get_settings()
    if s.dask_memory_limit == "auto":
        return int(MEMORY_LIMIT // s.dask_workers)
    return int(parse_bytes(s.dask_memory_limit))


# ---------------------------------------------------------------- S3 on loopback


class LoopbackS3:
    """A moto S3 server on 127.0.0.1 in its own process (as an object store is a service of its own: in this
    process its request handling would share the flow's interpreter lock and slow QC several-fold), the standard
    AWS environment pointing at it, and bucket ``seis-bench``. ``cpu_s``: the server process's CPU seconds, read
    at exit (on this 2-core machine they are taken from the workers; a real object store spends them elsewhere)."""

    _ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")

    def __enter__(self) -> LoopbackS3:
        import socket
        import subprocess
        import sys

        import psutil

        with socket.socket() as sock:  # a free loopback port for the server
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ps = psutil.Process(self._proc.pid)
        self.endpoint, self.cpu_s = f"http://127.0.0.1:{port}", 0.0
        self._saved = {k: os.environ.get(k) for k in self._ENV}
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=self.endpoint,
        )
        from seiscore.io.location import fs_for

        deadline = time.monotonic() + 60
        while True:  # the server takes a few seconds to import and listen
            try:
                fs, _ = fs_for(f"s3://{BUCKET}")
                fs.mkdir(BUCKET)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    self.__exit__()
                    raise RuntimeError(f"the moto S3 server on port {port} did not start") from None
                time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            t = self._ps.cpu_times()
            self.cpu_s = t.user + t.system
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._proc.terminate()
        try:
            self._proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self._proc.kill()


# ---------------------------------------------------------------- the run


def _catalog(work: Path, stores: str) -> Path:
    if stores == "s3":
        root = f"s3://{BUCKET}/{work.name}"
        store, output = f"{root}/realistic.zarr", f"{root}/realistic_denoised.zarr"
    else:
        store, output = "data/realistic.zarr", "data/realistic_denoised.zarr"
    path = work / f"catalog_{stores}.yaml"
    path.write_text(
        "surveys:\n  realistic:\n    source: data/realistic.sgy\n"
        f"    store: {store}\n    output: {output}\n    output_segy: data/realistic_denoised_{stores}.sgy\n"
        "    method: {name: tlsm, preset: synthetic, axes: {smooth: crossline, footprint: sample, tube: inline}}\n"
    )
    return path


def run_once(work: Path, stores: str) -> dict:
    """One process-survey run of the realistic survey under ``work/data`` with stores ``local`` or ``s3``."""
    from flows.process_survey import run_process_survey

    catalog = _catalog(work, stores)
    extra_root = f"s3://{BUCKET}/{work.name}" if stores == "s3" else None
    saved = os.environ.get("SEIS_DATA_ROOTS")
    if extra_root:
        os.environ["SEIS_DATA_ROOTS"] = os.pathsep.join(filter(None, [saved, extra_root]))
    try:
        t0 = time.perf_counter()
        with WorkerRSS() as rss:
            result = run_process_survey("realistic", catalog=str(catalog), export_segy=True)
        wall = time.perf_counter() - t0
    finally:
        if extra_root:
            if saved is None:
                os.environ.pop("SEIS_DATA_ROOTS", None)
            else:
                os.environ["SEIS_DATA_ROOTS"] = saved
    return {
        "stores": stores,
        "wall_s": wall,
        "stage_seconds": result["stage_seconds"],
        "metrics": {k: v for k, v in result["metrics"].items() if k not in ("qc_report",)},
        "flow_peak_rss_bytes": rss.flow_peak,
        "worker_peak_rss_bytes": sorted(rss.workers.values(), reverse=True),
    }


def run_realistic(args, work: Path) -> int:
    """Write the survey, run it with each store kind asked for, write ``benchmarks/results/NAME.{md,json}``."""
    default = QUICK_SHAPE if args.quick else (1000, 1024, 1000)
    shape = tuple(
        int(g if g is not None else d) for g, d in zip((args.inlines, args.crosslines, args.samples), default)
    )
    n = int(np.prod(shape))
    t0 = time.perf_counter()
    segy = write_realistic_segy(work / "data" / "realistic.sgy", shape, seed=args.seed)
    t_gen = time.perf_counter() - t0
    os.environ.setdefault("SEIS_LINEAGE_DIR", str(work / "openlineage"))
    limit = worker_memory_limit()
    runs, failed = [], []
    kinds = [s.strip() for s in args.stores.split(",") if s.strip()]
    for stores in kinds:
        if stores not in ("local", "s3"):
            raise ValueError(f"--stores takes local and/or s3 (comma-separated), got {stores!r}")
    for stores in kinds:
        try:  # a failed run is reported beside the others' figures, not instead of them
            if stores == "s3":
                with LoopbackS3() as server:
                    runs.append(run_once(work, "s3"))
                runs[-1]["s3_server_cpu_s"] = server.cpu_s
            else:
                runs.append(run_once(work, "local"))
        except Exception as exc:  # noqa: BLE001
            failed.append({"stores": stores, "error": f"{type(exc).__name__}: {exc}"})
    keys = ["ingest", "plan", "prepare", "tiles", "quality", "export"]
    lines = [
        f"# Pipeline at realistic shape: SEG-Y -> TLSM -> SEG-Y ({' x '.join(map(str, shape))} float32 at 2 ms, "
        f"{segy.stat().st_size / 1e9:.2f} GB SEG-Y)",
        "",
        f"Local cluster {os.environ.get('SEIS_DASK_WORKERS', '2')} workers x 1 thread, worker memory limit "
        f"{limit / 2**30:.1f} GiB; SEG-Y written slab by slab in {t_gen:.0f} s (not in the figures). "
        "Target: >= 0.5 M samples/s end to end with every worker under its limit; S3 >= 70 % of local.",
        "",
    ]
    rows = []
    for r in runs:
        m, wall = r["metrics"], r["wall_s"]
        peak = max(r["worker_peak_rss_bytes"], default=0)
        rows.append(
            [
                r["stores"],
                wall,
                n / wall / 1e6,
                m["tiles_total"],
                m.get("tiles_per_task", 1),
                peak / 2**30,
                "yes" if peak < limit else "NO",
                r["flow_peak_rss_bytes"] / 2**30,
                r.get("s3_server_cpu_s", "-"),
            ]
        )
    lines += [
        md_table(
            [
                "stores",
                "wall s",
                "M samples/s",
                "tiles",
                "tiles/task",
                "worker peak RSS GiB",
                "under limit",
                "flow RSS GiB",
                "S3 server CPU s",
            ],
            rows,
        ),
        "",
    ]
    for r in runs:
        wall, st = r["wall_s"], r["stage_seconds"]
        stage_rows = [[k, st.get(k, 0.0), 100 * st.get(k, 0.0) / wall] for k in keys]
        rest = wall - sum(st.get(k, 0.0) for k in keys)
        stage_rows.append(["other (flow and cluster start, lineage, artifacts)", rest, 100 * rest / wall])
        ts = r["metrics"]["task_seconds"]
        lines += [
            f"Stages with stores on {r['stores']} (task seconds summed over tiles: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in ts.items())
            + "):",
            "",
            md_table(["stage", "seconds", "% of wall"], stage_rows),
            "",
        ]
    by = {r["stores"]: r for r in runs}
    ratio = by["local"]["wall_s"] / by["s3"]["wall_s"] if {"local", "s3"} <= set(by) else None
    if ratio is not None:
        lines.append(f"S3 / local throughput: **{ratio:.2f}** (target >= 0.70).")
    lines += [f"Run with stores on {f['stores']} FAILED: {f['error']}" for f in failed]
    payload = {
        "shape": shape,
        "samples": n,
        "segy_bytes": segy.stat().st_size,
        "generate_s": t_gen,
        "worker_memory_limit_bytes": limit,
        "runs": runs,
        "failed": failed,
        "s3_over_local": ratio,
    }
    md = "\n".join(lines)
    write_results(args.name or ("pipeline_realistic_quick" if args.quick else "pipeline_realistic"), payload, md)
    print(md)
    return 1 if failed else 0


def prepare(work: Path) -> None:
    """An empty work folder with its data root ``work/data``."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
