"""``seis methods [--json]``: the registered methods, their data kinds, run mode, resources and availability."""

from __future__ import annotations

import argparse
import dataclasses
import json


def register(subparsers) -> None:
    """Add the ``methods`` sub-command."""
    p = subparsers.add_parser(
        "methods",
        help="list the processing methods (built-in and plug-ins) and whether they can run here",
        description="List every registered method: built-in ones and those of installed packages "
        "(entry-point group 'seiscore.methods'), with the data kinds they accept, their run mode, the "
        "resources a task needs and whether their optional dependencies are installed.",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=run)


def _available(row) -> str:
    return "yes" if row.available else f"needs {', '.join(row.needs)}: {row.install}"


def rows() -> list[dict[str, str]]:
    """The table's rows as strings (name, data kinds, mode, resources, available, origin)."""
    from seiscore.methods.registry import method_table

    return [
        {
            "name": r.name,
            "data kinds": ", ".join(r.data_kinds) or "-",
            "mode": r.mode,
            "resources": ", ".join(f"{k}={v:g}" for k, v in r.resources.items()) or "-",
            "available": _available(r),
            "origin": r.origin,
        }
        for r in method_table()
    ]


def run(args: argparse.Namespace) -> int:
    """Print the methods table (or JSON)."""
    if args.json:
        from seiscore.methods.registry import method_table

        print(json.dumps([dataclasses.asdict(r) for r in method_table()], indent=2))
        return 0
    table = rows()
    columns = list(table[0]) if table else ["name"]
    widths = {c: max(len(c), *(len(r[c]) for r in table)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in table:
        print("  ".join(r[c].ljust(widths[c]) for c in columns).rstrip())
    return 0
