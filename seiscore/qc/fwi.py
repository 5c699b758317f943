"""QC report of a velocity-model building run (FWI): models, error maps, misfit curves, wavenumber spectra.

:func:`write_fwi_report` draws, as PNGs in ``<report stem>_images/`` and one self-contained HTML page (images
embedded, plus a markdown twin for Prefect artifacts):

- the true model (when known), the initial model and the inverted model(s) on one velocity colour scale;
- error maps ``v_hat - v_true`` (or, without a true model, the update ``v_hat - m_init``) on a symmetric scale;
- the normalised data misfit ``J_k / J_0`` of every mode given, against iteration and against wall time
  (log scale): one curve per mode, so a run that compares modes shows them side by side;
- radially averaged 2-D wavenumber amplitude spectra of ``v_hat - m_init`` and ``v_true - m_init`` in the deep
  half of the model (the band above ``0.5 k_Nyquist`` is where the high-wavenumber recovery is measured).

Numbers (MSE_v, RelErr, SSIM, high-wavenumber recovery) come from :mod:`seiscore.methods.drfwi.metrics`; the
report takes them as given (``metrics``) so the library decides the definitions in one place.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from seiscore.qc.images import data_uri

CSS = """body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}td.k{text-align:left;font-weight:bold}
.row{display:flex;flex-wrap:wrap;gap:8px}.row img{max-width:32%;min-width:300px}p.note{color:#555;max-width:70em}"""


ORDER = ("iterations", "misfit_norm", "mse_v", "rel_err", "ssim", "hw_ratio", "hw_coherence")  # metric columns


def radial_spectrum(field: np.ndarray, dx: float, n_bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged amplitude spectrum of a 2-D ``field`` (mean removed, Hann-tapered).

    ``|F(k_z, k_x)|`` averaged over rings of ``|k| = sqrt(k_z^2 + k_x^2)`` (cycles/km); returns ``(k, amplitude)``
    with ``k`` the ring centres up to ``k_Nyquist = 1 / (2 dx)``."""
    f = np.asarray(field, dtype=np.float64)
    f = f - f.mean()
    taper = np.outer(np.hanning(f.shape[0]), np.hanning(f.shape[1]))
    amp = np.abs(np.fft.fft2(f * taper))
    kz = np.fft.fftfreq(f.shape[0], d=dx / 1000.0)
    kx = np.fft.fftfreq(f.shape[1], d=dx / 1000.0)
    k = np.hypot(*np.meshgrid(kz, kx, indexing="ij"))
    k_nyq = 1000.0 / (2.0 * dx)
    n_bins = n_bins or max(8, min(f.shape) // 2)
    edges = np.linspace(0.0, k_nyq, n_bins + 1)
    which = np.digitize(k.ravel(), edges) - 1
    keep = (which >= 0) & (which < n_bins)
    sums = np.bincount(which[keep], weights=amp.ravel()[keep], minlength=n_bins)
    counts = np.bincount(which[keep], minlength=n_bins)
    return 0.5 * (edges[1:] + edges[:-1]), sums / np.maximum(counts, 1)


def _extent(shape: tuple[int, int], dx: float) -> list[float]:
    nz, nx = shape
    return [0.0, (nx - 1) * dx / 1000.0, (nz - 1) * dx / 1000.0, 0.0]


def _image(data, path: Path, *, title: str, vmin: float, vmax: float, cmap: str, label: str, dx: float) -> Path:
    fig = Figure(figsize=(6.4, 2.9), dpi=90)
    ax = fig.subplots()
    im = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", extent=_extent(data.shape, dx))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("distance (km)")
    ax.set_ylabel("depth (km)")
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def misfit_image(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path:
    """Normalised misfit of every mode against iteration (left) and wall time (right), log scale."""
    fig = Figure(figsize=(10.0, 3.6), dpi=90)
    ax_it, ax_t = fig.subplots(1, 2)
    for name, history in histories.items():
        rows = [h for h in history if h.get("misfit_norm") is not None]
        if not rows:
            continue
        it = np.array([h["iteration"] for h in rows], dtype=float)
        j = np.array([h["misfit_norm"] for h in rows], dtype=float)
        t = np.cumsum([float(h.get("seconds") or 0.0) for h in rows])
        ax_it.plot(it, j, label=name)
        ax_t.plot(t, j, label=name)
    for ax, xlabel in ((ax_it, "iteration"), (ax_t, "wall time (s)")):
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("J / J(m_init)")
        ax.grid(alpha=0.3, which="both")
    ax_it.set_title("normalised data misfit", fontsize=10)
    ax_it.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def spectra_plot(
    m_init: np.ndarray, inverted: Mapping[str, np.ndarray], v_true: np.ndarray | None, dx: float, path: Path
) -> Path:
    """Radial wavenumber spectra of the updates ``v - m_init`` in the deep half (true update dashed)."""
    half = m_init.shape[0] // 2
    fig = Figure(figsize=(6.4, 3.8), dpi=90)
    ax = fig.subplots()
    if v_true is not None:
        k, a = radial_spectrum(v_true[half:] - m_init[half:], dx)
        ax.plot(k, a, "k--", label="true - initial")
    for name, v in inverted.items():
        k, a = radial_spectrum(v[half:] - m_init[half:], dx)
        ax.plot(k, a, label=f"{name} - initial")
    ax.axvline(0.5 * 1000.0 / (2.0 * dx), color="grey", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("wavenumber (cycles/km)")
    ax.set_ylabel("mean |FFT|")
    ax.set_title("update spectra, deep half (dotted: 0.5 k_Nyquist)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_fwi_report(
    html_path: str | os.PathLike,
    *,
    m_init: np.ndarray,
    inverted: Mapping[str, np.ndarray],
    dx: float,
    v_true: np.ndarray | None = None,
    histories: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    summary: Sequence[tuple[str, Any]] = (),
    lineage: Mapping[str, Any] | None = None,
    title: str = "Velocity-model building QC",
) -> dict[str, Any]:
    """Write the FWI QC report (see the module docstring) to ``html_path`` (``.html``) and its markdown twin.

    ``inverted``: mode (or label) -> inverted model ``(nz, nx)`` m/s; ``histories``: mode -> per-iteration rows
    (``iteration``, ``misfit_norm``, ``seconds``); ``metrics``: mode -> metric name -> value (a table);
    ``summary``: (key, value) rows shown first. Files are written atomically. Returns
    ``{"html": path, "markdown": path, "images": {name: path}}``."""
    html_path = Path(html_path)
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"report path must end in .html, got {html_path}")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    img_dir = html_path.parent / f"{html_path.stem}_images"
    img_dir.mkdir(exist_ok=True)
    m_init = np.asarray(m_init, dtype=np.float32)
    models = {"initial": m_init, **{f"inverted ({k})": np.asarray(v, np.float32) for k, v in inverted.items()}}
    if v_true is not None:
        models = {"true": np.asarray(v_true, np.float32), **models}
    lo = float(min(m.min() for m in models.values()))
    hi = float(max(m.max() for m in models.values()))
    images: dict[str, Path] = {}
    for name, m in models.items():
        key = name.replace(" ", "_").replace("(", "").replace(")", "")
        images[key] = _image(
            m, img_dir / f"{key}.png", title=f"{name} model", vmin=lo, vmax=hi, cmap="viridis", label="m/s", dx=dx
        )
    ref, ref_name = (v_true, "true") if v_true is not None else (m_init, "initial")
    errors = {"initial": m_init - ref} if v_true is not None else {}
    errors.update({k: np.asarray(v, np.float32) - ref for k, v in inverted.items()})
    clip = float(max(np.percentile(np.abs(e), 99.5) for e in errors.values())) or 1.0
    for name, e in errors.items():
        key = f"error_{name}".replace(" ", "_")
        images[key] = _image(
            e, img_dir / f"{key}.png", title=f"{name} - {ref_name}", vmin=-clip, vmax=clip, cmap="seismic",
            label="m/s", dx=dx,
        )  # fmt: skip
    if histories:
        images["misfit"] = misfit_image(histories, img_dir / "misfit.png")
    images["spectra"] = spectra_plot(m_init, inverted, v_true, dx, img_dir / "spectra.png")

    metrics = {k: dict(v) for k, v in (metrics or {}).items()}
    seen = {c for row in metrics.values() for c in row}
    columns = [c for c in ORDER if c in seen] + sorted(seen - set(ORDER))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    parts.append(f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>")
    md = [f"# {title}", ""]
    if summary:
        parts.append("<table>" + "".join(f"<tr><td class='k'>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>"
                                         for k, v in summary) + "</table>")  # fmt: skip
        md += ["| item | value |", "|---|---|", *[f"| {k} | {_fmt(v)} |" for k, v in summary], ""]
    if metrics:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["mode", *columns])
        body = "".join(
            "<tr><td class='k'>" + html.escape(m) + "</td>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns)
            + "</tr>"
            for m, r in metrics.items()
        )  # fmt: skip
        parts.append(f"<h2>Metrics</h2><table><tr>{head}</tr>{body}</table>")
        md += ["## Metrics", "", "| mode | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        md += [f"| {m} | " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for m, r in metrics.items()]
        md.append("")
    sections = [
        ("Models", [k for k in images if not k.startswith("error_") and k not in ("misfit", "spectra")]),
        (f"Errors (model - {ref_name})", [k for k in images if k.startswith("error_")]),
        ("Convergence and spectra", [k for k in ("misfit", "spectra") if k in images]),
    ]
    for heading, keys in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><div class='row'>")
        parts += [f"<img alt='{k}' src='{data_uri(images[k])}'>" for k in keys]
        parts.append("</div>")
        md += [f"## {heading}", "", *[f"![{k}]({img_dir.name}/{images[k].name})" for k in keys], ""]
    if lineage:
        text = html.escape(json.dumps(lineage, indent=1, default=str))
        parts.append(f"<h2>Lineage</h2><details><summary>record</summary><pre>{text}</pre></details>")
    parts.append("</body></html>")
    _write_text(html_path, "\n".join(parts))
    md_path = html_path.with_suffix(".md")
    _write_text(md_path, "\n".join(md) + "\n")
    return {"html": html_path, "markdown": md_path, "images": images}
