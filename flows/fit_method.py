"""Flow ``fit-method``: run (or resume) any ``fit``-mode method of the registry into a run folder.

The generic path of the ``fit`` run mode (:mod:`seiscore.execution.fit`): a training or inversion method that
is registered (built in, or a plug-in of the ``seiscore.methods`` entry points) runs here with no flow edit.

1. Pre-flight (:func:`seiscore.execution.fit.fit_preflight`): the method's spec (its defaults + ``params``),
   the folder a safe write target; one-line errors.
2. The method's resources (``Method.resources``, e.g. ``{"GPU": 1}``) choose the local cluster before the
   first submission (:func:`flows._runtime.use_resources`); the placement rule
   (:func:`seiscore.execution.resources.placement`) decides the resources the task is submitted with.
3. One Prefect task ``fit`` on a Dask worker runs :func:`seiscore.execution.fit.fit_method` with an
   :class:`flows.fit.EventPublisher` (progress, per-epoch table and model markdown artifacts). Meanwhile the
   flow follows the run's ``events.jsonl`` and reports its steps through :mod:`seiscore.core.progress` (the
   ``seis fit`` bar).

Resumable: a rerun on the same folder resumes after the last checkpoint (:class:`seiscore.execution.fit.FitRun`),
with identical results; a rerun with another configuration is refused by the pre-flight.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import dask
from prefect import flow, get_run_logger, task

from flows._runtime import describe_cluster, has_resource, make_task_runner, task_runner_client, use_resources
from flows.fit import EventPublisher
from flows.process_survey import MethodName
from seiscore.core.settings import get_settings
from seiscore.execution.fit import EVENTS_FILE, FitProgress, fit_method, fit_preflight, read_events_from
from seiscore.execution.resources import placement
from seiscore.methods.base import MethodSpec
from seiscore.methods.registry import get_method

POLL_S = 0.5  # how often the flow reads the run's new events while the task runs


@task(name="fit")
def fit_task(spec: MethodSpec, folder: str, seed: int) -> dict[str, Any]:
    """Run (or resume) the fit of ``spec`` in ``folder`` on this worker, publishing its events to Prefect."""
    publisher = EventPublisher(prefix=re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()), title=spec.name)
    return fit_method(spec, folder, seed=seed, callback=publisher)


@flow(name="fit-method", task_runner=make_task_runner(), log_prints=True)
def fit_method_flow(
    method: MethodName, folder: str, params: dict[str, Any] | None = None, seed: int = 0
) -> dict[str, Any]:
    """Fit (train or invert) a ``fit``-mode method into a run folder; rerunning on the same folder resumes.

    Args:
        method: A method of run mode fit (`seis methods` lists them with their resources).
        folder: The run folder (checkpoints, events, metrics, artifacts/NAME with a model card).
        params: Overrides of the method's spec and parameters (e.g. {"epochs": 10}).
        seed: Seed of the run's random numbers (the same seed and folder resume identically).
    """
    return fit_in_flow(method, folder, params, seed)


def fit_in_flow(method: str, folder: str, params: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """The body of a fit flow (inside a flow run): pre-flight, the cluster for the method's resources, the
    placement rule (a GPU worker, or CPU workers only with ``allow_cpu=true``), one ``fit`` task followed to
    its end. Returns ``{"method", "folder", "summary"}``. Flows of one fit method (``train-cdiffsd``) call it."""
    logger = get_run_logger()
    settings = get_settings()
    spec, target = fit_preflight(method, folder, params, seed=seed, settings=settings)
    chosen = get_method(spec.name)
    use_resources(chosen.resources(spec))  # the local cluster is built for them at the first submission
    cluster = describe_cluster(task_runner_client())
    resources, note = placement(chosen, spec, cluster, has_gpu=has_resource(cluster, "GPU"))
    if note:
        logger.warning(note)
    summary = submit_and_follow(fit_task, spec, target, seed, resources, settings, f"{spec.name}: fitting")
    return {"method": spec.name, "folder": str(target), "summary": summary}


def submit_and_follow(task_fn, spec: MethodSpec, folder, seed: int, resources, settings, what: str, label=None) -> Any:
    """Submit ``task_fn(spec, folder, seed)`` (a fit task) to Dask with ``resources`` and the settings' retries,
    follow the run's new events in ``folder`` (progress through :class:`FitProgress`, labelled ``label`` or the
    folder's name) until it ends, and return its result (re-raising its error). Logs ``"<what> into FOLDER"``
    (``(resuming)`` when the folder already has events: those are earlier runs', not this run's progress)."""
    folder = Path(folder)
    events = folder / EVENTS_FILE
    offset = events.stat().st_size if events.is_file() else 0
    get_run_logger().info(f"{what} into {folder}" + (" (resuming)" if offset else ""))
    fit = task_fn.with_options(retries=settings.task_retries, retry_delay_seconds=settings.task_retry_delay_s)
    with dask.annotate(resources=resources) if resources else nullcontext():
        future = fit.submit(spec, str(folder), seed)
    follow = FitProgress(label or folder.name)
    while True:
        future.wait(POLL_S)
        finished = future.wrapped_future.done()
        new, offset = read_events_from(folder, offset)
        for event in new:
            follow(event)
        if finished:
            break
    return future.result()
