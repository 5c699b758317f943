"""Dispatch ``python -m seiscore.bench NAME ...`` to ``seiscore.bench.NAME.main``."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import seiscore.bench as _pkg

_NOT_BENCHMARKS = {"__main__", "common"}


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(_pkg.__path__) if m.name not in _NOT_BENCHMARKS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if not argv or argv[0] in {"-h", "--help"}:
        print(f"usage: python -m seiscore.bench {{{','.join(names)}}} [options]")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"seiscore.bench: unknown benchmark {name!r}; choose from {', '.join(names)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(f"seiscore.bench.{name}").main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
