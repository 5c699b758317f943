"""Task: make sure a survey's SEG-Y source is ingested into its (up-to-date) Zarr store."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from seiscore.core.settings import get_settings
from seiscore.execution.pipeline import ensure_ingested


@task(name="ingest", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def ingest_survey(
    source: str,
    store: str,
    il_byte: int = 189,
    xl_byte: int = 193,
    sample_unit: str = "ms",
    chunks: tuple[int, int, int] | None = None,
) -> dict:
    """Ingest ``source`` into ``store`` when missing or stale; returns the store, source ref and whether it ran."""
    path, ref, ingested = ensure_ingested(
        source,
        store,
        il_byte=il_byte,
        xl_byte=xl_byte,
        sample_unit=sample_unit,
        chunks=chunks,
        lock_wait_s=get_settings().ingest_lock_wait_s,
    )
    return {"store": str(path), "source": ref.model_dump(), "ingested": ingested}
