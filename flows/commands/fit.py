"""``seis fit METHOD --out FOLDER``: run (or resume) a ``fit``-mode method through the ``fit-method`` flow.

The flow runs in this process (a temporary Prefect server is started when none is configured via
``PREFECT_API_URL``) on a local Dask cluster chosen for the method's resources, or on ``--scheduler`` /
``SEIS_DASK_ADDRESS``. A pre-flight runs first (:func:`seiscore.execution.fit.fit_preflight`): an unknown
method, a method of another run mode, a bad parameter or an unsafe folder is one line and exit 2, before a
server or cluster starts. Rerunning on the same folder resumes.
"""

from __future__ import annotations

import argparse

from seiscore.cli.common import add_progress_flag, parse_params


def register(sub) -> None:
    """Add ``seis fit`` (stoppable: Ctrl-C / SIGTERM stop it cleanly; rerun to resume)."""
    p = sub.add_parser("fit", help="train or invert a fit-mode method into a run folder (resumable Prefect flow)")
    p.add_argument("method", help="a method of run mode fit (see `seis methods`)")
    p.add_argument("--out", required=True, metavar="FOLDER", help="run folder (rerun on it to resume)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="spec field or method parameter override (JSON value), e.g. --param epochs=10; repeatable",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the run's random numbers (default 0)")
    p.add_argument(
        "--scheduler", help="address of an existing Dask scheduler (default SEIS_DASK_ADDRESS or a local cluster)"
    )
    add_progress_flag(p, what="steps (or epochs)")
    p.set_defaults(func=_fit, stoppable=True)


def _fit(args: argparse.Namespace) -> int:
    from seiscore.core.settings import get_settings
    from seiscore.execution.fit import fit_preflight

    params = parse_params(args.param) or None
    settings = get_settings(dask_address=args.scheduler)
    _, folder = fit_preflight(args.method, args.out, params, seed=args.seed, settings=settings)

    from flows._runtime import make_task_runner
    from flows.fit_method import fit_method_flow
    from seiscore.cli import CLIError
    from seiscore.cli.output import shown, tile_progress

    flow = fit_method_flow.with_options(task_runner=make_task_runner(settings))
    try:
        with tile_progress(args.progress, kinds=("steps", "epochs")):
            result = flow(args.method, str(folder), params=params, seed=args.seed)
    except RuntimeError as exc:  # no GPU worker, a fit that kept failing: one line
        raise CLIError(str(exc)) from exc
    print(f"{result['method']}: done")
    print(f"  run folder : {shown(result['folder'])}")
    summary = result.get("summary") or {}
    for key, value in summary.items():
        print(f"  {key:<10} : {value}")
    return 0
