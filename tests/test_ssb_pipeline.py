"""SSB in the pipeline: the main tile path (block callable, denoise_tile / write_tile on a real store) on CPU
with allow_cpu, the GPU=1 placement on a real Dask cluster, the training flow."""

from __future__ import annotations

import json

import dask
import httpx
import numpy as np
import pytest
import torch
import yaml
from prefect import flow
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL
from prefect_dask import DaskTaskRunner

from seiscore.execution.blockwise.jobs import block_denoiser, denoise_tile, write_tile
from seiscore.execution.pipeline import make_job, prepare_output
from seiscore.execution.resources import GPURequiredError, gpu_available, placement
from seiscore.methods.registry import get_method, parse_spec
from seiscore.methods.ssb import DataConfig, SSBModelConfig, StageConfig, TrainConfig, denoise, save_model
from seiscore.methods.ssb.model import SSBModel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def harness(prefect_harness):  # the session's temporary Prefect server (tests/conftest.py)
    return prefect_harness


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return str(save_model(SSBModel(SSBModelConfig(patch=16)), tmp_path_factory.mktemp("ssb") / "model"))


def _tile():
    return np.random.default_rng(0).standard_normal((2, 24, 32)).astype(np.float32)


def _spec(artifact, **params):
    return parse_spec(
        {"name": "ssb", "model": artifact, "tiles": {"tile": [2, None, None], "halo": [0, 0, 0]}, "params": params}
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory, write_synthetic_segy):
    """A real input store of 4 inlines x 24 crosslines x 32 samples."""
    from seiscore import io

    folder = tmp_path_factory.mktemp("ssb_store")
    segy = write_synthetic_segy(folder, (4, 24, 32))[0]
    return str(io.ingest(segy, folder / "in.zarr", chunks=(2, 24, 32)))


def test_block_callable_requires_a_gpu_unless_cpu_is_allowed(artifact):
    if not gpu_available():
        with pytest.raises(GPURequiredError, match="allow_cpu=True"):
            block_denoiser(_spec(artifact))(_tile())
    out = block_denoiser(_spec(artifact, allow_cpu=True))(_tile())
    assert np.array_equal(out, denoise(_tile(), artifact))


def test_ssb_tiles_run_through_the_main_path_on_cpu_with_allow_cpu(artifact, store, tmp_path):
    """denoise_tile / write_tile with SSB: what the process-survey flow runs on a worker."""
    from seiscore import io

    job = make_job(store, str(tmp_path / "out.zarr"), _spec(artifact, allow_cpu=True))
    assert job.plan.n_tiles == 2 and job.spec.model == artifact
    job = type(job).model_validate_json(job.model_dump_json())  # as shipped to a worker: the SSB fields survive
    prepare_output(job, "k")
    for key in [t.key for t in job.plan.tiles()]:
        assert denoise_tile(job, key)["samples"] == 2 * 24 * 32
    for key in [t.key for t in job.plan.tiles()]:
        write_tile(job, key)
    out = io.open_survey(job.output_store, require_complete=False)["amplitude"].values
    ds = io.open_survey(store)
    c, h = job.scale
    expected = denoise((ds["amplitude"].values - np.float32(c)) / np.float32(h), artifact) * np.float32(h) + c
    assert np.allclose(out, expected, atol=1e-4 * h)


def _restrictions(dask_scheduler):
    return [ts.resource_restrictions for ts in dask_scheduler.tasks.values()]


def test_ssb_tiles_run_only_on_gpu_workers(artifact, store, tmp_path, harness):
    """The placement the flow uses: tasks annotated GPU=1 run on a worker advertising it, never elsewhere."""
    from tasks.tiles import denoise_tile_task

    spec = _spec(artifact, allow_cpu=True)  # the worker has no CUDA: allow the CPU there
    resources, note = placement(get_method("ssb"), spec, {"type": "LocalCluster"}, has_gpu=True)
    assert resources == {"GPU": 1} and note is None
    job = make_job(store, str(tmp_path / "out.zarr"), spec)
    prepare_output(job, "k")
    key = next(iter(job.plan.tiles())).key

    def runner(worker_resources):
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": 1,
                "threads_per_worker": 1,
                "processes": True,
                "resources": worker_resources,
                "dashboard_address": None,
            }
        )

    @flow(task_runner=runner({"GPU": 1}))
    def gpu_cluster(job, key):
        with dask.annotate(resources=resources):
            fut = denoise_tile_task.submit(job, key)
        out = fut.result()
        return out, FlowRunContext.get().task_runner.client.run_on_scheduler(_restrictions)

    info, restrictions = gpu_cluster(job, key)
    assert info["tile"] == key and {"GPU": 1} in restrictions

    @flow(task_runner=runner({}))
    def cpu_only_cluster(job, key):
        with dask.annotate(resources=resources):
            fut = denoise_tile_task.submit(job, key)
        fut.wait(timeout=4)
        return fut.state.is_completed()

    assert cpu_only_cluster(job, key) is False  # no worker advertises GPU=1: the tile never runs


def test_train_flow_publishes_epoch_metrics(tmp_path, harness):
    from flows.train_ssb import train_ssb

    data = DataConfig(
        noise_levels=((0.2, 0.02),),
        survey_shape=(4, 32, 40),
        train_surveys_per_level=1,
        crops_per_survey=8,
        heldout_shape=(4, 32, 40),
        heldout_sections_per_level=1,
    )
    cfg = TrainConfig(
        model=SSBModelConfig(patch=16),
        data=data,
        expert_stage=StageConfig(epochs=1, batch_size=8),
        router_stage=StageConfig(epochs=1, batch_size=8),
        joint_stage=StageConfig(epochs=0),
        variants=("direct",),
        train_base=False,
        output_dir=tmp_path / "run",
        epoch_eval_sections=1,
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    result = train_ssb(str(path))
    assert set(result["artifacts"]) == {"direct_router_only", "direct_joint"}

    versions = _artifacts("ssb-training-metrics")
    assert len(versions) == 3  # one version per epoch
    rows = json.loads(versions[0]["data"])
    assert [(r["phase"], r["epoch"]) for r in rows] == [("direct/swin", 0), ("direct/dino", 0), ("direct/router", 0)]
    assert "heldout_psnr" in rows[0] and "heldout_gate_dino_share" in rows[-1]
    assert "| blend |" in _artifacts("ssb-model-direct-joint")[0]["data"]


def _artifacts(key: str) -> list[dict]:
    """Every version of the artifact ``key``, newest first (read over the server's REST API)."""
    api = PREFECT_API_URL.value().rstrip("/")
    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 100, "offset": 0}
    response = httpx.post(f"{api}/artifacts/filter", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_training_deployment_is_manual():
    from deployments.train_ssb import build_deployment

    dep = build_deployment()
    assert (
        dep.flow_name == "train-ssb" and not dep.schedules and dep.parameters["config_path"] == "configs/ssb_small.yaml"
    )
