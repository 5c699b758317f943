"""Runtime helpers of the flows: the Dask task runner, the cluster description, the catalog.

- Embedded default: a local cluster of worker *processes* started for the flow run
  (``SEIS_DASK_WORKERS`` x ``SEIS_DASK_THREADS_PER_WORKER``), or dask-cuda's
  ``LocalCUDACluster`` (one worker per GPU, advertising ``GPU=1``) when the run needs a GPU
  and one exists.
- ``SEIS_DASK_ADDRESS`` (or ``--scheduler``) makes the same flows use an existing cluster.
- Worker processes of a local cluster inherit the flow's Prefect API URL, so task runs are
  reported to the same (possibly temporary) Prefect server instead of each worker
  starting its own. Workers of an existing cluster cannot inherit it: the flow checks at its
  start that each reports to the flow's API and refuses to run otherwise, saying how to start them.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import dask
from prefect_dask import DaskTaskRunner

from seiscore.core.settings import PipelineSettings, get_settings
from seiscore.execution.resources import gpu_available

# Dask preload of local workers: they ignore Ctrl-C (a terminal sends it to the whole process group); the
# command stops them (seiscore.cli.signals).
WORKER_PRELOAD = "seiscore.cli.signals"


class SeisDaskTaskRunner(DaskTaskRunner):
    """DaskTaskRunner whose local workers report to the flow's Prefect API."""

    def __enter__(self):
        if self._cluster is None and not self.address:
            url = current_api_url()
            if url:
                env = dict(self.cluster_kwargs.get("env") or {})
                env.setdefault("PREFECT_API_URL", url)
                self.cluster_kwargs["env"] = env
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
            # Each nanny reads this before spawning its worker (glibc reads it at start-up only).
            trim = get_settings().dask_malloc_trim_threshold
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": trim}):
                return super().client
        return super().client


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


def make_task_runner(settings: PipelineSettings, *, needs_gpu: bool = False) -> DaskTaskRunner:
    """A runner on ``settings.dask_address`` if set, else a local (CUDA) cluster for the run."""
    if settings.dask_address:
        return SeisDaskTaskRunner(address=settings.dask_address)
    if needs_gpu and gpu_available():
        try:
            import dask_cuda  # noqa: F401

            return SeisDaskTaskRunner(
                cluster_class="dask_cuda.LocalCUDACluster",
                cluster_kwargs={"resources": {"GPU": 1}, "preload": [WORKER_PRELOAD]},
            )
        except ImportError:
            pass
    return SeisDaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": settings.dask_threads_per_worker,
            "processes": True,
            "memory_limit": settings.dask_memory_limit,
            "dashboard_address": None,
            "preload": [WORKER_PRELOAD],
        },
    )


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
    return any(name in w["resources"] for w in cluster["workers"].values())


def load_catalog_from(catalog: str | os.PathLike):
    from seiscore.data.catalog import load_catalog

    return load_catalog(catalog)


def get_entry(survey: str, catalog: str | os.PathLike):
    """The catalog entry of ``survey`` (``seiscore.data.catalog``)."""
    return load_catalog_from(catalog).get(survey)
