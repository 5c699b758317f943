"""Benchmark: the same small blockwise run with its stores on the local disk and on S3 over loopback.

``python -m seiscore.bench object_storage [--shape 32 64 128] [--tile 8]``: writes a synthetic SEG-Y, then per
backend ingests it, runs TLSM tile by tile in this process (plan, denoise, write, mark complete, publish: the
library side of process-survey, no Dask) and times each stage. The S3 server is moto's, started in a separate
process on 127.0.0.1 (unless ``AWS_ENDPOINT_URL`` already names one), so it does not share this process's GIL.
Results: ``benchmarks/results/object_storage.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server() -> subprocess.Popen | None:
    """A moto S3 server in a child process (None when ``AWS_ENDPOINT_URL`` is already set)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return None
    port = _free_port()
    code = (
        "import logging, time; logging.getLogger('werkzeug').setLevel(logging.ERROR); "
        "from moto.server import ThreadedMotoServer; "
        f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False); s.start(); "
        "time.sleep(1e9)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }.items():
        os.environ.setdefault(key, value)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the moto S3 server did not start")


def _run(source: Path, input_store, output, tile: int) -> dict[str, float]:
    from seiscore import io
    from seiscore.execution.blockwise.jobs import denoise_tile, pending_work, write_tile
    from seiscore.execution.blockwise.state import TileState, survey_lock
    from seiscore.execution.pipeline import make_job, prepare_output, run_key
    from seiscore.execution.versions import publish_staging, recover, staging_path
    from seiscore.methods.registry import parse_spec

    spec = parse_spec(
        {
            "name": "tlsm",
            "preset": "synthetic",
            "axes": {"smooth": "crossline", "footprint": "sample", "tube": "inline"},
            "tiles": {"tile": [tile, None, None], "halo": [2, 0, 0]},
            "params": {"iterations": 3},
        }
    )
    t = {}
    t0 = time.perf_counter()
    io.ingest(str(source), input_store, overwrite=True)
    t["ingest_s"] = time.perf_counter() - t0
    with survey_lock(output, owner="bench"):
        recover(output)
        staging = staging_path(output)
        t0 = time.perf_counter()
        job = make_job(input_store, staging, spec)
        prepare_output(job, run_key("bench", job), restart=True)
        t["prepare_s"] = time.perf_counter() - t0
        to_compute, to_write = pending_work(job.plan, TileState(staging))
        t0 = time.perf_counter()
        for key in to_compute:
            denoise_tile(job, key)
        for key in to_write:
            write_tile(job, key)
        t["tiles_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        io.mark_complete(staging)
        TileState(staging).clear_blocks()
        publish_staging(staging, output)
        t["publish_s"] = time.perf_counter() - t0
    t["n_tiles"] = job.plan.n_tiles
    return t


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and write the table."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.bench object_storage", description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=int, nargs=3, default=(32, 64, 128), metavar=("IL", "XL", "NS"))
    ap.add_argument("--tile", type=int, default=8, help="inlines per tile")
    ap.add_argument("--out", default="benchmarks/results", help="results folder")
    args = ap.parse_args(argv)
    from seiscore.data.synth import make_survey
    from seiscore.io import location
    from seiscore.io.segy_write import write_cube

    server = _start_server()
    try:
        with tempfile.TemporaryDirectory(prefix="seiscore-bench-") as tmp:
            d = Path(tmp)
            noisy, _ = make_survey(n_inline=args.shape[0], n_crossline=args.shape[1], n_time=args.shape[2], seed=0)
            source = write_cube(d / "noisy.sgy", noisy)
            bucket = f"seis-bench-{os.getpid()}"
            fs, _ = location.fs_for(f"s3://{bucket}")
            fs.mkdir(bucket)
            results = {
                "local": _run(source, d / "in.zarr", d / "out.zarr", args.tile),
                "s3": _run(source, f"s3://{bucket}/in.zarr", f"s3://{bucket}/out.zarr", args.tile),
            }
            from seiscore import io

            same = bool(
                np.array_equal(
                    io.open_survey(d / "out.zarr")["amplitude"].values,
                    io.open_survey(f"s3://{bucket}/out.zarr")["amplitude"].values,
                )
            )
    finally:
        if server is not None:
            server.kill()
            server.wait()
    stages = ("ingest_s", "prepare_s", "tiles_s", "publish_s")
    lines = [
        f"# Object storage: local disk vs S3 over loopback (moto), shape {tuple(args.shape)}, "
        f"{results['local']['n_tiles']} tiles",
        "",
        "| backend | " + " | ".join(stages) + " | total_s |",
        "|---|" + "---|" * (len(stages) + 1),
    ]
    for name, r in results.items():
        total = sum(r[s] for s in stages)
        r["total_s"] = total
        lines.append(f"| {name} | " + " | ".join(f"{r[s]:.2f}" for s in stages) + f" | {total:.2f} |")
    lines += ["", f"outputs identical: {same}"]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "object_storage.md").write_text(text + "\n")
    (out / "object_storage.json").write_text(json.dumps({"shape": list(args.shape), "identical": same, **results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
