"""QC report of a trace-denoising run: before / after / removed waveforms, spectrograms and a metric table.

Input: the records before and after denoising (:class:`seiscore.data.traces.Record`, the windows merged back
into whole records), in the same order. Output, in one folder marked as the product's: ``report.html`` (self-
contained, images inline; written under a temporary name and renamed), ``images/`` and ``metrics.json``.

Per record (every record, arrays over records and components at once; computed on the de-normalised traces):

- ``removed_pct`` = :math:`100\\,\\sum (y-\\hat x)^2 / \\sum y^2`, the share of the input's energy removed;
- ``peak_ratio`` = :math:`\\max|\\hat x| / \\max|y|`;
- ``rho`` = zero-lag Pearson correlation of the output with the input (all components together);
- ``snr_win_before`` / ``snr_win_after`` (dB), when the record has a P pick: the windowed SNR of the spec,
  :math:`10\\log_{10}(\\overline{x[t_P:t_P+W]^2} / \\overline{x[t_P-W-g:t_P-g]^2})`, W = 5 s, g = 0.5 s, on the
  energy summed over the three components (NaN when either window leaves the record).

Sampled records (``n_records``, seeded) are drawn as a 3 x 3 grid (rows Z, N, E; columns before, after,
removed, one amplitude scale per row) with the P (blue) and S (red) picks marked, and as spectrograms of the
vertical component (before, after, removed; one colour scale).
"""

from __future__ import annotations

import html
import itertools
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure

SNR_WINDOW_S = 5.0
SNR_GUARD_S = 0.5
CHUNK = 64  # records whose metrics are computed together
COLUMNS = ("record", "seconds", "removed_pct", "peak_ratio", "rho", "snr_win_before", "snr_win_after")


def _padded(records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """float64[R, 3, Lmax] of the records (zero-padded) and their lengths int[R]."""
    lengths = np.array([np.asarray(r.data).shape[-1] for r in records], dtype=np.int64)
    out = np.zeros((len(records), 3, int(lengths.max(initial=0))), dtype=np.float64)
    for i, r in enumerate(records):  # one copy per record (records have different lengths)
        out[i, :, : lengths[i]] = np.asarray(r.data, dtype=np.float64)
    return out, lengths


def snr_window(x: np.ndarray, p_sample: np.ndarray, fs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Windowed SNR (dB) of ``x`` (float[R, 3, L]) around the P picks ``p_sample`` (float[R], NaN: none) at the
    rates ``fs`` (float[R]); NaN where a window leaves the record (see the module docstring)."""
    energy = np.sum(np.square(x), axis=1)  # [R, L]
    csum = np.concatenate([np.zeros((energy.shape[0], 1)), np.cumsum(energy, axis=1)], axis=1)
    w = np.round(SNR_WINDOW_S * fs).astype(np.int64)
    g = np.round(SNR_GUARD_S * fs).astype(np.int64)
    p = np.where(np.isfinite(p_sample), np.round(np.nan_to_num(p_sample)), -1).astype(np.int64)
    ok = (p >= w + g) & (p + w <= lengths) & (w > 0)
    rows = np.arange(x.shape[0])
    clip = lambda i: np.clip(i, 0, energy.shape[1])  # noqa: E731
    sig = (csum[rows, clip(p + w)] - csum[rows, clip(p)]) / np.maximum(w, 1)
    noise = (csum[rows, clip(p - g)] - csum[rows, clip(p - g - w)]) / np.maximum(w, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = 10.0 * np.log10(sig / noise)
    return np.where(ok, snr, np.nan)


def record_metrics(before: Sequence[Any], after: Sequence[Any]) -> list[dict[str, Any]]:
    """One row of the metrics of the module docstring per record (``before[i]`` and ``after[i]`` the same
    record); a one-line ``ValueError`` naming a record whose shapes differ."""
    if len(before) != len(after):
        raise ValueError(f"QC: {len(before)} records before denoising but {len(after)} after")
    for b, a in zip(before, after):
        if np.asarray(b.data).shape != np.asarray(a.data).shape:
            raise ValueError(f"QC: record {b.id}: shape {np.shape(b.data)} before but {np.shape(a.data)} after")
    if not before:
        return []
    y, lengths = _padded(before)
    xh, _ = _padded(after)
    removed = y - xh
    e_in = np.sum(np.square(y), axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        removed_pct = 100.0 * np.sum(np.square(removed), axis=(1, 2)) / e_in
        peak_ratio = np.max(np.abs(xh), axis=(1, 2)) / np.max(np.abs(y), axis=(1, 2))
        n = lengths[:, None, None] * 3
        live = np.arange(y.shape[2])[None, None, :] < lengths[:, None, None]
        yc = np.where(live, y - np.sum(y, axis=(1, 2), keepdims=True) / n, 0.0)
        xc = np.where(live, xh - np.sum(xh, axis=(1, 2), keepdims=True) / n, 0.0)
        rho = np.sum(yc * xc, axis=(1, 2)) / np.sqrt(np.sum(yc**2, axis=(1, 2)) * np.sum(xc**2, axis=(1, 2)))
    fs = np.array([float(r.sampling_rate) for r in before])
    p = np.array([_pick(r, "p_sample") for r in before])
    snr_b, snr_a = snr_window(y, p, fs, lengths), snr_window(xh, p, fs, lengths)
    rows = []
    for i, r in enumerate(before):
        rows.append(
            {
                "record": r.id,
                "seconds": round(float(lengths[i] / fs[i]), 2),
                "removed_pct": _num(removed_pct[i]),
                "peak_ratio": _num(peak_ratio[i]),
                "rho": _num(rho[i]),
                "snr_win_before": _num(snr_b[i]),
                "snr_win_after": _num(snr_a[i]),
            }
        )
    return rows


def _pick(record: Any, name: str) -> float:
    value = getattr(record, name, None)
    try:
        return float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _num(v: float) -> float | None:
    return round(float(v), 4) if np.isfinite(v) else None


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the records of each metric column (None when no record has it) and the record count."""
    out: dict[str, Any] = {"records": len(rows)}
    for c in COLUMNS[2:]:
        vals = [r[c] for r in rows if r.get(c) is not None]
        out[c] = round(float(np.mean(vals)), 4) if vals else None
    return out


def sample_records(n_total: int, n_records: int, seed: int = 0) -> list[int]:
    """``n_records`` record indices out of ``n_total`` (all when fewer), seeded, in order."""
    k = min(n_total, max(0, n_records))
    return sorted(np.random.default_rng(seed).choice(n_total, size=k, replace=False).tolist()) if k else []


def waveform_image(before: Any, after: Any, path: Path) -> Path:
    """3 x 3 grid: components Z, N, E (rows) before / after / removed (columns), P and S picks marked."""
    y, xh = np.asarray(before.data, dtype=np.float32), np.asarray(after.data, dtype=np.float32)
    fs = float(before.sampling_rate)
    t = np.arange(y.shape[-1]) / fs
    fig = Figure(figsize=(11.0, 6.0), dpi=80)
    axes = fig.subplots(3, 3, sharex=True)
    names = list(getattr(before, "channels", None) or ("Z", "N", "E"))
    picks = [(_pick(before, "p_sample"), "tab:blue", "P"), (_pick(before, "s_sample"), "tab:red", "S")]
    for c in range(3):
        lim = float(np.max(np.abs(y[c]))) or 1.0
        for j, (trace, title) in enumerate(((y[c], "before"), (xh[c], "after"), (y[c] - xh[c], "removed"))):
            ax = axes[c, j]
            ax.plot(t, trace, lw=0.5, color="k")
            ax.set_ylim(-1.05 * lim, 1.05 * lim)
            for sample, colour, label in picks:
                if np.isfinite(sample):
                    ax.axvline(sample / fs, color=colour, lw=0.9, ls="--", label=label)
            if c == 0:
                ax.set_title(title, fontsize=9)
            if j == 0:
                ax.set_ylabel(names[c] if c < len(names) else str(c), fontsize=8)
            ax.tick_params(labelsize=7)
    axes[2, 1].set_xlabel("time (s)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        axes[0, 0].legend(handles, labels, fontsize=7, loc="upper right")
    fig.suptitle(f"{before.id}  {getattr(before, 'starttime', '')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def spectrogram_image(before: Any, after: Any, path: Path, component: int = 0) -> Path:
    """Spectrograms (dB) of one component before / after / removed, on one colour scale."""
    from scipy.signal import spectrogram

    y = np.asarray(before.data, dtype=np.float64)[component]
    xh = np.asarray(after.data, dtype=np.float64)[component]
    fs = float(before.sampling_rate)
    nper = int(min(256, max(16, y.size // 8)))
    stack = np.stack([y, xh, y - xh])
    f, t, s = spectrogram(stack, fs=fs, nperseg=nper, noverlap=nper // 2, axis=-1)
    db = 10.0 * np.log10(np.maximum(s, 1e-30))
    top = float(np.max(db[0])) if np.isfinite(db[0]).any() else 0.0
    fig = Figure(figsize=(11.0, 3.2), dpi=80)
    axes = fig.subplots(1, 3, sharey=True)
    for j, title in enumerate(("before", "after", "removed")):
        im = axes[j].pcolormesh(t, f, db[j], shading="auto", vmin=top - 80.0, vmax=top, cmap="viridis")
        axes[j].set_title(title, fontsize=9)
        axes[j].set_xlabel("time (s)", fontsize=8)
        axes[j].tick_params(labelsize=7)
        p = _pick(before, "p_sample")
        if np.isfinite(p):
            axes[j].axvline(p / fs, color="w", lw=0.8, ls="--")
    axes[0].set_ylabel("frequency (Hz)", fontsize=8)
    fig.colorbar(im, ax=list(axes), fraction=0.02, label="dB")
    names = list(getattr(before, "channels", None) or ("Z", "N", "E"))
    fig.suptitle(f"{before.id} {names[component] if component < len(names) else component}", fontsize=10)
    fig.savefig(path, format="png")
    return path


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("-" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_traces_qc(
    before: Iterable[Any],
    after: Iterable[Any],
    folder: str | os.PathLike,
    *,
    title: str = "traces",
    n_records: int = 4,
    seed: int = 0,
    info: dict[str, Any] | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """Write the QC report of a trace-denoising run into ``folder`` (see the module docstring).

    ``before`` / ``after``: the records (lists, or iterators such as
    :func:`seiscore.data.traces.iter_store_records`: records are read :data:`CHUNK` at a time, only the sampled
    ones kept); ``total``: the number of records (default ``len(before)``), from which ``n_records`` are sampled.
    ``info``: extra summary rows (method, model, mode, run id, ...). Returns ``{"report", "metrics" (the
    means), "records" (rows), "images" ({name: path})}``."""
    from seiscore.core.safety import mark_owned
    from seiscore.qc.images import data_uri
    from seiscore.qc.report import CSS

    total = len(before) if total is None else int(total)  # type: ignore[arg-type]
    chosen = set(sample_records(total, n_records, seed))
    rows: list[dict[str, Any]] = []
    kept: list[tuple[int, Any, Any]] = []
    pairs = zip(before, after, strict=True)
    while chunk := list(itertools.islice(pairs, CHUNK)):  # metrics vectorised over a chunk of records
        rows += record_metrics([b for b, _ in chunk], [a for _, a in chunk])
        kept += [
            (len(rows) - len(chunk) + k, b, a) for k, (b, a) in enumerate(chunk) if len(rows) - len(chunk) + k in chosen
        ]
    means = summary(rows)
    folder = Path(folder)
    img = folder / "images"
    img.mkdir(parents=True, exist_ok=True)
    mark_owned(folder)
    images: dict[str, str] = {}
    blocks = []
    for i, b, a in kept:
        stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in b.id) + f"_{i}"
        wave = waveform_image(b, a, img / f"{stem}_waveforms.png")
        spec = spectrogram_image(b, a, img / f"{stem}_spectrogram.png")
        images[f"{stem}_waveforms"], images[f"{stem}_spectrogram"] = str(wave), str(spec)
        blocks.append(
            f"<h3>{html.escape(b.id)}</h3>"
            f'<div class="row"><img alt="waveforms {html.escape(b.id)}" src="{data_uri(wave)}"></div>'
            f'<div class="row"><img alt="spectrogram {html.escape(b.id)}" src="{data_uri(spec)}"></div>'
        )
    info_rows = [{"item": k, "value": v} for k, v in {**(info or {}), **means}.items()]
    (folder / "metrics.json").write_text(json.dumps({"summary": means, "records": rows, "info": info or {}}, indent=2))
    page = "".join(
        [
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Trace denoising QC - '
            f"{html.escape(title)}</title><style>{CSS}</style></head><body>",
            f"<h1>Trace denoising QC: {html.escape(title)}</h1>",
            '<section id="summary"><h2>Summary</h2>' + _table(info_rows, ("item", "value")) + "</section>",
            '<section id="records"><h2>Metrics per record</h2>' + _table(rows, COLUMNS),
            '<p class="note">removed_pct: share of the input energy removed; peak_ratio: max |after| / max |before|; '
            "rho: zero-lag correlation after vs before; snr_win: windowed SNR around the P pick (5 s windows, 0.5 s "
            "guard), records with a P pick only.</p></section>",
            '<section id="waveforms"><h2>Sampled records</h2>' + "".join(blocks) + "</section></body></html>",
        ]
    )
    report = folder / "report.html"
    tmp = folder / ".report.html.seiscore-tmp"
    tmp.write_text(page)
    os.replace(tmp, report)
    return {"report": str(report), "metrics": means, "records": rows, "images": images}
