"""The library never imports Prefect: orchestration lives in tasks/, flows/ and deployments/."""

import subprocess
import sys

LIBRARY_MODULES = [
    "seiscore.tlsm", "seiscore.synth", "seiscore.metrics", "seiscore.qc", "seiscore.io", "seiscore.catalog",
    "seiscore.tiling", "seiscore.tile_jobs", "seiscore.tile_state", "seiscore.lineage", "seiscore.pipeline",
    "seiscore.settings", "seiscore.safety", "seiscore.ssb", "seiscore.cli", "seiscore.versions",
    "seiscore.preflight",
]


def test_library_modules_do_not_import_prefect():
    code = "import sys\n" + "".join(f"import {m}\n" for m in LIBRARY_MODULES) + (
        "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith(('prefect.', 'flows', 'tasks.', 'deployments')))\n"
        "print(bad)\nsys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, f"library imports orchestration modules: {proc.stdout} {proc.stderr[-2000:]}"
