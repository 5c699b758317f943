"""``python -m seiscore.bench metrics``: cost of the no-reference metrics, and the Penobscot comparison.

1. Timing: BRISQUE + PIQE + signal leakage on every time slice of the 250 x 150 x 40
   Penobscot cube (target <= 5 s on 2 cores), median of ``--repeats`` runs.
2. Comparison: the cube in TLSM's canonical orientation (crossline, inline, time), min-max
   scaled to [-1, 1] and denoised with TLSM preset ``penobscot``; our BRISQUE / PIQE per time
   slice before and after, next to the paper's MATLAB scores (tlsm_paper_slice_scores.csv),
   with means and Spearman rank correlations.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from seiscore.bench.common import md_table, median_time, write_results
from seiscore.data.datasets import PENOBSCOT_DIR
from seiscore.metrics.brisque import model_name
from seiscore.metrics.leakage import leakage_per_slice
from seiscore.metrics.noref import score_stack

DATA = PENOBSCOT_DIR


def load_penobscot(data_dir: Path) -> np.ndarray:
    """The subset in canonical orientation (crossline, inline, time), min-max scaled to [-1, 1] (float32)."""
    cube = np.load(data_dir / "penobscot_250x150x40.npy").transpose(1, 0, 2).astype(np.float64)
    lo, hi = cube.min(), cube.max()
    return (2.0 * (cube - lo) / (hi - lo) - 1.0).astype(np.float32)


def paper_scores(data_dir: Path) -> dict[str, np.ndarray]:
    """The paper's per-slice BRISQUE, NIQE and PIQE scores of the Penobscot cube (CSV columns)."""
    with open(data_dir / "tlsm_paper_slice_scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in ("BRISQUE", "NIQE", "PIQE")}


def nr_metrics(noisy_stack: np.ndarray, denoised_stack: np.ndarray) -> dict[str, np.ndarray]:
    """BRISQUE + PIQE of the denoised slices and leakage of denoised vs removed (one run's QC cost)."""
    s = score_stack(denoised_stack)
    s["leakage"] = leakage_per_slice(denoised_stack, noisy_stack - denoised_stack)[0]
    return s


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a, b).statistic)


def main(argv: list[str] | None = None) -> int:
    """``python -m seiscore.bench metrics``: time the quality metrics, compare with the paper's scores."""
    ap = argparse.ArgumentParser(prog="python -m seiscore.bench metrics", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--data", type=Path, default=DATA, help="folder with penobscot_250x150x40.npy and tlsm_paper_slice_scores.csv"
    )
    args = ap.parse_args(argv)

    from seiscore.methods.tlsm import denoise

    y = load_penobscot(args.data)
    t0 = time.perf_counter()
    x = denoise(y, preset="penobscot")
    t_tlsm = time.perf_counter() - t0
    before = np.moveaxis(y, 2, 0).astype(np.float64)  # time slices (40, 150 crossline, 250 inline)
    after = np.moveaxis(x, 2, 0).astype(np.float64)

    nr_metrics(before, after)  # warm-up (model load, imports)
    t_med, times, res = median_time(lambda: nr_metrics(before, after), args.repeats)
    sb = score_stack(before)
    paper = paper_scores(args.data)
    ours = {
        "brisque_before": sb["brisque"],
        "brisque_after": res["brisque"],
        "piqe_before": sb["piqe"],
        "piqe_after": res["piqe"],
        "leakage": res["leakage"],
    }
    rho = {
        "brisque_after_vs_paper": _rho(ours["brisque_after"], paper["BRISQUE"]),
        "piqe_after_vs_paper": _rho(ours["piqe_after"], paper["PIQE"]),
        "brisque_before_vs_paper": _rho(ours["brisque_before"], paper["BRISQUE"]),
        "piqe_before_vs_paper": _rho(ours["piqe_before"], paper["PIQE"]),
    }
    means = {k: float(np.nanmean(v)) for k, v in ours.items()} | {
        f"paper_{k.lower()}": float(v.mean()) for k, v in paper.items()
    }

    payload = {
        "cube": list(y.shape),
        "brisque_model": model_name(),
        "timing": {
            "nr_metrics_median_s": t_med,
            "nr_metrics_runs_s": times,
            "slices": int(before.shape[0]),
            "tlsm_s": t_tlsm,
            "target_s": 5.0,
        },
        "means": means,
        "spearman": rho,
        "per_slice": {k: v.tolist() for k, v in ours.items()} | {f"paper_{k}": v.tolist() for k, v in paper.items()},
    }
    rows = [
        [
            k,
            float(ours["brisque_before"][k]),
            float(ours["brisque_after"][k]),
            float(paper["BRISQUE"][k]),
            float(ours["piqe_before"][k]),
            float(ours["piqe_after"][k]),
            float(paper["PIQE"][k]),
            float(ours["leakage"][k]),
        ]
        for k in range(before.shape[0])
    ]
    mean_row = [
        "mean",
        means["brisque_before"],
        means["brisque_after"],
        means["paper_brisque"],
        means["piqe_before"],
        means["piqe_after"],
        means["paper_piqe"],
        means["leakage"],
    ]
    md = "\n".join(
        [
            "# Metrics benchmark (Penobscot 250 x 150 x 40)",
            "",
            f"BRISQUE model: {model_name()}. Paper scores: MATLAB brisque/piqe (other model; compare trends).",
            "",
            f"BRISQUE + PIQE + leakage on all {before.shape[0]} time slices: median {t_med:.2f} s over "
            f"{args.repeats} runs "
            f"(runs: {', '.join(f'{t:.2f}' for t in times)}; target <= 5 s). TLSM (preset penobscot) took "
            f"{t_tlsm:.1f} s.",
            "",
            "## Means and rank correlation with the paper (per time slice)",
            "",
            md_table(
                ["measure", "ours before", "ours after (TLSM)", "paper (TLSM)", "Spearman ours-after vs paper"],
                [
                    [
                        "BRISQUE",
                        means["brisque_before"],
                        means["brisque_after"],
                        means["paper_brisque"],
                        rho["brisque_after_vs_paper"],
                    ],
                    [
                        "PIQE",
                        means["piqe_before"],
                        means["piqe_after"],
                        means["paper_piqe"],
                        rho["piqe_after_vs_paper"],
                    ],
                    ["NIQE", "-", "-", means["paper_niqe"], "-"],
                    ["leakage (mean local similarity)", "-", means["leakage"], "-", "-"],
                ],
            ),
            "",
            "Spearman of our *before* scores vs the paper's after-TLSM scores: BRISQUE "
            f"{rho['brisque_before_vs_paper']:.3f}, PIQE {rho['piqe_before_vs_paper']:.3f}.",
            "",
            "## Per time slice",
            "",
            md_table(
                [
                    "slice",
                    "BRISQUE before",
                    "BRISQUE after",
                    "paper BRISQUE",
                    "PIQE before",
                    "PIQE after",
                    "paper PIQE",
                    "leakage",
                ],
                rows + [mean_row],
            ),
        ]
    )
    jp, mp = write_results("metrics", payload, md)
    print(md)
    print(f"\nwrote {jp} and {mp}")
    return 0
