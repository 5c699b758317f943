"""External Dask clusters: tile task runs go to the flow's own Prefect API, or the run refuses.

Workers of an existing cluster do not inherit the flow's ``PREFECT_API_URL``; without it each
would silently start a temporary Prefect server of its own and record the tile runs there. The
flow checks every worker at its start and refuses with the command that starts them right,
before anything is read or written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import LocalCluster

from flows._runtime import WorkerPrefectAPIError, check_worker_prefect_api

REPO = Path(__file__).resolve().parents[1]
SHAPE = (16, 24, 40)
SEIS = "import sys; from seiscore.cli import main; sys.exit(main(sys.argv[1:]))"


def _catalog(directory, source):
    path = directory / "catalog.yaml"
    path.write_text(
        "surveys:\n"
        "  small:\n"
        f"    source: {source}\n"
        "    store: data/small.zarr\n"
        "    output: data/small_denoised.zarr\n"
        "    denoiser: {name: tlsm, preset: synthetic, params: {iterations: 2},"
        " axes: {smooth: crossline, footprint: sample, tube: inline}}\n"
    )
    return path


@pytest.fixture(scope="module")
def survey(tmp_path_factory, write_synthetic_segy):
    d = tmp_path_factory.mktemp("worker_api")
    noisy, *_ = write_synthetic_segy(d / "segy", SHAPE)
    return {
        "catalog": _catalog(d, noisy),
        "store": d / "data" / "small.zarr",
        "output": d / "data" / "small_denoised.zarr",
    }


@pytest.fixture(params=["missing", "other"])
def wrong_cluster(request, prefect_harness, monkeypatch):
    """One worker process started without PREFECT_API_URL, or with another server's."""
    with monkeypatch.context() as m:
        m.delenv("PREFECT_API_URL")  # the worker processes are spawned from this environment
        env = {} if request.param == "missing" else {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
        with LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1", env=env
        ) as cluster:
            m.undo()
            yield request.param, cluster


def test_workers_without_the_flows_api_are_refused_before_any_work(
    wrong_cluster, survey, prefect_harness, monkeypatch, tmp_path
):
    from flows.process_survey import run_process_survey

    case, cluster = wrong_cluster
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    with pytest.raises(WorkerPrefectAPIError) as err:
        run_process_survey("small", scheduler=cluster.scheduler_address, catalog=str(survey["catalog"]))
    msg = str(err.value)
    assert "\n" not in msg
    assert f"start the workers with: PREFECT_API_URL={prefect_harness} dask worker {cluster.scheduler_address}" in msg
    assert ("have no PREFECT_API_URL" if case == "missing" else "report to http://127.0.0.1:9/api") in msg
    assert not survey["store"].exists() and not survey["output"].exists() and not (tmp_path / "ol").exists()


def test_workers_that_inherit_the_flows_api_pass(dask_cluster, prefect_harness):
    from distributed import Client

    with Client(dask_cluster.scheduler_address) as client:
        check_worker_prefect_api(client, dask_cluster.scheduler_address)  # the session's workers: same API


@pytest.mark.slow
def test_seis_run_without_a_server_says_how_to_start_one(survey, tmp_path):
    """``seis run --scheduler`` without PREFECT_API_URL: its temporary server cannot be given to the workers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SEIS_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect_home"),
        SEIS_LINEAGE_DIR=str(tmp_path / "ol"),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    saved = os.environ.pop("PREFECT_API_URL", None)  # the worker processes are spawned from this environment
    try:
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        )
    finally:
        if saved is not None:
            os.environ["PREFECT_API_URL"] = saved
    with cluster:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                SEIS,
                "run",
                "small",
                "--scheduler",
                cluster.scheduler_address,
                "--catalog",
                str(survey["catalog"]),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("seis run: error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith("seis run: error: 1 of 1 Dask workers") and "prefect server start" in errors[0]
    assert f"PREFECT_API_URL=http://127.0.0.1:4200/api dask worker {cluster.scheduler_address}" in errors[0]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert not survey["store"].exists() and not survey["output"].exists()
