"""``seis qc STORE [--against ORIGINAL] [--output PATH]``: write the QC report of a survey store."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    """Add ``seis qc``."""
    p = subparsers.add_parser(
        "qc",
        help="write a self-contained HTML quality-control report of a survey store",
        description="Write a self-contained HTML QC report (images, spectra, BRISQUE/PIQE per time slice, "
        "signal leakage, lineage) of a denoised survey store; with --against, compare with the original.",
    )
    p.add_argument("store", type=Path, help="survey store (Zarr) to report on, normally a denoised output")
    p.add_argument(
        "--against", type=Path, default=None, metavar="ORIGINAL", help="original (input) survey store to compare with"
    )
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        default=None,
        metavar="PATH",
        help="report path (default: STORE name + '_qc.html' beside the store)",
    )
    p.add_argument(
        "--max-slices",
        type=int,
        default=64,
        metavar="N",
        help="time slices scored, evenly spaced (0 = all; default 64)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing report")
    p.set_defaults(func=run)


def default_output(store: Path) -> Path:
    """``NAME.zarr`` -> ``NAME_qc.html`` beside it."""
    store = Path(store)
    return store.with_name(store.name.removesuffix(".zarr") + "_qc.html")


def run(args: argparse.Namespace) -> int:
    """Write the QC report of the store and print its path."""
    from seiscore.cli import check_roots
    from seiscore.core.safety import check_write_target, mark_owned
    from seiscore.qc import write_qc_report

    out = check_roots(args.output or default_output(args.store), "QC report")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite or --output to choose another path")
    out = check_write_target(
        out,
        what="QC report",
        roots=None,  # --force replaces only a report seiscore wrote
        protected=[("store", args.store), ("original store", args.against)],
    )
    if args.max_slices < 0:
        raise ValueError(f"--max-slices must be >= 0, got {args.max_slices}")
    path = mark_owned(
        write_qc_report(args.store, out, against=args.against, max_slices=args.max_slices or None, progress=True)
    )
    print(Path(path).resolve())
    return 0
