"""The velocity-archive flows on the session's real Prefect server and Dask workers, with a tiny SIREN.

One collection of 6 generated models (16 x 16): ``compress-velocity-archive`` fits a tiny decoder through the fit
mode, encodes in 2 batches with the per-model codec choice at 10 m/s, writes the archive, QC and lineage; a rerun
after losing one batch file re-encodes only that batch (the fit resumes with no step) and gives the same
archive; ``decode-velocity`` writes the models at twice the resolution as a velocity store.

The siren method's tasks need a GPU worker; on an existing CPU-only cluster (the session's) the placement refuses
them even with ``allow_cpu``, so the compress runs build their own local cluster (1 worker, as a CPU machine's
``seis velocity compress --param allow_cpu=true`` does), while decoding (no GPU needed) runs on the session's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

PARAMS = {
    "width": 16,
    "hidden": 1,
    "latent_dim": 8,
    "epochs": 20,
    "batch_maps": 6,
    "encode_steps": 15,
    "checkpoint_every": 10,
    "allow_cpu": True,
}


@pytest.fixture
def roots(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setenv("SEIS_TASK_RETRY_DELAY_S", "0")
    monkeypatch.setenv("SEIS_DASK_WORKERS", "1")
    monkeypatch.setenv("SEIS_DASK_THREADS_PER_WORKER", "1")
    monkeypatch.delenv("SEIS_DASK_ADDRESS", raising=False)
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


@pytest.fixture
def collection(roots) -> tuple[Path, np.ndarray]:
    from seiscore.data.openfwi_synth import generate
    from seiscore.data.velocity import write_velocity_store

    families = ["flatvel_a", "curvefault_b", "style_a"]
    models, names, labels, _ = generate(2, families=families, shape=(16, 16), seed=3)
    recipe = {"n_per_family": 2, "families": families, "shape": [16, 16], "seed": 3}
    path = write_velocity_store(roots / "tiny.zarr", models, names=names, family=labels, attrs={"generator": recipe})
    return path, models


def test_compress_then_resume_then_decode(roots, collection, dask_cluster, prefect_harness):
    import torch

    from flows._runtime import make_task_runner
    from flows.compress_velocity import compress_velocity_archive
    from flows.decode_velocity import decode_velocity
    from seiscore.core.lineage import read_lineage
    from seiscore.core.settings import get_settings
    from seiscore.data.velocity import read_velocity_store
    from seiscore.methods.siren.archive import open_archive

    torch.set_num_threads(1)
    store, models = collection
    runner = lambda: make_task_runner(get_settings(dask_address=dask_cluster.scheduler_address))  # noqa: E731
    local = lambda: make_task_runner(get_settings())  # noqa: E731 - a local CPU cluster, built per run
    compress = compress_velocity_archive.with_options(task_runner=local())
    archive = roots / "tiny_archive.zarr"
    first = compress(str(store), str(archive), params=PARAMS, batch=4, max_error=10.0)

    # archive written, every model within the bound, decoding exact after reopening
    assert first["fitted"] and first["models"] == 6 and first["batches_encoded"] == 2
    arc = open_archive(archive)
    decoded = arc.decode()
    assert decoded.shape == models.shape and np.abs(decoded - models).max() <= 10.0 + 1e-3
    assert np.array_equal(open_archive(archive).decode(), decoded)
    assert list(arc.names) == read_velocity_store(store)[1] and sum(first["codec_mix"].values()) == 6
    assert first["ratio_per_model"] > 1 and first["mean_bytes_per_model"] < 16 * 16 * 4
    lineage = read_lineage(archive)
    assert lineage.input.content_hash and lineage.denoiser["decoder_hash"] and lineage.status == "completed"
    report = Path(first["qc_report"])
    html = report.read_text()
    assert "Quality per family" in html and "Super-resolution" in html and "curvefault_b" in html
    metrics = json.loads((report.parent / "metrics.json").read_text())
    assert [r["factor"] for r in metrics["super_resolution"]] == [1, 2, 4]
    assert metrics["super_resolution"][1]["analytic"]  # the generator's truth rendered at 32 x 32

    # a lost batch file: the rerun re-encodes that batch only, the fit resumes with no step, same archive
    work = roots / "tiny_archive_work"
    (work / "batches" / "batch-00001.npz").unlink()
    kept = (work / "batches" / "batch-00000.npz").stat().st_mtime_ns
    again = compress_velocity_archive.with_options(task_runner=local())(
        str(store), str(archive), params=PARAMS, batch=4, max_error=10.0, force=True, qc=False
    )
    assert (again["batches_encoded"], again["batches_skipped"]) == (1, 1)
    assert (work / "batches" / "batch-00000.npz").stat().st_mtime_ns == kept
    assert np.array_equal(open_archive(archive).decode(), decoded)
    assert again["codec_mix"] == first["codec_mix"]

    # decode at twice the resolution into a velocity store
    out = roots / "decoded_x2.zarr"
    res = decode_velocity.with_options(task_runner=runner())(str(archive), str(out), factor=2.0, batch=4)
    fine, names, grid, _ = read_velocity_store(out)
    assert fine.shape == (6, 32, 32) and res["shape"] == [32, 32] and names == list(arc.names)
    assert grid.dz == pytest.approx(10.0 * 15 / 31)
    assert np.isfinite(fine).all() and 1000 < fine.min() and fine.max() < 6000
