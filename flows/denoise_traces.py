"""Flow ``denoise-traces``: three-component records -> windows -> a trace denoiser on Dask -> records, QC, lineage.

1. Pre-flight (:func:`seiscore.execution.traces.plan_denoise`): the source (a catalog entry of kind traces3c,
   waveform files/globs, a STEAD HDF5 + CSV pair, or a trace store), the method (default ``cdiffsd``, its
   ``model`` artifact and ``mode``), every path the run writes safe; one-line errors before any work.
2. Ingest (task ``ingest-traces``): the records resampled, cut into windows (default 3000 samples every 1500)
   in the window store; skipped when the store holds the same source content and windowing.
3. The windows in batches on Dask through the ``per_item`` run mode (:func:`flows.per_item.run_items`: one
   task per batch, the method's resources, e.g. a GPU worker for ``mode="sampling"``), into the staging version
   of the output store, one completion flag per batch: a rerun of the same run resumes with the batches left.
4. The denoised windows merged back into records with the cosine cross-fade and exported as MiniSEED (task
   ``export-traces`` on a worker, beside QC), the QC report (:mod:`seiscore.qc.traces`), the lineage record in
   the store and OpenLineage events; the output is published (atomically) only when all of it is done.

A rerun with the same source content, method, parameters and code is a no-op (``force=True`` recomputes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.context import get_run_context

from flows._runtime import describe_cluster, make_task_runner, runner_settings, task_runner_client, use_resources
from seiscore.core.lineage import now_iso, read_lineage, write_lineage
from seiscore.core.settings import get_settings
from seiscore.data.traces import mark_trace_store_complete
from seiscore.execution.blockwise.state import survey_lock
from seiscore.execution.pipeline import run_key
from seiscore.execution.runs import Stages, freshness, run_summary, work_layout
from seiscore.execution.traces import KIND, TracesPlan, plan_denoise, prepare_trace_output, run_record
from seiscore.execution.versions import publish_staging, recover, staging_path
from seiscore.methods.registry import get_method
from tasks.lineage import lineage_task
from tasks.traces import export_traces_task, ingest_traces_task, publish_traces_artifacts, traces_qc_task


@flow(name="denoise-traces", task_runner=make_task_runner(), log_prints=True)
def denoise_traces(
    source: str,
    output: str | None = None,
    model: str | None = None,
    mode: Literal["direct", "sampling"] | None = None,
    params: dict[str, Any] | None = None,
    mseed: str | None = None,
    export_mseed: bool = True,
    length: int = 3000,
    hop: int = 1500,
    catalog: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Denoise three-component records with CDiffSD (or another per-item trace method), batch by batch on Dask.

    Args:
        source: A catalog entry of kind traces3c, waveform files or globs (comma-separated; every format ObsPy
            reads), a STEAD HDF5 file (its CSV beside it, same name), or a trace store.
        output: Output trace store of the denoised windows (default: the entry's output, or beside the source).
        model: The model artifact folder (default: the catalog entry's or the parameters').
        mode: "direct" (one network pass, CPU) or "sampling" (the cold-diffusion sampler, GPU).
        params: Overrides of the method's spec and parameters (e.g. {"batch_size": 64, "allow_cpu": true}).
        mseed: MiniSEED file of the denoised records (default: beside the output store).
        export_mseed: Write the MiniSEED export.
        length: Window length in samples (the model's input length).
        hop: Hop between windows in samples (overlaps are cross-faded).
        catalog: Path of the data catalog (default: SEIS_CATALOG or data_catalog.yaml).
        force: Recompute even when the output is up to date.
    """
    settings = get_settings()
    catalog = catalog or str(settings.catalog)
    overrides = {**(params or {}), **({"model": model} if model else {}), **({"mode": mode} if mode else {})}
    plan = plan_denoise(
        source,
        output=output,
        mseed=mseed,
        params=overrides or None,
        length=length,
        hop=hop,
        export_mseed=export_mseed,
        catalog=catalog,
        settings=runner_settings(settings),
    )
    return run_denoise(plan, force=force)


def run_denoise(plan: TracesPlan, *, force: bool = False) -> dict[str, Any]:
    """The body of :func:`denoise_traces` for a checked ``plan`` (inside a flow run)."""
    from flows.per_item import plan_items_task, run_items

    logger = get_run_logger()
    settings = get_settings()
    spec = plan.spec
    chosen = get_method(spec.name)
    use_resources(chosen.resources(spec))  # the local cluster is built for them at the first submission
    output = Path(plan.output)
    flow_run_id = str(get_run_context().flow_run.id)
    clock = Stages()
    with survey_lock(output, wait_s=settings.lock_wait_s, owner=f"flow run {flow_run_id}"):
        for line in recover(output):
            logger.warning(f"{plan.name}: {line}")
        ing = ingest_traces_task(plan)
        logger.info(
            f"{plan.name}: {ing['records']} records in {ing['windows']} windows of {plan.length} samples"
            + (" (ingested)" if ing["ingested"] else " (window store reused)")
        )
        for note in ing.get("notes", [])[:20]:
            logger.warning(note)
        clock.lap("ingest")
        record = run_record(plan, ing["source"], settings, flow_run_id)
        previous = read_lineage(output) if output.exists() else None
        fresh, _ = freshness(previous, record, output)
        if fresh and not force:
            logger.info(f"{plan.name}: output {output} is up to date (run {previous.run_id}); nothing to do")
            return {**run_summary(previous, output, skipped=True), **_paths(plan, previous.metrics)}

        staging = staging_path(output)
        job = plan_items_task(ing["store"], str(staging), spec, KIND)
        clock.lap("plan")
        record.tile_grid = work_layout(job)
        record.dask_cluster = describe_cluster(task_runner_client())
        lineage_task(record, "START", settings)
        try:
            already = prepare_trace_output(
                job,
                run_key(record.reuse_key(), job),
                restart=force,
                attrs={"processing": f"seiscore {spec.name} (per_item), flow run {flow_run_id}"},
            )
            if already:
                logger.info(f"resuming: {already} of {job.n_batches} batches done")
            write_lineage(staging, record)
            clock.lap("prepare")
            counts = run_items(job, settings, record.dask_cluster)
            clock.lap("items")
            record.tiles_computed = counts["batches_done"]
            mark_trace_store_complete(staging)
            export = export_traces_task.submit(str(staging), plan.mseed) if plan.mseed else None
            info = {"method": spec.name, **_spec_info(spec), "run": flow_run_id, "windows": job.n_items}
            try:
                quality = traces_qc_task(ing["store"], str(staging), plan.qc, plan.name, info)
            except BaseException:
                if export is not None:
                    export.wait()  # let it finish (or fail) before the run is reported failed
                raise
            clock.lap("quality")
            exported = export.result() if export is not None else None
            if export is not None:
                clock.lap("export")
            record.metrics = {
                **quality["metrics"],
                "qc_report": quality["report"],
                "mseed": exported["mseed"] if exported else None,
                **{k: v for k, v in counts.items() if not k.startswith("tiles_")},
                "stage_seconds": clock.laps,
            }
            record.status, record.ended = "completed", now_iso()
            write_lineage(staging, record)
            publish_staging(staging, output)
            lineage_task(record, "COMPLETE", settings)
            publish_traces_artifacts(plan.name, quality)
        except BaseException as exc:
            record.status, record.ended, record.error = "failed", now_iso(), f"{type(exc).__name__}: {exc}"
            lineage_task(record, "FAIL", settings, store=str(staging) if staging.exists() else None)
            raise
    result = run_summary(record, output, skipped=False)
    result.update(_paths(plan, record.metrics), batches=counts, stage_seconds=clock.laps)
    return result


def _spec_info(spec) -> dict[str, Any]:
    """The spec's model and mode (when it has them), for the QC summary."""
    params = getattr(spec, "params", None)
    out = {}
    for key in ("model", "mode"):
        value = getattr(spec, key, None)
        if value is None and params is not None:
            value = getattr(params, key, None)
        if value is not None:
            out[key] = str(value)
    return out


def _paths(plan: TracesPlan, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": plan.name,
        "store": plan.store,
        "mseed": metrics.get("mseed"),
        "qc_report": metrics.get("qc_report"),
    }


def run_denoise_traces(source: str, *, scheduler: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run :func:`denoise_traces` in this process on a local cluster (or on ``scheduler``)."""
    settings = get_settings(dask_address=scheduler)
    return denoise_traces.with_options(task_runner=make_task_runner(settings))(source, **kwargs)
