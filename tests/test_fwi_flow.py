"""The ``build-velocity-model`` flow on a tiny configuration (real deepwave, real Prefect server, real Dask workers):
the output velocity store with lineage, the QC files, and a resume after an interruption that gives the same
model as an uninterrupted run. One flow run (on a local CPU cluster: allow_cpu); the reference and the interruption
run in this process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seiscore.execution.fit import FitCheckpoint, FitStep, fit_method, read_events

PARAMS = {
    "iterations": 6,
    "shots_per_iteration": 2,
    "width": 16,
    "hidden": 1,
    "checkpoint_every": 2,
    "metrics_every": 2,
    "allow_cpu": True,
}


class Stop(Exception):
    """Raised by the callback to interrupt a fit after a checkpoint."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny Marmousi-like survey (15 x 46 cells at 200 m, 3 shots, 0.8 s) as true model + shot stores."""
    import torch

    from seiscore.bench.drfwi import SurveySetup, synthetic_survey
    from seiscore.data.shots import write_shot_store
    from seiscore.data.velocity import write_velocity_store

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fwi") / "data"
    setup = SurveySetup(spacing=200.0, n_shots=3, record_s=0.8, dt=0.004, peak_frequency=6.0)
    v_true, grid, geometry, observed = synthetic_survey(setup)
    true = write_velocity_store(root / "true.zarr", v_true[None], grid=grid, names=["true"])
    shots = write_shot_store(root / "shots.zarr", observed, geometry)
    return root, shots, true


def _plan(root, shots, true, run, out):
    from flows.build_velocity_model import plan_run

    return plan_run(
        str(shots), str(run), str(out), initial="linear", true_model=str(true), mode="s-denorm", params=PARAMS,
        seed=3, gpu_possible=False,
    )  # fmt: skip


def test_flow_writes_the_model_with_lineage_and_qc_and_resumes_identically(inputs, prefect_harness, monkeypatch):
    from flows._runtime import make_task_runner
    from flows.build_velocity_model import build_velocity_model, inverted_model, prepare_inputs
    from seiscore.core.lineage import read_lineage
    from seiscore.core.settings import get_settings
    from seiscore.data.velocity import read_velocity_store

    root, shots, true = inputs
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(root))
    monkeypatch.setenv("SEIS_TASK_RETRY_DELAY_S", "0")
    # The flow builds its local cluster (one 1-thread worker process): on a cluster reached by address (the
    # session's dask_cluster) the placement rule refuses a GPU method without GPU workers, allow_cpu or not.
    monkeypatch.setenv("SEIS_DASK_WORKERS", "1")
    monkeypatch.setenv("SEIS_DASK_THREADS_PER_WORKER", "1")
    monkeypatch.setattr("seiscore.execution.resources.gpu_cluster_possible", lambda: False)

    # the reference: an uninterrupted fit in this process
    ref = _plan(root, shots, true, root / "ref", root / "ref.zarr")
    prepare_inputs(ref)
    ref_summary = fit_method(ref.spec, ref.fit_folder, seed=3)
    expected = inverted_model(ref.fit_folder, ref_summary)

    # the same run interrupted after its checkpoint at iteration 2 ...
    plan = _plan(root, shots, true, root / "run", root / "model.zarr")
    prepare_inputs(plan)

    def stop(event):
        if isinstance(event, FitCheckpoint) and event.step >= 1:
            raise Stop()

    with pytest.raises(Stop):
        fit_method(plan.spec, plan.fit_folder, seed=3, callback=stop)
    assert not (root / "model.zarr").exists()

    # ... resumed by the flow on the same run folder
    runner = make_task_runner(get_settings())
    flow = build_velocity_model.with_options(task_runner=runner)
    result = flow(
        str(shots), str(root / "run"), str(root / "model.zarr"), initial="linear", true_model=str(true),
        mode="s-denorm", params=PARAMS, seed=3,
    )  # fmt: skip
    steps = [e.step for e in read_events(plan.fit_folder) if isinstance(e, FitStep) and e.phase == "invert"]
    assert steps == [1, 2, 3, 4, 5, 6]  # iterations 1-2 before the interruption, 3-6 resumed: none twice

    models, names, grid, attrs = read_velocity_store(root / "model.zarr")
    assert names == ["drfwi-s-denorm"] and models.shape == (1, 15, 46) and grid.dx == 200.0
    np.testing.assert_array_equal(models[0], expected)  # resumed = uninterrupted, bit for bit

    fwi = attrs["fwi"]
    assert fwi["mode"] == "s-denorm" and fwi["observed_hash"] == plan.observed_hash
    assert fwi["initial_model"].startswith("linear (from true.zarr:true)")
    assert fwi["parameters"]["params"]["iterations"] == 6 and fwi["seed"] == 3
    assert {"mse_v", "rel_err", "ssim", "misfit_norm"} <= set(fwi["metrics"])
    assert fwi["metrics"]["misfit_norm"] < 1.0  # the data misfit went down
    lineage = read_lineage(root / "model.zarr")
    assert lineage.input.content_hash == plan.observed_hash and lineage.status == "completed"
    assert lineage.denoiser["name"] == "drfwi"

    qc = root / "run" / "qc"
    html = (qc / "report.html").read_text()
    for png in ("true", "initial", "inverted_s-denorm", "error_s-denorm", "misfit", "spectra"):
        assert (qc / "report_images" / f"{png}.png").stat().st_size > 1000
    assert "data:image/png;base64," in html and "Lineage" in html and (qc / "report.md").is_file()
    assert result["output"] == str((root / "model.zarr").resolve()) and json.dumps(result, default=str)

    # seis fwi info: the run folder (iterations, misfit, metrics per mode) and the output store (its lineage)
    from flows.commands.fwi import describe

    info = describe(root / "run")["modes"]["s-denorm"]
    assert info["iterations"] == info["of"] == 6 and info["finished"] and info["misfit_norm"] > 0
    assert describe(root / "model.zarr")["observed_hash"] == plan.observed_hash

    # Prefect artifacts: the progress moved with the iterations to 100 %, the metrics table, the QC page
    progress = _artifacts(prefect_harness, "drfwi-training-progress")
    assert float(progress[0]["data"]) == 100.0
    assert "mse_v" in _artifacts(prefect_harness, "run-fwi-metrics")[0]["data"]
    assert "data:image/png;base64," in _artifacts(prefect_harness, "run-fwi-qc")[0]["data"]

    # the run folder's fits started from the linear model: another start there is refused in one line
    from flows.build_velocity_model import FWIInputError, plan_run

    with pytest.raises(FWIInputError, match="holds runs from another initial model") as err:
        plan_run(str(shots), str(root / "run"), str(root / "m2.zarr"), initial="smooth", true_model=str(true),
                 params=PARAMS, gpu_possible=False)  # fmt: skip
    assert "\n" not in str(err.value)


def _artifacts(api: str, key: str) -> list[dict]:
    import httpx

    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 100, "offset": 0}
    r = httpx.post(f"{api.rstrip('/')}/artifacts/filter", json=body, timeout=30)
    r.raise_for_status()
    return r.json()
