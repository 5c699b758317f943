"""The pinned Prefect stack against a real ``prefect server start`` (not the in-process test harness).

One server for the module, on a free loopback port with its own ``PREFECT_HOME``. The project's
deployments are served by ``python -m deployments.serve`` (what ``seis serve`` runs) with the
nightly cron replaced by a short interval (``SEIS_SCHEDULE_INTERVAL_S``), on an external Dask
cluster whose workers report to the same server. Checked: the CLI list commands, the client's
reads, the server's scheduler creating runs, and one scheduled run completing through the serve
process. With FastAPI >= 0.151 every list call answers 422; with SQLAlchemy 2.1 the scheduler
fails ("Can't evaluate bulk DML statement") and no run is ever scheduled.

Wall time: the server's start (10-60 s, by load), then the first runs fall due INTERVAL_S after
the serve process registers the deployments; 143 s measured on the 2-core machine under load ~10.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SHAPE = (16, 24, 40)
INTERVAL_S = 20  # the first scheduled runs fall due INTERVAL_S after the serve process registers the deployments
NIGHTLY = ("process-survey/nightly", "reprocess-archive/nightly")
LIST_COMMANDS = (["deployment", "ls"], ["flow-run", "ls"], ["artifact", "ls"], ["work-pool", "ls"], ["flow", "ls"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return f"\n--- last lines of {path.name} ---\n" + "\n".join(lines[-n:])


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    """Stop ``proc`` and every process it started (the runner's flow-run processes may sit in their own session)."""
    try:
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM if grace_s else signal.SIGKILL)
    _, alive = psutil.wait_procs(procs, timeout=grace_s or 5)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    proc.wait(timeout=5)


def _start(cmd: list[str], env: dict, log: Path, stack: contextlib.ExitStack, grace_s: float) -> subprocess.Popen:
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stack.callback(_stop, proc, grace_s)
    return proc


def _wait(what: str, check, timeout_s: float, log: Path, proc: subprocess.Popen | None = None, every_s: float = 0.5):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` with the log's tail."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: process exited with {proc.returncode}{_tail(log)}")
        found = check()
        if found:
            return found
        time.sleep(every_s)
    pytest.fail(f"{what}: not after {timeout_s:.0f} s{_tail(log)}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _catalog(directory: Path, source: Path) -> Path:
    path = directory / "catalog.yaml"
    path.write_text(
        "surveys:\n"
        "  tiny:\n"
        f"    source: {source}\n"
        "    store: data/stores/tiny.zarr\n"
        "    output: data/stores/tiny_denoised.zarr\n"
        "    denoiser:\n"
        "      name: tlsm\n"
        "      preset: synthetic\n"
        "      params: {iterations: 3}\n"
        "      axes: {smooth: crossline, footprint: sample, tube: inline}\n"
    )
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory, write_synthetic_segy):
    """Server, external cluster and serve process; every process is stopped at the end, also on failure."""
    from distributed import LocalCluster

    d = tmp_path_factory.mktemp("prefect_server")
    noisy, *_ = write_synthetic_segy(d / "data" / "segy", SHAPE)
    catalog = _catalog(d, noisy)
    url = f"http://127.0.0.1:{_free_port()}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SEIS_"))}
    server_env = {
        **base,
        "PREFECT_HOME": str(d / "server_home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "5",
    }
    client_env = {
        **base,
        "PREFECT_HOME": str(d / "client_home"),
        "PREFECT_API_URL": url,
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    serve_env = {
        **client_env,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PYTHONUNBUFFERED": "1",
        "SEIS_CATALOG": str(catalog),
        "SEIS_SCHEDULE_INTERVAL_S": str(INTERVAL_S),
        "SEIS_LINEAGE_DIR": str(d / "openlineage"),
        "SEIS_CODE_VERSION": "test",
        "SEIS_TASK_RETRY_DELAY_S": "0",
        # process-survey/nightly and reprocess-archive/nightly fall due together on the same survey
        "SEIS_LOCK_WAIT_S": "300",
    }
    with contextlib.ExitStack() as stack:
        server_log = d / "server.log"
        server = _start(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                url.split(":")[-1].removesuffix("/api"),
            ],
            server_env,
            server_log,
            stack,
            grace_s=10,
        )
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
                env={"PREFECT_API_URL": url},
            )
        )
        _wait("prefect server health", lambda: _healthy(url), 120, server_log, server)
        serve_log = d / "serve.log"
        serve_env["SEIS_DASK_ADDRESS"] = cluster.scheduler_address
        serve = _start(
            [sys.executable, "-m", "deployments.serve", "--survey", "tiny"], serve_env, serve_log, stack, grace_s=0
        )
        yield {
            "url": url,
            "env": client_env,
            "dir": d,
            "server": server,
            "serve": serve,
            "server_log": server_log,
            "serve_log": serve_log,
            "output": d / "data" / "stores" / "tiny_denoised.zarr",
        }


@pytest.fixture(scope="module")
def client(stack):
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(stack["url"]) as c:
        yield c


@pytest.fixture(scope="module")
def deployments(stack, client):
    """``{"flow/deployment": id}`` once the serve process has registered the nightly deployments."""

    def registered():
        flows = {f.id: f.name for f in client.read_flows()}
        found = {f"{flows.get(d.flow_id)}/{d.name}": d.id for d in client.read_deployments()}
        return found if set(NIGHTLY) <= set(found) else None

    return _wait("nightly deployments registered", registered, 120, stack["serve_log"], stack["serve"])


def _runs(client, deployment_ids, state: str | None = None):
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )

    state_filter = FlowRunFilterState(type=FlowRunFilterStateType(any_=[state])) if state else None
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=list(deployment_ids)), state=state_filter
        )
    )
    return [r for r in runs if r.auto_scheduled]


@pytest.fixture(scope="module")
def scheduled(stack, client, deployments):
    """The runs the server's scheduler created for both nightly deployments, and the first one the serve process took.

    Both deployments fall due together on the same survey (one run would wait for the other's lock)
    and every INTERVAL_S again, so reprocess-archive is paused as soon as its runs are seen and
    process-survey once its first run is taken (pausing deletes a deployment's scheduled runs).
    """
    nightly = [deployments[n] for n in NIGHTLY]
    process_survey = deployments["process-survey/nightly"]

    def both():
        runs = _runs(client, nightly, "SCHEDULED")
        return runs if {r.deployment_id for r in runs} == set(nightly) else None

    runs = _wait("scheduled runs of both nightly deployments", both, 60, stack["server_log"], stack["server"])
    client.pause_deployment(deployments["reprocess-archive/nightly"])
    taken = _wait(
        "the serve process takes a scheduled process-survey run",
        lambda: [r for r in _runs(client, [process_survey]) if r.state_type.value != "SCHEDULED"],
        240,
        stack["serve_log"],
        stack["serve"],
    )
    client.pause_deployment(process_survey)
    return {"runs": runs, "taken": taken[0]}


def test_scheduler_creates_runs_and_client_reads_them(stack, client, deployments, scheduled):
    assert "Can't evaluate bulk DML" not in stack["server_log"].read_text(errors="replace")
    assert {d.id for d in client.read_deployments()} >= set(deployments.values())
    taken = client.read_flow_run(scheduled["taken"].id)  # created by the scheduler, taken by the serve process
    assert taken.auto_scheduled and taken.deployment_id == deployments["process-survey/nightly"]
    assert taken.id in {r.id for r in client.read_flow_runs()}


def test_cli_list_commands_answer(stack, deployments, scheduled):
    procs = [
        (
            cmd,
            subprocess.Popen(
                [sys.executable, "-m", "prefect", *cmd],
                env=stack["env"],
                cwd=stack["dir"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for cmd in LIST_COMMANDS
    ]
    try:
        outputs = {" ".join(cmd): (proc.communicate(timeout=120)[0], proc.returncode) for cmd, proc in procs}
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for cmd, (out, rc) in outputs.items():
        assert rc == 0 and "Unprocessable Entity" not in out and "Traceback" not in out, f"{cmd}:\n{out[-3000:]}"
    outputs = {cmd: out for cmd, (out, _) in outputs.items()}
    assert all(name in outputs["deployment ls"] for name in NIGHTLY), outputs["deployment ls"]
    assert "process-survey" in outputs["flow ls"] and "reprocess-archive" in outputs["flow ls"], outputs["flow ls"]
    assert "process-survey" in outputs["flow-run ls"], outputs["flow-run ls"]


def test_a_scheduled_run_completes_through_serve(stack, client, deployments, scheduled):
    from seiscore import io
    from seiscore.core.lineage import read_lineage

    run_id = scheduled["taken"].id

    def finished():
        state = client.read_flow_run(run_id).state
        return state if state.is_final() else None

    state = _wait("the scheduled run finishes", finished, 300, stack["serve_log"], stack["serve"], every_s=1)
    assert state.is_completed(), f"scheduled run ended {state.name}: {state.message}{_tail(stack['serve_log'])}"
    assert io.is_complete(stack["output"]) and read_lineage(stack["output"]).status == "completed"
