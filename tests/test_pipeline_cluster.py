"""The flow on a real Dask cluster started from the command line on 127.0.0.1: one CPU worker
and one worker advertising ``GPU=1``. SSB tiles land only on the GPU worker; killing the CPU
worker mid-run still gives a complete output equal to an undisturbed run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_pipeline_flow import PARAMS, _amplitude, _catalog, _expected

from seiscore.execution.blockwise.state import TileState
from seiscore.execution.versions import staging_path

SHAPE = (48, 40, 60)
DASK = str(Path(sys.executable).with_name("dask"))


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory, prefect_harness):
    """``dask scheduler`` + ``dask worker --name cpu`` (no nanny) + ``dask worker --name gpu --resources GPU=1``."""
    from distributed import Client

    d = tmp_path_factory.mktemp("cluster")
    sched_file = d / "scheduler.json"
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}
    common = ["--scheduler-file", str(sched_file)]
    procs = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", *common],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        _wait_for(sched_file.exists, 60, "the scheduler file")
        worker = [DASK, "worker", *common, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"]
        procs.append(
            subprocess.Popen(
                [*worker, "--name", "cpu", "--no-nanny"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        procs.append(
            subprocess.Popen(
                [*worker, "--name", "gpu", "--resources", "GPU=1"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        with Client(scheduler_file=str(sched_file)) as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield {"address": address, "cpu": procs[1], "procs": procs}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def survey(tmp_path_factory, write_synthetic_segy):
    d = tmp_path_factory.mktemp("cluster_survey")
    noisy_path, clean_path, noisy, _ = write_synthetic_segy(d / "segy", SHAPE, seed=3)
    return {
        "catalog": _catalog(d, noisy_path, clean_path),
        "noisy": noisy,
        "output": d / "data" / "stores" / "small_denoised.zarr",
    }


def _run(survey, address, monkeypatch, tmp_path, **kw):
    from flows.process_survey import run_process_survey

    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")
    return run_process_survey("small", scheduler=address, catalog=str(survey["catalog"]), **kw)


def test_ssb_tiles_run_only_on_the_gpu_worker(cli_cluster, survey, tmp_path, monkeypatch):
    from seiscore.methods.ssb import SSBModelConfig, save_model
    from seiscore.methods.ssb.model import SSBModel

    model = save_model(SSBModel(SSBModelConfig(patch=16)), tmp_path / "ssb")
    result = _run(
        survey,
        cli_cluster["address"],
        monkeypatch,
        tmp_path,
        method="ssb",
        # the "gpu" worker only advertises GPU=1 (no CUDA here): the model runs there on its CPU, explicitly allowed
        params={"model": str(model), "allow_cpu": True, "tiles": {"tile": [16, None, None], "halo": [0, 0, 0]}},
        force=True,
    )
    assert result["status"] == "completed"
    assert result["metrics"]["tiles_per_worker"] == {"gpu": 3}  # allow_cpu does not move them to the CPU worker


def test_killed_worker_mid_run_gives_the_undisturbed_output(cli_cluster, survey, tmp_path, monkeypatch):
    out = survey["output"]
    staging = staging_path(out)  # where the run writes its tiles until it publishes
    killed = {}

    def kill_cpu_worker_after_first_tile():
        try:
            _wait_for(
                lambda: (
                    staging.exists()
                    and TileState(staging).run_key() is not None
                    and len(TileState(staging).done()) >= 1
                ),
                300,
                "a first tile",
            )
        except TimeoutError:
            return
        killed["done_before"] = len(TileState(staging).done())
        os.kill(cli_cluster["cpu"].pid, signal.SIGKILL)
        killed["at"] = time.time()

    if out.exists():  # start from scratch so that the run is long enough to be interrupted
        import shutil

        shutil.rmtree(out)
    killer = threading.Thread(target=kill_cpu_worker_after_first_tile, daemon=True)
    killer.start()
    result = _run(survey, cli_cluster["address"], monkeypatch, tmp_path, params=PARAMS, force=True)
    killer.join(5)
    assert cli_cluster["cpu"].wait(10) == -signal.SIGKILL
    assert killed["done_before"] < 6, "the run finished before the worker was killed"
    assert result["status"] == "completed" and result["metrics"]["tiles_written"] == 6
    np.testing.assert_allclose(_amplitude(out), _expected(survey["noisy"], survey["catalog"]), atol=2e-5)
