"""``seis run`` / ``seis reprocess``: the processing flows from the command line.

Both execute the Prefect flows in this process (a temporary Prefect server is started when none is
configured via ``PREFECT_API_URL``) on a local Dask cluster, or on ``--scheduler`` / ``SEIS_DASK_ADDRESS``.
A pre-flight runs first: a configuration error or an unsafe path is refused before a server or cluster starts.
"""

from __future__ import annotations

import argparse

from seiscore.cli.common import (
    add_method_option,
    add_progress_flag,
    catalog_path,
    parse_params,
    preflight_all,
    print_result,
)


def register(sub) -> None:
    """Add ``seis run`` and ``seis reprocess`` (stoppable: Ctrl-C / SIGTERM stop them cleanly)."""
    p = sub.add_parser("run", help="process one catalog survey end to end (Prefect flow on Dask)")
    p.add_argument("survey", help="survey name in the catalog")
    add_method_option(p)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method parameter override (JSON value), e.g. --param tau=0.3; repeatable",
    )
    p.add_argument(
        "--scheduler", help="address of an existing Dask scheduler (default SEIS_DASK_ADDRESS or a local cluster)"
    )
    p.add_argument("--export-segy", action="store_true", help="also export the denoised survey as SEG-Y")
    p.add_argument("--force", action="store_true", help="reprocess even if the output is up to date")
    p.add_argument("--catalog", help="catalog file (default SEIS_CATALOG or data_catalog.yaml)")
    p.add_argument(
        "--check",
        action="store_true",
        help="only pre-flight: validate the entry, parameters, model, paths and memory, print the plan",
    )
    add_progress_flag(p)
    p.set_defaults(func=_run, stoppable=True)

    r = sub.add_parser("reprocess", help="reprocess catalog surveys, skipping those up to date")
    r.add_argument("surveys", nargs="*", help="survey names (default: all)")
    r.add_argument("--force", action="store_true", help="reprocess even surveys whose output is up to date")
    r.add_argument("--scheduler", help="address of an existing Dask scheduler")
    r.add_argument("--catalog", help="catalog file")
    add_progress_flag(r)
    r.set_defaults(func=_reprocess, stoppable=True)


def _run(args: argparse.Namespace) -> int:
    from seiscore.core.settings import get_settings
    from seiscore.execution.preflight import preflight

    params = parse_params(args.param) or None
    plan = preflight(
        args.survey,
        catalog=catalog_path(args),
        denoiser=args.method,
        params=params,
        export_segy=args.export_segy,
        force=args.force,
        settings=get_settings(dask_address=args.scheduler),
    )
    if args.check:
        print("\n".join(plan.summary()))
        return 0
    from flows.process_survey import run_process_survey
    from seiscore.cli import CLIError
    from seiscore.cli.output import tile_progress
    from seiscore.execution.blockwise.state import SurveyLocked

    method = {"method": args.method} if args.method else {}  # none given: the catalog's
    try:
        with tile_progress(args.progress):
            result = run_process_survey(
                args.survey,
                scheduler=args.scheduler,
                params=params,
                export_segy=args.export_segy,
                catalog=catalog_path(args),
                force=args.force,
                **method,
            )
    except (SurveyLocked, RuntimeError) as exc:  # lock held, or tiles that kept failing: one line
        raise CLIError(str(exc)) from exc
    print_result(result)
    return 0


def _reprocess(args: argparse.Namespace) -> int:
    import os

    if args.scheduler:  # read by the process-survey sub-flows' task runner
        os.environ["SEIS_DASK_ADDRESS"] = args.scheduler
    preflight_all(args.surveys, catalog_path(args), args.force)
    from flows.reprocess_archive import reprocess_archive
    from seiscore.cli.output import tile_progress

    with tile_progress(args.progress):
        results = reprocess_archive(selection=args.surveys or None, force=args.force, catalog=catalog_path(args))
    for res in results.values():
        print_result(res)
    return 0
