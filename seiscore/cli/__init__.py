"""The ``seis`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the
parsed namespace, returning an exit code). Errors raised as :class:`CLIError`,
``ValueError``, ``FileNotFoundError`` or ``FileExistsError``, and the OS refusals a user can act on
(disk full, permission denied; :mod:`seiscore.io.os_errors`) become a one-line reason on stderr and
exit status 2. ``run``, ``reprocess`` and ``demo`` stop cleanly on Ctrl-C / SIGTERM (:mod:`.signals`).
Output is quiet unless ``-v`` / ``--verbose`` (before or after the command; ``seis serve`` always logs):
see :mod:`seiscore.cli.output`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import nullcontext

# Modules of this package that contribute sub-commands, in help order.
COMMAND_MODULES = [
    "datasets",
    "ingest",
    "export",
    "info",
    "demo",
    "train_ssb",
    "qc",
    "run",
    "serve",
    "lineage",
    "methods",
]
# Sub-commands that run the pipeline: Ctrl-C / SIGTERM stop them cleanly (one line, exit 130 / 143).
STOPPABLE = {"run", "reprocess", "demo"}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def check_roots(path, what: str, catalog=None):
    """Refuse ``path`` outside the data roots: ``SEIS_DATA_ROOTS`` (+ the ``catalog``'s ``data/`` when given);
    no root rule when none applies (a path named on the command line). Returns the resolved path."""
    from seiscore.core.safety import check_write_target, data_roots
    from seiscore.core.settings import get_settings

    roots = data_roots(catalog, get_settings())
    return check_write_target(path, what=what, roots=roots or None, replace=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seis", description="Seismic survey denoising pipeline.")
    verbose = "also show Prefect's and Dask's INFO log lines (default: the product's lines and warnings only)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    for command in sub.choices.values():  # -v after the command too (seis run S -v)
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from seiscore.cli.output import configure_logging

    from .signals import clean_stops

    configure_logging(args.verbose or args.command == "serve")  # before Prefect or Dask is imported; a server logs
    try:
        with clean_stops(args.command) if args.command in STOPPABLE else nullcontext():
            return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError, FileExistsError, NotImplementedError) as exc:
        print(f"seis {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permission denied, ...: one line (seiscore.io.os_errors)
        from seiscore.io.os_errors import os_error_message

        if (line := os_error_message(exc)) is None:
            raise
        print(f"seis {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"seis {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
