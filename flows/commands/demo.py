"""``seis demo``: the main job on embedded defaults.

By default it runs the product end to end on the catalog's synthetic survey: writes the survey
and its clean reference as SEG-Y if missing (``seis make-data synthetic``), then runs the
``process-survey`` Prefect flow in this process (a temporary Prefect server with SQLite, a local
Dask cluster): ingest to Zarr, tiles denoised with TLSM on the workers, quality metrics and QC
report, lineage, SEG-Y export. It prints PSNR / SSIM before and after, the time and where the
results are.

``--in-memory`` skips the pipeline: it generates the synthetic cube in memory, runs TLSM on the
whole cube and prints PSNR / SSIM before and after and the time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from seiscore.cli.common import add_progress_flag


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``seis demo`` (stoppable: Ctrl-C / SIGTERM stop it cleanly)."""
    p = sub.add_parser("demo", help="run the pipeline on the synthetic demo survey (or --in-memory: TLSM only)")
    p.add_argument(
        "--in-memory", action="store_true", help="no pipeline: synthetic cube in memory -> TLSM -> quality and time"
    )
    p.add_argument(
        "--survey", default="synthetic_demo", help="catalog survey for the pipeline demo (default synthetic_demo)"
    )
    p.add_argument("--force", action="store_true", help="pipeline demo: reprocess even if the output is up to date")
    p.add_argument("--size", default="100x200x400", help="inline x crossline x time samples (default 100x200x400)")
    p.add_argument("--footprint", type=float, default=0.2, help="footprint peak amplitude F (default 0.2)")
    p.add_argument("--sigma", type=float, default=0.01, help="Gaussian noise sigma (default 0.01)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    add_progress_flag(p)
    p.set_defaults(func=run, stoppable=True)


def parse_size(text: str) -> tuple[int, int, int]:
    """``"100x200x400"`` -> ``(100, 200, 400)``; a one-line ``ValueError`` for anything else."""
    try:
        n = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        n = ()
    if len(n) != 3 or min(n) < 2:
        raise ValueError(f"--size must look like 100x200x400 (three integers >= 2), got {text!r}")
    return n  # type: ignore[return-value]


def run(args: argparse.Namespace) -> int:
    """Run the demo: the pipeline, or ``--in-memory`` TLSM alone."""
    return run_in_memory(args) if args.in_memory else run_pipeline(args)


def run_pipeline(args: argparse.Namespace) -> int:
    """Write the synthetic survey if missing, pre-flight, run the process-survey flow, print quality and paths."""
    from seiscore.cli.output import shown, tile_progress
    from seiscore.core.settings import get_settings
    from seiscore.data import datasets
    from seiscore.data.catalog import load_catalog

    catalog = str(get_settings().catalog)
    entry = load_catalog(catalog).get(args.survey)
    if not entry.source_path.exists():
        print(f"writing the synthetic survey: {shown(entry.source_path)}")
        datasets.write_synthetic(entry.source_path, entry.reference)
    from seiscore.execution.preflight import preflight

    # the same pre-flight as `seis run`: parameters and every path the run writes, before a server or cluster starts
    preflight(args.survey, catalog=catalog, export_segy=True, force=args.force)
    from flows.process_survey import run_process_survey  # Prefect and Dask load only here

    print(f"processing {args.survey!r} with the process-survey flow (temporary Prefect server, local Dask cluster)...")
    t0 = time.perf_counter()
    with tile_progress(args.progress):
        result = run_process_survey(args.survey, export_segy=True, catalog=catalog, force=args.force)
    elapsed = time.perf_counter() - t0
    m = result.get("metrics") or {}
    if result.get("skipped"):
        print("output already up to date with this input, code and parameters: nothing recomputed (--force to redo)")
    for name in ("psnr", "ssim", "brisque", "piqe"):
        before, after = m.get(f"{name}_before"), m.get(f"{name}_after")
        if after is not None:
            print(f"{name.upper():8s} before {before if before is not None else '-':>8}   after {after:>8}")
    if m.get("leakage") is not None:
        print(f"signal leakage (local similarity of output and removed noise): {m['leakage']}")
    print(f"time: {elapsed:.1f} s end to end; {result.get('tiles_computed')} tiles computed")
    print(f"output store: {shown(result['output'])}   (xarray.open_zarr; lineage in its attrs)")
    if result.get("qc_report"):
        print(f"QC report:    {shown(result['qc_report'])}")
    if result.get("segy"):  # where the flow wrote it, not where the catalog asked
        print(f"SEG-Y:        {shown(result['segy'])}")
    return 0 if result.get("status", "completed") == "completed" else 1


def run_in_memory(args: argparse.Namespace) -> int:
    """Synthetic cube in memory -> TLSM on the whole cube; print PSNR / SSIM before and after and the time."""
    from tqdm import tqdm

    from seiscore.data.synth import SynthConfig, make_survey, to_canonical
    from seiscore.methods.tlsm import denoise
    from seiscore.metrics import psnr, ssim

    ni, nx, nt = parse_size(args.size)
    cfg = SynthConfig(
        n_inline=ni, n_crossline=nx, n_time=nt, footprint_peak=args.footprint, sigma=args.sigma, seed=args.seed
    )
    noisy, clean = make_survey(cfg, dtype=np.dtype(args.dtype))
    y, x = to_canonical(noisy), to_canonical(clean)
    print(
        f"synthetic survey {ni} x {nx} x {nt} (inline x crossline x time), "
        f"F = {cfg.footprint_peak}, sigma = {cfg.sigma}, {args.dtype}"
    )
    print(f"before: PSNR {psnr(x, y):6.2f} dB   SSIM {ssim(x, y):.4f}")
    with tqdm(total=args.iterations, desc="TLSM", unit="it") as bar:

        def progress(it: int, change: float) -> None:
            bar.set_postfix(change=f"{change:.2e}")
            bar.update(1)

        t0 = time.perf_counter()
        out = denoise(y, {"iterations": args.iterations}, preset="synthetic", callback=progress)
        elapsed = time.perf_counter() - t0
    print(f"after:  PSNR {psnr(x, out):6.2f} dB   SSIM {ssim(x, out):.4f}   (paper: 27.19 -> 45.22 dB, SSIM 0.9926)")
    print(f"TLSM time: {elapsed:.2f} s for {args.iterations} iterations")
    return 0
