"""Peak RSS of one step on one store, in a fresh process: the SEG-Y export or the QC run_quality.

    source benchmarks/s3_rss/env.sh
    PYTHONPATH=$PWD nice -n 19 python benchmarks/s3_rss/measure.py STEP KIND N
        STEP: export (local dest) | export_s3 (s3:// dest) | quality (input + output stores) | ingest
        KIND: local | s3   (where the stores are; made by make_stores.py N)
Prints one JSON line: peak RSS from getrusage (ru_maxrss) and from a 50 ms psutil sampler, and the seconds.
"""

import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

step, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
work = Path(os.environ["S3RSS_WORK"])
stores = {w: str(work / f"s{n}_{w}.zarr") if kind == "local" else f"s3://seis-rss/s{n}_{w}.zarr" for w in ("in", "out")}

peak = [0]
stop = threading.Event()


def sample():
    """Track this process's peak RSS every 50 ms."""
    p = psutil.Process()
    while not stop.is_set():
        peak[0] = max(peak[0], p.memory_info().rss)
        time.sleep(0.05)


if os.environ.get("S3RSS_GATHER_BATCH"):  # experiment: cap fsspec's concurrent files per put/get
    import fsspec.config

    fsspec.config.conf["gather_batch_size"] = int(os.environ["S3RSS_GATHER_BATCH"])
base = psutil.Process().memory_info().rss
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
if step == "export":
    from seiscore.io.export import export

    dest = work / f"exp_{kind}_{n}.sgy"
    export(stores["out"], dest, overwrite=True)
    dest.unlink()
elif step == "export_s3":
    from seiscore.io.export import export

    export(stores["out"], f"s3://seis-rss/exp_{kind}_{n}.sgy", overwrite=True)
elif step == "quality":
    from seiscore.execution.pipeline import run_quality

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        run_quality(stores["in"], stores["out"], Path(tmp) / "qc", survey="rss")
elif step == "ingest":
    from seiscore.io.ingest import ingest

    dest = str(work / f"ing_{n}.zarr") if kind == "local" else f"s3://seis-rss/ing_{n}.zarr"
    ingest(work / f"survey_{n}.sgy", dest, overwrite=True)
else:
    raise SystemExit(f"unknown step {step}")
wall = time.perf_counter() - t0
stop.set()
time.sleep(0.1)
print(
    json.dumps(
        {
            "step": step,
            "stores": kind,
            "inlines": n,
            "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "sampled_peak_mib": round(peak[0] / 2**20),
            "start_rss_mib": round(base / 2**20),
            "wall_s": round(wall, 1),
        }
    ),
    flush=True,
)
