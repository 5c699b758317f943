"""Orchestration of the ``per_item`` run mode: the pending batches of a run on Dask, with progress.

:func:`run_items` is to a ``per_item`` method what ``run_tiles`` is to a blockwise one: the flow
(``process-survey``) plans the job (task ``plan-items``, :func:`plan_items_task`), prepares the output
store (:func:`seiscore.execution.pipeline.prepare_output`, the same call as for tiles) and calls it; a
re-run of the same run key submits only the batches without a completion flag.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import dask
from prefect import get_run_logger
from prefect.futures import as_completed

from flows._runtime import has_resource
from seiscore.core import progress
from seiscore.core.settings import PipelineSettings
from seiscore.execution.per_item import ItemJob, pending_batches
from seiscore.methods.registry import get_method
from tasks.items import plan_items_task, process_batch_task

__all__ = ["plan_items_task", "run_items"]  # the flow plans with the task, then runs the batches


def run_items(job: ItemJob, settings: PipelineSettings, cluster: dict) -> dict[str, Any]:
    """Submit the pending batches of ``job`` to Dask (with the method's resources) and wait; report the batches
    done through :mod:`seiscore.core.progress` (``"batches"``); raise one ``RuntimeError`` line naming the
    failed batches. Returns the counts of this run: ``batches_done`` / ``items_processed`` (processed now),
    ``batches_total``, ``task_seconds``, and the blockwise keys (``tiles_denoised`` = ``tiles_written`` =
    batches processed now, ``tiles_total`` = batches in all) that the flow's summary reads."""
    from seiscore.execution.resources import placement

    logger = get_run_logger()
    pending = pending_batches(job)
    logger.info(
        f"{job.n_items} items along {job.item_dim} in {job.n_batches} batches of {job.batch}; {len(pending)} to process"
    )
    resources, note = placement(get_method(job.spec.name), job.spec, cluster, has_gpu=has_resource(cluster, "GPU"))
    if note:
        logger.warning(note)
    task = process_batch_task.with_options(
        retries=settings.task_retries, retry_delay_seconds=settings.task_retry_delay_s
    )
    with dask.annotate(resources=resources) if resources else nullcontext():
        futures = {task.submit(job, b): b for b in pending}
    label, done = Path(job.output_store).name, job.n_batches - len(pending)
    progress.report("batches", label, done, job.n_batches)
    failures: list[tuple[int, str]] = []
    seconds = {"read_s": 0.0, "compute_s": 0.0, "write_s": 0.0}
    per_worker: dict[str, int] = {}
    items = samples = 0
    for fut in as_completed(list(futures)):  # in completion order, so the progress advances batch by batch
        b = futures[fut]
        try:
            info = fut.result()
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            failures.append((b, f"batch {b}: {type(exc).__name__}: {exc}"))
            continue
        for k in seconds:
            seconds[k] += info.get(k, 0.0)
        items, samples = items + info["items"], samples + info["samples"]
        per_worker[info["worker"]] = per_worker.get(info["worker"], 0) + 1
        done += 1
        progress.report("batches", label, done, job.n_batches)
    if failures:
        lines = [line for _, line in sorted(failures)]  # by batch: the same message whatever the completion order
        raise RuntimeError(
            f"{len(lines)} batch task(s) failed after {settings.task_retries} retries; first: {lines[0]}"
            + ("" if len(lines) == 1 else f" (also: {'; '.join(lines[1:4])})")
        )
    return {
        "tiles_denoised": len(pending),
        "tiles_written": len(pending),
        "tiles_total": job.n_batches,
        "tiles_per_worker": per_worker,
        "batches_done": len(pending),
        "batches_total": job.n_batches,
        "items_processed": items,
        "task_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "denoised_samples": samples,
    }
