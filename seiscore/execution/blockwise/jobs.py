"""Denoise and write one tile of a survey store: the work units the pipeline distributes.

A :class:`TileJob` (JSON-serialisable) names the input and output stores, the tile plan,
the denoiser and the survey's amplitude scaling. :func:`denoise_tile` reads a tile's
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
from functools import lru_cache
from typing import Any, Callable, Literal

import numpy as np
import zarr
from pydantic import BaseModel, ConfigDict, Field

from seiscore.data.kinds import POSTSTACK3D, DataKind, get_kind
from seiscore.execution.blockwise.state import TileState
from seiscore.execution.blockwise.tiling import (
    Tile,
    TileConfig,
    TilePlan,
    core_from_neighbours,
    denoise_block,
    plan_tiles,
)

DIMS = POSTSTACK3D.dims  # the post-stack store's dims, from their one definition (seiscore.data.kinds)

# TLSM tiles cut only the tube axis (by measurement, benchmarks/results/tiling.md): its
# singular-value and TV shrinkage depend on the frontal-slice size, so cutting the smooth or
# footprint axes costs 1-4 dB. Along the tube the result still moves with the tile length
# (-1.6 to +0.5 dB on the paper's cube: two halves lose 1-1.6 dB, 28 + 4 gains 0.43 dB); 44 + halo 2
# stays within 0.07 dB of the whole cube at 1.09x samples, with no seam against the clean cube
# (halo 4: -0.05 dB at 1.18x). TLSM couples the tube axis only through the t-SVD's FFT, so a small
# halo suffices.
TLSM_TUBE_TILE, TLSM_TUBE_HALO = 44, 2
# SSB works on 2-D sections (with its own patch blending): stacks of whole sections.
SSB_TILE = 32


class DenoiserSpec(BaseModel):
    """Which denoiser runs on the tiles, with what parameters and axis roles."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["tlsm", "ssb"] = "tlsm"
    preset: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, str] = Field(
        default_factory=lambda: {"smooth": "crossline", "footprint": "sample", "tube": "inline"},
        description="TLSM roles (smooth / footprint / tube) -> store dims",
    )
    scale: Literal["minmax", "none"] = "minmax"
    tiles: TileConfig | None = None
    model: str | None = Field(None, description="SSB model artifact folder")
    section_dim: str = Field("inline", description="SSB: sections are cut across this dim")
    threads_per_task: int = Field(
        1,
        ge=1,
        description="threads one tile's TLSM uses; the cluster already runs one tile "
        "per worker thread, so 1 keeps every core busy without oversubscribing them",
    )

    def tile_config(self) -> TileConfig:
        """The configured tiles, else the default: TLSM tiles along its tube axis, SSB stacks of sections."""
        if self.tiles is not None:
            return self.tiles
        axis = DIMS.index(self.axes["tube"] if self.name == "tlsm" else self.section_dim)
        size, halo = (TLSM_TUBE_TILE, TLSM_TUBE_HALO) if self.name == "tlsm" else (SSB_TILE, 0)
        return TileConfig(
            tile=tuple(size if a == axis else None for a in range(3)),
            halo=tuple(halo if a == axis else 0 for a in range(3)),
        )

    def needs_gpu(self) -> bool:
        return self.name == "ssb"


# Keys of a run's ``params`` that set the DenoiserSpec itself; every other key is a denoiser parameter.
SPEC_KEYS = ("tiles", "scale", "model", "section_dim", "axes", "preset", "threads_per_task")


def _as_dict(obj: Any) -> dict:
    if obj is None:
        return {}
    return obj.model_dump() if hasattr(obj, "model_dump") else dict(obj)


def resolve_spec(entry: Any, denoiser: str | None, params: dict | None) -> DenoiserSpec:
    """Denoiser of a catalog entry with the run's overrides (``params`` keys ``tiles``, ``scale``,
    ``model``, ``section_dim``, ``axes``, ``preset`` set the spec; the others are denoiser parameters)."""
    base = _as_dict(getattr(entry, "denoiser", None))
    name = denoiser or base.get("name") or "tlsm"
    same = base.get("name", name) == name
    fields: dict[str, Any] = {"name": name}
    if base.get("axes"):
        fields["axes"] = base["axes"]
    if same:
        fields.update(
            {
                k: base[k]
                for k in ("preset", "model", "scale", "tiles", "section_dim", "threads_per_task")
                if base.get(k) is not None
            }
        )
    overrides = dict(params or {})
    fields.update({k: overrides.pop(k) for k in SPEC_KEYS if k in overrides})
    fields["params"] = {**(base.get("params") or {} if same else {}), **overrides}
    return DenoiserSpec(**fields)


def plan_job_tiles(shape, input_chunks, spec: DenoiserSpec) -> TilePlan:
    """The tile plan of a run on an input of ``shape`` chunked ``input_chunks``: output chunks are whole
    cores along the tiled axes and the input's chunking along whole axes."""
    cfg = spec.tile_config()
    chunks = tuple(int(min(t, n)) if t is not None else int(c) for t, n, c in zip(cfg.tile, shape, input_chunks))
    return plan_tiles(shape, cfg, chunks)


def gpu_available() -> bool:
    """True when torch sees a CUDA device (imports torch: about 3 s)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def tile_resources(spec: DenoiserSpec, cluster: dict, *, has_gpu: bool) -> tuple[dict | None, str | None]:
    """Dask resources the tile tasks of ``spec`` need on ``cluster``, and a warning to log (or None).

    GPU denoisers (SSB) require a worker advertising ``GPU=1``. Without one, an external cluster is
    an error; a local cluster runs them on CPU workers only when the user set ``allow_cpu=true``
    explicitly, so a nightly run never silently takes hours on CPU.
    """
    if not spec.needs_gpu():
        return None, None
    if has_gpu:
        return {"GPU": 1}, None
    if cluster.get("type") == "external":
        raise RuntimeError(
            f"{spec.name} tiles need a worker with resources GPU=1; none of the "
            f"{cluster.get('n_workers')} workers at {cluster.get('scheduler')} advertises one"
        )
    if spec.params.get("allow_cpu") is True:
        return None, f"no GPU worker in the local cluster: {spec.name} tiles run on the CPU workers (allow_cpu=true)"
    raise RuntimeError(
        f"{spec.name} tiles need a GPU worker and the local cluster has none; pass the parameter "
        "allow_cpu=true (seis run SURVEY --param allow_cpu=true) to run them on the CPU workers"
    )


class TileJob(BaseModel):
    """Everything a worker needs to process tiles of one run."""

    input_store: str
    output_store: str
    plan: TilePlan
    spec: DenoiserSpec
    scale: tuple[float, float] = (0.0, 1.0)  # (centre, half-range) applied before denoising


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


def block_denoiser(spec: DenoiserSpec) -> Callable[[np.ndarray], np.ndarray]:
    """A function denoising one (inline, crossline, sample) block, same shape and dtype out."""
    if spec.name == "tlsm":
        from seiscore.methods.tlsm import denoise

        missing = {"smooth", "footprint", "tube"} - set(spec.axes)
        if missing or sorted(spec.axes.values()) != sorted(DIMS):
            raise ValueError(f"TLSM axes must map smooth, footprint and tube onto {DIMS}, got {spec.axes}")
        perm = [DIMS.index(spec.axes[r]) for r in ("smooth", "footprint", "tube")]
        inv = np.argsort(perm)
        params = spec.params or None

        def run(block: np.ndarray) -> np.ndarray:
            out = denoise(
                np.ascontiguousarray(np.transpose(block, perm)),
                params,
                preset=spec.preset,
                workers=spec.threads_per_task,
            )
            return np.transpose(out, inv)

        return run
    if spec.name == "ssb":
        from seiscore.methods.ssb import denoise

        if not spec.model:
            raise ValueError("SSB needs a model artifact folder (denoiser.model in the catalog or --param model=PATH)")
        model = _ssb_model(spec.model)
        axis = DIMS.index(spec.section_dim)
        return lambda block: denoise(block, model, axis=axis, **spec.params)
    raise ValueError(f"unknown denoiser {spec.name!r}")


@lru_cache(maxsize=2)
def _ssb_model(path: str):
    from seiscore.methods.ssb import load_model

    return load_model(path)


def _open_array(store: str, name: str, mode: str = "r"):
    return zarr.open_group(store, mode=mode, use_consolidated=False)[name]


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
    """Denoise tile ``key`` and save its weighted support block; returns timing info."""
    tile = job.plan.tile(_index(key, job.plan.ndim))
    t0 = time.perf_counter()
    block, _ = read_block(job, tile)
    t1 = time.perf_counter()
    weighted = denoise_block(block, tile, job.plan, denoiser or block_denoiser(job.spec))
    t2 = time.perf_counter()
    TileState(job.output_store).save_block(tile, weighted)
    return {
        "tile": key,
        "read_s": t1 - t0,
        "denoise_s": t2 - t1,
        "save_s": time.perf_counter() - t2,
        "samples": int(block.size),
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
