"""No-reference scoring of a cube, slice by slice, in the TLSM paper's convention.

Each slice (a time slice by default) is scaled to uint8 by its own min and max,
``round(255 (x - min) / (max - min))`` (a constant slice maps to 0 and scores NaN), scored
with BRISQUE and PIQE, and the scores are averaged (NaN-aware). For big surveys a
configurable, evenly spaced sample of slices is scored; slices are read in batches grouped
by storage chunk, so a dask-backed (``xarray.open_zarr``) cube is never loaded whole.
Dead traces (NaN fill values) are set to 0 before scaling.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import xarray as xr

from seiscore.metrics.brisque import brisque
from seiscore.metrics.piqe import piqe


def to_uint8(stack: np.ndarray) -> np.ndarray:
    """Scale every slice of a stack ``(n, rows, cols)`` to uint8 by its own min and max."""
    s = np.asarray(stack, dtype=np.float64)
    lo = s.min(axis=(-2, -1), keepdims=True)
    span = s.max(axis=(-2, -1), keepdims=True) - lo
    scaled = np.divide(s - lo, span, out=np.zeros_like(s), where=span > 0)
    return np.round(255.0 * scaled).astype(np.uint8)


def sample_indices(n: int, max_slices: int | None) -> np.ndarray:
    """Evenly spaced slice indices (first and last included); all ``n`` when ``max_slices`` is None or >= n."""
    if n < 1:
        raise ValueError(f"cannot sample slices of an empty axis (length {n})")
    if max_slices is None or max_slices >= n:
        return np.arange(n)
    if max_slices < 1:
        raise ValueError(f"max_slices must be >= 1 or None, got {max_slices}")
    return np.unique(np.round(np.linspace(0, n - 1, max_slices)).astype(np.int64))


def _chunk_ids(da: xr.DataArray, dim: str, indices: np.ndarray) -> np.ndarray:
    """Storage chunk of each index along ``dim``, from the array's own chunks: its coordinates
    (a survey store's cdp_x / cdp_y) may be chunked otherwise, which ``chunksizes`` refuses."""
    chunks = da.chunks[da.get_axis_num(dim)] if da.chunks is not None else None
    if not chunks:
        return np.zeros(len(indices), dtype=np.int64)
    return np.searchsorted(np.cumsum(chunks), indices, side="right")


def iter_slice_batches(
    arrays: Sequence[xr.DataArray], dim: str, indices, batch_size: int = 16
) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yield ``(indices, [stack per array])``: float64 stacks ``(b, rows, cols)`` of the slices along ``dim``.

    Batches never split a storage chunk of the first array unless the chunk holds more than
    ``batch_size`` selected slices, so each chunk is read once; non-finite samples become 0.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    indices = np.asarray(indices, dtype=np.int64)
    ids = _chunk_ids(arrays[0], dim, indices)
    batch: list[int] = []
    for cid in np.unique(ids):
        group = indices[ids == cid].tolist()
        if batch and len(batch) + len(group) > batch_size:
            yield _load(arrays, dim, batch)
            batch = []
        for start in range(0, len(group), batch_size):
            part = group[start : start + batch_size]
            if len(part) == batch_size:
                yield _load(arrays, dim, part)
            else:
                batch += part
    if batch:
        yield _load(arrays, dim, batch)


def _load(arrays: Sequence[xr.DataArray], dim: str, idx: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    idx, stacks, _ = load_stacks(arrays, dim, idx)
    return idx, stacks


def load_stacks(
    arrays: Sequence[xr.DataArray], dim: str, idx, extra: Sequence[xr.DataArray] = ()
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """``(indices, [stack per array], [extra values])``: float64 stacks ``(len(idx), rows, cols)`` of the slices
    ``idx`` along ``dim`` (non-finite samples set to 0), and the lazy selections ``extra`` of the same arrays
    (e.g. a trace sample), all computed in one dask pass, so a chunk both need is read once."""
    import dask

    idx = [int(i) for i in idx]
    values = dask.compute(*[da.isel({dim: idx}).transpose(dim, ...) for da in arrays], *extra)
    stacks = [
        np.nan_to_num(np.asarray(v.values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        for v in values[: len(arrays)]
    ]
    return np.asarray(idx), stacks, [np.asarray(v.values) for v in values[len(arrays) :]]


def score_stack(stack: np.ndarray) -> dict[str, np.ndarray]:
    """BRISQUE and PIQE of every slice of a float stack (each slice scaled to uint8 by its own range)."""
    u8 = to_uint8(stack)
    return {"brisque": np.atleast_1d(brisque(u8)), "piqe": np.atleast_1d(piqe(u8))}


def score_slices(data, *, dim: str = "sample", max_slices: int | None = 64, batch_size: int = 16) -> dict:
    """Per-slice BRISQUE / PIQE of a cube (DataArray, or ndarray with ``dim`` an axis number).

    Returns ``{"indices", "brisque", "piqe"}`` (arrays over the scored slices).
    """
    if not isinstance(data, xr.DataArray):
        a = np.asarray(data)
        if a.ndim != 3 or not isinstance(dim, int):
            raise ValueError("an ndarray cube must be 3-D and `dim` must be its slice axis number")
        data, dim = xr.DataArray(a, dims=("d0", "d1", "d2")), ("d0", "d1", "d2")[dim]
    if data.ndim != 3 or dim not in data.dims:
        raise ValueError(f"expected a 3-D cube with dimension {dim!r}, got dims {data.dims}")
    idx = sample_indices(data.sizes[dim], max_slices)
    out = {"indices": [], "brisque": [], "piqe": []}
    for i, (stack,) in iter_slice_batches([data], dim, idx, batch_size):
        s = score_stack(stack)
        out["indices"].append(i)
        out["brisque"].append(s["brisque"])
        out["piqe"].append(s["piqe"])
    return {k: np.concatenate(v) for k, v in out.items()}
