"""The library never imports Prefect: orchestration lives in tasks/, flows/ and deployments/."""

import subprocess
import sys

LIBRARY_MODULES = [
    "seiscore.methods.tlsm",
    "seiscore.data.synth",
    "seiscore.metrics",
    "seiscore.qc",
    "seiscore.io",
    "seiscore.data.catalog",
    "seiscore.execution.blockwise.tiling",
    "seiscore.execution.blockwise.jobs",
    "seiscore.execution.blockwise.state",
    "seiscore.core.lineage",
    "seiscore.execution.pipeline",
    "seiscore.core.settings",
    "seiscore.core.safety",
    "seiscore.methods.ssb",
    "seiscore.cli",
    "seiscore.execution.versions",
    "seiscore.execution.preflight",
]


def test_library_modules_do_not_import_prefect():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in LIBRARY_MODULES)
        + (
            "bad = sorted(m for m in sys.modules if m == 'prefect' or m.startswith(('prefect.', 'flows', 'tasks.', 'deployments')))\n"
            "print(bad)\nsys.exit(1 if bad else 0)\n"
        )
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, f"library imports orchestration modules: {proc.stdout} {proc.stderr[-2000:]}"
