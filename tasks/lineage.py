"""Tasks: lineage record in the output store and OpenLineage run events."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from seiscore.core.lineage import LineageRecord, emit_event, write_lineage
from seiscore.core.settings import PipelineSettings


@task(name="lineage", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def lineage_task(record: LineageRecord, event: str, settings: PipelineSettings, store: str | None = None) -> None:
    """Write ``record`` into ``store``'s attributes (when given) and emit an OpenLineage ``event``
    (an unreachable endpoint: one warning per run, the event spooled for later)."""
    if store is not None:
        write_lineage(store, record)
    warning = emit_event(record, event, settings)
    if warning:
        get_run_logger().warning(warning)
