"""The library never imports orchestration: Prefect lives in tasks/, flows/ and deployments/.

Two checks: an import-time one (importing the library's modules loads no ``prefect``, ``flows``, ``tasks`` or
``deployments`` module), and a source scan of every ``.py`` file under ``seiscore/`` that also sees what the
import-time check cannot: imports inside functions, ``importlib.import_module("...")`` and ``__import__("...")``
with a literal name. The library reaches the orchestration side only through entry points (``seiscore.commands``,
``seiscore.benchmarks``; see ``seiscore/cli/__init__.py``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "seiscore"
BANNED = {"flows", "tasks", "deployments", "prefect", "prefect_dask"}

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
    "seiscore.execution.status",
    "seiscore.core.settings",
    "seiscore.core.safety",
    "seiscore.methods.ssb",
    "seiscore.methods.registry",
    "seiscore.cli",
    "seiscore.cli.common",
    "seiscore.execution.versions",
    "seiscore.execution.preflight",
    "seiscore.bench.__main__",
]


def test_library_modules_do_not_import_prefect():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in LIBRARY_MODULES)
        + "from seiscore.cli import build_parser\n"
        + "build_parser()\n"  # the plug-in commands register without importing Prefect or the flows' modules
        + "orchestration = ('prefect', 'prefect_dask', 'tasks', 'deployments')\n"
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in orchestration"
        + " or (m.startswith('flows.') and not m.startswith('flows.commands')))\n"
        + "print(bad)\nsys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, f"library imports orchestration modules: {proc.stdout} {proc.stderr[-2000:]}"


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree``: statements anywhere (functions included), and the literal
    names given to ``importlib.import_module`` / ``import_module`` / ``__import__``. Relative imports are the
    library's own and are skipped."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name in {"import_module", "__import__"} and (target := _literal(node.args[0])):
                found.append((node.lineno, target))
    return found


def banned_imports(root: Path) -> list[str]:
    """``path:line: module`` for each import of an orchestration package in the ``.py`` files under ``root``."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in imported_modules(tree):
            if module.split(".")[0] in BANNED:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    return bad


def test_no_library_source_imports_orchestration():
    files = list(LIBRARY.rglob("*.py"))
    assert len(files) > 50  # the scan sees the whole library
    assert banned_imports(LIBRARY) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("def f():\n    from flows.process_survey import run_process_survey\n", ["flows.process_survey"]),
        ("import deployments.serve as s\n", ["deployments.serve"]),
        ("def f():\n    import prefect_dask\n", ["prefect_dask"]),
        ("import importlib\nimportlib.import_module('tasks.tiles')\n", ["tasks.tiles"]),
        ("from importlib import import_module\nimport_module('prefect.flows')\n", ["prefect.flows"]),
        ("__import__('flows')\n", ["flows"]),
        ("from . import flows\nimport flowsheet\nfrom seiscore.flows import x\n", []),
    ],
)
def test_the_scan_sees_lazy_and_dynamic_imports(source, expected):
    found = [m for _, m in imported_modules(ast.parse(source)) if m.split(".")[0] in BANNED]
    assert found == expected


def test_the_flow_commands_and_pipeline_benchmark_are_reached_through_entry_points():
    """The seams are declared (pyproject.toml) and the installed metadata carries them (conftest makes it current):
    ``seis --help`` lists the plug-in commands and ``seiscore.bench`` the pipeline benchmark."""
    import tomllib

    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(eps["seiscore.commands"]) >= {"run", "demo", "serve", "fit", "fwi", "velocity", "traces"}
    assert eps["seiscore.benchmarks"] == {
        "pipeline": "flows.bench_pipeline:main",
        "orchestration": "flows.bench_orchestration:main",
        "gpu": "flows.bench_gpu:main",
    }
    from seiscore.bench.__main__ import available
    from seiscore.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"run", "reprocess", "demo", "serve", "fit", "status", "ingest"} <= set(sub.choices)
    assert {"pipeline", "orchestration", "gpu", "tlsm", "io"} <= set(available())
