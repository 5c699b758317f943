"""Runtime helpers of the flows: the Dask task runner, the cluster description, the catalog.

Which cluster a run gets is decided at run time from the method the run resolved, not when the flow
is imported (the nightly deployment and the UI run the same flow object, whose task runner was built
at import): :class:`SeisDaskTaskRunner` reads the settings when the flow run starts and creates its
local cluster only at the first submission (prefect-dask creates the client lazily). Between the two,
``process-survey`` pre-flights the run, asks the method for its resources (``Method.resources``) and
hands them to :func:`use_resources`, so the tiles run on a cluster built for them:

- ``SEIS_DASK_ADDRESS`` (or ``--scheduler``): the existing cluster, whatever the resources (the run
  then checks that a worker advertises them, :func:`seiscore.execution.resources.placement`);
- resources with ``GPU`` and a CUDA device and dask-cuda here: dask-cuda's ``LocalCUDACluster``
  (one worker per GPU, each advertising ``GPU=1``);
- otherwise a local cluster of worker *processes* (``SEIS_DASK_WORKERS`` x
  ``SEIS_DASK_THREADS_PER_WORKER``), where the placement refuses a GPU method or, with its explicit
  ``allow_cpu=true``, runs it on the CPU workers with a warning.

This lazy choice keeps one flow run per survey run (its tile task runs, lineage id and artifacts
together) and works for every entry point - a deployment, the UI, ``seis run``, a ``reprocess-archive``
sub-flow - with no parent flow or second flow run to relate; a runner built with an explicit cluster or
address (``process_survey.with_options(task_runner=...)``) is used as it is.

Worker processes of a local cluster inherit the flow's Prefect API URL, so task runs are reported to the
same (possibly temporary) Prefect server instead of each worker starting its own. Workers of an existing
cluster cannot inherit it: the flow checks at its start that each reports to the flow's API and refuses
to run otherwise, saying how to start them.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import dask
from prefect_dask import DaskTaskRunner

from seiscore.core.settings import PipelineSettings, get_settings
from seiscore.execution import resources as gpu_rules

# Dask preload of local workers: they ignore Ctrl-C (a terminal sends it to the whole process group); the
# command stops them (seiscore.cli.signals).
WORKER_PRELOAD = "seiscore.cli.signals"
CUDA_CLUSTER = "dask_cuda.LocalCUDACluster"


class SeisDaskTaskRunner(DaskTaskRunner):
    """DaskTaskRunner whose local cluster is chosen at run time and whose local workers report to the flow's API.

    Built without ``address`` / ``cluster`` / ``cluster_class`` (as :func:`make_task_runner` builds it), it
    *resolves* when the flow run starts: ``settings`` (default: read then) give the scheduler address, else the
    local cluster is chosen from ``resources`` at the first submission (:func:`local_cluster`); until then
    :meth:`use_resources` may change them."""

    def __init__(
        self,
        *,
        settings: PipelineSettings | None = None,
        resources: dict[str, float] | None = None,
        **kwargs: Any,
    ):
        self.resolves = not any(kwargs.get(k) for k in ("address", "cluster", "cluster_class"))
        self.settings = settings
        self.resources = dict(resources or {})
        super().__init__(**kwargs)

    def duplicate(self):
        """A fresh runner with the same settings (Prefect runs each flow run on a duplicate)."""
        if self.resolves:
            return type(self)(settings=self.settings, resources=self.resources)
        return type(self)(
            address=self.address,
            cluster_class=self.cluster_class,
            cluster_kwargs=self.cluster_kwargs,
            adapt_kwargs=self.adapt_kwargs,
            client_kwargs=self.client_kwargs,
            performance_report_path=self.performance_report_path,
        )

    def __eq__(self, other: object) -> bool:
        """Same settings (and, for a resolving runner, the same settings object and resources)."""
        if isinstance(other, SeisDaskTaskRunner) and (self.resolves or other.resolves):
            return (self.resolves, self.settings, self.resources) == (other.resolves, other.settings, other.resources)
        return super().__eq__(other)

    def use_resources(self, resources: dict[str, float] | None) -> bool:
        """Build the local cluster for tasks needing ``resources``; False when the cluster is already chosen
        (an existing cluster, an explicit one, or one already started)."""
        if not self.resolves or self.address or self._cluster is not None or self._client is not None:
            return False
        self.resources = dict(resources or {})
        return True

    def __enter__(self):
        if self.resolves:
            self.settings = self.settings or get_settings()
            self.address = self.settings.dask_address or None
        self._sigterm = _announce_sigterm()
        runner = super().__enter__()
        if self.address:
            try:
                check_worker_prefect_api(self.client, self.address)
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return runner

    def __exit__(self, *exc_info):
        """On an interrupt or termination (not an ordinary error) the local workers are killed first: a busy
        worker would otherwise hold the cluster's shutdown for the nanny's 4 s grace."""
        try:
            if exc_info[0] is not None and not issubclass(exc_info[0], Exception) and self._cluster is not None:
                kill_local_workers(self._cluster)
            return super().__exit__(*exc_info)
        finally:
            if getattr(self, "_sigterm", None) is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, self._sigterm)

    @property
    def client(self):
        """The client; a local cluster is created here (lazily, by prefect-dask) with our worker settings."""
        if self._client is None and self._cluster is None and not self.address:
            if self.resolves:
                from prefect.utilities.importtools import from_qualified_name

                self.cluster_class, self.cluster_kwargs = local_cluster(self.settings or get_settings(), self.resources)
                self.resolved_cluster_class = from_qualified_name(self.cluster_class)
            url = current_api_url()
            if url:
                env = dict(self.cluster_kwargs.get("env") or {})
                env.setdefault("PREFECT_API_URL", url)
                self.cluster_kwargs["env"] = env
            # Each nanny reads this before spawning its worker (glibc reads it at start-up only).
            trim = get_settings().dask_malloc_trim_threshold
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": trim}):
                return super().client
        return super().client


def use_resources(resources: dict[str, float] | None) -> bool:
    """Tell the running flow's task runner what its tasks need, before its first submission (see the module
    docstring); False when its cluster is fixed already (then the placement checks the cluster it has)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None)
    return isinstance(runner, SeisDaskTaskRunner) and runner.use_resources(resources)


def local_cluster(settings: PipelineSettings, resources: dict[str, float] | None) -> tuple[str, dict[str, Any]]:
    """(cluster class, its keyword arguments) of the local cluster for tasks needing ``resources``: a
    ``LocalCUDACluster`` whose workers advertise ``GPU=1`` when they need a GPU and one can be had, else the
    CPU ``LocalCluster`` of the settings."""
    if (resources or {}).get("GPU") and gpu_rules.gpu_cluster_possible():
        return CUDA_CLUSTER, {"resources": {"GPU": 1}, "preload": [WORKER_PRELOAD], "dashboard_address": None}
    return "distributed.LocalCluster", {
        "n_workers": settings.dask_workers,
        "threads_per_worker": settings.dask_threads_per_worker,
        "processes": True,
        "memory_limit": settings.dask_memory_limit,
        "dashboard_address": None,
        "preload": [WORKER_PRELOAD],
    }


def _announce_sigterm():
    """During the run, SIGTERM first starts the CLI's clean stop (one line, the rest silenced), then goes on
    to the handler in place (Prefect's, which reports the flow run crashed). Returns that handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        from seiscore.cli import signals

        signals.begin(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            raise signals.Interrupted()

    signal.signal(signal.SIGTERM, on_sigterm)
    return previous


def kill_local_workers(cluster) -> None:
    """SIGKILL the worker processes of a local cluster (their nannies told not to restart them)."""
    for nanny in list(getattr(cluster, "workers", {}).values()):
        pid = getattr(nanny, "pid", None)
        if pid is None or not hasattr(nanny, "close_gracefully"):
            continue
        nanny.close_gracefully(reason="seis-stop")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def current_api_url() -> str | None:
    """The Prefect API this process talks to (a configured server, the test harness or the temporary one)."""
    from prefect.context import FlowRunContext

    url = configured_api_url()
    if url:
        return url
    ctx = FlowRunContext.get()
    if ctx is not None and getattr(ctx, "client", None) is not None:
        return str(ctx.client.api_url).rstrip("/")
    from prefect.client.orchestration import get_client

    # No configured server: the run uses Prefect's temporary server; this returns its URL.
    return str(get_client(sync_client=True).api_url).rstrip("/")


class WorkerPrefectAPIError(RuntimeError):
    """Workers of an existing Dask cluster would record the tile runs outside the flow's Prefect API."""


def worker_prefect_api() -> str | None:
    """The Prefect API URL of this process (run on each worker); None: its task runs would start their own server."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url).rstrip("/") if url else None


def check_worker_prefect_api(client, address: str) -> None:
    """Refuse (one line, with the command that fixes it) when a worker's Prefect API is not the flow's."""
    url = current_api_url().rstrip("/")
    seen = client.run(worker_prefect_api)
    wrong = {worker: theirs for worker, theirs in seen.items() if theirs != url}
    if not wrong:
        return
    theirs = next(iter(wrong.values()))
    where = (
        f"report to {theirs}"
        if theirs
        else "have no PREFECT_API_URL (each would record its tile runs in a temporary Prefect server of its own)"
    )
    head = f"{len(wrong)} of {len(seen)} Dask workers of {address} {where}"
    if configured_api_url():
        raise WorkerPrefectAPIError(
            f"{head}, not to this run's Prefect API {url}; "
            f"start the workers with: PREFECT_API_URL={url} dask worker {address}"
        )
    raise WorkerPrefectAPIError(
        f"{head}, and this run records into a temporary Prefect server they cannot know; start a Prefect server "
        f"(prefect server start) and give its API URL to this run and to the workers: "
        f"PREFECT_API_URL=http://127.0.0.1:4200/api dask worker {address}"
    )


def configured_api_url() -> str | None:
    """The Prefect API URL set in the environment or the Prefect profile (None: runs use a temporary server)."""
    from prefect.settings import PREFECT_API_URL

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    return str(url) if url else None


def make_task_runner(
    settings: PipelineSettings | None = None, *, resources: dict[str, float] | None = None
) -> SeisDaskTaskRunner:
    """The runner of a flow run: on ``settings.dask_address`` if set, else a local cluster built for tasks
    needing ``resources`` (:func:`local_cluster`), chosen when the run first submits. ``settings`` None:
    read when the run starts (the deployed flows)."""
    return SeisDaskTaskRunner(settings=settings, resources=resources)


def runner_settings(settings: PipelineSettings) -> PipelineSettings:
    """``settings`` with the scheduler address of the running flow's task runner, if it has one."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    address = getattr(getattr(ctx, "task_runner", None), "address", None)
    return settings.model_copy(update={"dask_address": address}) if address else settings


def task_runner_client():
    """The Dask client of the running flow's task runner."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or not isinstance(ctx.task_runner, DaskTaskRunner):
        raise RuntimeError("process_survey must run with a DaskTaskRunner")
    return ctx.task_runner.client


def describe_cluster(client) -> dict[str, Any]:
    """Scheduler address, workers (threads, memory, resources) of a Dask client's cluster."""
    info = client.scheduler_info(n_workers=-1)
    workers = {
        w.get("name", addr).__str__(): {
            "address": addr,
            "nthreads": w.get("nthreads"),
            "memory_limit": w.get("memory_limit"),
            "resources": w.get("resources") or {},
        }
        for addr, w in info.get("workers", {}).items()
    }
    return {
        "scheduler": info.get("address"),
        "type": type(client.cluster).__name__ if client.cluster is not None else "external",
        "n_workers": len(workers),
        "workers": workers,
    }


def has_resource(cluster: dict, name: str) -> bool:
    """True when a worker of ``cluster`` (:func:`describe_cluster`) advertises the resource ``name``."""
    return any(name in w["resources"] for w in cluster["workers"].values())


def load_catalog_from(catalog: str | os.PathLike):
    from seiscore.data.catalog import load_catalog

    return load_catalog(catalog)


def get_entry(survey: str, catalog: str | os.PathLike):
    """The catalog entry of ``survey`` (``seiscore.data.catalog``)."""
    return load_catalog_from(catalog).get(survey)
