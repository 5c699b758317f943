"""The ``seis`` command line.

Each sub-command lives in a module that exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returning an exit code). Two sources, in help order:

1. the library's own commands, the modules of this package listed in ``COMMAND_MODULES``;
2. **plug-in commands**, found through the ``seiscore.commands`` entry-point group. This is the seam
   through which the orchestration side adds the commands that run Prefect flows (``seis run``,
   ``reprocess``, ``demo``, ``serve`` live in ``flows/commands/``): the library never imports ``flows``,
   ``tasks`` or ``deployments`` (``tests/test_architecture.py``). Each entry point loads a ``register``
   function; ``pyproject.toml`` declares the product's own::

       [project.entry-points."seiscore.commands"]
       run = "flows.commands.run:register"      # seis run, seis reprocess

   A third-party package adds a command the same way. A plug-in whose ``register`` fails to load (or
   to run) is reported in one line on stderr and left out; ``seis --help`` and every other command still
   work; so is one that names a command already registered (argparse refuses the conflict): a plug-in never
   replaces a command. Loading happens when the parser is built, so a plug-in module must import nothing
   heavy at module level.

A command may set two more defaults on its parser: ``stoppable=True`` (Ctrl-C / SIGTERM stop it cleanly:
one line, exit 130 / 143, :mod:`.signals`) and ``verbose_logs=True`` (always log at INFO, as ``seis serve``).
Errors raised as :class:`CLIError`, ``ValueError``, ``FileNotFoundError`` or ``FileExistsError``, and the OS
refusals a user can act on (disk full, permission denied; :mod:`seiscore.io.os_errors`) become a one-line
reason on stderr and exit status 2. Output is quiet unless ``-v`` / ``--verbose`` (before or after the
command): see :mod:`seiscore.cli.output`. Helpers the commands share are in :mod:`seiscore.cli.common`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import nullcontext
from importlib.metadata import entry_points

# Modules of this package that contribute sub-commands, in help order (plug-in commands follow).
COMMAND_MODULES = [
    "datasets",
    "ingest",
    "export",
    "info",
    "train_ssb",
    "qc",
    "status",
    "lineage",
    "methods",
]
# Entry-point group of the plug-in commands: each entry point loads a ``register(subparsers)`` function.
COMMANDS_GROUP = "seiscore.commands"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def check_roots(path, what: str, catalog=None):
    """Refuse ``path`` outside the data roots: ``SEIS_DATA_ROOTS`` (+ the ``catalog``'s ``data/`` when given);
    no root rule when none applies (a path named on the command line). Returns the resolved path."""
    from seiscore.core.safety import check_write_target, data_roots
    from seiscore.core.settings import get_settings

    roots = data_roots(catalog, get_settings())
    return check_write_target(path, what=what, roots=roots or None, replace=False)


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Register the ``seiscore.commands`` entry points after the library's commands (see the module docstring)."""
    seen: set[str] = set()
    for ep in entry_points(group=COMMANDS_GROUP):
        if ep.name in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(ep.name)
        before = dict(sub.choices)
        try:
            ep.load()(sub)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is reported, not fatal to the CLI
            for name in set(sub.choices) - set(before):  # drop what it half-registered
                del sub.choices[name]
            sub._choices_actions[:] = [a for a in sub._choices_actions if a.dest in before]
            print(
                f"seis: plug-in command {ep.name!r} ({ep.value}) not loaded: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


def build_parser() -> argparse.ArgumentParser:
    """The ``seis`` parser: the library's commands, then the plug-in ones, each also taking ``-v`` after it."""
    parser = argparse.ArgumentParser(prog="seis", description="Seismic survey processing pipeline.")
    verbose = "also show Prefect's and Dask's INFO log lines (default: the product's lines and warnings only)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    _add_plugin_commands(sub)
    for command in sub.choices.values():  # -v after the command too (seis run S -v), unless it has its own
        if not {"-v", "--verbose"} & set(command._option_string_actions):
            command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``seis`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from seiscore.cli.output import configure_logging

    from .signals import clean_stops

    configure_logging(args.verbose or getattr(args, "verbose_logs", False))  # before Prefect or Dask is imported
    stoppable = getattr(args, "stoppable", False)
    try:
        with clean_stops(args.command) if stoppable else nullcontext():
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
