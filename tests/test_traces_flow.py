"""The ``denoise-traces`` flow on the session's real Prefect server and Dask workers, with a tiny CDiffSD model.

Two synthetic station records of 45 s (SAC with picks, written by ``seis traces make-data``'s generator) in a catalog
entry of kind traces3c: 4 windows of 3000 samples, 2 batches of 2. A run that stopped after its first batch (the
staging version prepared and batch 0 processed exactly as the flow does it) is resumed by the flow, which
processes only batch 1; the output equals the method applied to every window; the MiniSEED export holds the
merged records; QC report and lineage are written; a rerun with nothing changed is a no-op. The model is a real
CDiffSD model at a tiny configuration (untrained weights: this tests the orchestration, the method's quality is
tested and benchmarked with the method).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def roots(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setenv("SEIS_TASK_RETRY_DELAY_S", "0")
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def _tiny_model(folder: Path) -> Path:
    import torch

    from seiscore.methods.cdiffsd.config import CDiffSDConfig
    from seiscore.methods.cdiffsd.model import CDiffSDModel

    torch.set_num_threads(1)
    config = CDiffSDConfig(dim=8, dim_mults=(1, 2), T=5, attn_heads=1, attn_dim_head=8)
    return CDiffSDModel(config, seed=0).save(folder, {"note": "tiny untrained model for the flow test"})


def test_denoise_traces_resumes_exports_and_is_idempotent(roots, dask_cluster, prefect_harness):
    import obspy
    import torch

    from flows._runtime import make_task_runner
    from flows.denoise_traces import denoise_traces
    from seiscore.core.lineage import read_lineage
    from seiscore.core.settings import get_settings
    from seiscore.data.kinds import get_kind
    from seiscore.data.traces import read_trace_store, windows_to_records
    from seiscore.execution.per_item import plan_items, process_batch
    from seiscore.execution.pipeline import run_key
    from seiscore.execution.traces import (
        ingest_source,
        make_demo_data,
        plan_denoise,
        prepare_trace_output,
        run_record,
    )
    from seiscore.execution.versions import staging_path
    from seiscore.methods.registry import get_method

    torch.set_num_threads(1)
    make_demo_data(roots / "demo", n_records=2, seconds=45.0, seed=1)
    model = _tiny_model(roots / "models" / "tiny")
    catalog = roots.parent / "catalog.yaml"
    catalog.write_text(
        "surveys:\n  stations:\n    kind: traces3c\n    source: data/demo/*.sac\n"
        "    store: data/stores/stations_windows.zarr\n    output: data/stores/stations_denoised.zarr\n"
        f"    method: {{name: cdiffsd, model: {model}, batch_size: 2, params: {{mode: direct, infer_batch: 2}}}}\n"
    )
    settings = get_settings(dask_address=dask_cluster.scheduler_address)

    # a run that stopped after its first batch: staging version prepared and batch 0 done, as the flow does it
    plan = plan_denoise("stations", catalog=str(catalog), settings=settings)
    ing = ingest_source(plan)
    assert (ing["records"], ing["windows"], ing["ingested"]) == (2, 4, True)
    job = plan_items(ing["store"], staging_path(plan.output), plan.spec, "traces3c")
    assert job.n_batches == 2
    prepare_trace_output(job, run_key(run_record(plan, ing["source"], settings).reuse_key(), job))
    process_batch(job, 0)

    flow = denoise_traces.with_options(task_runner=make_task_runner(settings))
    r = flow("stations", catalog=str(catalog))
    assert not r["skipped"] and r["status"] == "completed"
    assert (r["batches"]["batches_done"], r["batches"]["batches_total"]) == (1, 2)  # resumed: batch 1 only

    # the output is the method applied to every window (same scaling as the batches)
    ws_in, ws_out = read_trace_store(plan.store), read_trace_store(plan.output)
    fn = get_method("cdiffsd").build(plan.spec, get_kind("traces3c"))
    centre, half = job.scale
    expected = np.asarray(fn((ws_in.data - centre) / half)) * half + centre
    np.testing.assert_allclose(ws_out.data, expected, atol=1e-5 * float(np.abs(expected).max()))
    assert not np.allclose(ws_out.data, ws_in.data)

    # MiniSEED: the merged records, 3 channels each, at the records' length and start
    st = obspy.read(r["mseed"])
    merged = windows_to_records(ws_out)
    assert len(st) == 6 and {tr.stats.npts for tr in st} == {4500}
    z = st.select(station="ST00", component="Z")[0]
    np.testing.assert_allclose(z.data, merged[0].data[0], rtol=1e-6, atol=1e-6 * float(np.abs(z.data).max()))

    # QC report with the metric table and the sampled records; lineage in the published store
    report = Path(r["qc_report"])
    page = report.read_text()
    assert "Metrics per record" in page and "SY.ST00" in page and page.count("<img") >= 4
    metrics = json.loads((report.parent / "metrics.json").read_text())
    assert metrics["summary"]["records"] == 2 and all(row["removed_pct"] > 0 for row in metrics["records"])
    assert all(row["snr_win_before"] is not None for row in metrics["records"])  # the SAC picks reached QC
    lineage = read_lineage(plan.output)
    assert lineage.status == "completed" and lineage.denoiser["name"] == "cdiffsd"
    assert lineage.tile_grid["n_items"] == 4 and lineage.metrics["batches_done"] == 1
    assert lineage.input.content_hash == ing["source"]["content_hash"]

    # a rerun with nothing changed does nothing
    again = flow("stations", catalog=str(catalog))
    assert again["skipped"] and again["run_id"] == r["run_id"]


TINY_TRAINING = {
    "dim": 8,
    "dim_mults": [1, 2],
    "T": 5,
    "attn_heads": 1,
    "attn_dim_head": 8,
    "n_train": 8,
    "n_val": 4,
    "batch_size": 4,
    "epochs": 1,
    "threads": 1,
    "allow_cpu": True,
}


@pytest.mark.slow
def test_train_cdiffsd_flow_writes_a_model_denoise_accepts(roots, prefect_harness, monkeypatch):
    """train-cdiffsd on a local CPU cluster (allow_cpu, as a CPU machine's ``seis traces train`` does): the fit
    task writes the model artifact with its card, which the denoise-traces pre-flight accepts."""
    import torch

    from flows._runtime import make_task_runner
    from flows.train_cdiffsd import train_cdiffsd
    from seiscore.core.settings import get_settings
    from seiscore.execution.fit import read_events
    from seiscore.execution.traces import make_demo_data, plan_denoise
    from seiscore.methods.cdiffsd.model import CDiffSDModel

    torch.set_num_threads(1)
    monkeypatch.setenv("SEIS_DASK_WORKERS", "1")
    monkeypatch.setenv("SEIS_DASK_THREADS_PER_WORKER", "1")
    monkeypatch.delenv("SEIS_DASK_ADDRESS", raising=False)
    flow = train_cdiffsd.with_options(task_runner=make_task_runner(get_settings()))
    r = flow(str(roots / "runs" / "tiny"), params=TINY_TRAINING, seed=3)
    assert r["method"] == "cdiffsd-train"
    model_dir = Path(r["folder"]) / "artifacts" / "model"
    model = CDiffSDModel.load(model_dir)
    assert model.config.T == 5 and model.config.dim_mults == (1, 2)
    assert any(type(e).__name__ == "FitDone" for e in read_events(r["folder"]))

    make_demo_data(roots / "demo", n_records=1, seconds=30.0, seed=2)
    plan = plan_denoise(str(roots / "demo" / "*.sac"), params={"model": str(model_dir)})
    assert plan.spec.model == str(model_dir) and plan.output.endswith("demo_denoised.zarr")
