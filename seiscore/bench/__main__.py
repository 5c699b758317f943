"""Dispatch ``python -m seiscore.bench NAME ...`` to a benchmark's ``main(argv)``.

Two sources: the modules of this package (``seiscore.bench.NAME.main``), and benchmarks plugged in through
the ``seiscore.benchmarks`` entry-point group, each loading a ``main(argv)`` function. The pipeline
benchmark runs the process-survey flow, so it lives on the orchestration side (``flows/bench_pipeline.py``)
and is reached only through that seam::

    [project.entry-points."seiscore.benchmarks"]
    pipeline = "flows.bench_pipeline:main"

A module of this package wins over an entry point of the same name.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from importlib.metadata import entry_points
from typing import Callable

import seiscore.bench as _pkg

ENTRY_POINT_GROUP = "seiscore.benchmarks"
_NOT_BENCHMARKS = {"__main__", "common"}


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(_pkg.__path__) if m.name not in _NOT_BENCHMARKS)


def _plugins() -> dict:
    """Entry points of the ``seiscore.benchmarks`` group by name (a library module of the same name wins)."""
    own = set(_modules())
    found: dict = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in own:
            found.setdefault(ep.name, ep)
    return found


def available() -> list[str]:
    """Names of every benchmark: this package's modules and the entry-point ones."""
    return sorted({*_modules(), *_plugins()})


def _entry(name: str) -> Callable[[list[str]], int | None]:
    if name in _modules():
        return importlib.import_module(f"seiscore.bench.{name}").main
    return _plugins()[name].load()


def main(argv: list[str] | None = None) -> int:
    """Run benchmark ``argv[0]`` with the rest of ``argv``; 2 and one line for an unknown name."""
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if not argv or argv[0] in {"-h", "--help"}:
        print(f"usage: python -m seiscore.bench {{{','.join(names)}}} [options]")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"seiscore.bench: unknown benchmark {name!r}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    try:
        run = _entry(name)
    except Exception as exc:  # noqa: BLE001 - a broken plug-in benchmark: one line, not a traceback
        print(f"seiscore.bench: benchmark {name!r} not loaded: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return int(run(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
