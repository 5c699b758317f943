"""The process-survey flow under Prefect's test harness on a real local Dask cluster (2 worker processes).

A small synthetic SEG-Y written with segyio is ingested, tiled, denoised with TLSM on the
workers, blended and written; the result must equal the in-memory tiled reference, carry
its lineage, emit OpenLineage events and publish artifacts. Re-runs are no-ops; a run
interrupted by a failing tile fails naming it, publishes nothing, and the next run resumes its
staging version (tests/test_staging.py: the published version survives failed and killed runs).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from seiscore.core.lineage import read_events, read_lineage
from seiscore.execution.blockwise.state import SurveyLocked, TileState, survey_lock
from seiscore.execution.versions import staging_path

SHAPE = (32, 40, 60)
TILES = {"tile": [8, None, None], "halo": [4, 0, 0]}
PARAMS = {"tiles": TILES, "iterations": 5}


def _catalog(directory: Path, noisy: Path, clean: Path) -> Path:
    path = directory / "catalog.yaml"
    path.write_text(
        "surveys:\n"
        "  small:\n"
        f"    source: {noisy}\n"
        "    store: data/stores/small.zarr\n"
        "    output: data/stores/small_denoised.zarr\n"
        f"    reference: {clean}\n"
        "    chunks: [8, 40, 60]\n"
        "    denoiser:\n"
        "      name: tlsm\n"
        "      preset: synthetic\n"
        "      axes: {smooth: crossline, footprint: sample, tube: inline}\n"
    )
    return path


@pytest.fixture(scope="module")
def survey(tmp_path_factory, write_synthetic_segy):
    d = tmp_path_factory.mktemp("pipeline")
    noisy_path, clean_path, noisy, clean = write_synthetic_segy(d / "segy", SHAPE)
    return {
        "dir": d,
        "catalog": _catalog(d, noisy_path, clean_path),
        "noisy": noisy,
        "clean": clean,
        "source": noisy_path,
        "output": d / "data" / "stores" / "small_denoised.zarr",
        "store": d / "data" / "stores" / "small.zarr",
    }


@pytest.fixture()
def env(monkeypatch, tmp_path, dask_cluster):
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")  # stable across commits made while the suite runs
    monkeypatch.setenv("SEIS_TASK_RETRY_DELAY_S", "0")
    return {"lineage": tmp_path / "ol" / "events.jsonl", "scheduler": dask_cluster.scheduler_address}


def _run(survey, env, **kw):
    from flows.process_survey import run_process_survey

    return run_process_survey("small", scheduler=env["scheduler"], catalog=str(survey["catalog"]), params=PARAMS, **kw)


def _expected(noisy: np.ndarray, catalog: Path) -> np.ndarray:
    """The same tiles and global min-max scaling, computed in memory with the catalog entry's method."""
    from seiscore.data.catalog import load_catalog
    from seiscore.data.kinds import get_kind
    from seiscore.execution.blockwise.tiling import TileConfig, denoise_tiled
    from seiscore.methods.registry import get_method

    entry = load_catalog(catalog).get("small")
    spec = entry.method.with_overrides({"iterations": 5})
    block = get_method(spec.name).build(spec, get_kind(entry.kind))
    lo, hi = float(noisy.min()), float(noisy.max())
    c, h = (lo + hi) / 2, (hi - lo) / 2
    scaled = (noisy - np.float32(c)) / np.float32(h)
    return denoise_tiled(scaled, block, TileConfig(**TILES)) * np.float32(h) + np.float32(c)


def _amplitude(store) -> np.ndarray:
    return xr.open_zarr(str(store), consolidated=False)["amplitude"].values


def _chunk_mtimes(store: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (store / "amplitude").rglob("*") if p.is_file()}


def test_flow_end_to_end_then_noop(survey, env, prefect_harness):
    from prefect.client.orchestration import get_client

    from seiscore import io

    result = _run(survey, env)
    out = survey["output"]
    assert result["status"] == "completed" and not result["skipped"]
    assert io.is_complete(out)
    with warnings.catch_warnings():  # opens from consolidated metadata (the lineage written last kept it)
        warnings.simplefilter("error")
        xr.open_zarr(str(out))
        xr.open_zarr(str(survey["store"]))
    n_tiles = 4
    assert result["tiles_computed"] == n_tiles
    np.testing.assert_allclose(_amplitude(out), _expected(survey["noisy"], survey["catalog"]), atol=2e-5)

    # Lineage in the store's attributes.
    rec = read_lineage(out)
    assert rec.status == "completed" and rec.error is None
    assert rec.input.uri == str(Path(survey["source"]).resolve())
    assert rec.input.size_bytes == Path(survey["source"]).stat().st_size
    digest = hashlib.blake2b(Path(survey["source"]).read_bytes(), digest_size=20).hexdigest()
    assert rec.input.content_hash == f"blake2b:{digest}"
    from seiscore.data.catalog import load_catalog

    spec = load_catalog(survey["catalog"]).get("small").method.with_overrides(PARAMS)  # the resolved spec
    assert rec.denoiser == spec.model_dump(mode="json")
    assert rec.denoiser["name"] == "tlsm" and rec.denoiser["params"]["iterations"] == 5
    assert rec.code["version"] == "test" and rec.dependencies["zarr"] == zarr.__version__
    assert rec.dask_cluster["n_workers"] == 2 and rec.dask_cluster["scheduler"] == env["scheduler"]
    assert rec.tile_grid["grid"] == [4, 1, 1] and rec.tile_grid["halo"] == [4, 0, 0]
    assert rec.started < rec.ended
    assert rec.metrics["psnr_after"] > rec.metrics["psnr_before"] + 3
    assert sum(rec.metrics["tiles_per_worker"].values()) == n_tiles
    assert rec.metrics["tile_backends"] == ["numba on cpu"]  # TLSM's auto choice on CPU workers, recorded
    assert Path(rec.metrics["qc_report"]).is_file()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(rec.flow_run_id)
        assert run.name and run.state.is_completed()
        from prefect.client.schemas.filters import ArtifactFilter, FlowRunFilter, TaskRunFilter
        from prefect.client.schemas.sorting import ArtifactSort

        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.KEY_ASC,
            limit=200,
            offset=0,
        )
        keys = {a.key for a in arts}
    assert {"small-metrics", "small-sections", "small-qc-report"} <= keys

    # OpenLineage events (file transport): START then COMPLETE for this run, with datasets.
    events = [e for e in read_events(env["lineage"]) if e["run"]["runId"] == rec.run_id]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["inputs"][0]["name"] == rec.input.uri and events[1]["outputs"][0]["name"] == rec.output.uri
    assert events[1]["run"]["facets"]["seiscore"]["record"]["metrics"]["psnr_after"] == rec.metrics["psnr_after"]

    # Second run: up to date, nothing recomputed or rewritten.
    before = _chunk_mtimes(out)
    again = _run(survey, env)
    assert again["skipped"] and again["tiles_computed"] == 0 and again["run_id"] == rec.run_id
    assert _chunk_mtimes(out) == before


def test_failing_tile_fails_the_run_naming_it_and_the_next_run_resumes(survey, env, prefect_harness, monkeypatch):
    from seiscore import io

    monkeypatch.setenv("SEIS_TASK_RETRIES", "1")
    store, out = survey["store"], survey["output"]
    _run(survey, env, force=False)  # make sure the input store exists (no-op if the first test ran)
    shutil.rmtree(out)  # a first run: nothing published yet
    # Corrupt the input chunk of inlines 24..31 (input chunks are 8 inlines): a real read error in
    # tiles 2 and 3 (their blocks reach those inlines); tile 0 can still be written.
    chunk_dir = store / "amplitude" / "c"
    chunks = sorted(p for p in chunk_dir.rglob("*") if p.is_file())
    victim = next(p for p in chunks if p.relative_to(chunk_dir).parts[0] == "3")
    backup = survey["dir"] / "chunk.bak"
    shutil.copy(victim, backup)
    victim.write_bytes(b"not a zstd frame")
    try:
        with pytest.raises(
            Exception,
            match=r"denoise tile 2-0-0: .*failed after 1 retries"
            r"|tile task\(s\) failed after 1 retries; first: denoise tile 2-0-0",
        ):
            _run(survey, env, force=True)
    finally:
        shutil.copy(backup, victim)
    assert not out.exists()  # nothing published; the tiles and the failure are in the staging version
    staging = staging_path(out)
    assert not io.is_complete(staging)
    rec = read_lineage(staging)
    assert rec.status == "failed" and "denoise tile 2-0-0" in rec.error
    state = TileState(staging)
    assert state.done() == {"0-0-0"}  # tile 1 blends tile 2's block, so only tile 0 is written
    events = [e for e in read_events(env["lineage"]) if e["run"]["runId"] == rec.run_id]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert "denoise tile 2-0-0" in events[-1]["run"]["facets"]["errorMessage"]["message"]

    resumed = _run(survey, env)
    assert resumed["status"] == "completed" and not resumed["skipped"]
    assert resumed["metrics"]["tiles_written"] == 3 and resumed["tiles_computed"] == 2  # blocks 2 and 3 only
    assert io.is_complete(out) and not staging.parent.exists()
    np.testing.assert_allclose(_amplitude(out), _expected(survey["noisy"], survey["catalog"]), atol=2e-5)


def _hold_lock(store: str, ready, release) -> None:
    with survey_lock(store, owner="holder process"):
        ready.set()
        release.wait(60)


def test_second_run_on_a_locked_survey_is_refused(survey, env, prefect_harness):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(survey["output"]), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(SurveyLocked, match="being written by another run.*holder process"):
            _run(survey, env, force=True)
        with pytest.raises(SurveyLocked):  # also from the library, without Prefect
            with survey_lock(survey["output"], wait_s=0.2):
                pass
    finally:
        release.set()
        holder.join(30)
    with survey_lock(survey["output"], wait_s=5):  # released when the holder ends
        pass


def test_qc_failure_keeps_the_written_tiles_and_the_export_runs_beside_qc(survey, env, prefect_harness, monkeypatch):
    import segyio

    import flows.process_survey as ps
    from seiscore import io

    def broken_qc(*args, **kwargs):
        raise RuntimeError("QC exploded")

    real_qc = ps.quality_task
    monkeypatch.setattr(ps, "quality_task", broken_qc)
    out = survey["output"]
    if out.exists():  # nothing published: the next run has to resume the staging version
        shutil.rmtree(out)
    with pytest.raises(RuntimeError, match="QC exploded"):
        _run(survey, env, force=True, export_segy=True)
    assert not out.exists()  # not published before QC and the lineage are done
    rec = read_lineage(staging_path(out))
    assert rec.status == "failed" and "QC exploded" in rec.error
    assert io.is_complete(staging_path(out))  # every tile was written before QC started
    monkeypatch.setattr(ps, "quality_task", real_qc)
    again = _run(survey, env, export_segy=True)  # resumes: no tile recomputed or rewritten
    assert again["status"] == "completed" and not again["skipped"]
    assert again["tiles_computed"] == 0 and again["metrics"]["tiles_written"] == 0
    with segyio.open(again["segy"], ignore_geometry=True) as f:
        traces = f.trace.raw[:]
    amp = _amplitude(out)
    np.testing.assert_array_equal(traces.reshape(amp.shape), amp)


def test_status_and_reprocess_archive_skip_up_to_date_surveys(survey, env, prefect_harness, monkeypatch):
    from flows.reprocess_archive import reprocess_archive
    from seiscore.execution.status import survey_status

    _run(survey, env)  # up to date after the tests above (or processed now)
    status = survey_status("small", str(survey["catalog"]))
    assert status["complete"] and status["tiles"]["done"] == status["tiles"]["total"] == 4
    assert status["last_run"]["status"] == "completed" and status["metrics"]["psnr_after"] > 30
    monkeypatch.setenv("SEIS_DASK_WORKERS", "1")
    # The catalog's parameters differ from the runs above (tiles, iterations): processed once, then skipped.
    first = reprocess_archive(selection=["small"], catalog=str(survey["catalog"]))["small"]
    assert not first["skipped"] and first["status"] == "completed" and first["tiles_computed"] >= 1
    again = reprocess_archive(selection=["small"], catalog=str(survey["catalog"]))["small"]
    assert again["skipped"] and again["tiles_computed"] == 0 and again["run_id"] == first["run_id"]
    with pytest.raises(Exception, match="1 of 1 surveys failed: nope"):
        reprocess_archive(selection=["nope"], catalog=str(survey["catalog"]))


def test_fit_method_is_refused_by_process_survey_in_one_line(survey, env, tmp_path, monkeypatch):
    """A catalog survey whose method is a fit method (training / inversion) is refused before any ingest."""
    from typing import Literal

    from flows.process_survey import run_process_survey
    from seiscore.execution.runs import FitMethodError
    from seiscore.methods import registry
    from seiscore.methods.base import Method, MethodSpec
    from seiscore.methods.registry import register_method

    monkeypatch.setattr(registry, "_runtime", dict(registry._runtime))  # registered for this test only

    class TinyFitSpec(MethodSpec):
        name: Literal["tiny-fit"] = "tiny-fit"

    @register_method
    class TinyFit(Method):
        name = "tiny-fit"
        spec_model = TinyFitSpec
        data_kinds = ("poststack3d",)
        mode = "fit"

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "surveys:\n  fitted:\n"
        f"    source: {survey['source']}\n"
        "    store: data/fitted.zarr\n    output: data/fitted_out.zarr\n"
        "    method: {name: tiny-fit}\n"
    )
    with pytest.raises(
        FitMethodError,
        match=r"^method 'tiny-fit' is a fit method: run it with the fit-method flow "
        r"\(seis fit tiny-fit --out FOLDER\)$",
    ):
        run_process_survey("fitted", scheduler=env["scheduler"], catalog=str(catalog))
    assert not (tmp_path / "data").exists()
