"""``seis traces make-data|ingest|denoise|train|info``: three-component trace records from the command line.

ONE ``seis traces`` command, registered here (entry point ``traces`` of ``seiscore.commands``): ``denoise`` and
``train`` run the Prefect flows ``denoise-traces`` and ``train-cdiffsd`` in this process (a temporary Prefect
server when ``PREFECT_API_URL`` is not set) on a local Dask cluster or ``--scheduler``; ``make-data``, ``ingest``
and ``info`` are library code. Each flow command pre-flights first: a bad source, model, path or parameter is
one line and exit 2 before a server or cluster starts.
"""

from __future__ import annotations

import argparse
import json

from seiscore.cli.common import add_progress_flag, parse_params


def _param_option(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"spec field or method parameter override (JSON value), e.g. --param {example}; repeatable",
    )


def register(sub) -> None:
    """Add ``seis traces`` with its sub-commands."""
    p = sub.add_parser("traces", help="three-component trace records: make-data, ingest, denoise, train, info")
    tsub = p.add_subparsers(dest="traces_command", metavar="SUBCOMMAND")
    tsub.required = True

    m = tsub.add_parser(
        "make-data",
        help="write synthetic 3-C station records (SAC with picks, or MiniSEED; clean versions too) into a folder",
        description="Seeded synthetic earthquakes (P, S, coda) in realistic noise (real ObsPy noise windows, "
        "coloured, impulsive, cultural), mixed by the paper's rule: per station record three SAC files (P/S picks "
        "in the headers a/t0) or one MiniSEED file in FOLDER, the clean records in FOLDER/clean, the P/S picks "
        "in FOLDER/picks.csv.",
    )
    m.add_argument("folder", help="folder to write (inside the data roots)")
    m.add_argument("--records", type=int, default=4, help="station records (default 4)")
    m.add_argument("--seconds", type=float, default=90.0, help="length of each record in seconds (default 90)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument(
        "--format", choices=("sac", "mseed"), default="sac", help="sac (picks in the headers, default) or mseed"
    )
    m.set_defaults(func=_make_data)

    i = tsub.add_parser(
        "ingest",
        help="cut records (ObsPy formats, STEAD HDF5 + CSV) into a trace store of windows",
        description="Read the records (resampled to --rate, gaps merged, components matched), cut them into "
        "windows of --length samples every --hop and write the trace store (skipped when it holds the same source).",
    )
    i.add_argument("source", help="files/globs (comma-separated), a STEAD .hdf5 (CSV beside it), or a catalog entry")
    i.add_argument("--store", help="trace store to write (default: SOURCE_windows.zarr beside the source)")
    i.add_argument("--length", type=int, default=3000, help="window length in samples (default 3000)")
    i.add_argument("--hop", type=int, default=1500, help="hop between windows in samples (default 1500)")
    i.add_argument("--rate", type=float, default=100.0, help="sampling rate to resample to, Hz (default 100)")
    i.add_argument("--catalog", help="catalog file (default SEIS_CATALOG or data_catalog.yaml)")
    i.set_defaults(func=_ingest)

    d = tsub.add_parser(
        "denoise",
        help="denoise records with CDiffSD (Prefect flow on Dask: batches, resume, MiniSEED, QC, lineage)",
        description="Ingest the source into windows, denoise them in batches on Dask workers (resumable), "
        "merge them back into records with the cosine cross-fade, export MiniSEED, write the QC report and "
        "the lineage. Rerun to resume; a rerun with nothing changed does nothing.",
    )
    d.add_argument("source", help="catalog entry of kind traces3c, files/globs, STEAD .hdf5, or a trace store")
    d.add_argument("--out", help="output trace store (default: the entry's output or SOURCE_denoised.zarr)")
    d.add_argument("--model", help="CDiffSD model artifact folder (from seis traces train)")
    d.add_argument("--mode", choices=("direct", "sampling"), help="direct (one pass, CPU) or sampling (GPU)")
    _param_option(d, "batch_size=64")
    d.add_argument("--mseed", help="MiniSEED export (default: beside the output store)")
    d.add_argument("--no-mseed", action="store_true", help="skip the MiniSEED export")
    d.add_argument("--length", type=int, default=3000, help="window length in samples (default 3000)")
    d.add_argument("--hop", type=int, default=1500, help="hop between windows in samples (default 1500)")
    d.add_argument("--catalog", help="catalog file (default SEIS_CATALOG or data_catalog.yaml)")
    d.add_argument("--force", action="store_true", help="recompute even when the output is up to date")
    d.add_argument("--scheduler", help="address of an existing Dask scheduler (default SEIS_DASK_ADDRESS or local)")
    add_progress_flag(d, what="batches")
    d.set_defaults(func=_denoise, stoppable=True)

    t = tsub.add_parser(
        "train",
        help="train CDiffSD into a run folder (Prefect flow; GPU worker, CPU only with allow_cpu=true; resumable)",
        description="Train the CDiffSD denoiser through the fit run mode (method cdiffsd-train): checkpoints, "
        "events, a model artifact with its card. Rerun on the same folder to resume.",
    )
    t.add_argument("--out", required=True, metavar="FOLDER", help="run folder (rerun on it to resume)")
    _param_option(t, "epochs=2 --param allow_cpu=true")
    t.add_argument("--seed", type=int, default=0, help="seed of the run's random numbers (default 0)")
    t.add_argument("--scheduler", help="address of an existing Dask scheduler (default SEIS_DASK_ADDRESS or local)")
    add_progress_flag(t, what="steps (or epochs)")
    t.set_defaults(func=_train, stoppable=True)

    n = tsub.add_parser("info", help="a trace store's records, windows, rate and picks (or a denoised run's lineage)")
    n.add_argument("store", help="trace store (window store or denoised output)")
    n.add_argument("--json", action="store_true", help="print as JSON")
    n.set_defaults(func=_info)
    for command in tsub.choices.values():  # -v after the sub-command too
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="INFO logs")


def _make_data(args: argparse.Namespace) -> int:
    from seiscore.cli import check_roots
    from seiscore.cli.output import shown
    from seiscore.execution.traces import make_demo_data

    folder = check_roots(args.folder, "data folder")
    written = make_demo_data(folder, n_records=args.records, seconds=args.seconds, seed=args.seed, format=args.format)
    print(f"wrote {args.records} records of {args.seconds:g} s ({args.format}) into {shown(folder)}")
    print(f"  clean records : {shown(written['clean'])}")
    print(f"  picks         : {shown(written['picks'])}")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from seiscore.cli.common import catalog_path
    from seiscore.cli.output import shown
    from seiscore.execution.traces import ingest_source, plan_denoise

    plan = plan_denoise(
        args.source,
        store=args.store,
        length=args.length,
        hop=args.hop,
        sampling_rate=args.rate,
        export_mseed=False,
        catalog=catalog_path(args),
        method_check=False,
    )
    r = ingest_source(plan)
    print(f"{plan.name}: {r['records']} records in {r['windows']} windows -> {shown(r['store'])}")
    if not r["ingested"]:
        print("  (the store already held this source: nothing rewritten)")
    for note in r.get("notes", []):
        print(f"  note: {note}")
    return 0


def _denoise(args: argparse.Namespace) -> int:
    from seiscore.cli.common import catalog_path
    from seiscore.core.settings import get_settings
    from seiscore.execution.traces import plan_denoise

    params = parse_params(args.param) or {}
    settings = get_settings(dask_address=args.scheduler)
    catalog = catalog_path(args)
    overrides = {
        **params,
        **({"model": args.model} if args.model else {}),
        **({"mode": args.mode} if args.mode else {}),
    }
    plan = plan_denoise(
        args.source,
        output=args.out,
        mseed=args.mseed,
        params=overrides or None,
        length=args.length,
        hop=args.hop,
        export_mseed=not args.no_mseed,
        catalog=catalog,
        settings=settings,
    )
    from flows._runtime import make_task_runner
    from flows.denoise_traces import denoise_traces
    from seiscore.cli import CLIError
    from seiscore.cli.output import shown, tile_progress

    flow = denoise_traces.with_options(task_runner=make_task_runner(settings))
    try:
        with tile_progress(args.progress, kinds=("batches",)):
            r = flow(
                args.source,
                output=plan.output,
                mseed=plan.mseed,
                params=overrides or None,
                export_mseed=not args.no_mseed,
                length=args.length,
                hop=args.hop,
                catalog=catalog,
                force=args.force,
            )
    except RuntimeError as exc:  # no GPU worker, batches that kept failing: one line
        raise CLIError(str(exc)) from exc
    state = "up to date (nothing recomputed)" if r["skipped"] else "denoised"
    print(f"{r['name']}: {state}")
    print(f"  output     : {shown(r['output'])}")
    if r.get("mseed"):
        print(f"  MiniSEED   : {shown(r['mseed'])}")
    if r.get("qc_report"):
        print(f"  QC report  : {shown(r['qc_report'])}")
    batches = r.get("batches") or {}
    if batches:
        print(f"  batches    : {batches['batches_done']} processed of {batches['batches_total']}")
    metrics = r.get("metrics") or {}
    for key in ("records", "removed_pct", "snr_win_before", "snr_win_after"):
        if metrics.get(key) is not None:
            print(f"  {key:<10} : {metrics[key]}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from seiscore.core.settings import get_settings
    from seiscore.execution.fit import fit_preflight

    params = parse_params(args.param) or None
    settings = get_settings(dask_address=args.scheduler)
    _, folder = fit_preflight("cdiffsd-train", args.out, params, seed=args.seed, settings=settings)
    from flows._runtime import make_task_runner
    from flows.train_cdiffsd import train_cdiffsd
    from seiscore.cli import CLIError
    from seiscore.cli.output import shown, tile_progress

    flow = train_cdiffsd.with_options(task_runner=make_task_runner(settings))
    try:
        with tile_progress(args.progress, kinds=("steps", "epochs")):
            r = flow(str(folder), params=params, seed=args.seed)
    except RuntimeError as exc:
        raise CLIError(str(exc)) from exc
    print(f"{r['method']}: done")
    print(f"  run folder : {shown(r['folder'])}")
    for key, value in (r.get("summary") or {}).items():
        print(f"  {key:<10} : {value}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from seiscore.execution.traces import store_info

    info = store_info(args.store)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    state = "complete" if info["complete"] else "INCOMPLETE"
    print(f"{info['path']}: {info['n_records']} records, {info['windows']} windows ({state})")
    print(f"  windows       : {info['window_length']} samples every {info['hop']} at {info['sampling_rate']:g} Hz")
    for r in info["records"][:20]:
        picks = ", ".join(f"{k} {v:.0f}" for k, v in (("P", r["p_sample"]), ("S", r["s_sample"])) if v is not None)
        print(f"  {r['id']:<18} {r['duration_s']:>8.1f} s  {r['start']}  {r['windows']} windows  {picks}")
    if len(info["records"]) > 20:
        print(f"  ... and {len(info['records']) - 20} more")
    lin = info.get("lineage")
    if lin:
        print(f"  lineage       : {lin.get('status')}, run {lin.get('run_id')}, method {lin['denoiser'].get('name')}")
    return 0
