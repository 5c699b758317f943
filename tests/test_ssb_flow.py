"""SSB configured in the catalog runs end to end through ``process-survey``, and every entry point takes the
GPU decision from the resolved spec at run time: ``run_process_survey`` (``seis run``) and the nightly
deployment build a GPU cluster for it when one can be had; without one the run is refused before any tile,
or (with the explicit ``allow_cpu: true``) runs on the CPU workers with a warning.

The model is a tiny random SSB artifact (patch 16). The machine has no CUDA device: the GPU cluster of the
deployment test is a CPU ``LocalCluster`` standing in for ``LocalCUDACluster`` (its workers advertise ``GPU=1``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import pytest

from seiscore.execution.versions import staging_path

SHAPE = (16, 40, 60)
ENTRY = """  {name}:
    source: {noisy}
    store: data/stores/ssb.zarr
    output: data/stores/{name}_denoised.zarr
    chunks: [8, 40, 60]
    method:
      name: ssb
      model: models/ssb
      tiles: {{tile: [8, null, null], halo: [0, 0, 0]}}
      params: {params}
"""
CPU_WARNING = "allow_cpu"  # the placement note names the explicit setting that allowed it


@pytest.fixture(scope="module")
def survey(tmp_path_factory, write_synthetic_segy):
    from seiscore.methods.ssb import SSBModelConfig, save_model
    from seiscore.methods.ssb.model import SSBModel

    d = tmp_path_factory.mktemp("ssb_flow")
    noisy, _, _, _ = write_synthetic_segy(d / "segy", SHAPE, seed=7)
    save_model(SSBModel(SSBModelConfig(patch=16)), d / "models" / "ssb")  # relative to the catalog in its entry
    catalog = d / "catalog.yaml"
    catalog.write_text(
        "surveys:\n"
        + ENTRY.format(name="ssb_cpu_ok", noisy=noisy, params="{allow_cpu: true, batch_size: 8}")
        + ENTRY.format(name="ssb_strict", noisy=noisy, params="{batch_size: 8}")
    )
    return {"dir": d, "catalog": catalog}


@pytest.fixture()
def env(monkeypatch, tmp_path, survey, prefect_harness):
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")
    monkeypatch.setenv("SEIS_CATALOG", str(survey["catalog"]))
    monkeypatch.setenv("SEIS_DASK_WORKERS", "1")
    monkeypatch.setenv("SEIS_DASK_THREADS_PER_WORKER", "1")
    monkeypatch.delenv("SEIS_DASK_ADDRESS", raising=False)
    monkeypatch.setattr(
        "seiscore.execution.resources.gpu_cluster_possible", lambda: False
    )  # as on a machine without CUDA


def _output(survey, name: str) -> Path:
    return survey["dir"] / "data" / "stores" / f"{name}_denoised.zarr"


@contextmanager
def _flow_warnings():
    """The warnings the flow run's logger (``prefect.flow_runs``) logs inside the block."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger, handler = logging.getLogger("prefect.flow_runs"), Collect(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def test_catalog_ssb_survey_runs_on_cpu_workers_when_allowed(survey, env):
    from flows.process_survey import run_process_survey
    from seiscore.core.lineage import read_lineage

    with _flow_warnings() as warned:
        result = run_process_survey("ssb_cpu_ok", catalog=str(survey["catalog"]), force=True)
    assert result["status"] == "completed" and result["method"] == "ssb" and result["tiles_computed"] == 2
    rec = read_lineage(_output(survey, "ssb_cpu_ok"))
    assert rec.denoiser["name"] == "ssb" and Path(rec.denoiser["model"]).resolve() == survey["dir"] / "models" / "ssb"
    assert rec.dask_cluster["type"] == "LocalCluster"
    assert not any(w["resources"] for w in rec.dask_cluster["workers"].values())
    assert any(CPU_WARNING in m and "CPU" in m for m in warned), warned
    assert Path(rec.metrics["qc_report"]).is_file()


def test_catalog_ssb_survey_without_gpu_is_refused_before_any_tile(survey, env):
    from flows.process_survey import run_process_survey

    with pytest.raises((ValueError, RuntimeError)) as refused:
        run_process_survey("ssb_strict", catalog=str(survey["catalog"]))
    message = str(refused.value)
    assert "\n" not in message and "GPU" in message and "allow_cpu" in message
    out = _output(survey, "ssb_strict")
    assert not out.exists() and not staging_path(out).exists()


def _nightly(name: str):
    """The nightly process-survey deployment of survey ``name`` and its flow, loaded from the deployment's
    entrypoint as the process that runs a deployment loads it."""
    from prefect.flows import load_flow_from_entrypoint

    from deployments.serve import build_deployments
    from seiscore.core.settings import get_settings

    (deployment,) = [d for d in build_deployments(get_settings(), survey=name) if d.flow_name == "process-survey"]
    entrypoint = deployment.entrypoint
    if ":" not in entrypoint:
        module, _, func = entrypoint.rpartition(".")
        entrypoint = f"{module}:{func}"
    return deployment, load_flow_from_entrypoint(entrypoint)


def test_nightly_ssb_deployment_gets_gpu_workers_when_they_exist(survey, env, monkeypatch):
    from seiscore.core.lineage import read_lineage

    # A machine with a GPU and dask-cuda: the deployment's flow must build the CUDA cluster (GPU=1 workers). A CPU
    # LocalCluster whose workers advertise GPU=1 stands in for LocalCUDACluster here.
    monkeypatch.setattr("seiscore.execution.resources.gpu_cluster_possible", lambda: True)
    monkeypatch.setattr("flows._runtime.CUDA_CLUSTER", "distributed.LocalCluster")
    deployment, nightly = _nightly("ssb_cpu_ok")
    assert deployment.parameters == {"survey": "ssb_cpu_ok"}
    with _flow_warnings() as warned:
        result = nightly(**deployment.parameters, force=True)
    assert result["status"] == "completed"
    rec = read_lineage(_output(survey, "ssb_cpu_ok"))
    workers = rec.dask_cluster["workers"]
    assert workers and all(w["resources"] == {"GPU": 1} for w in workers.values())
    assert set(rec.metrics["tiles_per_worker"]) <= set(workers) and sum(rec.metrics["tiles_per_worker"].values()) == 2
    assert not any(CPU_WARNING in m for m in warned), warned


def test_nightly_ssb_deployment_without_gpu_is_refused(survey, env):
    deployment, nightly = _nightly("ssb_strict")
    with pytest.raises((ValueError, RuntimeError)) as refused:
        nightly(**deployment.parameters)
    assert "\n" not in str(refused.value) and "allow_cpu" in str(refused.value)
    assert not staging_path(_output(survey, "ssb_strict")).exists()
