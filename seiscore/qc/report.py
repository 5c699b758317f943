"""The QC report: one self-contained static HTML file (images embedded as base64 PNG).

Sections: summary, before / after / removed-noise images of each view of the data kind (post-stack:
an inline, a crossline and a time slice), the signal-leakage map, average amplitude spectra with
removed energy per band, metrics per time slice with their means, and the lineage summary when present. The PNGs
are also left in ``<report stem>_images/`` next to the HTML (for Prefect artifacts).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from seiscore.data.kinds import POSTSTACK3D, DataKind, as_kind
from seiscore.io.store import has_consolidated_metadata
from seiscore.metrics.leakage import leakage_per_slice
from seiscore.qc.config import QCConfig
from seiscore.qc.images import (
    _extent,
    _section,
    _views,
    data_uri,
    leakage_image,
    section_images,
    section_views,
    spectra_image,
)
from seiscore.qc.metrics import quality_metrics, volume_metrics

CSS = """body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}td.k{text-align:left;font-weight:bold}tr.mean td{font-weight:bold;background:#f4f4f4}
.row{display:flex;flex-wrap:wrap;gap:8px}.row img{max-width:32%;min-width:300px}p.note{color:#555;max-width:70em}"""


def open_amplitude(store, kind: str | DataKind = POSTSTACK3D) -> xr.Dataset:
    """Open a store (Zarr) lazily and check it holds the kind's variable with the kind's dims (post-stack:
    ``amplitude`` over inline, crossline, sample)."""
    from seiscore.io import location

    kind = as_kind(kind)
    path = location.normalize(store)
    if not location.exists(path):
        raise FileNotFoundError(f"survey store not found: {path}")
    try:
        ds = xr.open_zarr(location.zarr_store(path, read_only=True), consolidated=has_consolidated_metadata(path))
    except Exception as exc:  # zarr raises several types for "not a store"
        raise ValueError(f"{path} is not a readable Zarr survey store: {exc}") from exc
    var = kind.variable
    if var not in ds:
        raise ValueError(f"{path} has no {var!r} variable (variables: {sorted(ds.data_vars)})")
    if set(kind.dims) - set(ds[var].dims):
        raise ValueError(f"{path}: {var!r} must have dims ({', '.join(kind.dims)}), got {ds[var].dims}")
    return ds


def _fmt(v, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1e5 else f"{v:.3e}"
    return html.escape(str(v))


def _table(headers: list[str], rows: list[list], mean_row: list | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{_fmt(v, 3)}</td>" for v in r) + "</tr>")
    if mean_row is not None:
        out.append('<tr class="mean">' + "".join(f"<td>{_fmt(v, 3)}</td>" for v in mean_row) + "</tr>")
    return "\n".join(out) + "</table>"


def _kv(rows: list[tuple[str, object]]) -> str:
    return (
        "<table>"
        + "".join(f'<tr><td class="k">{html.escape(k)}</td><td>{_fmt(v)}</td></tr>' for k, v in rows)
        + "</table>"
    )


def _per_slice_columns(m: dict) -> list[tuple[str, list]]:
    cols = [("slice", m["slices"]), (m["slice_dim"], m["slice_values"])]
    for metric in ("brisque", "piqe"):
        for when in ("before", "after"):
            if when in m.get(metric, {}):
                cols.append((f"{metric.upper()} {when}", m[metric][when]["per_slice"]))
    if "leakage" in m:
        cols.append(("leakage", m["leakage"]["per_slice"]))
    for metric in ("psnr", "ssim", "snr"):
        if metric in m:
            cols += [(f"{metric.upper()} {w}", m[metric][w]["per_slice"]) for w in ("before", "after")]
    return cols


def _mean(values: list) -> float | None:
    a = np.array([v for v in values if v is not None], dtype=float)
    return float(a.mean()) if a.size else None


def _lineage_html(lineage) -> str:
    if lineage is None:
        return "<p>No lineage recorded for this store.</p>"
    if isinstance(lineage, str):
        try:
            lineage = json.loads(lineage)
        except json.JSONDecodeError:
            return f"<pre>{html.escape(lineage)}</pre>"
    if isinstance(lineage, dict):
        rows = [
            (str(k), v if isinstance(v, (str, int, float, type(None))) else json.dumps(v, default=str))
            for k, v in lineage.items()
        ]
        return _kv(rows)
    return f"<pre>{html.escape(json.dumps(lineage, indent=2, default=str))}</pre>"


def _summary_rows(m: dict, store: Path, against: Path | None) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("store", str(store)),
        ("original (--against)", str(against) if against else "none"),
    ]
    rows.append(("slices scored", f"{len(m['slices'])} of {m['n_slices_total']} along {m['slice_dim']}"))
    rows.append(("BRISQUE model", m["brisque_model"]))
    for metric in ("brisque", "piqe", "psnr", "ssim", "snr"):
        for when in ("before", "after"):
            if when in m.get(metric, {}):
                rows.append((f"{metric.upper()} {when} (mean)", _or_reason(m[metric][when]["mean"], m[metric])))
    if "leakage" in m:
        rows.append(("signal leakage (mean local similarity)", _or_reason(m["leakage"]["mean"], m["leakage"])))
    return rows


def _or_reason(value, metric: dict):
    """The value, or "n/a (why)" for a metric that could not be computed."""
    return f"n/a ({metric['reason']})" if value is None and metric.get("reason") else value


def write_qc_report(
    store,
    html_path,
    *,
    against=None,
    metrics: dict | None = None,
    lineage=None,
    config: QCConfig | None = None,
    max_slices: int | None = 64,
    progress: bool = False,
    images: dict[str, Path] | None = None,
    kind: str | DataKind = POSTSTACK3D,
) -> Path:
    """Write the QC report of survey store ``store`` (the denoised output) to ``html_path``.

    ``against``: the original (input) store, for before / after / removed comparisons;
    ``metrics``: a :func:`~seiscore.qc.quality_metrics` dict (computed when None);
    ``lineage``: shown as a table (default: the store's ``lineage`` attribute, if any);
    ``images``: section images already made by :func:`~seiscore.qc.section_images` for these
    stores (made here when None); ``kind``: the data kind of both stores (its variable, dims and views;
    per-slice metrics run along its vertical dim, else its last).
    The HTML is written atomically; PNGs go to ``<stem>_images/`` beside it. Returns the HTML path.
    """
    cfg = config or QCConfig()
    from seiscore.io import location

    store, html_path = location.normalize(store), Path(html_path)
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"report path must end in .html, got {html_path}")
    kind = as_kind(kind)
    slice_dim = kind.vertical or kind.dims[-1]
    ds = open_amplitude(store, kind)
    den = ds[kind.variable]
    orig = None
    if against is not None:
        against = location.normalize(against)
        orig = open_amplitude(against, kind)[kind.variable]
        den = den.transpose(*orig.dims)
        if den.shape != orig.shape:
            raise ValueError(f"{store} amplitude shape {den.shape} differs from {against} shape {orig.shape}")
    if lineage is None:
        lineage = ds.attrs.get("lineage")
    if metrics is None:
        metrics = (
            quality_metrics(orig, den, slice_dim=slice_dim, max_slices=max_slices, config=cfg, progress=progress)
            if orig is not None
            else volume_metrics(den, slice_dim=slice_dim, max_slices=max_slices, config=cfg, progress=progress)
        )

    img_dir = html_path.with_name(html_path.stem + "_images")
    img_dir.mkdir(parents=True, exist_ok=True)
    images = (
        dict(images)
        if images is not None
        else section_images(orig, den, img_dir, clip_percentile=cfg.clip_percentile, kind=kind)
    )
    views = section_views(kind)
    leak_path = None
    images["spectra"] = spectra_image(metrics["spectra"], img_dir / "spectra.png")
    if orig is not None:
        # the leakage map of the slice across the vertical dim (post-stack: the time slice), else the last view
        leak_view = kind.section_name(slice_dim) if slice_dim in kind.qc_sections else views[-1]
        sel, rows_cols = _views(orig, kind)[leak_view]
        o, d = _section(orig, sel, rows_cols), _section(den, sel, rows_cols)
        where = ", ".join(str(i) for i in sel.values())
        leak = leakage_per_slice(
            d.values[None], (o - d).values[None], radius=cfg.leakage_radius, niter=cfg.leakage_niter
        )[1][0]
        leak_path = leakage_image(
            leak,
            img_dir / f"{leak_view}_leakage.png",
            title=f"signal leakage, {leak_view} slice {where}" if where else f"signal leakage, {leak_view}",
            extent=_extent(o),
            xlabel=rows_cols[1],
            ylabel=rows_cols[0],
        )

    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>QC report - {html.escape(location.name(store))}</title><style>{CSS}</style></head><body>"
    ]
    parts.append(f"<h1>QC report: {html.escape(location.name(store))}</h1>")
    parts.append('<section id="summary"><h2>Summary</h2>' + _kv(_summary_rows(metrics, store, against)))
    parts.append(
        '<p class="note">BRISQUE and PIQE: no-reference image quality of each time slice (scaled to 0-255 by its '
        "own range); lower is better. Signal leakage: mean local similarity between the denoised data and the removed "
        "noise; near 0 is good, high values mean signal was removed. See docs/metrics.md.</p></section>"
    )
    parts.append('<section id="sections"><h2>Before / after / removed noise</h2>')
    for view in views:
        imgs = [images[k] for k in (f"{view}_before", f"{view}_after", f"{view}_removed") if k in images]
        parts.append(
            f'<h3>{view}</h3><div class="row">'
            + "".join(f'<img alt="{html.escape(p.stem)}" src="{data_uri(p)}">' for p in imgs)
            + "</div>"
        )
    parts.append("</section>")
    if leak_path is not None:
        parts.append(
            '<section id="leakage"><h2>Signal leakage</h2><div class="row">'
            + f'<img alt="leakage map" src="{data_uri(leak_path)}">'
            + "</div>"
        )
        parts.append(
            '<p class="note">Local similarity (Chen &amp; Fomel 2015) between denoised data and removed noise. '
            "Coherent bright patches that follow reflectors show removed signal.</p></section>"
        )
    parts.append(
        '<section id="spectra"><h2>Average amplitude spectra</h2><div class="row">'
        + f'<img alt="spectra" src="{data_uri(images["spectra"])}">'
        + "</div>"
    )
    if metrics.get("band_energy"):
        unit = metrics["spectra"]["frequency_unit"]
        rows = [
            [
                f"{b['band'][0]:.1f}-{b['band'][1]:.1f} {unit}",
                b["original_energy"],
                b["removed_energy"],
                b["removed_fraction"],
            ]
            for b in metrics["band_energy"]
        ]
        parts.append(
            "<h3>Removed-noise energy per band</h3>"
            + _table(["band", "original energy", "removed energy", "removed fraction"], rows)
        )
    parts.append("</section>")
    cols = _per_slice_columns(metrics)
    rows = [list(r) for r in zip(*(c[1] for c in cols))]
    means = ["mean", ""] + [_mean(c[1]) for c in cols[2:]]
    parts.append(
        '<section id="metrics-per-slice"><h2>Metrics per time slice</h2>'
        + _table([c[0] for c in cols], rows, means)
        + "</section>"
    )
    parts.append('<section id="lineage"><h2>Lineage</h2>' + _lineage_html(lineage) + "</section>")
    parts.append("</body></html>\n")

    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, html_path)
    return html_path
