"""QC of a SIREN velocity archive: one self-contained HTML page (PNG images embedded, also left beside it).

Sections:

- summary: models, bytes per model, the three compression ratios, codec mix, max error;
- quality per family (spec §3 metrics, mean ± std): PSNR_g (peak = the 3000 m/s range), PSNR_l (peak = each
  true model's own range), SSIM (data_range 3000), MSE_n on ``(v - 1500) / 3000``, max |error| (m/s) — for what
  the archive returns (each model through its codec) and for the SIREN latent alone;
- the worst models (lowest latent-only PSNR_g): true / decoded / error images;
- an interpolation strip between two models, ``z(a) = (1 - a) z_A + a z_B``, a in {0, 1/6, ..., 1};
- super-resolution at 2x and 4x against the analytic truth when the collection came from the generator
  (:mod:`seiscore.data.openfwi_synth`; the store's ``generator`` attribute holds the recipe), next to bicubic
  upsampling of the decoded native grid;
- the archive's lineage.

``metrics.json`` beside the page holds every number.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ALPHAS = (0.0, 1 / 6, 1 / 3, 0.5, 2 / 3, 5 / 6, 1.0)
SR_FACTORS = (2, 4)
METRIC_COLUMNS = ("psnr_g", "psnr_l", "ssim", "mse_n", "max_err")


def model_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Per-model spec §3 metrics of ``pred`` against ``true`` (both (N, nz, nx) m/s): arrays of shape (N,)."""
    from seiscore.metrics import velocity as vm

    return {
        "psnr_g": np.asarray(vm.psnr_global(pred, true), dtype=np.float64),
        "psnr_l": np.asarray(vm.psnr_local(pred, true), dtype=np.float64),
        "ssim": np.asarray(vm.ssim_velocity(pred, true), dtype=np.float64),
        "mse_n": np.asarray(vm.mse_normalised(pred, true), dtype=np.float64),
        "max_err": np.asarray(vm.max_abs_error(pred, true), dtype=np.float64),
    }


def family_table(
    metrics: dict[str, np.ndarray], family: Sequence[str] | None, extra: dict[str, Sequence] | None = None
) -> list[dict[str, Any]]:
    """One row per family (and ``all``): count, mean and std of each metric (finite values; PSNR of an exact
    model is infinite and left out of its mean, the count of exact models is given)."""
    n = len(next(iter(metrics.values())))
    labels = np.asarray(list(family) if family is not None else ["all"] * n, dtype=object)
    groups = [(f, labels == f) for f in dict.fromkeys(labels.tolist())]
    if len(groups) > 1:
        groups.append(("all", np.ones(n, bool)))
    rows = []
    for name, mask in groups:
        row: dict[str, Any] = {"family": str(name), "models": int(mask.sum())}
        for key, values in metrics.items():
            v = values[mask]
            finite = v[np.isfinite(v)]
            row[key] = round(float(finite.mean()), 6) if finite.size else None
            row[f"{key}_std"] = round(float(finite.std()), 6) if finite.size else None
            if key == "psnr_g" and finite.size < v.size:
                row["exact"] = int(v.size - finite.size)
        for key, values in (extra or {}).items():
            sub = [values[i] for i in np.flatnonzero(mask)]
            if sub and isinstance(sub[0], str):
                counts: dict[str, int] = {}
                for s in sub:
                    counts[s] = counts.get(s, 0) + 1
                row[key] = ", ".join(f"{k} {c}" for k, c in sorted(counts.items()))
            else:
                row[key] = round(float(np.mean(sub)), 1) if sub else None
        rows.append(row)
    return rows


def bicubic(models: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic (order-3 spline) resampling of (N, nz, nx) models to ``shape`` with corners kept in place (the
    same sample positions as decoding on ``linspace(-1, 1, k)``)."""
    from scipy.ndimage import zoom

    n, nz, nx = models.shape
    factors = (1.0, (shape[0] - 1) / max(nz - 1, 1), (shape[1] - 1) / max(nx - 1, 1))
    out = zoom(np.asarray(models, dtype=np.float64), factors, order=3, mode="nearest", grid_mode=False)
    return np.ascontiguousarray(out[:, : shape[0], : shape[1]], dtype=np.float32)


def generator_descriptions(generator: dict[str, Any] | None, n: int) -> list[dict[str, Any]] | None:
    """The first ``n`` model descriptions of the generator recipe ``generator`` (the store's ``generator``
    attribute), or None when the collection did not come from the generator (or the recipe has too few)."""
    if not generator:
        return None
    from seiscore.data.openfwi_synth import describe

    families, per = list(generator["families"]), int(generator["n_per_family"])
    descriptions = [describe(f, i, int(generator["seed"])) for f in families for i in range(per)]
    return descriptions[:n] if len(descriptions) >= n else None


def super_resolution(
    decoder, latents: np.ndarray, true: np.ndarray, truth: Callable[[tuple[int, int]], np.ndarray] | None = None
) -> list[dict[str, Any]]:
    """PSNR_g / SSIM at 2x and 4x: the SIREN decoded on the finer grid, and bicubic upsampling of its native
    decoding, against the analytic truth ``truth(shape)`` (when given: the generator's models rendered there)
    and against the bicubic upsampling of the native truth ``true``."""
    n, nz, nx = true.shape
    native = decoder.decode(latents, shape=(nz, nx))
    base = model_metrics(native, true)
    rows: list[dict[str, Any]] = [
        {
            "factor": 1,
            "shape": f"{nz}x{nx}",
            "siren_vs_truth_psnr_g": round(float(np.nanmean(base["psnr_g"])), 3),
            "siren_vs_truth_ssim": round(float(np.mean(base["ssim"])), 4),
            "bicubic_vs_truth_psnr_g": None,
            "siren_vs_bicubic_truth_psnr_g": None,
            "analytic": truth is not None,
        }
    ]
    for k in SR_FACTORS:
        shape = (nz * k, nx * k)
        fine = decoder.decode(latents, shape=shape)
        row: dict[str, Any] = {"factor": k, "shape": f"{shape[0]}x{shape[1]}"}
        exact = truth(shape) if truth is not None else None
        if exact is not None:
            m, b = model_metrics(fine, exact), model_metrics(bicubic(native, shape), exact)
            row.update(
                siren_vs_truth_psnr_g=round(float(np.mean(m["psnr_g"])), 3),
                siren_vs_truth_ssim=round(float(np.mean(m["ssim"])), 4),
                bicubic_vs_truth_psnr_g=round(float(np.mean(b["psnr_g"])), 3),
            )
        else:
            row.update(siren_vs_truth_psnr_g=None, siren_vs_truth_ssim=None, bicubic_vs_truth_psnr_g=None)
        row["siren_vs_bicubic_truth_psnr_g"] = round(
            float(np.mean(model_metrics(fine, bicubic(true, shape))["psnr_g"])), 3
        )
        row["analytic"] = exact is not None
        rows.append(row)
    return rows


def interpolation(
    decoder, latents: np.ndarray, a: int, b: int, shape: tuple[int, int]
) -> tuple[np.ndarray, list[dict]]:
    """Decoded models along ``z(alpha)`` between latents ``a`` and ``b`` and, per alpha, MSE_n to the two end
    reconstructions and the fraction of samples outside 1500-4500 m/s."""
    path = np.asarray(decoder.interpolate(latents[a], latents[b], ALPHAS), dtype=np.float32)
    strip = decoder.decode(path, shape=shape)
    ends = strip[[0, -1]]
    vn = (strip - 1500.0) / 3000.0
    rows = [
        {
            "alpha": round(al, 3),
            "mse_to_a": float(np.mean(((strip[i] - ends[0]) / 3000.0) ** 2)),
            "mse_to_b": float(np.mean(((strip[i] - ends[1]) / 3000.0) ** 2)),
            "outside_range": float(np.mean((vn[i] < 0) | (vn[i] > 1))),
        }
        for i, al in enumerate(ALPHAS)
    ]
    return strip, rows


def _save_rows(path: Path, rows: list[tuple[str, list[np.ndarray]]], cols: list[str]) -> Path:
    """A grid of velocity images: one row per entry (label, images), columns titled ``cols``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nr, nc = len(rows), max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(nr, nc, figsize=(2.4 * nc, 2.2 * nr), squeeze=False)
    for i, (label, images) in enumerate(rows):
        vmin = min(float(im.min()) for im in images[:2])
        vmax = max(float(im.max()) for im in images[:2])
        for j, im in enumerate(images):
            ax = axes[i][j]
            is_err = cols[j].startswith("error")
            lim = max(float(np.abs(im).max()), 1e-6) if is_err else None
            h = ax.imshow(
                im,
                cmap="seismic" if is_err else "viridis",
                vmin=-lim if is_err else vmin,
                vmax=lim if is_err else vmax,
                aspect="auto",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(label, fontsize=7)
            fig.colorbar(h, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        for j in range(len(images), nc):
            axes[i][j].axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _html_table(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p>none</p>"
    columns = list(columns or rows[0].keys())

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}"
        return html.escape("-" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_velocity_qc(
    archive: str | os.PathLike,
    source: str | os.PathLike,
    folder: str | os.PathLike,
    *,
    title: str | None = None,
    worst: int = 3,
    max_models: int | None = 2000,
) -> dict[str, Any]:
    """Write the QC page of ``archive`` against its collection ``source`` into ``folder`` (``report.html``,
    ``images/``, ``metrics.json``; the page written atomically, the folder marked as the product's). Returns
    ``{"report", "families", "families_latent", "overall", "super_resolution", "interpolation", "images"}``.
    ``max_models``: the first models only (QC of very large archives stays cheap)."""
    from seiscore.core.safety import mark_owned
    from seiscore.execution.velocity import read_models
    from seiscore.methods.siren.archive import open_archive
    from seiscore.qc.images import data_uri
    from seiscore.qc.report import CSS

    folder = Path(folder)
    img = folder / "images"
    img.mkdir(parents=True, exist_ok=True)
    mark_owned(folder)
    arc = open_archive(archive)
    n = len(arc.names) if max_models is None else min(len(arc.names), max_models)
    true = read_models(source, 0, n)
    idx = list(range(n))
    decoded = np.asarray(arc.decode(idx), dtype=np.float32)
    decoder = arc.decoder
    latents = np.asarray(arc.latents[:n], dtype=np.float32)
    shape = tuple(true.shape[1:])
    latent_only = decoder.decode(latents, shape=shape)
    family = list(arc.family[:n]) if getattr(arc, "family", None) is not None else None
    codecs = list(arc.codecs[:n]) if getattr(arc, "codecs", None) is not None else ["siren"] * n
    m_arc, m_lat = model_metrics(decoded, true), model_metrics(latent_only, true)
    card = dict(arc.card or {})
    rows = family_table(m_arc, family, {"codecs": codecs})
    rows_lat = family_table(m_lat, family)
    overall = {k: v for k, v in rows[-1].items() if k != "family"}

    images: dict[str, Path] = {}
    order = np.argsort(np.where(np.isfinite(m_lat["psnr_g"]), m_lat["psnr_g"], np.inf))[: max(1, min(worst, n))]
    images["worst"] = _save_rows(
        img / "worst_models.png",
        [
            (
                f"{arc.names[i]} ({family[i] if family else ''}) {m_lat['psnr_g'][i]:.1f} dB",
                [true[i], latent_only[i], latent_only[i] - true[i], decoded[i] - true[i]],
            )
            for i in order
        ],
        ["true", "SIREN decoded", "error SIREN (m/s)", f"error archive [{codecs[order[0]]}] (m/s)"],
    )
    a, b = 0, n - 1
    if family:
        other = [i for i in range(n) if family[i] != family[0]]
        b = other[0] if other else b
    strip, interp = interpolation(decoder, latents, a, b, shape)
    images["interpolation"] = _save_rows(
        img / "interpolation.png",
        [(f"{arc.names[a]} -> {arc.names[b]}", list(strip))],
        [f"a={al:.2f}" for al in ALPHAS],
    )
    k = min(n, 64)
    descriptions = generator_descriptions(card.get("generator"), k)
    truth = None
    if descriptions is not None:
        from seiscore.data.openfwi_synth import render

        truth = lambda shape: render(descriptions, shape)  # noqa: E731 - the analytic models at any grid
    sr = super_resolution(decoder, latents[:k], true[:k], truth)

    metrics = {
        "archive": str(archive),
        "card": card,
        "families": rows,
        "families_latent": rows_lat,
        "overall": overall,
        "super_resolution": sr,
        "interpolation": {"models": [arc.names[a], arc.names[b]], "rows": interp},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    sizes = card.get("sizes", {})
    summary = [
        {"item": "models", "value": len(arc.names)},
        {"item": "grid", "value": f"{shape[0]} x {shape[1]}"},
        {"item": "latent", "value": f"{latents.shape[1]} x {card.get('latent_dtype', 'float32')}"},
        *({"item": k, "value": v} for k, v in sizes.items()),
        {"item": "codec mix", "value": ", ".join(f"{k} {v}" for k, v in (card.get("codec_mix") or {}).items())},
        {"item": "max error bound (m/s)", "value": card.get("max_error")},
        {"item": "max |error| over models (m/s)", "value": card.get("max_abs_error")},
    ]
    cols = ["family", "models", *(c for k in METRIC_COLUMNS for c in (k, f"{k}_std"))]
    lineage = getattr(arc, "attrs", {}).get("lineage") if hasattr(arc, "attrs") else None
    name = title or Path(archive).name
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Velocity archive QC - '
        f"{html.escape(name)}</title><style>{CSS}</style></head><body>",
        f"<h1>Velocity archive QC: {html.escape(name)}</h1>",
        '<section id="summary"><h2>Summary</h2>' + _html_table(summary) + "</section>",
        '<section id="families"><h2>Quality per family: what the archive returns</h2>'
        + _html_table(rows, cols + ["codecs"])
        + "<h3>SIREN latent alone</h3>"
        + _html_table(rows_lat, cols)
        + '<p class="note">PSNR_g: peak = 3000 m/s (the 1500-4500 m/s range); PSNR_l: peak = the true model\'s own '
        "range; SSIM with data_range 3000; MSE_n on (v - 1500) / 3000; max_err in m/s. Exact models (lossless) "
        "have infinite PSNR and are counted, not averaged.</p></section>",
        '<section id="worst"><h2>Worst models (latent alone)</h2>'
        + f'<div class="row"><img alt="worst models" src="{data_uri(images["worst"])}"></div></section>',
        '<section id="interpolation"><h2>Latent interpolation</h2>'
        + f'<div class="row"><img alt="interpolation" src="{data_uri(images["interpolation"])}"></div>'
        + _html_table(interp)
        + "</section>",
        '<section id="super-resolution"><h2>Super-resolution</h2>'
        + _html_table(sr)
        + '<p class="note">siren_vs_truth: the decoder sampled on the finer grid against the generator\'s analytic '
        "model rendered there (a true test); bicubic_vs_truth: bicubic upsampling of the native decoding against the "
        "same truth; siren_vs_bicubic_truth: against the bicubically upsampled native truth (the paper's likely "
        "reference). First 64 models.</p></section>",
        '<section id="lineage"><h2>Lineage</h2><pre>'
        + html.escape(json.dumps(lineage or card, indent=2, default=str))
        + "</pre></section></body></html>\n",
    ]
    report = folder / "report.html"
    tmp = report.with_name(f".{report.name}.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, report)
    return {
        "report": str(report),
        "families": rows,
        "families_latent": rows_lat,
        "overall": overall,
        "super_resolution": sr,
        "interpolation": interp,
        "images": {k: str(v) for k, v in images.items()},
    }
