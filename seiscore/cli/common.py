"""Helpers shared by the ``seis`` commands, the library's and the plug-in ones (``flows.commands``).

- :func:`add_progress_flag` / :func:`parse_params`: the ``--progress`` and ``--param KEY=VALUE`` options;
- :func:`add_method_option`: ``--method NAME`` (``--denoiser`` is its hidden, deprecated alias);
- :func:`catalog_path`: the catalog a command reads (``--catalog``, ``SEIS_CATALOG`` or ``data_catalog.yaml``);
- :func:`preflight_all`: the pre-flight of several surveys, one line naming each that fails;
- :func:`print_result`: what ``seis run`` / ``seis reprocess`` print for one survey.
"""

from __future__ import annotations

import argparse
import json


def add_progress_flag(p: argparse.ArgumentParser, what: str = "tiles") -> None:
    """Add ``--progress/--no-progress`` (``what`` done / total with ETA on stderr; default: stderr is a terminal)."""
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"{what} done / total with ETA on stderr (default: when stderr is a terminal)",
    )


def add_method_option(p: argparse.ArgumentParser) -> None:
    """Add ``--method NAME`` (default: the catalog entry's method) and its hidden deprecated alias ``--denoiser``.

    The name is checked against the method registry by the pre-flight that every run starts with (one line:
    ``unknown method 'X'; did you mean ...; available: ...``), not by argparse: building the parser loads no
    method module, so ``seis --help`` stays fast and a broken third-party method cannot break it."""
    p.add_argument(
        "--method",
        metavar="NAME",
        help="override the catalog's method: a name from `seis methods` (built in: tlsm, ssb)",
    )
    p.add_argument("--denoiser", dest="method", help=argparse.SUPPRESS)


def parse_params(items: list[str]) -> dict:
    """``["tau=0.3", "name=x"]`` -> ``{"tau": 0.3, "name": "x"}``: each value parsed as JSON, else kept as text."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def catalog_path(args: argparse.Namespace) -> str:
    """The catalog file of a command: ``--catalog``, else ``SEIS_CATALOG`` or ``data_catalog.yaml``."""
    from seiscore.core.settings import get_settings

    return getattr(args, "catalog", None) or str(get_settings().catalog)


def preflight_all(surveys: list[str], catalog: str, force: bool) -> None:
    """Pre-flight every selected survey (default: all); one line naming each that fails."""
    from seiscore.cli import CLIError
    from seiscore.data.catalog import load_catalog
    from seiscore.execution.preflight import preflight
    from seiscore.methods.registry import method_class

    cat = load_catalog(catalog)  # fit-mode entries (velocity2d collections) have their own flows: not reprocessed
    names = surveys or [n for n, e in cat.surveys.items() if method_class(e.method.name).mode != "fit"]
    failed = []
    for name in names:
        try:
            preflight(name, catalog=catalog, force=force)
        except (ValueError, FileNotFoundError, NotImplementedError) as exc:
            text = str(exc)
            failed.append(text if text.startswith(f"survey {name!r}") else f"survey {name!r}: {text}")
    if len(names) == 1 and failed:
        raise CLIError(failed[0])
    if failed:
        raise CLIError(
            f"{len(failed)} of {len(names)} surveys fail the pre-flight, nothing started: " + "; ".join(failed)
        )


def print_result(result: dict) -> None:
    """Print one survey's run result: state, output store, SEG-Y, QC report, headline metrics, lineage."""
    from seiscore.cli.output import shown
    from seiscore.core.settings import get_settings

    state = (
        "up to date (nothing recomputed)"
        if result.get("skipped")
        else f"done, {result.get('tiles_computed')} tiles computed"
    )
    print(f"{result['survey']}: {state}")
    print(f"  output store : {shown(result['output'])}")
    if result.get("segy"):
        print(f"  SEG-Y        : {shown(result['segy'])}")
    print(f"  QC report    : {shown(result['qc_report']) if result.get('qc_report') else None}")
    metrics = {
        k: v
        for k, v in (result.get("metrics") or {}).items()
        if k != "qc_report" and not k.startswith("tiles_") and not isinstance(v, dict)
    }  # per-stage and per-task seconds: in the lineage / seis status --json
    print(f"  metrics      : {', '.join(f'{k}={v}' for k, v in metrics.items())}")
    s = get_settings()
    where = s.openlineage_url or shown(s.lineage_dir / "events.jsonl")
    print(f"  lineage      : attrs['lineage'] of the output store; OpenLineage events -> {where}")
