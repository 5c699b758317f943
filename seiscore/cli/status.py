"""``seis status SURVEY``: published version, run in progress or interrupted, metrics, lineage (no Prefect)."""

from __future__ import annotations

import argparse
import json

from seiscore.cli.common import catalog_path


def register(sub) -> None:
    """Add ``seis status``."""
    s = sub.add_parser("status", help="published version, run in progress or interrupted, metrics, lineage")
    s.add_argument("survey", help="survey name in the catalog")
    s.add_argument("--catalog", help="catalog file")
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    from seiscore.execution.status import survey_status

    st = survey_status(args.survey, catalog_path(args))
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
