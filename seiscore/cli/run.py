"""``seis run`` / ``seis reprocess`` / ``seis status``: the processing flows from the command line.

``run`` and ``reprocess`` execute the Prefect flows in this process (a temporary Prefect
server is started when none is configured via ``PREFECT_API_URL``) on a local Dask cluster,
or on ``--scheduler`` / ``SEIS_DASK_ADDRESS``. ``status`` only reads the output store.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("run", help="denoise one catalog survey end to end (Prefect flow on Dask)")
    p.add_argument("survey", help="survey name in the catalog")
    p.add_argument("--denoiser", choices=["tlsm", "ssb"], help="override the catalog's denoiser")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="denoiser parameter override (JSON value), e.g. --param tau=0.3; repeatable")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (default SEIS_DASK_ADDRESS or a local cluster)")
    p.add_argument("--export-segy", action="store_true", help="also export the denoised survey as SEG-Y")
    p.add_argument("--force", action="store_true", help="reprocess even if the output is up to date")
    p.add_argument("--catalog", help="catalog file (default SEIS_CATALOG or data_catalog.yaml)")
    add_progress_flag(p)
    p.set_defaults(func=_run)

    r = sub.add_parser("reprocess", help="reprocess catalog surveys, skipping those up to date")
    r.add_argument("surveys", nargs="*", help="survey names (default: all)")
    r.add_argument("--force", action="store_true", help="reprocess even surveys whose output is up to date")
    r.add_argument("--scheduler", help="address of an existing Dask scheduler")
    r.add_argument("--catalog", help="catalog file")
    add_progress_flag(r)
    r.set_defaults(func=_reprocess)

    s = sub.add_parser("status", help="tiles done, last run, metrics and lineage of a survey's output")
    s.add_argument("survey", help="survey name in the catalog")
    s.add_argument("--catalog", help="catalog file")
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.set_defaults(func=_status)


def add_progress_flag(p) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="tiles done / total with ETA on stderr (default: when stderr is a terminal)")


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
    from seiscore.settings import get_settings

    return args.catalog or str(get_settings().catalog)


def _run(args) -> int:
    from flows.process_survey import run_process_survey
    from seiscore.cli import CLIError
    from seiscore.cli.output import tile_progress
    from seiscore.tile_state import SurveyLocked

    try:
        with tile_progress(args.progress):
            result = run_process_survey(args.survey, scheduler=args.scheduler, denoiser=args.denoiser,
                                        params=parse_params(args.param) or None, export_segy=args.export_segy,
                                        catalog=_catalog(args), force=args.force)
    except (SurveyLocked, RuntimeError) as exc:  # lock held, or tiles that kept failing: one line
        raise CLIError(str(exc)) from exc
    _print_result(result)
    return 0


def _print_result(result: dict) -> None:
    from seiscore.cli.output import shown
    from seiscore.settings import get_settings

    state = "up to date (nothing recomputed)" if result.get("skipped") else f"done, {result.get('tiles_computed')} tiles computed"
    print(f"{result['survey']}: {state}")
    print(f"  output store : {shown(result['output'])}")
    if result.get("segy"):
        print(f"  SEG-Y        : {shown(result['segy'])}")
    print(f"  QC report    : {shown(result['qc_report']) if result.get('qc_report') else None}")
    metrics = {k: v for k, v in (result.get("metrics") or {}).items() if k != "qc_report" and not k.startswith("tiles_")
               and not isinstance(v, dict)}  # per-stage and per-task seconds: in the lineage / seis status --json
    print(f"  metrics      : {', '.join(f'{k}={v}' for k, v in metrics.items())}")
    s = get_settings()
    where = s.openlineage_url or shown(s.lineage_dir / "events.jsonl")
    print(f"  lineage      : attrs['lineage'] of the output store; OpenLineage events -> {where}")


def _reprocess(args) -> int:
    import os

    if args.scheduler:  # read by the process-survey sub-flows' task runner
        os.environ["SEIS_DASK_ADDRESS"] = args.scheduler
    from flows.reprocess_archive import reprocess_archive
    from seiscore.cli.output import tile_progress

    with tile_progress(args.progress):
        results = reprocess_archive(selection=args.surveys or None, force=args.force, catalog=_catalog(args))
    for res in results.values():
        _print_result(res)
    return 0


def survey_status(survey: str, catalog: str) -> dict:
    """Completeness, tiles done, last run and metrics of a survey's output store (no Prefect)."""
    from seiscore import io
    from seiscore.catalog import load_catalog
    from seiscore.lineage import read_lineage
    from seiscore.tile_state import TileState
    from seiscore.tiling import TilePlan

    entry = load_catalog(catalog).get(survey)
    out = Path(entry.output)
    status: dict = {"survey": survey, "output": str(out), "exists": out.exists(), "complete": io.is_complete(out)}
    if not out.exists():
        return status
    state = TileState(out)
    try:
        import zarr

        plan = TilePlan.model_validate_json(zarr.open_group(str(out), mode="r", use_consolidated=False)["tile_state"].attrs["plan"])
        status["tiles"] = {"done": len(state.done()), "total": plan.n_tiles, "grid": plan.grid}
    except (KeyError, FileNotFoundError):
        status["tiles"] = None
    rec = read_lineage(out)
    if rec is not None:
        status["last_run"] = {"run_id": rec.run_id, "status": rec.status, "started": rec.started, "ended": rec.ended,
                              "error": rec.error, "denoiser": rec.denoiser.get("name"), "preset": rec.denoiser.get("preset"),
                              "input": rec.input.uri, "input_hash": rec.input.content_hash, "code": rec.code,
                              "dask": {"scheduler": rec.dask_cluster.get("scheduler"), "workers": rec.dask_cluster.get("n_workers")}}
        status["metrics"] = rec.metrics
    return status


def _status(args) -> int:
    st = survey_status(args.survey, _catalog(args))
    if args.json:
        print(json.dumps(st, indent=2, default=str))
        return 0
    print(f"{st['survey']}: output {st['output']} ({'complete' if st['complete'] else 'exists, incomplete' if st['exists'] else 'missing'})")
    if st.get("tiles"):
        t = st["tiles"]
        print(f"  tiles     : {t['done']}/{t['total']} done (grid {t['grid']})")
    if st.get("last_run"):
        r = st["last_run"]
        print(f"  last run  : {r['status']} {r['started']} -> {r['ended']} (run {r['run_id']}, {r['denoiser']}/{r['preset']})")
        if r.get("error"):
            print(f"  error     : {r['error']}")
        print(f"  lineage   : input {r['input']} [{r['input_hash']}], code {r['code'].get('version')} {r['code'].get('git_commit') or ''}, "
              f"dask {r['dask']['scheduler']} x{r['dask']['workers']}")
    if st.get("metrics"):
        print("  metrics   : " + ", ".join(f"{k}={v}" for k, v in st["metrics"].items() if k != "qc_report"))
        print(f"  QC report : {st['metrics'].get('qc_report')}")
    return 0
