"""SSB in the pipeline: the tile task's GPU=1 requirement on a real Dask cluster, CPU opt-in, the training flow."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import torch
import yaml
from prefect import flow
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_API_URL
from prefect_dask import DaskTaskRunner

from seiscore.methods.ssb import DataConfig, SSBModelConfig, StageConfig, TrainConfig, denoise, save_model
from seiscore.methods.ssb.model import SSBModel
from tasks.ssb import SSB_RESOURCES, denoise_tile_ssb, submit_denoise_tile_ssb

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def harness(prefect_harness):  # the session's temporary Prefect server (tests/conftest.py)
    return prefect_harness


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return str(save_model(SSBModel(SSBModelConfig(patch=16)), tmp_path_factory.mktemp("ssb") / "model"))


def _tile():
    return np.random.default_rng(0).standard_normal((2, 24, 32)).astype(np.float32)


def test_tile_task_requires_a_gpu_unless_cpu_is_allowed(artifact, harness):
    assert SSB_RESOURCES == {"GPU": 1}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="allow_cpu=True"):
            denoise_tile_ssb.fn(_tile(), artifact)
    out = denoise_tile_ssb.fn(_tile(), artifact, allow_cpu=True)
    assert np.array_equal(out, denoise(_tile(), artifact))


def _restrictions(dask_scheduler):
    return [ts.resource_restrictions for ts in dask_scheduler.tasks.values()]


def test_tile_task_runs_only_on_gpu_workers(artifact, harness):
    def runner(resources):
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": 1,
                "threads_per_worker": 1,
                "processes": True,
                "resources": resources,
                "dashboard_address": None,
            }
        )

    @flow(task_runner=runner({"GPU": 1}))
    def gpu_cluster(tile, model):
        fut = submit_denoise_tile_ssb(tile, model, allow_cpu=True)
        out = fut.result()
        return out, FlowRunContext.get().task_runner.client.run_on_scheduler(_restrictions)

    out, restrictions = gpu_cluster(_tile(), artifact)
    assert out.shape == (2, 24, 32) and {"GPU": 1} in restrictions

    @flow(task_runner=runner({}))
    def cpu_only_cluster(tile, model):
        fut = submit_denoise_tile_ssb(tile, model, allow_cpu=True)
        fut.wait(timeout=4)
        return fut.state.is_completed()

    assert cpu_only_cluster(_tile(), artifact) is False  # no worker advertises GPU=1: the tile never runs


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
