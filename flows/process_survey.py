"""Flow ``process-survey``: catalog entry -> ingest -> the method on Dask -> output store -> QC -> lineage -> SEG-Y.

The method is resolved at run time (the pre-flight: catalog entry + ``method`` + ``params``), and the run
dispatches on its run mode (:func:`seiscore.execution.runs.run_mode`): ``blockwise`` methods run as tiles
(:func:`run_tiles`), ``per_item`` methods as batches of items (``flows.per_item.run_items``); a ``fit``
method is refused (the ``fit-method`` flow, :mod:`flows.fit_method`, runs it). The method's resources
(``Method.resources``, e.g. ``{"GPU": 1}``) choose the local cluster before the first task is submitted
(:mod:`flows._runtime`), so the deployed flow - nightly or from the UI - gets GPU workers for a GPU method as
``seis run`` does. A new method needs no edit here.

Resumable: tiles are recorded done in the output's staging version (published atomically only
when complete, see :mod:`seiscore.execution.versions`), so a re-run after a crash or a cancellation computes
only what is missing; a re-run of a finished survey with the same input content, method, parameters and
code is a no-op (``force=True`` reprocesses).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Literal

import dask
import numpy as np
from prefect import allow_failure, flow, get_run_logger
from prefect.context import get_run_context
from prefect.futures import as_completed

from flows._runtime import (
    describe_cluster,
    get_entry,
    has_resource,
    make_task_runner,
    runner_settings,
    task_runner_client,
    use_resources,
)
from seiscore import io
from seiscore.core import progress
from seiscore.core.lineage import DatasetRef, now_iso, read_lineage, write_lineage
from seiscore.core.rss import PeakRSS
from seiscore.core.settings import PipelineSettings, get_settings
from seiscore.execution.blockwise.jobs import TileFailures, TileJob, auto_tiles_per_task, pending_work, tile_batches
from seiscore.execution.blockwise.state import TileState, survey_lock
from seiscore.execution.export_state import segy_is_current
from seiscore.execution.pipeline import prepare_output, run_key, summary_metrics
from seiscore.execution.preflight import preflight
from seiscore.execution.resources import placement
from seiscore.execution.runs import (
    Stages,
    freshness,
    lineage_record,
    reference_to_ingest,
    run_mode,
    run_summary,
    work_layout,
)
from seiscore.execution.versions import publish_staging, recover, staging_path
from seiscore.io import location
from seiscore.methods.registry import get_method, names
from tasks.export import export_segy as export_segy_task
from tasks.ingest import ingest_survey
from tasks.lineage import lineage_task
from tasks.quality import publish_artifacts, quality_task
from tasks.tiles import denoise_tiles_task, plan_tiles_task, write_tiles_task

# The registered methods when the flow is imported (built-in and installed plug-ins): the choices of the
# Prefect UI's run form. A process imports the flow after the plug-ins it can run are installed.
MethodName = Literal[tuple(names(fresh=True))]  # type: ignore[valid-type]


def tiles_per_task(job: TileJob, settings: PipelineSettings, cluster: dict) -> int:
    """The batch size of the run: the setting, or (``auto``) from the tile count, tile size and worker threads."""
    if settings.tiles_per_task != "auto":
        return int(settings.tiles_per_task)
    slots = sum(int(w.get("nthreads") or 1) for w in cluster.get("workers", {}).values()) or 1
    corner = job.plan.tile((0,) * job.plan.ndim)  # the others differ by a halo at most
    samples = int(np.prod([s.stop - s.start for s in corner.ext_slices]))  # the denoiser's block
    return auto_tiles_per_task(job.plan.n_tiles, samples, slots)


def run_tiles(job: TileJob, settings: PipelineSettings, cluster: dict) -> dict[str, Any]:
    """Submit the missing tiles to Dask in batches (denoise, then blend + write) and wait; raise naming failed tiles.

    A Prefect task run costs ~0.1-0.2 s of orchestration (measured: ``python -m seiscore.bench orchestration``),
    so small tiles go ``tiles_per_task`` to a task (:func:`tiles_per_task`): consecutive tiles in grid order,
    each still saved, flagged and recorded done on its own, so a resume redoes only unfinished tiles. A write
    batch waits for the denoise batches holding its tiles' neighbours, and runs even when one of them failed:
    it writes every tile whose neighbours' blocks are all saved.
    """
    size = tiles_per_task(job, settings, cluster)
    resources, note = placement(get_method(job.spec.name), job.spec, cluster, has_gpu=has_resource(cluster, "GPU"))
    if note:
        get_run_logger().warning(note)
    opts = {"retries": settings.task_retries, "retry_delay_seconds": settings.task_retry_delay_s}
    tasks = denoise_tiles_task.with_options(**opts), write_tiles_task.with_options(**opts)
    with PeakRSS() as flow_rss:  # this (the flow's) process over the stage: it must not grow with the tile count
        result = _submit_and_collect(job, size, resources, *tasks, settings.task_retries)
    result["flow_rss_tiles_start_bytes"], result["flow_rss_tiles_peak_bytes"] = flow_rss.start, flow_rss.peak
    return result


def _submit_and_collect(job: TileJob, size: int, resources, denoise, write, retries: int) -> dict[str, Any]:
    """The body of :func:`run_tiles`: submit the missing tiles' batches, collect their results, raise on failures."""
    logger = get_run_logger()
    to_compute, to_write = pending_work(job.plan, TileState(job.output_store))
    logger.info(
        f"{job.plan.n_tiles} tiles (grid {job.plan.grid}); {len(to_write)} to write, {len(to_compute)} to denoise; "
        f"{size} tile(s) per task"
    )
    compute_batches = tile_batches(to_compute, size)
    batch_of = {k: i for i, keys in enumerate(compute_batches) for k in keys}
    with dask.annotate(resources=resources) if resources else nullcontext():
        denoised = [denoise.submit(job, keys) for keys in compute_batches]
    stage_of: dict = {f: ("denoise", keys) for f, keys in zip(denoised, compute_batches)}
    for keys in tile_batches(to_write, size):
        needs = sorted({batch_of[d] for k in keys for d in to_write[k] if d in batch_of})
        stage_of[write.submit(job, keys, wait_for=[allow_failure(denoised[i]) for i in needs])] = ("write", keys)
    n_compute, n_write = len(to_compute), len(to_write)
    del to_compute, to_write, batch_of  # the flow keeps only the futures and their batches' keys
    failures, per_worker, seconds, samples = [], {}, {"read_s": 0.0, "denoise_s": 0.0, "save_s": 0.0, "write_s": 0.0}, 0
    label, tiles_done = location.name(job.output_store), job.plan.n_tiles - n_write
    progress.report("tiles", label, tiles_done, job.plan.n_tiles)
    peak_rss, placements = 0, set()
    for fut in as_completed(list(stage_of)):  # in completion order, so the progress advances batch by batch
        stage, keys = stage_of.pop(fut)
        try:
            info = fut.result()
        except TileFailures as exc:
            failures.extend(exc.failures)
            continue
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            failures.append(f"{stage} tile {_batch_label(keys)}: {type(exc).__name__}: {exc}")
            continue
        for k in seconds:
            seconds[k] += info.get(k, 0.0)
        if stage == "denoise":
            samples += info["samples"]
            per_worker[info["worker"]] = per_worker.get(info["worker"], 0) + info["tiles"]
            peak_rss = max(peak_rss, int(info.get("peak_rss_bytes", 0)))
            if info.get("placement"):
                placements.add(info["placement"])
        else:
            failures.extend(f"write tile {k}: not written: {why}" for k, why in info["missing"])
            tiles_done += info["tiles"]
            progress.report("tiles", label, tiles_done, job.plan.n_tiles)
    if failures:
        failures.sort()  # denoise before write, by tile: the same message whatever order they completed in
        raise RuntimeError(
            f"{len(failures)} tile task(s) failed after {retries} retries; first: {failures[0]}"
            + ("" if len(failures) == 1 else f" (also: {'; '.join(failures[1:4])})")
        )
    result = {
        "tiles_denoised": n_compute,
        "tiles_written": n_write,
        "tiles_total": job.plan.n_tiles,
        "tiles_per_task": size,
        "tiles_per_worker": per_worker,
        "task_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "denoised_samples": samples,
    }
    if peak_rss:
        result["tile_peak_rss_bytes"] = peak_rss
    if placements:
        result["tile_backends"] = sorted(placements)  # e.g. ["numba on cpu"], ["torch on cuda"]
    return result


@flow(name="process-survey", task_runner=make_task_runner(), log_prints=True)
def process_survey(
    survey: str,
    method: MethodName | None = None,
    params: dict[str, Any] | None = None,
    export_segy: bool = False,
    catalog: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Process one catalog survey with a method: ingest, run the method on Dask, write, QC, lineage, optional SEG-Y.

    Args:
        survey: Name of the survey in the data catalog.
        method: Method to run (`seis methods` lists them with their resources); default: the catalog entry's.
        params: Overrides of the method's spec and parameters (e.g. {"tau": 0.3}); a key naming a field of the
            spec ("tiles", "scale", "threads_per_task", an SSB "model") sets it, every other key is a parameter.
        export_segy: Also write the result as SEG-Y (the catalog's output_segy, default next to the output store).
        catalog: Path of the data catalog (default: SEIS_CATALOG or data_catalog.yaml).
        force: Reprocess even if the output is up to date.
    """
    logger = get_run_logger()
    settings = get_settings()
    catalog = catalog or str(settings.catalog)
    plan = preflight(
        survey,
        catalog=catalog,
        method=method,
        params=params,
        export_segy=export_segy,
        force=force,
        settings=runner_settings(settings),
    )  # configuration errors and unsafe paths fail here
    spec = plan.spec
    chosen = get_method(spec.name)
    mode = run_mode(chosen)  # a fit method is refused here
    use_resources(chosen.resources(spec))  # the local cluster is built for them at the first submission
    entry = get_entry(survey, catalog)
    kind = entry.kind  # the data kind of its stores (catalog, default poststack3d)
    targets = plan.targets  # every path this run writes, checked by the pre-flight (seiscore.core.safety)
    output = location.normalize(entry.output)  # a local Path, or an fsspec URL (str) for stores on object storage
    flow_run_id = str(get_run_context().flow_run.id)

    clock = Stages()
    with survey_lock(output, wait_s=settings.lock_wait_s, owner=f"flow run {flow_run_id}"):
        for line in recover(output):
            logger.warning(f"{survey}: {line}")
        ing = ingest_survey(
            str(entry.source_path), str(entry.store), entry.il_byte, entry.xl_byte, entry.sample_unit, entry.chunks
        )
        reference = _reference_store(entry)
        clock.lap("ingest")
        record = lineage_record(
            survey=survey,
            source=DatasetRef(**ing["source"]),
            output=output,
            spec=spec,
            settings=settings,
            run_id=flow_run_id,
        )
        previous = read_lineage(output) if location.exists(output) else None
        segy_path = location.normalize(targets["segy"])
        fresh, _ = freshness(previous, record, output)
        if fresh and not force:
            logger.info(f"{survey}: output {output} is up to date (run {previous.run_id}); nothing to do")
            skipped = run_summary(previous, output, skipped=True)
            if export_segy:  # still export when asked, unless the SEG-Y already holds this output
                current = segy_is_current(segy_path, previous.started)
                skipped["segy"] = str(segy_path) if current else export_segy_task(str(output), str(segy_path))
            return skipped

        # The work, QC and lineage go to a staging version; the published output changes only when it is whole.
        staging = staging_path(output)
        if mode == "blockwise":
            job = plan_tiles_task(ing["store"], str(staging), spec, kind)
        else:  # per_item
            from flows.per_item import plan_items_task

            job = plan_items_task(ing["store"], str(staging), spec, kind)
        clock.lap("plan")
        record.tile_grid = work_layout(job)
        record.dask_cluster = describe_cluster(task_runner_client())
        lineage_task(record, "START", settings)
        try:
            already = prepare_output(  # tiles or batches: a re-run of the same run key resumes
                job,
                run_key(record.reuse_key(), job),
                restart=force,
                attrs={"processing": f"seiscore {spec.name} ({mode}), flow run {flow_run_id}"},
            )
            if already:
                logger.info(f"resuming: {already} work units ({'tiles' if mode == 'blockwise' else 'batches'}) done")
            write_lineage(staging, record)
            clock.lap("prepare")
            counts = _run_work(mode, job, settings, record.dask_cluster)
            clock.lap("tiles" if mode == "blockwise" else "items")
            record.tiles_computed = counts["tiles_denoised"]
            # The work is whole: the staging store is complete (its lineage still says "running"; marking also
            # consolidates the metadata QC and export read), and the SEG-Y export runs on a Dask worker while QC
            # runs here.
            io.mark_complete(staging)
            export = export_segy_task.submit(str(staging), str(segy_path)) if export_segy else None
            report_dir = location.normalize(targets["qc_report"])
            try:
                quality = quality_task(ing["store"], str(staging), str(report_dir), reference, survey)
            except BaseException:
                if export is not None:
                    export.wait()  # let it finish (or fail) before the run is reported failed
                raise
            clock.lap("quality")
            segy = export.result() if export is not None else None
            if export is not None:
                clock.lap("export")  # the part of the export that outlasted QC
            record.metrics = {
                **summary_metrics(quality["metrics"]),
                "qc_report": quality["report"],
                **counts,
                "stage_seconds": clock.laps,
            }
            record.status, record.ended = "completed", now_iso()
            write_lineage(staging, record)
            if mode == "blockwise":
                TileState(staging).clear_blocks()
            publish_staging(staging, output)
            lineage_task(record, "COMPLETE", settings)
            publish_artifacts(survey, quality)
        except BaseException as exc:
            record.status, record.ended, record.error = "failed", now_iso(), f"{type(exc).__name__}: {exc}"
            lineage_task(record, "FAIL", settings, store=str(staging) if location.exists(staging) else None)
            raise
    result = run_summary(record, output, skipped=False)
    result["segy"], result["stage_seconds"] = segy, clock.laps
    return result


def _run_work(mode: str, job: Any, settings: PipelineSettings, cluster: dict) -> dict[str, Any]:
    """Run a job of ``mode`` on the flow's cluster: tiles (blockwise) or batches of items (per_item)."""
    if mode == "blockwise":
        return run_tiles(job, settings, cluster)
    from flows.per_item import run_items

    return run_items(job, settings, cluster)


def _reference_store(entry: Any) -> str | None:
    """The clean reference as a store (a SEG-Y reference is ingested beside the input store)."""
    segy = reference_to_ingest(entry)
    if segy is None:
        return getattr(entry, "reference", None)
    ing = ingest_survey(segy[0], segy[1], entry.il_byte, entry.xl_byte, entry.sample_unit, entry.chunks)
    return ing["store"]


def run_process_survey(survey: str, *, scheduler: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run :func:`process_survey` in this process on a local cluster, or on ``scheduler`` if given.

    Works without a Prefect server: Prefect starts a temporary one for the run. The local cluster is chosen
    by the flow from the method it resolves (GPU workers for a GPU method), as in a deployment.
    """
    settings = get_settings(dask_address=scheduler)
    return process_survey.with_options(task_runner=make_task_runner(settings))(survey, **kwargs)


def _batch_label(keys: list[str]) -> str:
    """``KEY`` for a batch of one tile, ``FIRST..LAST (N tiles)`` for more."""
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)} tiles)"
