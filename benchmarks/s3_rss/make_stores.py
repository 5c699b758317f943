"""Write the realistic synthetic survey of N x 1024 x 1000 float32 samples as SEG-Y (as the pipeline
benchmark does, flows.bench_realistic.write_realistic_segy) and ingest it twice locally and twice to S3
("in" and "out": QC reads an input and an output store of the same shape and chunks).

    source benchmarks/s3_rss/env.sh
    PYTHONPATH=$PWD nice -n 19 python benchmarks/s3_rss/make_stores.py N
"""

import os
import sys
import time
from pathlib import Path

from flows.bench_realistic import write_realistic_segy
from seiscore.io.ingest import ingest
from seiscore.io.location import fs_for

n = int(sys.argv[1])
work = Path(os.environ["S3RSS_WORK"])
segy = work / f"survey_{n}.sgy"
if not segy.exists():
    t = time.perf_counter()
    write_realistic_segy(segy, (n, 1024, 1000), seed=0)
    print(f"segy {segy} {segy.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t:.0f} s", flush=True)
fs, _ = fs_for("s3://seis-rss")
if not fs.exists("seis-rss"):
    fs.mkdir("seis-rss")
for which in ("in", "out"):
    for store in (str(work / f"s{n}_{which}.zarr"), f"s3://seis-rss/s{n}_{which}.zarr"):
        t = time.perf_counter()
        ingest(segy, store, overwrite=True)
        print(f"ingest {store} in {time.perf_counter() - t:.0f} s", flush=True)
