"""``seis velocity make-data|compress|decode|info``: velocity-model archives from the command line.

ONE ``seis velocity`` command, registered here (entry point ``velocity`` of ``seiscore.commands``): ``compress``
and ``decode`` run the Prefect flows ``compress-velocity-archive`` and ``decode-velocity`` in this process (a
temporary Prefect server when ``PREFECT_API_URL`` is not set) on a local Dask cluster or ``--scheduler``;
``make-data`` and ``info`` are library code (:mod:`seiscore.cli.velocity`). Each flow command pre-flights first:
a bad collection, model, path or parameter is one line and exit 2 before a server or cluster starts.
"""

from __future__ import annotations

import argparse

from seiscore.cli.common import add_progress_flag, parse_params


def register(sub) -> None:
    """Add ``seis velocity`` with its four sub-commands."""
    from seiscore.cli.velocity import add_library_commands

    p = sub.add_parser("velocity", help="velocity-model archives: make-data, compress, decode, info")
    vsub = p.add_subparsers(dest="velocity_command", metavar="SUBCOMMAND")
    vsub.required = True
    add_library_commands(vsub)

    c = vsub.add_parser(
        "compress",
        help="compress a velocity collection into a SIREN archive (Prefect flow on Dask, resumable)",
        description="Fit (or reuse) a SIREN decoder, encode every model on Dask workers, choose per model the "
        "smallest codec meeting --max-error, write the archive with QC and lineage. Rerun to resume.",
    )
    c.add_argument("collection", help="catalog entry of kind velocity2d, velocity store or OpenFWI .npy file")
    c.add_argument("--archive", help="archive to write (default: the entry's output or COLLECTION_archive.zarr)")
    c.add_argument("--decoder", help="decoder artifact folder to reuse (default: fit one on the collection)")
    c.add_argument("--max-error", type=float, default=10.0, metavar="M/S", help="per-model max |error| (default 10)")
    c.add_argument("--latent-only", action="store_true", help="latents only, no codec choice (no error bound)")
    c.add_argument("--latent-dtype", choices=("float32", "float16"), default="float32")
    c.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="siren parameter (JSON value), e.g. --param epochs=200 --param allow_cpu=true; repeatable",
    )
    c.add_argument("--batch", type=int, default=32, help="models per encoding task (default 32)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--catalog", help="catalog file (default SEIS_CATALOG or data_catalog.yaml)")
    c.add_argument("--no-qc", action="store_true", help="skip the QC report")
    c.add_argument("--scheduler", help="address of an existing Dask scheduler (default SEIS_DASK_ADDRESS or local)")
    add_progress_flag(c, what="fit steps, then batches")
    c.set_defaults(func=_compress, stoppable=True)

    d = vsub.add_parser(
        "decode",
        help="decode archive models at any resolution to zarr / npy / segy (Prefect flow on Dask)",
        description="Decode models of an archive on the native grid, a given --shape or a --factor (super-"
        "resolution over the same extent). Formats: zarr (velocity store), npy ((model, z, x) float32), segy "
        "(ONE file: inline = model, crossline = x, samples = depth, interval = depth spacing in mm).",
    )
    d.add_argument("archive")
    d.add_argument("output", help="file or store to write (format from the suffix unless --format)")
    d.add_argument("--models", help="comma-separated model names (default: all)")
    d.add_argument("--shape", type=int, nargs=2, metavar=("NZ", "NX"))
    d.add_argument("--factor", type=float, help="resolution factor (e.g. 2, 4)")
    d.add_argument("--format", choices=("zarr", "npy", "segy"))
    d.add_argument("--batch", type=int, default=64, help="models per decoding task (default 64)")
    d.add_argument("--scheduler", help="address of an existing Dask scheduler")
    add_progress_flag(d, what="batches")
    d.set_defaults(func=_decode, stoppable=True)
    for command in vsub.choices.values():  # -v after the sub-command too (seis velocity compress X -v)
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="INFO logs")


def _compress(args: argparse.Namespace) -> int:
    from seiscore.cli.common import catalog_path
    from seiscore.core.settings import get_settings
    from seiscore.execution.velocity import plan_compress

    params = parse_params(args.param) or None
    settings = get_settings(dask_address=args.scheduler)
    max_error = None if args.latent_only else args.max_error
    catalog = catalog_path(args)
    plan = plan_compress(
        args.collection,
        args.archive,
        args.decoder,
        max_error=max_error,
        latent_dtype=args.latent_dtype,
        params=params,
        batch=args.batch,
        seed=args.seed,
        catalog=catalog,
        settings=settings,
    )
    from flows._runtime import make_task_runner
    from flows.compress_velocity import compress_velocity_archive
    from seiscore.cli import CLIError
    from seiscore.cli.output import shown, tile_progress

    flow = compress_velocity_archive.with_options(task_runner=make_task_runner(settings))
    try:
        with tile_progress(args.progress, kinds=("steps", "batches")):
            r = flow(
                args.collection,
                plan.archive,
                args.decoder,
                max_error=max_error,
                latent_dtype=args.latent_dtype,
                params=params,
                batch=args.batch,
                seed=args.seed,
                catalog=catalog,
                qc=not args.no_qc,
            )
    except RuntimeError as exc:  # no GPU worker, tasks that kept failing: one line
        raise CLIError(str(exc)) from exc
    print(f"{r['collection']}: archive written, {r['models']} models")
    print(f"  archive        : {shown(r['archive'])}")
    print(f"  decoder        : {shown(r['decoder'])} ({'fitted' if r['fitted'] else 'reused'})")
    print(f"  batches        : {r['batches_encoded']} encoded, {r['batches_skipped']} already done")
    print(f"  bytes / model  : {r['mean_bytes_per_model']} (raw {r['raw_bytes_per_model']})")
    print(f"  ratios         : {r['ratio_per_model']}:1 per model, {r['ratio_amortised']}:1 with the decoder")
    print(f"  codec mix      : {', '.join(f'{k} {v}' for k, v in r['codec_mix'].items())}")
    if r.get("qc_report"):
        print(f"  QC report      : {shown(r['qc_report'])}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from seiscore.execution.velocity import plan_decode

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    plan_decode(args.archive, args.output, models=models, shape=args.shape, factor=args.factor, format=args.format)
    from flows._runtime import make_task_runner
    from flows.decode_velocity import decode_velocity
    from seiscore.cli import CLIError
    from seiscore.cli.output import shown, tile_progress
    from seiscore.core.settings import get_settings

    flow = decode_velocity.with_options(task_runner=make_task_runner(get_settings(dask_address=args.scheduler)))
    try:
        with tile_progress(args.progress, kinds=("batches",)):
            r = flow(
                args.archive,
                args.output,
                models=models,
                shape=list(args.shape) if args.shape else None,
                factor=args.factor,
                format=args.format,
                batch=args.batch,
            )
    except RuntimeError as exc:
        raise CLIError(str(exc)) from exc
    print(f"decoded {r['models']} models at {r['shape'][0]} x {r['shape'][1]} -> {shown(r['output'])} ({r['format']})")
    return 0
