"""Benchmark ``siren``: SIREN auto-decoder compression of OpenFWI-like velocity models against the codecs.

    python -m seiscore.bench siren [--quick] [--device cpu|cuda] [--no-sweep]

On models of the ten OpenFWI-like families (:mod:`seiscore.data.openfwi_synth`; ``train`` per family fitted
jointly with the decoder, ``test`` per family held out and encoded with the decoder frozen):

1. spec §3 metrics (PSNR_g, PSNR_l, SSIM, MSE_n, max |error|) per family for the training-set reconstruction
   AND the held-out encoding (float32 and float16 latents);
2. every baseline at the same bytes as the held-out latent (ZFP, SZ3, JPEG 2000, PCA with a basis of the
   decoder's size, down/up-sampling; the codecs' equal-bytes function), and the codecs at 1,024 / 512 B;
3. super-resolution at 2x and 4x against the analytic truth (the generator renders the same description on
   the finer grid) and against bicubic upsampling;
4. latent interpolation (MSE_n to both ends, fraction outside 1500-4500 m/s);
5. encode / decode time per model on the device, for the benchmark's decoder and (decode, and a few encode
   steps extrapolated to the configured steps) for the paper's 1.18 M-parameter decoder;
6. a latent-size sweep {32, 64, 128, 256} (fewer epochs) unless ``--no-sweep``;
7. codec selection at 10 m/s: which codec wins per family, mean bytes against the best single codec, the bound
   checked on every model.

``--quick``: a small decoder (width 64, 2 hidden, latent 32) on CPU in minutes; the full run is the paper's
decoder on a GPU. Results: ``benchmarks/results/siren[_quick].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from seiscore.bench.common import md_table, write_results

QUICK = {
    "shape": (32, 32),
    "train": 8,
    "test": 2,
    "epochs": 200,
    "encode_steps": 200,
    "config": {
        "width": 64,
        "hidden": 2,
        "latent_dim": 32,
        "lr_decoder": 1e-3,
        "lr_latent": 5e-2,
        "lam": 1e-6,
        "batch_maps": 16,
        "patience": 20,
    },
    "budgets": (256, 512),
    "sweep": (32, 64, 128, 256),
    "sweep_epochs": 80,
}
FULL = {
    "shape": (70, 70),
    "train": 160,
    "test": 40,
    "epochs": 3000,
    "encode_steps": 1000,
    "config": {},
    "budgets": (1024, 512),
    "sweep": (32, 64, 128, 256),
    "sweep_epochs": 1000,
}
SELECT_CODECS = ("sz3", "zfp", "jpeg2k", "qzstd")


def _split(per_train: int, per_test: int, shape: tuple[int, int], seed: int):
    """Train and held-out models of every family (same generator, disjoint indices)."""
    from seiscore.data.openfwi_synth import generate

    models, names, labels, desc = generate(per_train + per_test, shape=shape, seed=seed)
    per = per_train + per_test
    idx = np.arange(len(names))
    train = idx[(idx % per) < per_train]
    test = idx[(idx % per) >= per_train]
    pick = lambda ix: (models[ix], [names[i] for i in ix], [labels[i] for i in ix], [desc[i] for i in ix])  # noqa: E731
    return pick(train), pick(test)


def _fit(models, names, config, folder: Path) -> tuple[Any, dict, float]:
    from seiscore.execution.fit import FitRun
    from seiscore.methods.siren.train import fit_autodecoder, load_decoder

    run = FitRun(folder, config, seed=0)
    t0 = time.perf_counter()
    summary = fit_autodecoder(models, names, config, run)
    seconds = time.perf_counter() - t0
    decoder, _ = load_decoder(folder / "artifacts" / "decoder")
    return decoder.to(config.device), summary, seconds


def _rows(table: list[dict], keys: tuple[str, ...] = ("psnr_g", "psnr_l", "ssim", "mse_n", "max_err")) -> list[list]:
    out = []
    for r in table:
        row = [r["family"], r["models"]]
        for k in keys:
            v, s = r.get(k), r.get(f"{k}_std")
            row.append("-" if v is None else (f"{v:.4g} ± {s:.2g}" if s is not None else f"{v:.4g}"))
        out.append(row)
    return out


def _baselines(train: np.ndarray, test: np.ndarray, budget: int, decoder_params: int, labels=None) -> dict[str, dict]:
    """Every baseline at ``budget`` bytes per held-out model (the codecs' equal-bytes function): ZFP, SZ3,
    JPEG 2000, qzstd, down/up-sampling, PCA with a basis of the decoder's size (``pca-K``, K = parameters /
    points) and PCA with every training component (``pca-all``). Row per codec: PSNR_g, SSIM, max error, bytes."""
    from seiscore.methods.siren.codecs import equal_bytes_table, fit_pca

    n_points = int(np.prod(test.shape[1:]))
    fair = fit_pca(train, n_components=max(1, decoder_params // n_points))
    rows = equal_bytes_table(test, budget, codecs=("zfp", "sz3", "jpeg2k", "qzstd", "downsample"), families=labels)
    rows += equal_bytes_table(test, budget, pca_basis=fair, codecs=("pca",), families=labels)
    full = equal_bytes_table(test, budget, pca_basis=fit_pca(train, n_components=len(train)), codecs=("pca",))
    rows += [{**r, "codec": "pca-all"} for r in full]
    out = {}
    for r in rows:
        if not r.get("n"):
            out[r["codec"]] = {"error": f"no model fits {budget} B"}
            continue
        out[r["codec"]] = {
            "psnr_g": r["psnr_g"],
            "ssim": r["ssim"],
            "max_err": r["max_abs_error"],
            "bytes": r["mean_bytes"],
            "failed": r["n_failed"],
            **({"psnr_g_by_family": r["psnr_g_by_family"]} if "psnr_g_by_family" in r else {}),
        }
    return out


def _time_per_model(fn, n: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / max(n, 1)


def _paper_cost(device: str, shape: tuple[int, int]) -> dict[str, float]:
    """Decode time of one model and encode time per step (batch of 2) of the paper's decoder (random weights:
    the cost does not depend on them), the encode time per model extrapolated to 1000 steps."""
    import torch

    from seiscore.methods.siren.config import AutoDecoderConfig
    from seiscore.methods.siren.encode import encode_models
    from seiscore.methods.siren.model import VelocityAutoDecoder

    config = AutoDecoderConfig(device=device, encode_steps=1, batch_maps=2)
    dec = VelocityAutoDecoder(config, generator=torch.Generator().manual_seed(0)).to(device).eval()
    z = np.zeros((1, config.latent_dim), np.float32)
    dec.decode(z, shape=shape)  # warm-up
    reps = 3
    decode_s = _time_per_model(lambda: [dec.decode(z, shape=shape) for _ in range(reps)], reps)
    models = np.full((2, *shape), 2500.0, np.float32)
    t0 = time.perf_counter()
    encode_models(dec, models, config)
    per_step_per_model = (time.perf_counter() - t0) / 2
    return {
        "decode_s_per_model": round(decode_s, 4),
        "encode_s_per_step_per_model": round(per_step_per_model, 4),
        "encode_s_per_model_1000_steps": round(per_step_per_model * 1000, 1),
        "parameters": int(sum(p.numel() for p in dec.decoder.parameters())),
    }


def _selection(decoder, test: np.ndarray, latents: np.ndarray, labels: list[str], max_error: float) -> dict:
    """Codec selection at ``max_error``: the per-model choice against each single codec."""
    from seiscore.execution.velocity import choose_codecs
    from seiscore.methods.siren import codecs

    names, _, nbytes, errors = choose_codecs(decoder, test, latents, max_error)
    single = {}
    for c in SELECT_CODECS:
        sizes = [len(codecs.encode_to_error(c, m, max_error)) for m in test]
        single[c] = float(np.mean(sizes))
    best = min(single, key=single.get)
    per_family: dict[str, dict[str, int]] = {}
    for f, n in zip(labels, names):
        per_family.setdefault(f, {})
        per_family[f][n] = per_family[f].get(n, 0) + 1
    return {
        "max_error": max_error,
        "mean_bytes_selected": float(np.mean(nbytes)),
        "single_codec_mean_bytes": single,
        "best_single": best,
        "selected_le_best_single": bool(np.mean(nbytes) <= single[best]),
        "bound_met_everywhere": bool(max(errors) <= max_error + 1e-6),
        "largest_error": float(max(errors)),
        "wins": {k: v for k, v in sorted(per_family.items())},
    }


def run(quick: bool, device: str, sweep: bool, seed: int = 0) -> dict[str, Any]:
    """Run every part; returns the result payload."""
    import torch

    from seiscore.data.openfwi_synth import render
    from seiscore.execution.velocity import latent_roundtrip
    from seiscore.methods.siren.config import AutoDecoderConfig
    from seiscore.methods.siren.encode import encode_models
    from seiscore.qc.velocity import family_table, interpolation, model_metrics, super_resolution

    torch.set_num_threads(max(1, torch.get_num_threads()))
    p = QUICK if quick else FULL
    shape = tuple(p["shape"])
    (train, tr_names, tr_labels, _), (test, te_names, te_labels, te_desc) = _split(p["train"], p["test"], shape, seed)
    config = AutoDecoderConfig(
        **{**p["config"], "epochs": p["epochs"], "encode_steps": p["encode_steps"], "device": device}
    )
    out: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "device": device,
        "shape": list(shape),
        "train_models": len(tr_names),
        "test_models": len(te_names),
        "config": config.model_dump(),
    }
    with tempfile.TemporaryDirectory(prefix="seis_bench_siren_") as tmp:
        decoder, summary, fit_s = _fit(train, tr_names, config, Path(tmp) / "fit")
        out["fit_seconds"] = round(fit_s, 1)
        params = int(sum(q.numel() for q in decoder.decoder.parameters()))
        out["decoder_parameters"] = params
        # 1. training-set reconstruction and held-out encoding
        recon = decoder.decode(decoder.latents, shape=shape)
        out["train"] = family_table(model_metrics(recon, train), tr_labels)
        t0 = time.perf_counter()
        latents = encode_models(decoder, test, config, seed=seed)
        encode_s = (time.perf_counter() - t0) / len(te_names)
        held = decoder.decode(latents, shape=shape)
        out["held_out"] = family_table(model_metrics(held, test), te_labels)
        held16 = decoder.decode(latent_roundtrip(latents, "float16"), shape=shape)
        out["held_out_float16"] = family_table(model_metrics(held16, test), te_labels)[-1]
        # 2. baselines at equal bytes
        budget = config.latent_dim * 4
        out["equal_bytes"] = {
            "budget": budget,
            "siren": {
                "psnr_g": out["held_out"][-1]["psnr_g"],
                "ssim": out["held_out"][-1]["ssim"],
                "max_err": out["held_out"][-1]["max_err"],
                "bytes": budget,
            },
            **_baselines(train, test, budget, params, te_labels),
        }
        out["codecs_at"] = {b: _baselines(train, test, b, params) for b in p["budgets"]}
        # 3. super-resolution against the analytic truth
        out["super_resolution_held_out"] = super_resolution(decoder, latents, test, lambda s: render(te_desc, s))
        # 4. interpolation: two models of different families
        a, b = 0, next(i for i, f in enumerate(te_labels) if f != te_labels[0])
        _, interp = interpolation(decoder, latents, a, b, shape)
        out["interpolation"] = {"models": [te_names[a], te_names[b]], "rows": interp}
        # 5. cost per model
        reps = max(1, len(te_names))
        decode_s = _time_per_model(lambda: decoder.decode(latents, shape=shape), reps)
        out["cost"] = {
            "device": device,
            "benchmark_decoder": {
                "decode_s_per_model": round(decode_s, 5),
                "encode_s_per_model": round(encode_s, 3),
                "encode_steps": config.encode_steps,
            },
            "paper_decoder": _paper_cost(device, (70, 70)),  # the spec's cost target: one 70 x 70 model
        }
        # 7. codec selection at 10 m/s
        out["selection"] = _selection(decoder, test, latents, te_labels, 10.0)
        # 6. latent sweep
        if sweep:
            rows = []
            for dim in p["sweep"]:
                cfg = config.model_copy(update={"latent_dim": dim, "epochs": p["sweep_epochs"]})
                dec, _, sec = _fit(train, tr_names, cfg, Path(tmp) / f"sweep_{dim}")
                lat = encode_models(dec, test, cfg, seed=seed)
                m = model_metrics(dec.decode(lat, shape=shape), test)
                base = _baselines(train, test, dim * 4, params)
                rows.append(
                    {
                        "latent_dim": dim,
                        "bytes": dim * 4,
                        "siren_psnr_g": float(np.mean(m["psnr_g"])),
                        "fit_seconds": round(sec, 1),
                        **{f"{k}_psnr_g": v.get("psnr_g") for k, v in base.items()},
                    }
                )
            out["latent_sweep"] = rows
    return out


def markdown(r: dict[str, Any]) -> str:
    """The result tables as markdown."""
    cols = ["family", "models", "PSNR_g dB", "PSNR_l dB", "SSIM", "MSE_n", "max err m/s"]
    lines = [
        f"# SIREN velocity archive benchmark ({r['mode']}, {r['device']})",
        "",
        f"{r['train_models']} training / {r['test_models']} held-out models of {r['shape'][0]} x {r['shape'][1]} "
        f"(ten OpenFWI-like families); decoder {r['decoder_parameters']:,} parameters (width "
        f"{r['config']['width']}, hidden {r['config']['hidden']}, latent {r['config']['latent_dim']}), "
        f"{r['config']['epochs']} epochs in {r['fit_seconds']} s; "
        f"held-out encoding {r['config']['encode_steps']} steps.",
        "",
        "## Training-set reconstruction",
        md_table(cols, _rows(r["train"])),
        "",
        "## Held-out encoding (decoder frozen)",
        md_table(cols, _rows(r["held_out"])),
        "",
        f"float16 latents (all held-out): PSNR_g {r['held_out_float16']['psnr_g']:.4g} dB, "
        f"SSIM {r['held_out_float16']['ssim']:.4g}.",
        "",
        f"## Equal bytes: {r['equal_bytes']['budget']} B per model (the held-out latent)",
    ]
    eq = [
        [
            k,
            *(
                f"{v[c]:.4g}" if isinstance(v.get(c), float) else v.get(c, "-")
                for c in ("psnr_g", "ssim", "max_err", "bytes")
            ),
        ]
        if "error" not in v
        else [k, v["error"], "", "", ""]
        for k, v in r["equal_bytes"].items()
        if k != "budget"
    ]
    lines += [md_table(["method", "PSNR_g dB", "SSIM", "max err m/s", "mean bytes"], eq), ""]
    for b, res in r["codecs_at"].items():
        rows = [
            [k, *(f"{v[c]:.4g}" for c in ("psnr_g", "ssim", "bytes"))] if "error" not in v else [k, v["error"], "", ""]
            for k, v in res.items()
        ]
        lines += [f"### Codecs at {b} B", md_table(["codec", "PSNR_g dB", "SSIM", "mean bytes"], rows), ""]
    sr = r["super_resolution_held_out"]
    bd = r["cost"]["benchmark_decoder"]
    lines += [
        "## Super-resolution (held-out latents)",
        md_table(
            [
                "factor",
                "grid",
                "SIREN vs analytic PSNR_g",
                "SIREN vs analytic SSIM",
                "bicubic(decoded) vs analytic",
                "SIREN vs bicubic(truth)",
            ],
            [
                [
                    s["factor"],
                    s["shape"],
                    s["siren_vs_truth_psnr_g"],
                    s["siren_vs_truth_ssim"],
                    s["bicubic_vs_truth_psnr_g"] or "-",
                    s["siren_vs_bicubic_truth_psnr_g"] or "-",
                ]
                for s in sr
            ],
        ),
        "",
        f"## Interpolation {r['interpolation']['models'][0]} -> {r['interpolation']['models'][1]}",
        md_table(
            ["alpha", "MSE_n to A", "MSE_n to B", "outside 1500-4500"],
            [[x["alpha"], x["mse_to_a"], x["mse_to_b"], x["outside_range"]] for x in r["interpolation"]["rows"]],
        ),
        "",
        f"## Cost per model ({r['cost']['device']})",
        md_table(
            ["decoder", "decode s/model", "encode s/model"],
            [
                [
                    "benchmark",
                    r["cost"]["benchmark_decoder"]["decode_s_per_model"],
                    f"{bd['encode_s_per_model']} ({bd['encode_steps']} steps)",
                ],
                [
                    f"paper ({r['cost']['paper_decoder']['parameters']:,} params)",
                    r["cost"]["paper_decoder"]["decode_s_per_model"],
                    f"{r['cost']['paper_decoder']['encode_s_per_model_1000_steps']} (1000 steps, extrapolated)",
                ],
            ],
        ),
        "",
    ]
    s = r["selection"]
    lines += [
        f"## Codec selection at {s['max_error']} m/s (held-out)",
        f"Mean bytes selected {s['mean_bytes_selected']:.1f} vs best single codec {s['best_single']} "
        f"{s['single_codec_mean_bytes'][s['best_single']]:.1f} (selected <= best: {s['selected_le_best_single']}); "
        f"bound met on every model: {s['bound_met_everywhere']} (largest {s['largest_error']:.3g} m/s).",
        "",
        md_table(["single codec", "mean bytes"], [[k, v] for k, v in s["single_codec_mean_bytes"].items()]),
        "",
        md_table(
            ["family", "codec wins"], [[f, ", ".join(f"{k} {v}" for k, v in w.items())] for f, w in s["wins"].items()]
        ),
        "",
    ]
    if r.get("latent_sweep"):
        keys = [k for k in r["latent_sweep"][0] if k.endswith("_psnr_g") and k != "siren_psnr_g"]
        lines += [
            "## Latent sweep (equal bytes = the latent's)",
            md_table(
                ["latent", "bytes", "SIREN PSNR_g", *keys, "fit s"],
                [
                    [
                        x["latent_dim"],
                        x["bytes"],
                        x["siren_psnr_g"],
                        *(x[k] if x[k] is not None else "-" for k in keys),
                        x["fit_seconds"],
                    ]
                    for x in r["latent_sweep"]
                ],
            ),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m seiscore.bench siren [--quick] [--device D] [--no-sweep]``."""
    import torch

    parser = argparse.ArgumentParser(prog="python -m seiscore.bench siren", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small decoder on CPU in minutes")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the latent-size sweep")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    result = run(args.quick, device, sweep=not args.no_sweep, seed=args.seed)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    name = "siren_quick" if args.quick else "siren"
    js, md = write_results(name, result, markdown(result))
    print(markdown(result))
    print(f"\nwrote {js} and {md} ({result['seconds']} s)")
    return 0
