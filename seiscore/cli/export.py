"""``seis export STORE DEST [--format ibm|ieee|original] [--overwrite]``: survey store -> SEG-Y.

DEST must lie under ``SEIS_DATA_ROOTS`` when it is set; ``--overwrite`` replaces only a file this product
exported (:mod:`seiscore.core.safety`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from seiscore.cli.info import location_arg


def register(subparsers) -> None:
    """Add ``seis export``."""
    p = subparsers.add_parser(
        "export",
        help="write a survey store back to SEG-Y with its original headers",
        description="Write a survey store as SEG-Y: original textual, binary and trace headers, "
        "original trace order, original sample format (or --format ieee|ibm).",
    )
    p.add_argument("store", type=Path, help="survey store (Zarr)")
    p.add_argument("dest", type=location_arg, help="SEG-Y file to write (local, or an fsspec URL: s3://...)")
    p.add_argument(
        "--format", choices=("original", "ieee", "ibm"), default="original", help="sample format (default original)"
    )
    p.add_argument("--memory-limit", default="1GB", help="peak working memory bound (default 1GB)")
    p.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the store to SEG-Y and print the file written."""
    from seiscore.cli import check_roots
    from seiscore.io import export

    check_roots(args.dest, "SEG-Y file")
    print(
        export(
            args.store,
            args.dest,
            format=args.format,
            overwrite=args.overwrite,
            memory_limit=args.memory_limit,
            progress=True,
        )
    )
    return 0
