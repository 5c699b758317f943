"""PNG images for the QC report and Prefect artifacts (matplotlib ``Figure`` objects, no pyplot state,
so images can be drawn in a thread beside other work).

Sections use the ``seismic`` colour map with a symmetric clip at a percentile of the
original's absolute amplitudes; before, after and removed noise share that scale.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

DIMS = ("inline", "crossline", "sample")
KINDS = ("before", "after", "removed")


def _label_index(da: xr.DataArray, dim: str, label) -> int:
    """Position of coordinate value ``label`` along ``dim`` (middle when None)."""
    n = da.sizes[dim]
    if label is None:
        return n // 2
    if dim in da.coords:
        hits = np.flatnonzero(da[dim].values == label)
        if hits.size:
            return int(hits[0])
        raise ValueError(
            f"{dim} {label!r} is not in the survey ({dim} range {da[dim].values.min()}..{da[dim].values.max()})"
        )
    if not 0 <= int(label) < n:
        raise ValueError(f"{dim} index {label} is outside 0..{n - 1}")
    return int(label)


def _views(da: xr.DataArray, inline, crossline, time_index) -> dict[str, tuple[dict, tuple[str, str]]]:
    il, xl, smp = DIMS
    missing = [d for d in DIMS if d not in da.dims]
    if missing:
        raise ValueError(f"section images need dims {DIMS}, got {da.dims}")
    n_t = da.sizes[smp]
    t = n_t // 2 if time_index is None else int(time_index)
    if not 0 <= t < n_t:
        raise ValueError(f"time_index {t} is outside 0..{n_t - 1}")
    return {
        "inline": ({il: _label_index(da, il, inline)}, (smp, xl)),
        "crossline": ({xl: _label_index(da, xl, crossline)}, (smp, il)),
        "time": ({smp: t}, (il, xl)),
    }


def _section(da: xr.DataArray, sel: dict, rows_cols: tuple[str, str]) -> xr.DataArray:
    s = da.isel(sel).transpose(*rows_cols).load()
    return s.fillna(0.0)


def _extent(s: xr.DataArray) -> list[float] | None:
    r, c = s.dims
    if r in s.coords and c in s.coords and s.sizes[r] > 1 and s.sizes[c] > 1:
        rv, cv = s[r].values.astype(float), s[c].values.astype(float)
        return [cv[0], cv[-1], rv[-1], rv[0]]
    return None


def save_image(
    data: np.ndarray,
    path: Path,
    *,
    title: str,
    clip: float | None,
    cmap: str = "seismic",
    extent=None,
    xlabel="",
    ylabel="",
    cbar_label="amplitude",
) -> Path:
    """One 2-D image as a PNG (symmetric colour scale ``[-clip, clip]``, or [0, 1] when clip is None)."""
    fig = Figure(figsize=(6.0, 4.2), dpi=90)
    ax = fig.subplots()
    vmin, vmax = (-clip, clip) if clip is not None else (0.0, 1.0)
    im = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, label=cbar_label)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def section_images(
    original: xr.DataArray | None,
    denoised: xr.DataArray,
    out_dir,
    *,
    inline=None,
    time_index: int | None = None,
    crossline=None,
    clip_percentile: float = 99.0,
) -> dict[str, Path]:
    """Write before / after / removed PNGs of one inline, one crossline and one time slice.

    ``inline`` / ``crossline`` are line numbers (coordinate values; middle line when None),
    ``time_index`` a sample index (middle when None). Arrays have dims (inline, crossline,
    sample); only the three sections are read. Keys ``"{inline|crossline|time}_{before|after|removed}"``;
    with ``original=None`` only the ``*_after`` images are written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = original if original is not None else denoised
    if original is not None and original.shape != denoised.transpose(*original.dims).shape:
        raise ValueError(f"original shape {original.shape} differs from denoised shape {denoised.shape}")
    paths: dict[str, Path] = {}
    for view, (sel, rows_cols) in _views(ref, inline, crossline, time_index).items():
        after = _section(denoised, sel, rows_cols)
        sections = {"after": after}
        if original is not None:
            before = _section(original, sel, rows_cols)
            sections = {"before": before, "after": after, "removed": before - after}
        base = sections.get("before", after)
        clip = float(np.percentile(np.abs(base.values), clip_percentile)) or float(np.abs(base.values).max()) or 1.0
        where = ", ".join(f"{d} {ref[d].values[i] if d in ref.coords else i}" for d, i in sel.items())
        for kind, s in sections.items():
            paths[f"{view}_{kind}"] = save_image(
                s.values,
                out_dir / f"{view}_{kind}.png",
                title=f"{kind} - {view} ({where})",
                clip=clip,
                extent=_extent(s),
                xlabel=rows_cols[1],
                ylabel=rows_cols[0],
            )
    return paths


def leakage_image(leak_map: np.ndarray, path: Path, *, title: str, extent=None, xlabel="", ylabel="") -> Path:
    """Local-similarity map in [0, 1] (0 = no signal in the removed noise)."""
    return save_image(
        leak_map,
        path,
        title=title,
        clip=None,
        cmap="magma",
        extent=extent,
        xlabel=xlabel,
        ylabel=ylabel,
        cbar_label="local similarity",
    )


def spectra_image(spec: dict, path: Path) -> Path:
    """Average amplitude spectra (original, denoised, removed) on one plot."""
    fig = Figure(figsize=(6.0, 3.8), dpi=90)
    ax = fig.subplots()
    for key, style in (("original", "-"), ("denoised", "-"), ("removed", "--")):
        if spec.get(key) is not None:
            ax.plot(spec["frequency"], spec[key], style, label=key)
    ax.set_xlabel(f"frequency ({spec['frequency_unit']})")
    ax.set_ylabel("mean |FFT|")
    ax.set_title(f"Average amplitude spectra ({spec['n_traces']} traces)", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI for self-contained HTML."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
