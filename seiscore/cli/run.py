"""``seis run`` / ``seis reprocess`` / ``seis status``: the processing flows from the command line.

``run`` and ``reprocess`` execute the Prefect flows in this process (a temporary Prefect
server is started when none is configured via ``PREFECT_API_URL``) on a local Dask cluster,
or on ``--scheduler`` / ``SEIS_DASK_ADDRESS``. ``status`` only reads the output's versions and lock.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("run", help="denoise one catalog survey end to end (Prefect flow on Dask)")
    p.add_argument("survey", help="survey name in the catalog")
    p.add_argument("--denoiser", choices=["tlsm", "ssb"], help="override the catalog's denoiser")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="denoiser parameter override (JSON value), e.g. --param tau=0.3; repeatable",
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
    p.set_defaults(func=_run)

    r = sub.add_parser("reprocess", help="reprocess catalog surveys, skipping those up to date")
    r.add_argument("surveys", nargs="*", help="survey names (default: all)")
    r.add_argument("--force", action="store_true", help="reprocess even surveys whose output is up to date")
    r.add_argument("--scheduler", help="address of an existing Dask scheduler")
    r.add_argument("--catalog", help="catalog file")
    add_progress_flag(r)
    r.set_defaults(func=_reprocess)

    s = sub.add_parser("status", help="published version, run in progress or interrupted, metrics, lineage")
    s.add_argument("survey", help="survey name in the catalog")
    s.add_argument("--catalog", help="catalog file")
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.set_defaults(func=_status)


def add_progress_flag(p) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tiles done / total with ETA on stderr (default: when stderr is a terminal)",
    )


def parse_params(items: list[str]) -> dict:
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


def _catalog(args) -> str:
    from seiscore.core.settings import get_settings

    return args.catalog or str(get_settings().catalog)


def _run(args) -> int:
    from seiscore.core.settings import get_settings
    from seiscore.execution.preflight import preflight

    # Pre-flight first: a configuration error or an unsafe path is refused here, before any Prefect server or
    # cluster starts.
    params = parse_params(args.param) or None
    plan = preflight(
        args.survey,
        catalog=_catalog(args),
        denoiser=args.denoiser,
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

    try:
        with tile_progress(args.progress):
            result = run_process_survey(
                args.survey,
                scheduler=args.scheduler,
                denoiser=args.denoiser,
                params=params,
                export_segy=args.export_segy,
                catalog=_catalog(args),
                force=args.force,
            )
    except (SurveyLocked, RuntimeError) as exc:  # lock held, or tiles that kept failing: one line
        raise CLIError(str(exc)) from exc
    _print_result(result)
    return 0


def _print_result(result: dict) -> None:
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


def _reprocess(args) -> int:
    import os

    if args.scheduler:  # read by the process-survey sub-flows' task runner
        os.environ["SEIS_DASK_ADDRESS"] = args.scheduler
    preflight_all(args.surveys, _catalog(args), args.force)
    from flows.reprocess_archive import reprocess_archive
    from seiscore.cli.output import tile_progress

    with tile_progress(args.progress):
        results = reprocess_archive(selection=args.surveys or None, force=args.force, catalog=_catalog(args))
    for res in results.values():
        _print_result(res)
    return 0


def preflight_all(surveys: list[str], catalog: str, force: bool) -> None:
    """Pre-flight every selected survey (default: all); one line naming each that fails."""
    from seiscore.cli import CLIError
    from seiscore.data.catalog import load_catalog
    from seiscore.execution.preflight import preflight

    names = surveys or load_catalog(catalog).names()
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


def survey_status(survey: str, catalog: str) -> dict:
    """State (published / in-progress / interrupted / unknown-owner / missing), the published version and any
    staging version of a survey's output (no Prefect). ``complete``, ``tiles``, ``metrics`` describe the
    published version; ``last_run`` is the most recent run (the staging version's, else the published one's)."""
    from seiscore.data.catalog import load_catalog
    from seiscore.execution.versions import survey_state

    entry = load_catalog(catalog).get(survey)
    out = Path(entry.output)
    st = survey_state(out)
    pub, stg = st["published"], st["staging"]
    status: dict = {
        "survey": survey,
        "output": str(out),
        "state": st["state"],
        "exists": pub is not None,
        "complete": bool(pub and pub["complete"]),
        "tiles": pub and pub["tiles"],
        "published": pub,
        "staging": stg,
        "owner": st["owner"],
        "leftovers": st["leftovers"],
    }
    last = (stg and stg["run"]) or (pub and pub["run"])
    if last:
        status["last_run"] = {k: v for k, v in last.items() if k not in ("metrics", "params")}
    if pub and pub["run"]:
        status["metrics"] = pub["run"]["metrics"]
    return status


def _status(args) -> int:
    st = survey_status(args.survey, _catalog(args))
    if args.json:
        print(json.dumps(st, indent=2, default=str))
        return 0
    pub, stg = st["published"], st["staging"]
    print(f"{st['survey']}: {st['state']}")
    if pub is None:
        print(f"  published : none yet ({st['output']})")
    else:
        run = pub["run"] or {}
        what = "complete" if pub["complete"] else "INCOMPLETE (left by an older seiscore; the next run moves it aside)"
        print(f"  published : {pub['path']} ({what})")
        if run:
            print(
                f"              run {run['run_id']} {run['status']} {run['ended']} ({run['denoiser']}/{run['preset']})"
            )
            print(
                f"  lineage   : input {run['input']} [{run['input_hash']}], code {run['code'].get('version')} "
                f"{run['code'].get('git_commit') or ''}, dask {run['dask']['scheduler']} x{run['dask']['workers']}"
            )
        if st.get("metrics"):
            print("  metrics   : " + ", ".join(f"{k}={v}" for k, v in st["metrics"].items() if k != "qc_report"))
            print(f"  QC report : {st['metrics'].get('qc_report')}")
    if stg is not None:
        _print_staging(stg)
    if stg is not None or st["state"] in ("in-progress", "unknown-owner"):
        _print_owner(st)
    if st["leftovers"]:
        print(f"  leftovers : {', '.join(st['leftovers'])} (an interrupted publish; the next run repairs it)")
    return 0


def _print_staging(stg: dict) -> None:
    run, tiles = stg["run"] or {}, stg["tiles"]
    done = f"{tiles['done']}/{tiles['total']} tiles" if tiles else "no tiles yet"
    print(f"  staging   : {stg['path']} ({done}{', complete' if stg['complete'] else ''})")
    if run:
        print(
            f"              run {run['run_id']} {run['status']} since {run['started']} "
            f"({run['denoiser']}/{run['preset']}, params {run['params']})"
        )
        if run.get("error"):
            print(f"  error     : {' '.join(run['error'].split())[:400]}")


def _print_owner(st: dict) -> None:
    owner = st["owner"] or {}
    who = f"pid {owner.get('pid')} on {owner.get('host')} ({owner.get('owner')})" if owner else "no owner recorded"
    if st["state"] == "in-progress":
        print(f"  owner     : {who}, alive")
    elif st["state"] == "unknown-owner":
        print(f"  owner     : {who}: unknown owner (another host; cannot tell whether it is alive)")
    else:
        print(
            f"  owner     : {who + ', gone' if owner else who}; a rerun with the same parameters resumes it, "
            "any other run replaces it"
        )
