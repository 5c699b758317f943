"""``python -m seiscore.bench tlsm [--quick]``: TLSM quality, speed and memory against the paper.

- Table II: PSNR / SSIM (paper convention) for the 12 noise levels (F in {0.1, 0.2, 0.5} x
  sigma in {0.01, 0.02, 0.03, 0.04}) at 100 x 200 x 400; ``--full`` adds 40, 200 and 400 inlines.
- Table III: wall and CPU time of the demo cube (100 x 200 x 400, F = 0.2, sigma = 0.01,
  20 iterations) in float32 and float64, medians of ``--repeats`` runs, and peak memory.
- Accuracy of the fast spectral route (Gram + heevd) against the plain batched-SVD route.
- Boundary conventions: the demo's mixed ones against periodic ones, on the demo cube.
- Penobscot (``../shared/data/penobscot``): time with preset ``penobscot`` and mean BRISQUE
  per time slice before and after, next to the paper's.

``--quick`` runs a reduced set (demo-cube timing, 12 levels at 40 x 200 x 400, no SVD-route
comparison at full size) for a fast check.

``--backends`` times only the two solver backends against each other: numba and torch (``--device``, default
``cpu``) on the demo cube, 20 iterations, float32 and float64, runs interleaved, medians of ``--repeats`` (>= 3),
with each one's PSNR and their relative difference (``tlsm_backends.md``; the issue's target: torch on CPU
within 2x of numba).
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np

from seiscore.bench.common import PeakRSS, machine, md_table, write_results
from seiscore.data.synth import SynthConfig, make_survey, to_canonical
from seiscore.methods.tlsm import denoise
from seiscore.metrics import psnr, ssim

LEVELS = [(f, s) for f in (0.1, 0.2, 0.5) for s in (0.01, 0.02, 0.03, 0.04)]
PAPER_TABLE2 = dict(zip(LEVELS, [44.06, 41.49, 38.92, 36.80, 43.80, 41.36, 38.70, 36.63, 41.59, 39.90, 38.04, 36.19]))
PAPER = {
    "demo_psnr": 45.22,
    "demo_ssim": 0.9926,
    "demo_initial_psnr": 27.19,
    "mean_psnr_all_sizes": 39.79,
    "time_matlab_s": 60.68,
}
TARGETS = {
    "demo_psnr": 45.0,
    "demo_ssim": 0.99,
    "mean_psnr_100": 39.8,
    "time_f32_s": 5.0,
    "time_f64_s": 12.0,
    "f32_f64_db": 0.05,
    "peak_gb": 1.5,
}


def _cubes(n_inline: int, f: float, sigma: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    noisy, clean = make_survey(SynthConfig(n_inline=n_inline, footprint_peak=f, sigma=sigma), dtype=dtype)
    return to_canonical(noisy), to_canonical(clean)


def _timed(y: np.ndarray, **kw) -> tuple[np.ndarray, float, float]:
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    out = denoise(y, **kw)
    return out, time.perf_counter() - t, time.process_time() - c


def table2(sizes: list[int], log) -> list[dict]:
    """Table II of the paper: PSNR / SSIM before and after TLSM per cube size and noise level."""
    rows = []
    for n in sizes:
        for f, s in LEVELS:
            y, x = _cubes(n, f, s, np.float32)
            out, wall, _ = _timed(y, preset="synthetic")
            rows.append(
                {
                    "n_inline": n,
                    "F": f,
                    "sigma": s,
                    "psnr_in": psnr(x, y),
                    "psnr": psnr(x, out),
                    "ssim": ssim(x, out),
                    "wall_s": wall,
                }
            )
            log(
                f"  {n:3d} inlines F={f:.1f} sigma={s:.2f}: {rows[-1]['psnr_in']:.2f} -> {rows[-1]['psnr']:.2f} dB, "
                f"SSIM {rows[-1]['ssim']:.4f} ({wall:.1f} s)"
            )
    return rows


def timing(repeats: int, log) -> dict:
    """Table III: wall and CPU seconds of TLSM on the 100-inline cube in float32 and float64 (medians)."""
    res = {}
    outs = {}
    for dtype in (np.float32, np.float64):
        y, x = _cubes(100, 0.2, 0.01, dtype)
        walls, cpus = [], []
        for r in range(repeats):
            out, wall, cpu = _timed(y, preset="synthetic")
            walls.append(wall)
            cpus.append(cpu)
            log(f"  {np.dtype(dtype).name} run {r + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU")
        # Memory in a run of its own: the RSS sampler thread costs CPU and would inflate the times.
        with PeakRSS(children=False) as mem:
            out, _, _ = _timed(y, preset="synthetic")
        log(f"  {np.dtype(dtype).name} memory run: peak RSS {mem.peak / 2**30:.2f} GB (+{mem.delta / 2**30:.2f} GB)")
        outs[np.dtype(dtype).name] = out
        res[np.dtype(dtype).name] = {
            "wall_s_median": float(np.median(walls)),
            "wall_s": walls,
            "cpu_s_median": float(np.median(cpus)),
            "peak_rss_gb": mem.peak / 2**30,
            "peak_delta_gb": mem.delta / 2**30,
            "psnr_in": psnr(x, y),
            "psnr": psnr(x, out),
            "ssim": ssim(x, out),
        }
    res["f32_f64_db"] = abs(res["float32"]["psnr"] - res["float64"]["psnr"])
    res["load_average_1min"] = os.getloadavg()[0]
    res["f32_f64_rel"] = float(np.linalg.norm(outs["float32"] - outs["float64"]) / np.linalg.norm(outs["float64"]))
    return res


def backends(repeats: int, log, device: str = "cpu") -> dict:
    """Wall time (median of ``repeats``, numba and torch runs interleaved), PSNR and the relative difference of
    the numba and torch backends on the demo cube (20 iterations), float32 and float64."""
    kws = {"numba": {"backend": "numba"}, "torch": {"backend": "torch", "device": device}}
    for kw in kws.values():  # compile / initialise each backend outside the timings
        denoise(np.zeros((8, 8, 8), np.float32) + np.arange(8, dtype=np.float32), **kw)
    res: dict = {"device": device, "repeats": repeats, "threads": os.cpu_count()}
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        y, x = _cubes(100, 0.2, 0.01, dtype)
        walls: dict[str, list[float]] = {b: [] for b in kws}
        outs = {}
        for r in range(repeats):
            for b, kw in kws.items():
                outs[b], wall, _ = _timed(y, preset="synthetic", **kw)
                walls[b].append(wall)
                log(f"  {name} {b} run {r + 1}: {wall:.2f} s")
        row = {
            b: {"wall_s_median": float(np.median(w)), "wall_s": w, "psnr": psnr(x, outs[b])} for b, w in walls.items()
        }
        row["torch_over_numba"] = row["torch"]["wall_s_median"] / row["numba"]["wall_s_median"]
        row["rel_diff"] = float(np.linalg.norm(outs["torch"] - outs["numba"]) / np.linalg.norm(outs["numba"]))
        log(
            f"  {name}: numba {row['numba']['wall_s_median']:.2f} s ({row['numba']['psnr']:.3f} dB), torch "
            f"{row['torch']['wall_s_median']:.2f} s ({row['torch']['psnr']:.3f} dB): {row['torch_over_numba']:.2f}x, "
            f"relative difference {row['rel_diff']:.1e}"
        )
        res[name] = row
    res["load_average_1min"] = os.getloadavg()[0]
    return res


def _backends_markdown(r: dict) -> str:
    rows = [
        [
            k,
            round(v["numba"]["wall_s_median"], 2),
            round(v["torch"]["wall_s_median"], 2),
            round(v["torch_over_numba"], 2),
            round(v["numba"]["psnr"], 3),
            round(v["torch"]["psnr"], 3),
            f"{v['rel_diff']:.1e}",
        ]
        for k, v in r.items()
        if isinstance(v, dict)
    ]
    return "\n".join(
        [
            "# TLSM backends: numba vs torch, demo cube 100x200x400, 20 iterations",
            "",
            f"`python -m seiscore.bench tlsm --backends --device {r['device']} --repeats {r['repeats']}`: wall-time "
            f"medians, numba and torch runs interleaved, torch on `{r['device']}`, {r['threads']} CPUs (load average "
            f"{r['load_average_1min']:.1f} at the end). Target: torch on CPU within 2x of numba.",
            "",
            md_table(
                ["dtype", "numba (s)", "torch (s)", "torch / numba", "numba PSNR", "torch PSNR", "relative diff"], rows
            ),
        ]
    )


def route_accuracy(n_inline: int, log) -> dict:
    """Fast route vs the plain batched-SVD route on the same cube (float32 and float64)."""
    res = {}
    for dtype in (np.float32, np.float64):
        y, x = _cubes(n_inline, 0.2, 0.01, dtype)
        fast, t_fast, _ = _timed(y, route="gram")
        plain, t_plain, _ = _timed(y, route="svd")
        res[np.dtype(dtype).name] = {
            "rel_frobenius": float(np.linalg.norm(fast - plain) / np.linalg.norm(plain)),
            "psnr_diff_db": abs(psnr(x, fast) - psnr(x, plain)),
            "wall_fast_s": t_fast,
            "wall_svd_s": t_plain,
        }
        log(
            f"  {np.dtype(dtype).name} {n_inline} inlines: rel diff {res[np.dtype(dtype).name]['rel_frobenius']:.2e}, "
            f"{res[np.dtype(dtype).name]['psnr_diff_db']:.4f} dB, gram {t_fast:.1f} s vs svd {t_plain:.1f} s"
        )
    return res


def boundaries(log) -> dict:
    """PSNR / SSIM of TLSM with the ``demo`` and ``periodic`` boundary conditions."""
    y, x = _cubes(100, 0.2, 0.01, np.float32)
    res = {}
    for b in ("demo", "periodic"):
        out, wall, _ = _timed(y, params={"boundary": b})
        res[b] = {"psnr": psnr(x, out), "ssim": ssim(x, out)}
        log(f"  boundary={b}: {res[b]['psnr']:.3f} dB, SSIM {res[b]['ssim']:.5f}")
    return res


def penobscot(log) -> dict:
    """No-reference scores (BRISQUE, NIQE, PIQE) of TLSM on the Penobscot cube next to the paper's."""
    from seiscore.bench.metrics import DATA, load_penobscot, paper_scores
    from seiscore.metrics.brisque import brisque, model_name
    from seiscore.metrics.noref import to_uint8

    if not (DATA / "penobscot_250x150x40.npy").exists():
        log(f"  Penobscot data not found in {DATA}; skipped")
        return {"skipped": f"no data in {DATA}"}
    y = load_penobscot(DATA)
    walls = []
    for _ in range(3):
        out, wall, _ = _timed(y, preset="penobscot")
        walls.append(wall)
    before = brisque(to_uint8(np.moveaxis(y, 2, 0)))
    after = brisque(to_uint8(np.moveaxis(out, 2, 0)))
    paper = paper_scores(DATA)["BRISQUE"]
    res = {
        "wall_s_median": float(np.median(walls)),
        "wall_s": walls,
        "brisque_before": float(np.mean(before)),
        "brisque_after": float(np.mean(after)),
        "brisque_paper": float(np.mean(paper)),
        "brisque_model": model_name(),
    }
    log(
        f"  Penobscot 150 x 250 x 40: {res['wall_s_median']:.2f} s; BRISQUE {res['brisque_before']:.2f} -> "
        f"{res['brisque_after']:.2f} (paper {res['brisque_paper']:.2f}, MATLAB model)"
    )
    return res


def _markdown(r: dict, quick: bool) -> str:
    t = r["timing"]
    demo32 = t["float32"]
    by_level = {}
    for row in r["table2"]:
        by_level.setdefault((row["F"], row["sigma"]), {})[row["n_inline"]] = row
    sizes = sorted({row["n_inline"] for row in r["table2"]})
    lines = [
        f"# TLSM benchmark ({r['mode']})",
        "",
        f"Machine: {r['machine']['cpus']} CPUs, {r['machine']['memory_gb']} GB. Command: `python -m seiscore.bench "
        f"tlsm{' --quick' if quick else ''}`.",
        "",
        "## Targets",
        "",
        md_table(
            ["measure", "ours", "target", "paper", "met"],
            [
                [
                    "demo cube PSNR (dB)",
                    round(demo32["psnr"], 2),
                    f">= {TARGETS['demo_psnr']}",
                    PAPER["demo_psnr"],
                    demo32["psnr"] >= TARGETS["demo_psnr"],
                ],
                [
                    "demo cube SSIM",
                    round(demo32["ssim"], 4),
                    f">= {TARGETS['demo_ssim']}",
                    PAPER["demo_ssim"],
                    demo32["ssim"] >= TARGETS["demo_ssim"],
                ],
                [
                    f"mean PSNR, 12 levels, {sizes[-1] if quick else 100} inlines (dB)",
                    round(r["mean_psnr"], 2),
                    f">= {TARGETS['mean_psnr_100']}",
                    PAPER["mean_psnr_all_sizes"],
                    r["mean_psnr"] >= TARGETS["mean_psnr_100"],
                ],
                [
                    "demo time float32, wall median (s)",
                    round(demo32["wall_s_median"], 2),
                    f"<= {TARGETS['time_f32_s']}",
                    PAPER["time_matlab_s"],
                    demo32["wall_s_median"] <= TARGETS["time_f32_s"],
                ],
                [
                    "demo time float64, wall median (s)",
                    round(t["float64"]["wall_s_median"], 2),
                    f"<= {TARGETS['time_f64_s']}",
                    "",
                    t["float64"]["wall_s_median"] <= TARGETS["time_f64_s"],
                ],
                [
                    "float32 vs float64 PSNR (dB)",
                    f"{t['f32_f64_db']:.1e}",
                    f"<= {TARGETS['f32_f64_db']}",
                    "",
                    t["f32_f64_db"] <= TARGETS["f32_f64_db"],
                ],
                [
                    "peak RSS, float32 demo (GB)",
                    round(demo32["peak_rss_gb"], 2),
                    f"<= {TARGETS['peak_gb']}",
                    "",
                    demo32["peak_rss_gb"] <= TARGETS["peak_gb"],
                ],
            ],
        ),
        "",
        f"Timing detail: float32 CPU time median {demo32['cpu_s_median']:.2f} s, float64 "
        f"{t['float64']['cpu_s_median']:.2f} s "
        "(CPU time / 2 approximates the wall time of an unloaded 2-core machine); peak RSS float64 "
        f"{t['float64']['peak_rss_gb']:.2f} GB "
        f"(process total, Python and libraries included); demo cube starts at {demo32['psnr_in']:.2f} dB (paper "
        f"{PAPER['demo_initial_psnr']}). "
        f"Load average when the timing ended: {t.get('load_average_1min', float('nan')):.1f} on "
        f"{r['machine']['cpus']} CPUs "
        "(wall times only count on a quiet machine: `--only-timing`, `tlsm_timing.md`).",
        "",
        "## Table II (PSNR dB, ours / paper average over 4 sizes)",
        "",
        md_table(
            ["F", "sigma", *[f"{n} inl." for n in sizes], "paper"],
            [[f, s, *[round(by_level[(f, s)][n]["psnr"], 2) for n in sizes], PAPER_TABLE2[(f, s)]] for f, s in LEVELS],
        ),
    ]
    if "routes" in r:
        lines += [
            "",
            "## Fast spectral route vs plain SVD route",
            "",
            md_table(
                ["dtype", "relative Frobenius diff", "PSNR diff (dB)", "gram route (s)", "SVD route (s)"],
                [
                    [
                        k,
                        f"{v['rel_frobenius']:.2e}",
                        round(v["psnr_diff_db"], 5),
                        round(v["wall_fast_s"], 2),
                        round(v["wall_svd_s"], 2),
                    ]
                    for k, v in r["routes"].items()
                ],
            ),
        ]
    if "boundaries" in r:
        lines += [
            "",
            "## Boundary conventions (demo cube, float32)",
            "",
            md_table(
                ["boundary", "PSNR (dB)", "SSIM"],
                [[k, round(v["psnr"], 3), round(v["ssim"], 5)] for k, v in r["boundaries"].items()],
            ),
        ]
    p = r.get("penobscot", {})
    if "wall_s_median" in p:
        lines += [
            "",
            "## Penobscot (150 x 250 x 40 canonical, preset penobscot)",
            "",
            f"Time {p['wall_s_median']:.2f} s (median of 3). Mean BRISQUE per time slice: before "
            f"{p['brisque_before']:.2f}, "
            f"after {p['brisque_after']:.2f}; paper (MATLAB's model) {p['brisque_paper']:.2f}. Our model: "
            f"{p['brisque_model']}.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m seiscore.bench tlsm``: run the selected parts and write their result files."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.bench tlsm", description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="reduced set for a fast check")
    mode.add_argument("--full", action="store_true", help="also 40, 200 and 400 inlines for Table II")
    ap.add_argument("--repeats", type=int, default=None, help="timing repeats (default 5, quick 3)")
    ap.add_argument(
        "--only-timing", action="store_true", help="only the Table III timing (for re-timing on a quiet machine)"
    )
    ap.add_argument("--backends", action="store_true", help="only numba vs torch on the demo cube (tlsm_backends.md)")
    ap.add_argument("--device", default="cpu", help="torch device of --backends (default cpu)")
    args = ap.parse_args(argv)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    if args.backends:
        repeats = max(3, args.repeats or 3)
        log(f"numba vs torch ({args.device}), demo cube, {repeats} repeats:")
        res = backends(repeats, log, args.device)
        md = _backends_markdown(res)
        json_path, md_path = write_results("tlsm_backends", {"backends": res}, md)
        print("\n" + md + f"\n\nwritten: {json_path}, {md_path}")
        return 0
    denoise(np.zeros((8, 8, 8), np.float32) + np.arange(8, dtype=np.float32))  # compile the kernels outside the timings
    repeats = args.repeats or (3 if args.quick else 5)
    result: dict = {"mode": "quick" if args.quick else ("full" if args.full else "standard"), "machine": machine()}
    log(f"Table III timing, demo cube, {repeats} repeats:")
    result["timing"] = timing(repeats, log)
    if args.only_timing:
        t = result["timing"]
        head = (
            "# TLSM timing, demo cube 100x200x400, 20 iterations (Table III)\n\n"
            f"`python -m seiscore.bench tlsm --only-timing --repeats {repeats}`: medians of the runs, timed without "
            "the memory sampler; peak RSS (whole process) from one extra sampled run. Run it on a quiet machine.\n\n"
        )
        write_results(
            "tlsm_timing",
            result,
            head
            + "\n".join(
                f"{k}: wall median {v['wall_s_median']:.2f} s, CPU median {v['cpu_s_median']:.2f} s, peak RSS "
                f"{v['peak_rss_gb']:.2f} GB"
                for k, v in t.items()
                if isinstance(v, dict)
            ),
        )
        return 0
    sizes = [40] if args.quick else ([40, 100, 200, 400] if args.full else [100])
    log(f"Table II, sizes {sizes}:")
    result["table2"] = table2(sizes, log)
    main_size = 40 if args.quick else 100
    result["mean_psnr"] = float(np.mean([row["psnr"] for row in result["table2"] if row["n_inline"] == main_size]))
    log(f"mean PSNR over 12 levels at {main_size} inlines: {result['mean_psnr']:.2f} dB (target >= 39.8)")
    log("fast route vs plain SVD route:")
    result["routes"] = route_accuracy(20 if args.quick else 100, log)
    log("boundary conventions:")
    result["boundaries"] = boundaries(log)
    log("Penobscot:")
    result["penobscot"] = penobscot(log)
    name = "tlsm_quick" if args.quick else "tlsm"
    md = _markdown(result, args.quick)
    json_path, md_path = write_results(name, result, md)
    print("\n" + md + f"\n\nwritten: {json_path}, {md_path}")
    return 0
