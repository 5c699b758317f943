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
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

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
    cache = _BATCH.get()
    key = ("array", str(store), name, mode)
    if cache is not None and key in cache:
        return cache[key]
    from seiscore.io.location import zarr_store

    array = zarr.open_group(zarr_store(store, read_only=mode == "r"), mode=mode, use_consolidated=False)[name]
    if cache is not None:
        cache[key] = array
    return array


def _kind(job: TileJob) -> DataKind:
    """The data kind of ``job``'s stores (``job.kind``; post-stack for a job from before kinds)."""
    name = getattr(job, "kind", POSTSTACK3D.name)
    cache = _BATCH.get()
    if cache is None:
        return get_kind(name)
    if ("kind", name) not in cache:  # the registry scans the entry points (~0.1 s): once per batch
        cache[("kind", name)] = get_kind(name)
    return cache[("kind", name)]


def _state(job: TileJob) -> TileState:
    """The job's :class:`TileState` (within a batch: one whose groups and arrays are opened once)."""
    cache = _BATCH.get()
    if cache is None:
        return TileState(job.output_store)
    key = ("state", job.output_store)
    if key not in cache:
        cache[key] = _BatchTileState(job.output_store)
    return cache[key]


# Within a batch of tiles (denoise_tiles / write_tiles) the stores' groups and arrays, the data kind and the
# tile state are opened once and reused: per tile they cost ~10 ms per Zarr open and ~0.1 s per kind look-up,
# more than a small tile's work. Outside a batch (None) every call opens afresh, as before.
_BATCH: ContextVar[dict | None] = ContextVar("seiscore_tile_batch", default=None)


class _BatchTileState(TileState):
    """A :class:`TileState` that opens its group and flag/block arrays once (their shapes do not change during a
    batch, and Zarr arrays cache no chunk data: reads see what other workers wrote)."""

    def __init__(self, store):
        super().__init__(store)
        self._opened: dict = {}

    def _group(self, mode: str = "r"):
        if ("group", mode) not in self._opened:
            self._opened[("group", mode)] = super()._group(mode)
        return self._opened[("group", mode)]

    def _flags(self, name: str, mode: str = "r"):
        if (name, mode) not in self._opened:
            self._opened[(name, mode)] = super()._flags(name, mode)
        return self._opened[(name, mode)]


@contextmanager
def _batch() -> Iterator[None]:
    """Open stores, kinds and tile state once for the tiles run inside (re-entrant)."""
    if _BATCH.get() is not None:
        yield
        return
    token = _BATCH.set({})
    try:
        yield
    finally:
        _BATCH.reset(token)


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
        _state(job).save_block(tile, weighted)
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
    state = _state(job)
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


# -- batches of tiles: one task runs many tiles (orchestration costs per task, not per tile) -----------------


class TileFailures(RuntimeError):
    """Tiles of a batch that failed, one ``"<stage> tile <key>: <Type>: <message>"`` line each.

    Raised after the whole batch ran, so the other tiles of the batch are saved (or written) and flagged;
    picklable (its only argument is the list of lines), so it crosses Dask and Prefect intact.
    """

    def __init__(self, failures: list[str]):
        super().__init__(list(failures))
        self.failures = list(failures)

    def __str__(self) -> str:
        return "; ".join(self.failures)


def _sum_info(total: dict, info: dict, keys: tuple[str, ...]) -> None:
    for k in keys:
        total[k] = total.get(k, 0.0) + info.get(k, 0.0)


def denoise_tiles(job: TileJob, keys: list[str], denoiser: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """:func:`denoise_tile` on each tile of ``keys`` (a batch); tiles whose block is already saved are skipped.

    The method's callable is built once for the batch. Every tile is tried; the failed ones are raised
    together at the end (:class:`TileFailures`), so a retry of the batch redoes only them (the others are
    flagged ready). Returns the summed timings (``read_s``, ``denoise_s``, ``save_s``), ``samples``, the
    number of tiles computed (``tiles``) and skipped (``skipped``), the largest ``peak_rss_bytes`` a
    tile reported (when the per-tile function reports one), and ``placement`` (e.g. ``"numba on cpu"``) when
    the method's callable says where it ran.
    """
    with _batch():
        return _denoise_tiles(job, keys, denoiser)


def _denoise_tiles(job: TileJob, keys: list[str], denoiser) -> dict:
    state = _state(job)
    run = denoiser or block_denoiser(job.spec, job.kind)
    total: dict = {"tiles": 0, "skipped": 0, "samples": 0}
    failures: list[str] = []
    for key in keys:
        try:
            if state.has_block(job.plan.tile(_index(key, job.plan.ndim))):
                total["skipped"] += 1
                continue
            info = denoise_tile(job, key, run)
        except Exception as exc:  # noqa: BLE001 - every tile is tried, the failures raised together below
            failures.append(f"denoise tile {key}: {type(exc).__name__}: {exc}")
            continue
        total["tiles"] += 1
        total["samples"] += info["samples"]
        _sum_info(total, info, ("read_s", "denoise_s", "save_s"))
        if "peak_rss_bytes" in info:
            total["peak_rss_bytes"] = max(total.get("peak_rss_bytes", 0), int(info["peak_rss_bytes"]))
    if failures:
        raise TileFailures(failures)
    placement = getattr(run, "placement", None)  # where the method chose to run, when it chooses (TLSM: backend)
    if placement:
        total["placement"] = " on ".join(str(v) for v in placement.values())
    return total


def write_tiles(job: TileJob, keys: list[str]) -> dict:
    """:func:`write_tile` on each tile of ``keys`` (a batch). Writing a tile again writes the same core, so a
    retried batch simply rewrites its tiles (the flow batches only tiles not recorded done).

    A tile whose neighbours' blocks are not all saved (their denoise failed) is not written and listed in
    ``missing`` (``[key, reason]``) without failing the batch: the denoise failure is the error to report,
    and retrying the write cannot help. Any other error is raised for the batch at the end
    (:class:`TileFailures`), after the other tiles are written. Returns ``write_s``, ``tiles`` written and
    ``missing``.
    """
    with _batch():
        return _write_tiles(job, keys)


def _write_tiles(job: TileJob, keys: list[str]) -> dict:
    total: dict = {"tiles": 0, "write_s": 0.0, "missing": []}
    failures: list[str] = []
    for key in keys:
        try:
            info = write_tile(job, key)
        except FileNotFoundError as exc:  # a neighbour's scratch block is missing: its denoise failed
            total["missing"].append([key, str(exc)])
            continue
        except Exception as exc:  # noqa: BLE001 - every tile is tried, the failures raised together below
            failures.append(f"write tile {key}: {type(exc).__name__}: {exc}")
            continue
        total["tiles"] += 1
        total["write_s"] += info["write_s"]
    if failures:
        raise TileFailures(failures)
    return total


def tile_batches(keys, size: int) -> list[list[str]]:
    """``keys`` in grid order (row-major over the tile index), cut into consecutive batches of ``size``.

    Consecutive tiles are neighbours, so a batch's writes need the blocks of few denoise batches.
    """
    if size < 1:
        raise ValueError(f"tiles per task must be >= 1, got {size}")
    ordered = sorted(keys, key=lambda k: _index(k))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


# A task of about this many samples (~seconds of TLSM on one thread) makes the ~0.1-0.2 s a Prefect task run
# costs small; auto batching never puts more in one task, nor so many that a worker thread gets fewer than
# ``AUTO_BATCHES_PER_SLOT`` tasks (load balance, progress).
AUTO_SAMPLES_PER_TASK = 2**22
AUTO_BATCHES_PER_SLOT = 4
AUTO_MAX_TILES_PER_TASK = 256


def auto_tiles_per_task(n_tiles: int, samples_per_tile: int, slots: int) -> int:
    """Tiles per task when the setting is ``auto``: as many as keep a task under ``AUTO_SAMPLES_PER_TASK``
    samples, at most ``ceil(n_tiles / (AUTO_BATCHES_PER_SLOT * slots))`` and ``AUTO_MAX_TILES_PER_TASK``,
    at least 1. Large tiles (real TLSM tiles: millions of samples) stay one per task."""
    by_cost = AUTO_SAMPLES_PER_TASK // max(int(samples_per_tile), 1)
    by_balance = -(-int(n_tiles) // (AUTO_BATCHES_PER_SLOT * max(int(slots), 1)))
    return int(max(1, min(by_cost, by_balance, AUTO_MAX_TILES_PER_TASK)))
