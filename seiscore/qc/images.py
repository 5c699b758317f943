"""PNG images for the QC report and Prefect artifacts (matplotlib ``Figure`` objects, no pyplot state,
so images can be drawn in a thread beside other work).

The views drawn come from the data kind (:mod:`seiscore.data.kinds`): one section across each of
its ``qc_sections`` dims (the kind's vertical dim drawn downwards), or the whole field of a 2-D kind.
Sections use the ``seismic`` colour map with a symmetric clip at a percentile of the
original's absolute amplitudes; before, after and removed noise share that scale.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from seiscore.data.kinds import POSTSTACK3D, DataKind, as_kind

KINDS = ("before", "after", "removed")
WHOLE_VIEW = "field"  # the one view of a 2-D kind without qc_sections: the whole field


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


def _drawn(kind: DataKind, dims: tuple[str, ...]) -> tuple[str, str]:
    """(rows, cols) of an image over ``dims`` (store order): the kind's vertical dim downwards when present,
    else the first dim; the next other dim across."""
    rows = kind.vertical if kind.vertical in dims else dims[0]
    return rows, next(d for d in dims if d != rows)


def section_views(kind: str | DataKind = POSTSTACK3D) -> tuple[str, ...]:
    """Names of the QC views of ``kind``, in drawing order: one per ``qc_sections`` dim (named by the kind,
    e.g. ``inline``, ``crossline``, ``time`` for post-stack data), or ``field`` for a 2-D kind drawn whole."""
    kind = as_kind(kind)
    return tuple(kind.section_name(d) for d in kind.qc_sections) or (WHOLE_VIEW,)


def _views(
    da: xr.DataArray, kind: str | DataKind = POSTSTACK3D, at: dict | None = None, index: dict | None = None
) -> dict[str, tuple[dict, tuple[str, str]]]:
    """Per view of ``kind``: the positions to select (``{dim: index}``) and the (rows, cols) dims drawn.

    A section across dim ``d`` is taken at ``at[d]`` (a coordinate label) or ``index[d]`` (a position;
    the middle when neither is given); dims beyond the two drawn are held at their middle (or ``at`` /
    ``index``). A 2-D kind without ``qc_sections`` has one view, the whole field.
    """
    kind = as_kind(kind)
    kind.check_dims(da.dims, "section images' data")
    at, index = dict(at or {}), dict(index or {})

    def position(dim: str) -> int:
        if dim in index and index[dim] is not None:
            n, i = da.sizes[dim], int(index[dim])
            if not 0 <= i < n:
                raise ValueError(f"{dim} index {i} is outside 0..{n - 1}")
            return i
        return _label_index(da, dim, at.get(dim))

    cuts = [(kind.section_name(d), (d,)) for d in kind.qc_sections]
    if not cuts:
        if kind.ndim != 2:
            raise ValueError(f"{kind.name} data ({kind.ndim}-D) has no qc_sections to draw")
        cuts = [(WHOLE_VIEW, ())]
    views = {}
    for view, cut in cuts:
        rest = tuple(d for d in kind.dims if d not in cut)
        if len(rest) < 2:
            raise ValueError(f"a {view} section of {kind.name} data leaves {len(rest)} dim to draw; need 2")
        rows_cols = _drawn(kind, rest)
        held = cut + tuple(d for d in rest if d not in rows_cols)
        views[view] = ({d: position(d) for d in held}, rows_cols)
    return views


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
    kind: str | DataKind = POSTSTACK3D,
    at: dict | None = None,
) -> dict[str, Path]:
    """Write before / after / removed PNGs of each QC view of the data kind (post-stack: one inline, one
    crossline and one time slice; a 2-D kind without ``qc_sections``: the whole field).

    ``at`` maps a dim to the coordinate label (position without coordinates) its section is taken at
    (middle when absent); for post-stack data ``inline`` / ``crossline`` are line numbers and
    ``time_index`` a sample index (the kind's vertical dim). Arrays have the kind's dims; only the
    sections are read. Keys ``"{view}_{before|after|removed}"`` (views: :func:`section_views`); with
    ``original=None`` only the ``*_after`` images are written.
    """
    kind = as_kind(kind)
    at = dict(at or {})
    at.update({d: v for d, v in (("inline", inline), ("crossline", crossline)) if v is not None})
    index = {kind.vertical: time_index} if kind.vertical and time_index is not None else {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = original if original is not None else denoised
    if original is not None and original.shape != denoised.transpose(*original.dims).shape:
        raise ValueError(f"original shape {original.shape} differs from denoised shape {denoised.shape}")
    paths: dict[str, Path] = {}
    for view, (sel, rows_cols) in _views(ref, kind, at, index).items():
        after = _section(denoised, sel, rows_cols)
        sections = {"after": after}
        if original is not None:
            before = _section(original, sel, rows_cols)
            sections = {"before": before, "after": after, "removed": before - after}
        base = sections.get("before", after)
        clip = float(np.percentile(np.abs(base.values), clip_percentile)) or float(np.abs(base.values).max()) or 1.0
        where = ", ".join(f"{d} {ref[d].values[i] if d in ref.coords else i}" for d, i in sel.items())
        title_where = f" ({where})" if where else ""
        for what, s in sections.items():
            paths[f"{view}_{what}"] = save_image(
                s.values,
                out_dir / f"{view}_{what}.png",
                title=f"{what} - {view}{title_where}",
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
