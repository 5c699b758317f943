"""SSB report: held-out quality of every model variant and of TLSM, gate statistics, CPU throughput.

``python -m seiscore.bench ssb [--config configs/ssb_small.yaml] [--repeats 3]`` trains the
configuration (or resumes / reuses a finished run in its ``output_dir``), then scores on the fixed
held-out sections (PSNR / SSIM in the paper convention, each section scored on its own):
the noisy input, each expert's base (same backbone + head, head trained, no LoRA) and LoRA
versions, router-only SSB, joint SSB, the residual variant, and TLSM (preset "synthetic") run on
the held-out cubes the sections are cut from. Gate statistics compare router-only and joint
training (share of pixels with g > 0.5, i.e. where DINOv3 dominates); gate maps go to
``benchmarks/results/ssb_gates.png``. Throughput: median of ``--repeats`` runs on one held-out
cube, sections/s and samples/s, on the CPU (and on CUDA when one is available).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from seiscore.bench.common import RESULTS_DIR, md_table, median_time, write_results
from seiscore.data.synth import from_canonical, to_canonical
from seiscore.methods.ssb import TrainConfig, denoise, load_model, train
from seiscore.methods.ssb.data import heldout_set
from seiscore.methods.ssb.evaluation import summary

# (row label, artifact, mode)
ROWS = [
    ("Swin V2 base (head only, no LoRA)", "base", "swin"),
    ("DINOv3 base (head only, no LoRA)", "base", "dino"),
    ("Swin V2 + LoRA", "direct_router_only", "swin"),
    ("DINOv3 + LoRA", "direct_router_only", "dino"),
    ("SSB router-only", "direct_router_only", "blend"),
    ("SSB joint", "direct_joint", "blend"),
    ("Swin V2 + LoRA, residual", "residual_router_only", "swin"),
    ("DINOv3 + LoRA, residual", "residual_router_only", "dino"),
    ("SSB router-only, residual", "residual_router_only", "blend"),
    ("SSB joint, residual", "residual_joint", "blend"),
]


def training_seconds(out: Path) -> dict[str, float]:
    """Summed epoch wall time per phase, from the run's metrics.jsonl."""
    totals: dict[str, float] = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        totals[m["phase"]] = totals.get(m["phase"], 0.0) + m["seconds"]
    return totals


def tlsm_sections(heldout) -> tuple[np.ndarray, float]:
    """TLSM (preset synthetic) on every held-out cube, cut into the held-out sections; total seconds."""
    from seiscore.methods.tlsm import denoise as tlsm_denoise

    out, t0 = [], time.perf_counter()
    for noisy, _ in heldout.cubes:
        den = from_canonical(tlsm_denoise(to_canonical(noisy), preset="synthetic"))
        out.append(np.moveaxis(den, heldout.axis, 0)[heldout.indices])
    return np.concatenate(out), time.perf_counter() - t0


def gate_figure(path: Path, heldout, models: dict, index: int) -> None:
    """Save a figure of held-out section ``index``: noisy, clean and each model's output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noisy = heldout.noisy[index : index + 1]
    panels = [("noisy", noisy[0], "gray"), ("clean", heldout.clean[index], "gray")]
    for name in ("direct_router_only", "direct_joint", "residual_router_only", "residual_joint"):
        den, gate = denoise(noisy, models[name], axis=0, return_gate=True)
        panels.append((f"g: {name}", gate[0], "coolwarm"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4))
    for ax, (title, img, cmap) in zip(axes, panels):
        kw = {"vmin": 0, "vmax": 1} if cmap == "coolwarm" else {}
        ax.imshow(img.T, cmap=cmap, aspect="auto", **kw)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    level = heldout.levels[heldout.level_of_section()[index]]
    fig.suptitle(
        f"held-out section {index} (F={level[0]}, sigma={level[1]}); gate g=1 -> DINOv3 (red), g=0 -> Swin V2 (blue)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def throughput(cube: np.ndarray, models: dict, repeats: int, device: str, threads: int) -> list[dict]:
    """Sections per second and samples per second of each SSB variant on ``cube`` (median of ``repeats``)."""
    torch.set_num_threads(threads)  # set right before timing: other libraries' thread pools may have changed it
    rows = []
    n_sections, samples = cube.shape[0], cube.size
    for label, name, mode in [
        ("DINOv3 + LoRA", "direct_router_only", "dino"),
        ("Swin V2 + LoRA", "direct_router_only", "swin"),
        ("SSB (two experts + router)", "direct_joint", "blend"),
    ]:
        model = models[name].to(device)
        denoise(cube, model, axis=0, device=device, mode=mode)  # warm-up
        med, times, _ = median_time(lambda: denoise(cube, model, axis=0, device=device, mode=mode), repeats)
        rows.append(
            {
                "model": label,
                "device": device,
                "threads": torch.get_num_threads(),
                "median_s": med,
                "times_s": times,
                "sections_per_s": n_sections / med,
                "samples_per_s": samples / med,
            }
        )
        model.to("cpu")
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m seiscore.bench ssb``: train the small config, then gate figures, quality and throughput."""
    parser = argparse.ArgumentParser(prog="python -m seiscore.bench ssb", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/ssb_small.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-tlsm", action="store_true", help="skip TLSM (e.g. while it is unavailable)")
    args = parser.parse_args(argv)

    cfg = TrainConfig.from_yaml(args.config)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    result = train(cfg)
    train_call_s = time.perf_counter() - t0
    out = Path(cfg.output_dir)
    phase_s = training_seconds(out)
    heldout = heldout_set(cfg.data)
    models = {name: load_model(path) for name, path in result.artifacts.items()}

    scores = {"Noisy input": summary(heldout.clean, heldout.noisy)}
    for label, name, mode in ROWS:
        res = denoise(heldout.noisy, models[name], axis=0, mode=mode, return_gate=mode == "blend")
        est, gate = res if mode == "blend" else (res, None)
        scores[label] = summary(heldout.clean, est, gate)
    tlsm_s = None
    if not args.no_tlsm:
        est, tlsm_s = tlsm_sections(heldout)
        scores["TLSM (preset synthetic, 3-D on the held-out cubes)"] = summary(heldout.clean, est)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    gate_png = RESULTS_DIR / "ssb_gates.png"
    worst = int(np.argmax(heldout.level_of_section()))  # a section of the noisiest level
    gate_figure(gate_png, heldout, models, worst)

    cube = np.moveaxis(heldout.cubes[-1][0], heldout.axis, 0)
    threads = cfg.threads or torch.get_num_threads()
    speed = throughput(cube, models, args.repeats, "cpu", threads)
    if torch.cuda.is_available():
        speed += throughput(cube, models, args.repeats, "cuda", threads)
    if tlsm_s is not None:
        speed.append(
            {
                "model": "TLSM (mean over the held-out cubes)",
                "device": "cpu",
                "threads": "numba/BLAS default",
                "median_s": tlsm_s / len(heldout.cubes),
                "sections_per_s": heldout.cubes[0][0].shape[heldout.axis] * len(heldout.cubes) / tlsm_s,
                "samples_per_s": sum(c[0].size for c in heldout.cubes) / tlsm_s,
            }
        )

    base = {m: scores[f"{n} base (head only, no LoRA)"] for m, n in (("swin", "Swin V2"), ("dino", "DINOv3"))}
    lora = {"swin": scores["Swin V2 + LoRA"], "dino": scores["DINOv3 + LoRA"]}
    best_single = max(lora.values(), key=lambda s: s["ssim"])
    verdicts = {
        "swin_lora_beats_base": lora["swin"]["ssim"] > base["swin"]["ssim"]
        and lora["swin"]["psnr"] > base["swin"]["psnr"],
        "dino_lora_beats_base": lora["dino"]["ssim"] > base["dino"]["ssim"]
        and lora["dino"]["psnr"] > base["dino"]["psnr"],
        "joint_beats_best_single_expert": scores["SSB joint"]["ssim"] > best_single["ssim"]
        and scores["SSB joint"]["psnr"] > best_single["psnr"],
        "residual_joint_beats_best_single_expert": scores["SSB joint, residual"]["ssim"] > best_single["ssim"]
        and scores["SSB joint, residual"]["psnr"] > best_single["psnr"],
    }
    card = json.loads((result.artifacts["direct_joint"] / "model_card.json").read_text())
    payload = {
        "config": json.loads(cfg.model_dump_json()),
        "device": "cpu",
        "torch_threads": threads,
        "training_seconds_per_phase": phase_s,
        "training_seconds_total": sum(phase_s.values()),
        "train_call_seconds_this_run": train_call_s,
        "dataset_hash": result.dataset_hash,
        "heldout": {
            "sections": int(heldout.noisy.shape[0]),
            "shape": list(heldout.noisy.shape[1:]),
            "levels": heldout.levels,
        },
        "parameters": card["parameters"],
        "scores": scores,
        "verdicts": verdicts,
        "throughput": speed,
        "gate_png": str(gate_png),
    }
    gate = lambda v, k: f"{v[k]:.3f}" if k in v else "-"  # noqa: E731
    rows = [
        [k, round(v["psnr"], 2), round(v["ssim"], 4), gate(v, "gate_dino_share"), gate(v, "gate_mean")]
        for k, v in scores.items()
    ]
    srows = [
        [
            s["model"],
            s["device"],
            s["threads"],
            round(s["median_s"], 3),
            round(s["sections_per_s"], 1),
            f"{s['samples_per_s']:.3g}",
        ]
        for s in speed
    ]
    md = "\n\n".join(
        [
            "# SSB report (CPU figures; no GPU was available)",
            f"Config `{args.config}`: {len(heldout.levels)} noise levels, {payload['heldout']['sections']} held-out "
            "sections of "
            f"{heldout.noisy.shape[1]}x{heldout.noisy.shape[2]}; training wall (sum of epochs) "
            f"{payload['training_seconds_total']:.0f} s "
            f"on {threads} torch CPU thread(s), 2 shared cores. Base = same frozen backbone + head, head trained, no "
            "adapters. "
            "Joint SSB continues training the stage-1 experts for the joint epochs; the single experts stop after "
            "stage 1.",
            md_table(["model", "PSNR (dB)", "SSIM", "share g > 0.5 (DINOv3)", "mean g"], rows),
            "Verdicts: " + ", ".join(f"{k}: {v}" for k, v in verdicts.items()),
            f"Throughput on one {cube.shape} cube (sections along axis 0), median of {args.repeats}:",
            md_table(["model", "device", "threads", "median s", "sections/s", "samples/s"], srows),
            f"Gate maps: `{gate_png}`.",
        ]
    )
    json_path, md_path = write_results("ssb", payload, md)
    print(md)
    print(f"\nwritten {json_path} and {md_path}")
    return 0
