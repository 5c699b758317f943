"""``seis info PATH``: geometry, sample format, sizes and a header summary of a SEG-Y file or store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def location_arg(text: str) -> Path | str:
    """A local path as a Path; an fsspec URL (``s3://...``) kept as text (a Path would collapse its ``//``)."""
    from seiscore.io.location import is_remote

    return text if is_remote(text) else Path(text)


def register(subparsers) -> None:
    """Add ``seis info``."""
    p = subparsers.add_parser(
        "info",
        help="describe a SEG-Y file or a survey store",
        description="Print geometry, sample format, sizes and a trace-header summary of a "
        "SEG-Y file or a Zarr survey store.",
    )
    p.add_argument("path", type=location_arg, help="SEG-Y file (local or an fsspec URL such as s3://...) or Zarr store")
    p.add_argument("--il-byte", type=int, default=189, help="inline byte position for SEG-Y (default 189)")
    p.add_argument("--xl-byte", type=int, default=193, help="crossline byte position for SEG-Y (default 193)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the description of the SEG-Y file or store (``--json``: as JSON)."""
    from seiscore.io.info import describe, format_summary

    info = describe(args.path, args.il_byte, args.xl_byte)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0
