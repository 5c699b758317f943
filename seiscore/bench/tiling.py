"""Benchmark ``tiling``: TLSM on tiles vs on the whole cube (quality, seams, time).

    python -m seiscore.bench tiling [--size 100 200 400] [--configs 64x64h16 32x64h16 ...]
    python -m seiscore.bench tiling --survey realistic [--size 48 512 500] [--configs 24h2xallxall ...]
    python -m seiscore.bench tiling --survey penobscot [--configs allx75h16xall ...]

``--survey realistic`` runs on the realistic-shape synthetic survey (:mod:`seiscore.data.synth_realistic`,
an inline range of it at the size given) and ``--survey penobscot`` on the Penobscot subset
(``/work/shared/data/penobscot``, or ``--penobscot FILE``; no clean reference: the tiled result is
compared with the whole-cube result). Their configs cut any axis: ``IxXxS`` with each of ``I``, ``X``,
``S`` a core size with its halo (``24h2``) or ``all``; results go to ``tiling_realistic.*`` /
``tiling_penobscot.*`` with the planned peak memory of the largest block (TLSM's memory model).

On the paper's synthetic cube (F = 0.2, sigma = 0.01) this measures, per tile
configuration: PSNR / SSIM against the clean cube (paper convention) and the difference
to the whole-cube result, the *seam ratio* (mean |tiled - whole| within 2 samples of a
core border over the mean elsewhere; about 1 = no seam) and the denoise time. The
pipeline's default TLSM tiles are chosen from this table.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

from seiscore.bench.common import md_table, write_results
from seiscore.data.synth import make_survey, to_canonical
from seiscore.execution.blockwise.tiling import TileConfig, TilePlan, denoise_tiled, plan_tiles
from seiscore.metrics import psnr, ssim

DEFAULT_CONFIGS = [
    "44xallh2",
    "44xallh4",
    "40xallh2",
    "28xallh4",
    "24xallh2",
    "36xallh4",
    "60xallh4",
    "allx100h16",
    "64x64h16",
]


def parse_config(text: str) -> TileConfig:
    """'64x64h16' -> tiles 64 (inline) x 64 (crossline) x whole time, halo 16 on both tiled axes
    ('all' = whole axis)."""
    m = re.fullmatch(r"(\d+|all)x(\d+|all)h(\d+)", text)
    if not m:
        raise ValueError(f"tile config must look like 64x64h16 or allx64h16, got {text!r}")
    a, b = (None if v == "all" else int(v) for v in m.groups()[:2])
    h = int(m.group(3))
    return TileConfig(tile=(a, b, None), halo=(0 if a is None else h, 0 if b is None else h, 0))


def parse_config3(text: str) -> TileConfig:
    """'24h2x256h16xall' -> tiles (24, 256, whole) with halos (2, 16, 0): one ``SIZEhHALO`` or ``all`` per axis."""
    parts = text.split("x")
    tile, halo = [], []
    for part in parts:
        m = re.fullmatch(r"(\d+)h(\d+)|all", part)
        if len(parts) != 3 or not m:
            raise ValueError(
                f"tile config must look like 24h2x256h16xall (one SIZEhHALO or all per axis), got {text!r}"
            )
        tile.append(None if part == "all" else int(m.group(1)))
        halo.append(0 if part == "all" else int(m.group(2)))
    return TileConfig(tile=tuple(tile), halo=tuple(halo))


def border_mask(plan: TilePlan, width: int = 2) -> np.ndarray:
    """True within ``width`` samples of an interior core border along any tiled axis (any number of axes)."""
    mask = np.zeros(plan.shape, dtype=bool)
    for axis, edges in enumerate(plan.edges):
        near = np.zeros(plan.shape[axis], dtype=bool)
        for e in edges[1:-1]:
            near[max(e - width, 0) : e + width] = True
        mask |= near.reshape([-1 if k == axis else 1 for k in range(plan.ndim)])
    return mask


def seam_ratio(diff: np.ndarray, plan: TilePlan, width: int = 2) -> float:
    """Mean |diff| near core borders over the mean elsewhere (1 = no seam; NaN if one tile)."""
    mask = border_mask(plan, width)
    if not mask.any():
        return float("nan")
    d = np.abs(diff)
    return float(d[mask].mean() / max(d[~mask].mean(), 1e-30))


def tlsm_store_order(preset: str = "synthetic"):
    """TLSM on an (inline, crossline, time) block of the synthetic survey (paper permutation)."""
    from seiscore.data.synth import from_canonical
    from seiscore.methods.tlsm import denoise

    return lambda block: from_canonical(denoise(np.ascontiguousarray(to_canonical(block)), preset=preset))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write ``benchmarks/results/tiling.{json,md}``."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.bench tiling", description=__doc__.split("\n\n")[0])
    ap.add_argument("--survey", choices=("paper", "realistic", "penobscot"), default="paper")
    ap.add_argument("--size", type=int, nargs=3, default=None, metavar=("IL", "XL", "T"))
    ap.add_argument("--configs", nargs="+", default=None)
    ap.add_argument("--threads", type=int, default=1, help="TLSM threads (realistic / penobscot)")
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-cube run (too large to hold)")
    ap.add_argument(
        "--penobscot", default=PENOBSCOT_FILE, help="the Penobscot subset (.npy, inline x crossline x time)"
    )
    args = ap.parse_args(argv)
    if args.survey != "paper":
        return main_any_axis(args)
    args.size = args.size or [100, 200, 400]
    args.configs = args.configs or DEFAULT_CONFIGS
    noisy, clean = make_survey(n_inline=args.size[0], n_crossline=args.size[1], n_time=args.size[2])
    den = tlsm_store_order()
    t0 = time.perf_counter()
    whole = den(noisy)
    t_whole = time.perf_counter() - t0
    c_clean = to_canonical(clean)
    p_whole, s_whole = psnr(c_clean, to_canonical(whole)), ssim(c_clean, to_canonical(whole))
    rows, payload = (
        [],
        {
            "size": args.size,
            "whole": {
                "psnr": p_whole,
                "ssim": s_whole,
                "seconds": t_whole,
                "psnr_noisy": psnr(c_clean, to_canonical(noisy)),
            },
            "configs": {},
        },
    )
    print(f"whole cube: {p_whole:.2f} dB, SSIM {s_whole:.4f}, {t_whole:.1f} s", flush=True)
    for text in args.configs:
        cfg = parse_config(text)
        plan = plan_tiles(noisy.shape, cfg)
        t0 = time.perf_counter()
        tiled = denoise_tiled(noisy, den, cfg)
        t = time.perf_counter() - t0
        p, s = psnr(c_clean, to_canonical(tiled)), ssim(c_clean, to_canonical(tiled))
        seam_w, seam_c = seam_ratio(tiled - whole, plan), seam_ratio(tiled - clean, plan)
        payload["configs"][text] = {
            "grid": plan.grid,
            "psnr": p,
            "ssim": s,
            "delta_db": p - p_whole,
            "seconds": t,
            "time_ratio": t / t_whole,
            "seam_ratio_vs_whole": seam_w,
            "seam_ratio_vs_clean": seam_c,
        }
        rows.append([text, str(plan.grid), p, p - p_whole, s, seam_c, seam_w, t, t / t_whole])
        print(rows[-1], flush=True)
    md = "\n".join(
        [
            f"# Tiling: TLSM on tiles vs whole cube ({'x'.join(map(str, args.size))}, F = 0.2, sigma = 0.01)",
            "",
            f"Whole cube: {p_whole:.2f} dB, SSIM {s_whole:.4f}, {t_whole:.1f} s "
            f"(noisy {payload['whole']['psnr_noisy']:.2f} dB).",
            "Tiles `IxXhH`: core I inlines x X crosslines x all samples, halo H on both tiled axes; "
            "seam ratio = mean |error| within 2 samples of a core border / mean elsewhere (1 = no seam). "
            "Times are single runs on a shared machine "
            "(the tiling overhead is measured by `python -m seiscore.bench pipeline`).",
            "",
            md_table(
                [
                    "tiles",
                    "grid",
                    "PSNR dB",
                    "delta dB",
                    "SSIM",
                    "seam (vs clean)",
                    "seam (vs whole)",
                    "time s",
                    "time / whole",
                ],
                rows,
            ),
        ]
    )
    write_results("tiling", payload, md)
    print(md)
    return 0


# The tube (inline) effect was measured on the paper's cube (tiling.md); these cut the cross-section.
REALISTIC_CONFIGS = [
    "allx256h16xall",
    "allx256h32xall",
    "allx128h16xall",
    "allxallx250h32",
    "allx256h16x250h32",
    "allx128h16x128h16",
]
PENOBSCOT_CONFIGS = [
    "allx75h16xall",
    "125h16xallxall",
    "125h16x75h16xall",
    "allx75h8xall",
    "125h8x75h8xall",
    "64h16x64h16xall",
]
PENOBSCOT_FILE = "/work/shared/data/penobscot/penobscot_250x150x40.npy"


def _survey(args) -> tuple[np.ndarray, np.ndarray | None, object, str, str]:
    """(noisy, clean or None, TLSM spec, title, result name) of ``--survey realistic|penobscot``."""
    from seiscore.methods.tlsm.method import TLSMSpec

    threads = args.threads
    if args.survey == "realistic":
        from seiscore.data.synth_realistic import REALISTIC_SHAPE, realistic_slab

        size = tuple(args.size) if args.size else (24, 512, 500)
        full = (max(size[0], REALISTIC_SHAPE[0]), size[1], size[2])
        noisy, clean = realistic_slab(0, size[0], full, seed=0)
        spec = TLSMSpec(threads_per_task=threads)
        title = f"realistic-shape synthetic survey, inlines 0-{size[0]} of {'x'.join(map(str, full))} (seed 0)"
        return noisy, clean, spec, title, "tiling_realistic"
    cube = np.load(args.penobscot).astype(np.float32)
    lo, hi = float(cube.min()), float(cube.max())
    noisy = (2 * (cube - lo) / (hi - lo) - 1).astype(np.float32)  # the demo's min-max scaling to [-1, 1]
    # The demo's orientation (crossline, inline, time): smooth = crossline, footprint = inline, tube = time.
    spec = TLSMSpec(
        preset="penobscot",
        threads_per_task=threads,
        axes={"smooth": "crossline", "footprint": "inline", "tube": "sample"},
    )
    return (
        noisy,
        None,
        spec,
        f"Penobscot subset {'x'.join(map(str, cube.shape))} (no clean reference)",
        ("tiling_penobscot"),
    )


def main_any_axis(args) -> int:
    """Tilings cutting any axis on the realistic survey or Penobscot: PSNR vs clean and vs the whole cube, seams,
    time, planned peak memory of the largest block."""
    from seiscore.data.kinds import POSTSTACK3D
    from seiscore.methods.tlsm.method import TLSMMethod

    noisy, clean, spec, title, name = _survey(args)
    method = TLSMMethod()
    den = method.build(spec, POSTSTACK3D)
    configs = args.configs or (REALISTIC_CONFIGS if args.survey == "realistic" else PENOBSCOT_CONFIGS)
    canon = lambda a: to_canonical(a)  # noqa: E731  (inline slices: PSNR per inline, paper convention)
    payload: dict = {"survey": args.survey, "shape": noisy.shape, "title": title, "configs": {}}
    whole = None
    if not args.no_whole:
        t0 = time.perf_counter()
        whole = den(noisy)
        t_whole = time.perf_counter() - t0
        payload["whole"] = {
            "seconds": t_whole,
            "planned_peak_bytes": method.peak_memory(spec, noisy.shape),
            **(
                {"psnr": psnr(canon(clean), canon(whole)), "psnr_noisy": psnr(canon(clean), canon(noisy))}
                if clean is not None
                else {}
            ),
        }
        print("whole", payload["whole"], flush=True)
    rows = []
    for text in configs:
        cfg = parse_config3(text)
        plan = plan_tiles(noisy.shape, cfg)
        t0 = time.perf_counter()
        tiled = denoise_tiled(noisy, den, cfg)
        t = time.perf_counter() - t0
        block = plan.largest_block()
        row = {
            "grid": plan.grid,
            "block": block,
            "planned_peak_bytes": method.peak_memory(spec, block),
            "seconds": t,
        }
        if clean is not None:
            row["psnr"] = psnr(canon(clean), canon(tiled))
            row["seam_ratio_vs_clean"] = seam_ratio(tiled - clean, plan)
        if whole is not None:
            row["psnr_vs_whole"] = psnr(canon(whole), canon(tiled))
            row["seam_ratio_vs_whole"] = seam_ratio(tiled - whole, plan)
            row["time_ratio"] = t / payload["whole"]["seconds"]
            if clean is not None:
                row["delta_db"] = row["psnr"] - payload["whole"]["psnr"]
        payload["configs"][text] = row
        rows.append(
            [
                text,
                "x".join(map(str, plan.grid)),
                "x".join(map(str, block)),
                row["planned_peak_bytes"] / 2**20,
                row.get("psnr", float("nan")),
                row.get("delta_db", float("nan")),
                row.get("psnr_vs_whole", float("nan")),
                row.get("seam_ratio_vs_clean", float("nan")),
                row.get("seam_ratio_vs_whole", float("nan")),
                t,
                row.get("time_ratio", float("nan")),
            ]
        )
        print(rows[-1], flush=True)
    from seiscore.bench.common import machine

    payload["machine"] = machine()
    head = f"# Tiling on the {title}: TLSM ({spec.preset or 'synthetic'} preset) on tiles cutting any axis"
    w = payload.get("whole", {})
    lines = [
        head,
        "",
        f"Command: `python -m seiscore.bench tiling --survey {args.survey}"
        + (f" --size {' '.join(map(str, args.size))}" if args.size else "")
        + "`. Shape (inline, crossline, sample) "
        + "x".join(map(str, noisy.shape))
        + "."
        + (f" Whole cube: {w['psnr']:.2f} dB vs clean (noisy {w['psnr_noisy']:.2f} dB)," if "psnr" in w else "")
        + (f" Whole cube {w['seconds']:.1f} s, planned peak {w['planned_peak_bytes'] / 2**20:.0f} MiB." if w else ""),
        "Tiles `IxXxS`: core per axis with its halo (`24h2`) or `all`; block = largest extended block; planned "
        "peak = TLSM's memory model (seiscore.methods.tlsm.memory) for that block; PSNR per inline slice (paper "
        "convention); seam ratio = mean |error| within 2 samples of a core border / mean elsewhere (1 = no seam). "
        f"Times: single runs, {spec.threads_per_task} thread(s), on a shared 2-CPU machine loaded by other jobs "
        "(compare ratios, not absolute seconds).",
        "",
        md_table(
            [
                "tiles",
                "grid",
                "block",
                "planned peak MiB",
                "PSNR dB",
                "delta vs whole dB",
                "PSNR vs whole dB",
                "seam (vs clean)",
                "seam (vs whole)",
                "time s",
                "time / whole",
            ],
            rows,
        ),
    ]
    write_results(name, payload, "\n".join(lines))
    print("\n".join(lines))
    return 0
