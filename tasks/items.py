"""Tasks of the ``per_item`` run mode: plan the batches of a run, process one batch."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from seiscore.execution.per_item import ItemJob, plan_items, process_batch
from seiscore.methods.base import MethodSpec
from tasks.tiles import _worker_name


@task(name="plan-items", cache_policy=NO_CACHE)
def plan_items_task(input_store: str, output_store: str, spec: MethodSpec, kind: str = "poststack3d") -> ItemJob:
    """Items, batches, output chunks and amplitude scaling of a ``per_item`` run."""
    return plan_items(input_store, output_store, spec, kind)


@task(name="process-batch", cache_policy=NO_CACHE, task_run_name="process-batch-{b}")
def process_batch_task(job: ItemJob, b: int) -> dict:
    """Apply the method to batch ``b`` (one array), write it and flag the batch done."""
    return {**process_batch(job, b), "worker": _worker_name()}
