"""``seis ingest SOURCE STORE`` / ``seis ingest --survey NAME``: SEG-Y -> survey store (Zarr).

The store must lie under a data root (``SEIS_DATA_ROOTS``; with ``--survey`` also the catalog's ``data/``);
without ``SEIS_DATA_ROOTS`` a store named on the command line may go anywhere, but never replaces a path the
product did not write (:mod:`seiscore.core.safety`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from seiscore.cli import CLIError, check_roots


def _chunks(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"chunks must be three comma-separated ints like 64,64,64, got {text!r}")
    return parts


def register(subparsers) -> None:
    """Add ``seis ingest``."""
    p = subparsers.add_parser(
        "ingest",
        help="convert a post-stack SEG-Y file to a chunked Zarr survey store",
        description="Convert a post-stack SEG-Y file into a Zarr v3 survey store, streaming "
        "under a memory bound. Give SOURCE and STORE, or --survey NAME from the catalog.",
    )
    p.add_argument("source", nargs="?", type=_location, help="SEG-Y file (a path or an fsspec URL, e.g. s3://...)")
    p.add_argument("store", nargs="?", type=_location, help="Zarr store to create (a path or an fsspec URL)")
    p.add_argument("--survey", metavar="NAME", help="take source, store and byte positions from the catalog")
    p.add_argument(
        "--catalog", type=Path, default=Path("data_catalog.yaml"), help="catalog file (default data_catalog.yaml)"
    )
    p.add_argument("--il-byte", type=int, default=None, help="inline number byte position (default 189)")
    p.add_argument("--xl-byte", type=int, default=None, help="crossline number byte position (default 193)")
    p.add_argument(
        "--chunks", type=_chunks, default=None, help="chunk shape inline,crossline,sample (default 64,64,64)"
    )
    p.add_argument("--memory-limit", default="1GB", help="peak working memory bound (default 1GB)")
    p.add_argument(
        "--compression",
        choices=("zstd", "lz4", "none"),
        default="lz4",
        help="Blosc codec (default lz4 with bit shuffle: fastest and smallest measured, see docs/store.md)",
    )
    p.add_argument("--sample-unit", choices=("ms", "m"), default=None, help="unit of the sample axis (default ms)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing complete store")
    p.set_defaults(func=run)


def _location(text: str):
    """A command-line path or fsspec URL (imported lazily: ``seis --help`` stays fast)."""
    from seiscore.io.location import normalize

    return normalize(text)


def run(args: argparse.Namespace) -> int:
    """Ingest SOURCE into STORE (or the catalog survey's source into its store) and print the store."""
    from seiscore.io import ingest

    kwargs = {}
    if args.survey:
        if args.source or args.store:
            raise CLIError("give either SOURCE STORE or --survey NAME, not both")
        from seiscore.data.catalog import load_catalog

        entry = load_catalog(args.catalog).get(args.survey)
        source, store = entry.source_path, _location(entry.store)  # a Path, or a URL on object storage
        kwargs.update(il_byte=entry.il_byte, xl_byte=entry.xl_byte, sample_unit=entry.sample_unit, chunks=entry.chunks)
    elif args.source and args.store:
        source, store = args.source, args.store
    else:
        raise CLIError("need SOURCE and STORE, or --survey NAME")
    check_roots(store, "store", catalog=args.catalog if args.survey else None)
    for key in ("il_byte", "xl_byte", "sample_unit", "chunks"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    path = ingest(
        source,
        store,
        memory_limit=args.memory_limit,
        progress=True,
        overwrite=args.overwrite,
        compression=args.compression,
        **kwargs,
    )
    print(path)
    return 0
