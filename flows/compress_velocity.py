"""Flow ``compress-velocity-archive``: a velocity-model collection -> a SIREN archive, with QC and lineage.

1. Pre-flight (:func:`seiscore.execution.velocity.plan_compress`): the collection (a catalog entry of kind
   velocity2d, a velocity store or an OpenFWI-style ``.npy``) read and validated, the archive, its work folder
   (``<archive>_work``) and QC folder (``<archive>_qc``) safe write targets inside the data roots; one-line errors.
2. Decoder: the given decoder artifact folder is reused, or one is fitted through the ``fit`` run mode
   (:func:`seiscore.execution.fit.fit_method` on the ``siren`` method, in ONE Dask task on a GPU worker when the
   cluster has one; CPU workers only with ``params={"allow_cpu": true}``, as in ``fit-method``) into
   ``<archive>_work/fit`` (a rerun resumes the fit after its last checkpoint).
3. Encoding: one Dask task per batch of models (decoder frozen), each also choosing per model the smallest
   codec meeting ``max_error`` (m/s); each batch's result is a file in ``<archive>_work/batches`` stamped with
   the run key, so a rerun of the same run skips the batches already done.
4. The archive is written atomically (:func:`seiscore.methods.siren.archive.write_archive`) with its card and
   lineage (collection hash, decoder hash, configuration); then the QC report (:mod:`seiscore.qc.velocity`) and
   Prefect artifacts (per-family quality table, sizes and codec mix).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import dask
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import as_completed

from flows._runtime import describe_cluster, has_resource, make_task_runner, task_runner_client, use_resources
from seiscore.core import progress
from seiscore.core.settings import get_settings
from seiscore.execution.velocity import CompressPlan, fit_params, make_job, pending_batches, plan_compress
from tasks.velocity import encode_batch_task, velocity_qc_task, write_archive_task


def _fit_decoder(plan: CompressPlan, settings, resources, logger) -> str:
    """Fit (or resume fitting) the decoder of ``plan`` in one Dask task; returns its artifact folder."""
    from flows.fit_method import fit_task, submit_and_follow
    from seiscore.execution.fit import FitDone, fit_preflight, read_events

    spec, folder = fit_preflight(
        "siren", plan.fit_folder, fit_params(plan.source, plan.params), seed=plan.seed, settings=settings
    )
    if (Path(plan.decoder) / "model_card.json").is_file() and any(isinstance(e, FitDone) for e in read_events(folder)):
        logger.info(f"decoder already fitted in {folder} (same configuration): reused")
        return plan.decoder
    submit_and_follow(
        fit_task, spec, folder, plan.seed, resources, settings, "fitting the decoder", label=Path(plan.archive).name
    )
    if not Path(plan.decoder).is_dir():
        raise RuntimeError(f"the siren fit in {folder} wrote no decoder artifact at {plan.decoder}")
    return plan.decoder


def _encode(job, settings, resources, label: str, logger) -> dict[str, Any]:
    """Submit the pending batches, follow them (progress ``batches``), one error line naming failed batches."""
    pending = pending_batches(job)
    done = job.n_batches - len(pending)
    logger.info(f"{job.n_models} models in {job.n_batches} batches of {job.batch}; {len(pending)} to encode")
    task = encode_batch_task.with_options(
        retries=settings.task_retries, retry_delay_seconds=settings.task_retry_delay_s
    )
    with dask.annotate(resources=resources) if resources else nullcontext():
        futures = {task.submit(job, b): b for b in pending}
    progress.report("batches", label, done, job.n_batches)
    failures, seconds, workers = [], 0.0, {}
    for fut in as_completed(list(futures)):
        b = futures[fut]
        try:
            info = fut.result()
        except Exception as exc:  # noqa: BLE001 - collected and raised below
            failures.append(f"batch {b}: {type(exc).__name__}: {exc}")
            continue
        seconds += info["seconds"]
        workers[str(info.get("worker"))] = workers.get(str(info.get("worker")), 0) + 1
        done += 1
        progress.report("batches", label, done, job.n_batches)
    if failures:
        failures.sort()
        raise RuntimeError(
            f"{len(failures)} encode task(s) failed after {settings.task_retries} retries; first: {failures[0]}"
        )
    return {
        "batches_total": job.n_batches,
        "batches_encoded": len(pending),
        "batches_skipped": job.n_batches - len(pending),
        "encode_seconds": round(seconds, 3),
        "batches_per_worker": workers,
    }


def _publish(result: dict[str, Any], qc: dict[str, Any]) -> None:
    """Prefect artifacts: the per-family quality table and a markdown summary (sizes, codec mix, QC report)."""
    key = "velocity-archive-" + "".join(c if c.isalnum() else "-" for c in result["collection"].lower()).strip("-")
    rows = qc.get("families") or []
    if rows:
        create_table_artifact(
            rows, key=f"{key}-quality", description=f"{result['collection']}: decoded quality per family"
        )
    lines = [
        f"# Velocity archive `{result['collection']}`",
        "",
        f"Archive: `{result['archive']}`  ",
        f"QC report: `{qc.get('report')}`",
        "",
        "| item | value |",
        "|---|---|",
    ]
    for k in ("models", "mean_bytes_per_model", "ratio_per_model", "ratio_amortised", "decoder_bytes", "max_abs_error"):
        if k in result:
            lines.append(f"| {k} | {result[k]} |")
    lines.append(f"| codec mix | {', '.join(f'{k}: {v}' for k, v in result['codec_mix'].items())} |")
    create_markdown_artifact("\n".join(lines), key=f"{key}-summary", description="archive sizes and codecs")


def _archive_card(path: str) -> dict[str, Any]:
    """The card of an existing archive ({} when there is none or it cannot be read)."""
    if not Path(path).exists():
        return {}
    from seiscore.methods.siren.archive import open_archive

    try:
        return dict(open_archive(path).card or {})
    except Exception:  # noqa: BLE001 - unreadable or another version: it is rewritten
        return {}


@flow(name="compress-velocity-archive", task_runner=make_task_runner(), log_prints=True)
def compress_velocity_archive(
    collection: str,
    archive: str | None = None,
    decoder: str | None = None,
    max_error: float | None = 10.0,
    latent_dtype: Literal["float32", "float16"] = "float32",
    params: dict[str, Any] | None = None,
    batch: int = 32,
    seed: int = 0,
    catalog: str | None = None,
    qc: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Compress a velocity-model collection into a SIREN archive (resumable: a rerun skips finished batches).

    Args:
        collection: A catalog entry of kind velocity2d, or the path of a velocity store / OpenFWI .npy file.
        archive: The archive to write (default: the catalog entry's output, else <collection>_archive.zarr).
        decoder: A decoder artifact folder to reuse (e.g. RUN/artifacts/decoder); none: fit one on the collection.
        max_error: Maximum absolute error in m/s: per model the smallest codec meeting it; none: latents only.
        latent_dtype: float32 or float16 latents.
        params: siren parameters (e.g. {"epochs": 500, "allow_cpu": true}); with a reused decoder only the
            encoding ones (encode_steps, encode_lr, lam, device, threads).
        batch: Models per encoding task.
        seed: Seed of the fit and of the encodings.
        catalog: The data catalog (default: SEIS_CATALOG or data_catalog.yaml).
        qc: Write the QC report.
        force: Rewrite the archive even when it is up to date (same collection, decoder and settings).
    """
    from prefect.context import FlowRunContext

    from seiscore.execution.resources import placement
    from seiscore.methods.registry import get_method, resolve_spec

    logger = get_run_logger()
    settings = get_settings()
    catalog = catalog or str(settings.catalog)
    plan = plan_compress(
        collection,
        archive,
        decoder,
        max_error=max_error,
        latent_dtype=latent_dtype,
        params=params,
        batch=batch,
        seed=seed,
        catalog=catalog,
        settings=settings,
    )
    logger.info(f"{plan.name}: {plan.n_models} models of {plan.shape[0]} x {plan.shape[1]} -> {plan.archive}")
    placed = plan.params if decoder is None else {k: v for k, v in plan.params.items() if k == "allow_cpu"}
    spec = resolve_spec(None, method="siren", params=fit_params(plan.source, placed))
    chosen = get_method("siren")
    use_resources(chosen.resources(spec))
    cluster = describe_cluster(task_runner_client())
    resources, note = placement(chosen, spec, cluster, has_gpu=has_resource(cluster, "GPU"))
    if note:
        logger.warning(note)
    Path(plan.work).mkdir(parents=True, exist_ok=True)
    from seiscore.core.safety import mark_owned

    mark_owned(plan.work)
    fitted = decoder is None
    decoder_path = _fit_decoder(plan, settings, resources, logger) if fitted else plan.decoder
    job = make_job(plan, decoder_path)
    card = _archive_card(plan.archive)
    if not force and card.get("run_key") == job.run_key:
        logger.info(f"{plan.name}: archive {plan.archive} is up to date (nothing recomputed)")
        return {
            "collection": plan.name,
            "decoder": decoder_path,
            "fitted": fitted,
            "skipped": True,
            "archive": plan.archive,
            "models": plan.n_models,
            "codec_mix": card.get("codec_mix", {}),
            **card.get("sizes", {}),
            "batches_total": job.n_batches,
            "batches_encoded": 0,
            "batches_skipped": job.n_batches,
        }
    counts = _encode(job, settings, resources, Path(plan.archive).name, logger)
    ctx = FlowRunContext.get()
    run_id = str(ctx.flow_run.id) if ctx is not None and ctx.flow_run is not None else None
    written = write_archive_task(plan, job, run_id)
    result: dict[str, Any] = {"collection": plan.name, "decoder": decoder_path, "fitted": fitted, **written, **counts}
    quality: dict[str, Any] = {}
    if qc:
        quality = velocity_qc_task(plan.archive, plan.source, plan.qc, plan.name)
        result["qc_report"] = quality.get("report")
        result["quality"] = quality.get("overall")
    _publish(result, quality)
    logger.info(
        f"{plan.name}: archive written ({result['mean_bytes_per_model']} B per model, "
        f"{result['ratio_per_model']}:1 per model, {result['ratio_amortised']}:1 with the decoder; "
        f"codecs {result['codec_mix']})"
    )
    return result
