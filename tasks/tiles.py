"""Tasks of a blockwise run: plan the tiles, run the method on one tile or a batch, write one tile or a batch.

Thin wrappers of :mod:`seiscore.execution.blockwise.jobs`; the job carries the method spec and the data
kind, so any blockwise method runs through these tasks unchanged."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from seiscore.execution.blockwise.jobs import TileJob, denoise_tile, denoise_tiles, write_tile, write_tiles
from seiscore.execution.pipeline import make_job
from seiscore.methods.base import MethodSpec


def _worker_name() -> str | None:
    """Name of the Dask worker running the task (None outside a worker)."""
    from distributed import get_worker

    try:
        return str(get_worker().name)
    except ValueError:
        return None


@task(name="plan-tiles", cache_policy=NO_CACHE)
def plan_tiles_task(input_store: str, output_store: str, spec: MethodSpec, kind: str = "poststack3d") -> TileJob:
    """Tile plan, chunk shape and amplitude scaling of a run of ``spec`` on data of ``kind``."""
    return make_job(input_store, output_store, spec, kind=kind)


@task(name="denoise-tile", cache_policy=NO_CACHE, task_run_name="denoise-tile-{key}")
def denoise_tile_task(job: TileJob, key: str) -> dict:
    """Run the method on tile ``key`` (extended block) and save its weighted support block."""
    return {**denoise_tile(job, key), "worker": _worker_name()}


@task(name="write-tile", cache_policy=NO_CACHE, task_run_name="write-tile-{key}")
def write_tile_task(job: TileJob, key: str) -> dict:
    """Blend tile ``key``'s core from its neighbours' blocks and write it to the output store."""
    return {**write_tile(job, key), "worker": _worker_name()}


@task(name="denoise-tiles", cache_policy=NO_CACHE, task_run_name="denoise-tiles-from-{keys[0]}")
def denoise_tiles_task(job: TileJob, keys: list[str]) -> dict:
    """Run the method on a batch of tiles (each block saved and flagged on its own)."""
    return {**denoise_tiles(job, keys), "worker": _worker_name()}


@task(name="write-tiles", cache_policy=NO_CACHE, task_run_name="write-tiles-from-{keys[0]}")
def write_tiles_task(job: TileJob, keys: list[str]) -> dict:
    """Blend and write a batch of tiles (each recorded done on its own)."""
    return {**write_tiles(job, keys), "worker": _worker_name()}
