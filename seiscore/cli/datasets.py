"""``seis make-data synthetic|penobscot [DEST]``: write the demo surveys as SEG-Y (catalog paths by default)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    """Add ``seis make-data``."""
    p = subparsers.add_parser(
        "make-data",
        help="write the synthetic or Penobscot demo survey as SEG-Y",
        description="Write a demo survey as SEG-Y: 'synthetic' (noisy cube + clean reference, "
        "from seiscore.data.synth) or 'penobscot' (the shared 250x150x40 cube). Paths default to "
        "the catalog entry's source (and reference).",
    )
    p.add_argument("dataset", choices=("synthetic", "penobscot"))
    p.add_argument("dest", nargs="?", type=Path, help="SEG-Y path (default: the catalog's source)")
    p.add_argument("--reference", type=Path, default=None, help="clean reference path (synthetic; default: catalog's)")
    p.add_argument("--survey", default=None, help="catalog entry (default synthetic_demo / penobscot)")
    p.add_argument("--catalog", type=Path, default=Path("data_catalog.yaml"))
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the chosen demo survey (and its clean reference) as SEG-Y."""
    from seiscore.data import datasets

    dest, ref = args.dest, args.reference
    if dest is None or (args.dataset == "synthetic" and ref is None):
        from seiscore.data.catalog import load_catalog

        entry = load_catalog(args.catalog).get(
            args.survey or {"synthetic": "synthetic_demo"}.get(args.dataset, args.dataset)
        )
        dest = dest or entry.source_path
        ref = ref or (Path(entry.reference) if entry.reference else None)
    if args.dataset == "synthetic":
        for path in datasets.write_synthetic(dest, ref, overwrite=args.overwrite):
            if path:
                print(path)
    else:
        print(datasets.write_penobscot(dest, overwrite=args.overwrite))
    return 0
