"""Flow ``process-survey``: catalog entry -> ingest -> tiles on Dask -> output store -> QC -> lineage -> SEG-Y.

Resumable: tiles are recorded done in the output's staging version (published atomically only
when complete, see :mod:`seiscore.execution.versions`), so a re-run after a crash or a cancellation computes
only what is missing; a re-run of a finished survey with the same
input content, denoiser, parameters and code is a no-op (``force=True`` reprocesses).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import dask
from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.futures import as_completed

from flows._runtime import (
    describe_cluster,
    get_entry,
    has_resource,
    make_task_runner,
    runner_settings,
    task_runner_client,
)
from seiscore import io
from seiscore.core import progress
from seiscore.core.lineage import DatasetRef, LineageRecord, now_iso, read_lineage, write_lineage
from seiscore.core.safety import reference_store_path
from seiscore.core.settings import PipelineSettings, get_settings
from seiscore.execution.blockwise.jobs import TileJob, pending_work
from seiscore.execution.blockwise.state import TileState, survey_lock
from seiscore.execution.export_state import segy_is_current
from seiscore.execution.pipeline import prepare_output, run_key, summary_metrics
from seiscore.execution.preflight import preflight
from seiscore.execution.resources import placement
from seiscore.execution.versions import publish_staging, recover, staging_path
from seiscore.methods.registry import get_method
from tasks.export import export_segy as export_segy_task
from tasks.ingest import ingest_survey
from tasks.lineage import lineage_task
from tasks.quality import publish_artifacts, quality_task
from tasks.tiles import denoise_tile_task, plan_tiles_task, write_tile_task


def run_tiles(job: TileJob, settings: PipelineSettings, cluster: dict) -> dict[str, int]:
    """Submit the missing tiles to Dask (denoise, then blend + write) and wait; raise naming failed tiles."""
    logger = get_run_logger()
    to_compute, to_write = pending_work(job.plan, TileState(job.output_store))
    logger.info(
        f"{job.plan.n_tiles} tiles (grid {job.plan.grid}); {len(to_write)} to write, {len(to_compute)} to denoise"
    )
    resources, note = placement(get_method(job.spec.name), job.spec, cluster, has_gpu=has_resource(cluster, "GPU"))
    if note:
        logger.warning(note)
    denoise = denoise_tile_task.with_options(
        retries=settings.task_retries, retry_delay_seconds=settings.task_retry_delay_s
    )
    write = write_tile_task.with_options(retries=settings.task_retries, retry_delay_seconds=settings.task_retry_delay_s)
    with dask.annotate(resources=resources) if resources else nullcontext():
        denoised = {k: denoise.submit(job, k) for k in to_compute}
    written = {
        k: write.submit(job, k, wait_for=[denoised[d] for d in deps if d in denoised]) for k, deps in to_write.items()
    }
    failures, per_worker, seconds, samples = [], {}, {"read_s": 0.0, "denoise_s": 0.0, "save_s": 0.0, "write_s": 0.0}, 0
    label, tiles_done = Path(job.output_store).name, job.plan.n_tiles - len(to_write)
    progress.report("tiles", label, tiles_done, job.plan.n_tiles)
    stage_of = {**{f: ("denoise", k) for k, f in denoised.items()}, **{f: ("write", k) for k, f in written.items()}}
    for fut in as_completed(list(stage_of)):  # in completion order, so the progress advances tile by tile
        stage, key = stage_of[fut]
        try:
            info = fut.result()
            for k in seconds:
                seconds[k] += info.get(k, 0.0)
            if stage == "denoise":
                samples += info["samples"]
                per_worker[info["worker"]] = per_worker.get(info["worker"], 0) + 1
            else:
                tiles_done += 1
                progress.report("tiles", label, tiles_done, job.plan.n_tiles)
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            failures.append(f"{stage} tile {key}: {type(exc).__name__}: {exc}")
    if failures:
        failures.sort()  # denoise before write, by tile: the same message whatever order they completed in
        raise RuntimeError(
            f"{len(failures)} tile task(s) failed after {settings.task_retries} retries; first: {failures[0]}"
            + ("" if len(failures) == 1 else f" (also: {'; '.join(failures[1:4])})")
        )
    return {
        "tiles_denoised": len(to_compute),
        "tiles_written": len(to_write),
        "tiles_total": job.plan.n_tiles,
        "tiles_per_worker": per_worker,
        "task_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "denoised_samples": samples,
    }


@flow(name="process-survey", task_runner=make_task_runner(get_settings()), log_prints=True)
def process_survey(
    survey: str,
    denoiser: Literal["tlsm", "ssb"] | None = None,
    params: dict[str, Any] | None = None,
    export_segy: bool = False,
    catalog: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Denoise one catalog survey: ingest, tile, denoise on Dask, write, QC, lineage, optional SEG-Y.

    Args:
        survey: Name of the survey in the data catalog.
        denoiser: Denoiser to use ("tlsm" on CPU workers, "ssb" on GPU workers); default: the catalog's.
        params: Overrides of the denoiser parameters (e.g. {"tau": 0.3}); keys "tiles", "scale", "model", "preset", "threads_per_task" set the tiling, scaling, SSB model, TLSM preset and threads per tile task.
        export_segy: Also write the denoised survey as SEG-Y (the catalog's output_segy, default next to the output store).
        catalog: Path of the data catalog (default: SEIS_CATALOG or data_catalog.yaml).
        force: Reprocess even if the output is up to date.
    """
    logger = get_run_logger()
    settings = get_settings()
    catalog = catalog or str(settings.catalog)
    plan = preflight(
        survey,
        catalog=catalog,
        denoiser=denoiser,
        params=params,
        export_segy=export_segy,
        force=force,
        settings=runner_settings(settings),
    )  # configuration errors and unsafe paths fail here
    entry = get_entry(survey, catalog)
    targets = plan.targets  # every path this run writes, checked by the pre-flight (seiscore.core.safety)
    spec = plan.spec
    output = Path(entry.output)
    flow_run_id = str(get_run_context().flow_run.id)

    clock = _Stages()
    with survey_lock(output, wait_s=settings.lock_wait_s, owner=f"flow run {flow_run_id}"):
        for line in recover(output):
            logger.warning(f"{survey}: {line}")
        ing = ingest_survey(
            str(entry.source_path), str(entry.store), entry.il_byte, entry.xl_byte, entry.sample_unit, entry.chunks
        )
        reference = _reference_store(entry)
        clock.lap("ingest")
        record = LineageRecord(
            run_id=flow_run_id,
            flow_run_id=flow_run_id,
            survey=survey,
            input=DatasetRef(**ing["source"]),
            output=DatasetRef(uri=str(output.resolve())),
            denoiser=spec.model_dump(mode="json"),
        )
        if settings.code_version:
            record.code["version"] = settings.code_version
            record.code["git_commit"] = None
        previous = read_lineage(output) if output.exists() else None
        segy_path = Path(targets["segy"])
        if (
            not force
            and previous is not None
            and previous.status == "completed"
            and io.is_complete(output)
            and previous.reuse_key() == record.reuse_key()
        ):
            logger.info(f"{survey}: output {output} is up to date (run {previous.run_id}); nothing to do")
            skipped = _summary(previous, output, skipped=True)
            if export_segy:  # still export when asked, unless the SEG-Y already holds this output
                current = segy_is_current(segy_path, previous.started)
                skipped["segy"] = str(segy_path) if current else export_segy_task(str(output), str(segy_path))
            return skipped

        # Tiles, QC and lineage go to a staging version; the published output changes only when it is whole.
        staging = staging_path(output)
        job = plan_tiles_task(ing["store"], str(staging), spec)
        clock.lap("plan")
        record.tile_grid = {
            "grid": job.plan.grid,
            "n_tiles": job.plan.n_tiles,
            "edges": job.plan.edges,
            "halo": job.plan.halo,
            "blend": job.plan.blend,
            "chunks": job.plan.chunks,
            "scale": job.scale,
        }
        record.dask_cluster = describe_cluster(task_runner_client())
        lineage_task(record, "START", settings)
        try:
            already = prepare_output(
                job,
                run_key(record.reuse_key(), job),
                restart=force,
                attrs={"processing": f"seiscore {spec.name} denoise, flow run {flow_run_id}"},
            )
            if already:
                logger.info(f"resuming: {already} of {job.plan.n_tiles} tiles already written")
            write_lineage(staging, record)
            clock.lap("prepare")
            counts = run_tiles(job, settings, record.dask_cluster)
            clock.lap("tiles")
            record.tiles_computed = counts["tiles_denoised"]
            # Every tile is written: the amplitudes are whole, so the staging store is complete (its lineage
            # still says "running"; marking also consolidates the metadata QC and export read), and
            # the SEG-Y export runs on a Dask worker while QC runs here.
            io.mark_complete(staging)
            export = export_segy_task.submit(str(staging), str(segy_path)) if export_segy else None
            report_dir = Path(targets["qc_report"])
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
            TileState(staging).clear_blocks()
            publish_staging(staging, output)
            lineage_task(record, "COMPLETE", settings)
            publish_artifacts(survey, quality)
        except BaseException as exc:
            record.status, record.ended, record.error = "failed", now_iso(), f"{type(exc).__name__}: {exc}"
            lineage_task(record, "FAIL", settings, store=str(staging) if staging.exists() else None)
            raise
    result = _summary(record, output, skipped=False)
    result["segy"], result["stage_seconds"] = segy, clock.laps
    return result


class _Stages:
    """Wall seconds per flow stage."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._t, 3)
        self._t = now


def _reference_store(entry: Any) -> str | None:
    """The clean reference as a store (a SEG-Y reference is ingested beside the input store)."""
    ref = getattr(entry, "reference", None)
    if not ref or Path(ref).suffix.lower() not in (".sgy", ".segy"):
        return ref
    ing = ingest_survey(
        ref, str(reference_store_path(entry)), entry.il_byte, entry.xl_byte, entry.sample_unit, entry.chunks
    )
    return ing["store"]


def _summary(record: LineageRecord, output: Path, skipped: bool) -> dict[str, Any]:
    return {
        "survey": record.survey,
        "output": str(output),
        "skipped": skipped,
        "run_id": record.run_id,
        "tiles_computed": 0 if skipped else record.tiles_computed,
        "metrics": record.metrics,
        "qc_report": record.metrics.get("qc_report"),
        "lineage": "output store attrs 'lineage' + OpenLineage events",
        "status": record.status,
    }


def run_process_survey(survey: str, *, scheduler: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run :func:`process_survey` in this process on a local cluster, or on ``scheduler`` if given.

    Works without a Prefect server: Prefect starts a temporary one for the run.
    """
    settings = get_settings(dask_address=scheduler)
    needs_gpu = kwargs.get("denoiser") == "ssb"
    return process_survey.with_options(task_runner=make_task_runner(settings, needs_gpu=needs_gpu))(survey, **kwargs)
