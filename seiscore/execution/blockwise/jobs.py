"""Denoise and write one tile of a survey store: the work units the pipeline distributes.

A :class:`TileJob` (JSON-serialisable) names the input and output stores, the tile plan,
the method's spec (any registered method, :mod:`seiscore.methods.registry`), the data kind and
the survey's amplitude scaling. :func:`denoise_tile` reads a tile's
extended block from the input store, denoises it and saves ``weights * output`` on the
tile's support as a scratch block; :func:`write_tile` sums the scratch blocks of the tile
and its neighbours over the core (the blend) and writes the core into the output store's
``amplitude`` (whole chunks only), then records the tile as done.

Scaling: with ``scale="minmax"`` every block is mapped with the *survey's* min and max,
``x' = (x - c) / r`` (``c`` the mid-range, ``r`` the half-range), so all tiles see the same
[-1, 1] amplitudes (per-tile scaling would make seams).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import zarr
from pydantic import BaseModel

from seiscore.core.rss import PeakRSS, trim_heap
from seiscore.data.kinds import POSTSTACK3D, DataKind, get_kind
from seiscore.execution.blockwise.state import TileState
from seiscore.execution.blockwise.tiling import (
    Tile,
    TilePlan,
    core_from_neighbours,
    denoise_block,
    plan_tiles,
)
from seiscore.methods.base import MethodSpec
from seiscore.methods.registry import AnySpec, get_method


def plan_job_tiles(shape, input_chunks, spec: MethodSpec, kind: str = "poststack3d") -> TilePlan:
    """The tile plan of a run on an input of ``shape`` chunked ``input_chunks``: the spec's tiles, else the
    method's default tiling; output chunks are whole cores along the tiled axes and the input's chunking
    along whole axes."""
    cfg = getattr(spec, "tiles", None) or get_method(spec.name).default_tiling(spec, get_kind(kind), tuple(shape))
    chunks = tuple(int(min(t, n)) if t is not None else int(c) for t, n, c in zip(cfg.tile, shape, input_chunks))
    return plan_tiles(shape, cfg, chunks)


class TileJob(BaseModel):
    """Everything a worker needs to process tiles of one run."""

    input_store: str
    output_store: str
    plan: TilePlan
    spec: AnySpec
    scale: tuple[float, float] = (0.0, 1.0)  # (centre, half-range) applied before denoising
    kind: str = "poststack3d"


def survey_scale(amplitude, live_mask=None) -> tuple[float, float]:
    """(mid-range, half-range) of the live traces of an (inline, crossline, sample) array."""
    import dask

    a = amplitude if live_mask is None else amplitude.where(live_mask)
    lo, hi = (float(v) for v in dask.compute(a.min(), a.max()))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("survey has no live samples to scale")
    return scale_from_range(lo, hi)


def scale_from_range(lo: float, hi: float) -> tuple[float, float]:
    """(mid-range, half-range) of amplitudes spanning [lo, hi] (the half-range never 0)."""
    return (lo + hi) / 2, max((hi - lo) / 2, float(np.finfo(np.float32).tiny))


def block_denoiser(spec: MethodSpec, kind: str = "poststack3d") -> Callable[[np.ndarray], np.ndarray]:
    """The method's callable on one block (store dim order of ``kind``), same shape and dtype out."""
    return get_method(spec.name).build(spec, get_kind(kind))


def _open_array(store: str, name: str, mode: str = "r"):
    from seiscore.io.location import zarr_store

    return zarr.open_group(zarr_store(store, read_only=mode == "r"), mode=mode, use_consolidated=False)[name]


def _kind(job: TileJob) -> DataKind:
    """The data kind of ``job``'s stores (``job.kind``; post-stack for a job from before kinds)."""
    return get_kind(getattr(job, "kind", POSTSTACK3D.name))


def _live(job: TileJob, kind: DataKind, slices: tuple[slice, ...]) -> np.ndarray | None:
    """The kind's live mask over ``slices`` (its prefix over the mask dims), or None for a kind without one."""
    if kind.mask is None:
        return None
    return np.asarray(_open_array(job.input_store, kind.mask)[slices[: len(kind.mask_dims)]], dtype=bool)


def read_block(job: TileJob, tile: Tile) -> tuple[np.ndarray, np.ndarray | None]:
    """The tile's extended block of the kind's variable (scaled, dead entries zeroed) and its live mask over the
    kind's mask dims (None for a kind without a mask)."""
    kind = _kind(job)
    block = np.asarray(_open_array(job.input_store, kind.variable)[tile.ext_slices], dtype=np.float32)
    live = _live(job, kind, tile.ext_slices)
    centre, half = job.scale
    block = (block - np.float32(centre)) / np.float32(half)
    if live is not None:
        block[~live] = 0.0
    block[~np.isfinite(block)] = 0.0
    return block, live


def denoise_tile(job: TileJob, key: str, denoiser: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """Denoise tile ``key`` and save its weighted support block; returns timing and memory info:
    ``peak_rss_bytes`` the worker process's RSS high-water while the tile ran (:class:`PeakRSS`) and
    ``tile_rss_bytes`` what the tile added on top of the RSS it started from (compare with the method's
    ``peak_memory`` of the tile's block)."""
    tile = job.plan.tile(_index(key, job.plan.ndim))
    denoiser = denoiser or block_denoiser(job.spec, job.kind)
    with PeakRSS() as rss:  # the tile's own high-water: read, denoise, weight, save
        t0 = time.perf_counter()
        block, _ = read_block(job, tile)
        trim_heap()  # the read's chunk buffers, freed in zarr's threads, must not stay resident under the peak
        t1 = time.perf_counter()
        weighted = denoise_block(block, tile, job.plan, denoiser)
        t2 = time.perf_counter()
        TileState(job.output_store).save_block(tile, weighted)
        del block, weighted
    return {
        "tile": key,
        "read_s": t1 - t0,
        "denoise_s": t2 - t1,
        "save_s": time.perf_counter() - t2,
        "samples": int(np.prod([b - a for a, b in tile.ext])),
        "peak_rss_bytes": rss.peak,
        "tile_rss_bytes": rss.increment,
    }


def write_tile(job: TileJob, key: str) -> dict:
    """Blend tile ``key``'s core from the scratch blocks, write it, and record it done."""
    kind = _kind(job)
    state = TileState(job.output_store)
    tile = job.plan.tile(_index(key, job.plan.ndim))
    t0 = time.perf_counter()
    core = core_from_neighbours(tile, job.plan, state.load_block)
    centre, half = job.scale
    core = core * np.float32(half) + np.float32(centre)
    live = _live(job, kind, tile.core_slices)
    out = _open_array(job.output_store, kind.variable, "r+")
    if live is not None:
        core[~live] = out.fill_value
    out[tile.core_slices] = core.astype(np.float32, copy=False)
    state.mark_done(tile)
    return {"tile": key, "core": tile.core, "write_s": time.perf_counter() - t0}


def _index(key: str, ndim: int | None = None) -> tuple[int, ...]:
    """The grid index of tile key ``"i-j-..."`` (``ndim`` numbers when given)."""
    try:
        parts = tuple(int(p) for p in key.split("-"))
    except ValueError:
        parts = ()
    if not parts or (ndim is not None and len(parts) != ndim):
        n = f"{ndim} integers" if ndim else "integers"
        raise ValueError(f"tile key must be {n} joined by '-' (e.g. {'-'.join(['0'] * (ndim or 3))!r}), got {key!r}")
    return parts


def pending_work(plan: TilePlan, state: TileState) -> tuple[list[str], dict[str, list[str]]]:
    """Blocks to (re)compute and, per tile still to write, the blocks it needs.

    Only tiles without a done record are written; only blocks missing from the scratch
    area (and needed by such a tile) are recomputed.
    """
    done = state.done()
    to_write = {t.key: [n.key for n in plan.neighbours(t)] for t in plan.tiles() if t.key not in done}
    needed = sorted({k for deps in to_write.values() for k in deps})
    ready = state.ready()
    return [k for k in needed if k not in ready], to_write
