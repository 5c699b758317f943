"""Pipeline settings (pydantic-settings): environment variables ``SEIS_*`` override the defaults.

| variable | meaning | default |
|---|---|---|
| ``SEIS_DASK_ADDRESS`` | existing Dask scheduler (``tcp://host:8786``); unset: a local cluster per run | unset |
| ``SEIS_DASK_WORKERS`` | worker processes of the local cluster | 2 |
| ``SEIS_DASK_THREADS_PER_WORKER`` | threads per local worker | 1 |
| ``SEIS_DASK_MEMORY_LIMIT`` | memory limit per local worker | ``auto`` |
| ``SEIS_TASK_MEMORY_BYTES`` | budget of one tile task (bytes, ``4GB``): tiles planned to fit | limit / threads / 2 |
| ``SEIS_GPU_MEMORY_BYTES`` | memory of one GPU (bytes, ``80GB``): GPU tiles planned for 0.8 of it | local GPU |
| ``SEIS_TASK_RETRIES`` / ``SEIS_TASK_RETRY_DELAY_S`` | retries of a failing task and the pause between them | 2 / 2 |
| ``SEIS_TILES_PER_TASK`` | tiles one denoise/write task runs; ``auto``: from the tile count and size | ``auto`` |
| ``SEIS_LOCK_WAIT_S`` | how long a second run on the same survey waits for the first (0 = refuse at once) | 0 |
| ``SEIS_CATALOG`` | catalog file | ``data_catalog.yaml`` |
| ``SEIS_DATA_ROOTS`` | more write roots (``os.pathsep``-separated) besides the catalog folder's ``data/`` | unset |
| ``SEIS_LINEAGE_DIR`` | OpenLineage event file (file transport) and spool of unsent HTTP events | ``openlineage`` |
| ``SEIS_OPENLINEAGE_URL`` | HTTP endpoint (e.g. Marquez ``http://localhost:5000``): events go there instead | unset |
| ``SEIS_OPENLINEAGE_NAMESPACE`` | OpenLineage job namespace | ``seiscore`` |
| ``SEIS_CODE_VERSION`` | code identity used to decide whether an output is up to date | package version + git commit |
| ``SEIS_SCHEDULE_CRON`` / ``SEIS_SCHEDULE_TIMEZONE`` | nightly schedule of the deployments | ``0 2 * * *`` / ``UTC`` |
| ``SEIS_SCHEDULE_INTERVAL_S`` | run the deployments every N seconds instead of on the cron | unset |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class PipelineSettings(BaseSettings):
    """Where the pipeline runs and where it reports; read from ``SEIS_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SEIS_", extra="ignore")

    dask_address: str | None = Field(None, description="existing Dask scheduler address; None = local cluster")
    dask_workers: int = Field(2, ge=1)
    dask_threads_per_worker: int = Field(1, ge=1)
    dask_memory_limit: str = "auto"
    dask_malloc_trim_threshold: int = Field(
        256 * 2**20,
        ge=0,
        description="MALLOC_TRIM_THRESHOLD_ of local workers. Dask's default (64 KiB) hands every freed array back "
        "to the OS, so TLSM's per-iteration arrays page-fault again: measured 4.61 s vs 3.73 s for one tile",
    )
    task_memory_bytes: int | None = Field(
        None,
        gt=0,
        description="memory budget of one tile task (SEIS_TASK_MEMORY_BYTES: bytes or e.g. '4GB'); None = "
        "TASK_MEMORY_FRACTION of the local worker's memory limit per thread (DEFAULT_TASK_MEMORY_BYTES with an "
        "external scheduler or no limit)",
    )
    gpu_memory_bytes: int | None = Field(
        None,
        gt=0,
        description="memory of one GPU of the workers (SEIS_GPU_MEMORY_BYTES: bytes or e.g. '80GB'); tiles of a method "
        "that may run on a GPU are planned so that one task needs at most GPU_MEMORY_FRACTION of it; None = the total "
        "memory of this machine's CUDA device, if it has one (else the GPU memory is not planned)",
    )
    task_retries: int = Field(2, ge=0)
    task_retry_delay_s: float = Field(2.0, ge=0)
    tiles_per_task: int | Literal["auto"] = Field(
        "auto",
        description="tiles one denoise or write task runs (each tile still recorded done on its own, so a resume "
        "redoes only unfinished tiles); auto: one per task for large tiles, batches of small tiles so a Prefect "
        "task run (~0.1-0.2 s) is not paid per tile (seiscore.execution.blockwise.jobs.auto_tiles_per_task)",
    )
    lock_wait_s: float = Field(0.0, ge=0)
    ingest_lock_wait_s: float = Field(
        3600.0,
        ge=0,
        description="how long a run waits while another run ingests "
        "the same input store, then reuses it (0: refuse at once)",
    )
    catalog: Path = Path("data_catalog.yaml")
    data_roots: Annotated[list[Path | str], NoDecode] = Field(
        default_factory=list,
        description="more folders the product may write under (SEIS_DATA_ROOTS: os.pathsep-separated; a bucket "
        "or prefix URL such as s3://bucket/seis is a root too: ':' before '//' does not split)",
    )
    lineage_dir: Path = Path("openlineage")
    openlineage_url: str | None = None
    openlineage_namespace: str = "seiscore"
    code_version: str | None = Field(
        None, description="code identity for reuse decisions (default: package version + git commit)"
    )
    schedule_cron: str = "0 2 * * *"
    schedule_timezone: str = "UTC"
    schedule_interval_s: float | None = Field(None, gt=0, description="run every N seconds instead of on the cron")

    @field_validator("task_memory_bytes", "gpu_memory_bytes", mode="before")
    @classmethod
    def _parse_bytes(cls, value, info: ValidationInfo):
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in ("", "none", "auto"):
                return None
            from dask.utils import parse_bytes

            try:
                return int(parse_bytes(text))
            except ValueError:
                raise ValueError(f"{info.field_name} must be bytes or a size such as 4GB, got {value!r}") from None
        return value

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value):
        from seiscore.io.location import is_remote, split_roots

        if isinstance(value, str):
            value = split_roots(value)
        return [v if is_remote(v) else Path(v) for v in value] if isinstance(value, list | tuple) else value


# Share of a worker's memory limit (per thread) one tile task may plan for: Dask pauses a worker at 80 % of its
# limit and the worker process itself, its scratch and the task's output hold the rest.
TASK_MEMORY_FRACTION = 0.5
DEFAULT_TASK_MEMORY_BYTES = 4 * 2**30


def task_memory_budget(settings: PipelineSettings | None = None) -> int:
    """Bytes one tile task may use at its peak: ``SEIS_TASK_MEMORY_BYTES``, else ``TASK_MEMORY_FRACTION`` of a
    local worker's memory limit (``SEIS_DASK_MEMORY_LIMIT``) divided by its threads, else (external scheduler,
    no limit) ``DEFAULT_TASK_MEMORY_BYTES``. Depends on the settings only, so the pre-flight and the run plan
    the same tiles."""
    settings = settings or get_settings()
    if settings.task_memory_bytes:
        return int(settings.task_memory_bytes)
    if settings.dask_address:
        return DEFAULT_TASK_MEMORY_BYTES
    from seiscore.execution.preflight import worker_memory_limit

    threads = settings.dask_threads_per_worker
    try:
        limit = worker_memory_limit(settings.dask_memory_limit, threads)
    except ValueError:
        limit = None
    if not limit:
        return DEFAULT_TASK_MEMORY_BYTES
    return int(TASK_MEMORY_FRACTION * limit / threads)


# Share of one GPU's memory a task on it may plan for. A GPU worker runs one GPU=1 task at a time (one thread,
# docs/gpu.md), so the task may take most of the device; the rest holds what the methods' models do not count:
# the CUDA context (~0.3-0.6 GiB, outside torch's allocator), blocks torch's caching allocator keeps reserved but
# unallocated (fragmentation: reserved > allocated), cuFFT plans and cuSOLVER workspaces, and another process's use.
GPU_MEMORY_FRACTION = 0.8


def gpu_task_memory_budget(settings: PipelineSettings | None = None) -> int | None:
    """Bytes of GPU memory one task may use on a GPU: ``GPU_MEMORY_FRACTION`` of ``SEIS_GPU_MEMORY_BYTES``, else of
    this machine's CUDA device (:func:`seiscore.execution.resources.gpu_memory_total`: no torch import without an
    NVIDIA driver), else None (unknown: only host memory is planned). Not divided among threads: a GPU worker runs
    one ``GPU=1`` task at a time. Set ``SEIS_GPU_MEMORY_BYTES`` when the workers' GPUs differ from this machine's
    (an external cluster), so that the pre-flight and the run plan the same tiles."""
    settings = settings or get_settings()
    total = settings.gpu_memory_bytes
    if not total:
        from seiscore.execution.resources import gpu_memory_total

        total = gpu_memory_total()
    return int(GPU_MEMORY_FRACTION * total) if total else None


def get_settings(**overrides) -> PipelineSettings:
    """Settings from the environment, with explicit ``overrides`` (None values ignored) on top."""
    return PipelineSettings(**{k: v for k, v in overrides.items() if v is not None})
