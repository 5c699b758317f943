"""Pre-flight (``seis run --check``, the first step of ``seis run`` and of the process-survey flow).

Configuration errors - a parameter typo, SSB without a model, a bad preset or axes, an unknown
survey, tiles a worker cannot hold - are refused in about a second with a one-line message,
before any Prefect server, cluster or ingest, and nothing on disk changes. ``--check`` prints a
plan whose tiles are the ones the run plans.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seiscore.execution.preflight import PreflightError, preflight
from seiscore.methods.registry import get_method
from seiscore.methods.ssb.method import SSBParams

SHAPE = (32, 40, 60)
TILES = {"tile": [8, None, None], "halo": [4, 0, 0]}
REPO = Path(__file__).resolve().parent.parent


def _catalog(directory: Path, noisy: Path, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "catalog.yaml"
    path.write_text(
        "surveys:\n"
        "  small:\n"
        f"    source: {noisy}\n"
        "    store: data/stores/small.zarr\n"
        "    output: data/stores/small_denoised.zarr\n"
        "    chunks: [8, 40, 60]\n"
        "    denoiser:\n"
        "      name: tlsm\n"
        "      preset: synthetic\n"
        "      params: {iterations: 2}\n"
        "      axes: {smooth: crossline, footprint: sample, tube: inline}\n" + extra
    )
    return path


@pytest.fixture(scope="module")
def segy(tmp_path_factory, write_synthetic_segy):
    return write_synthetic_segy(tmp_path_factory.mktemp("preflight_segy"), SHAPE)[0]


@pytest.fixture()
def catalog(tmp_path, segy):
    return _catalog(tmp_path, segy)


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder`` with its mtime and content hash."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _seis(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """``seis ARGS`` in a fresh interpreter: (result, wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    code = "import sys; from seiscore.cli import main; sys.exit(main(sys.argv[1:]))"
    res = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res, wall, cpu


def _one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip()
    assert err.startswith("seis run: error:") and "\n" not in err and "Traceback" not in err, err
    return err


def _complete_output(catalog: Path) -> Path:
    """A complete input store and a complete output store beside it: the 'last good result'."""
    from seiscore import io
    from seiscore.data.catalog import load_catalog

    entry = load_catalog(catalog).get("small")
    io.ingest(entry.source_path, entry.store, chunks=entry.chunks)
    io.create_output_store(entry.store, entry.output)
    io.mark_complete(entry.output)
    return Path(entry.output)


def test_typo_is_refused_fast_with_the_closest_name_and_the_last_output_untouched(catalog):
    output = _complete_output(catalog)
    before = _snapshot(catalog.parent)
    res, wall, cpu = _seis("run", "small", "--catalog", str(catalog), "--param", "tua=0.3")
    err = _one_line_error(res)
    assert "unknown TLSM parameter 'tua'; did you mean 'tau'?" in err
    assert cpu < 3.0, f"the typo took {cpu:.1f} s of CPU ({wall:.1f} s wall) to refuse"
    assert _snapshot(catalog.parent) == before  # the complete output (and everything else) untouched
    assert (output / "zarr.json").is_file()


@pytest.mark.parametrize(
    "param, message",
    [
        ("tau=-1", "TLSM parameter 'tau': Input should be greater than 0 (got -1)"),
        ("iterations=0", "TLSM parameter 'iterations'"),
        ('boundary="mirror"', "TLSM parameter 'boundary'"),
        ('preset="synthtic"', "unknown TLSM preset 'synthtic'; did you mean 'synthetic'?"),
        ('axes={"smooth": "crossline", "footprint": "time", "tube": "inline"}', "TLSM axes"),
        ('axes={"smooth": "crossline", "footprint": "crossline", "tube": "inline"}', "permutation"),
        ('tiles={"tile": [1, null, null]}', "parameter 'tiles'"),
        ("threads_per_task=0", "parameter 'threads_per_task'"),
        ('scale="maxmin"', "parameter 'scale'"),
    ],
)
def test_bad_values_presets_axes_and_tiles_are_refused_with_the_field_named(catalog, param, message):
    from seiscore.cli import main
    from seiscore.cli.common import parse_params

    with pytest.raises(PreflightError, match=None) as exc:
        preflight("small", catalog=catalog, params=parse_params([param]))
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert main(["run", "small", "--catalog", str(catalog), "--param", param, "--check"]) == 2
    assert not (catalog.parent / "data" / "stores").exists()


def test_unknown_survey_and_method_get_suggestions(catalog, capsys):
    from seiscore.cli import main

    assert main(["run", "smal", "--catalog", str(catalog), "--check"]) == 2
    err = capsys.readouterr().err
    assert "no survey 'smal' in catalog" in err and "did you mean 'small'?" in err
    with pytest.raises(PreflightError, match="unknown method 'tslm'; did you mean 'tlsm'.*available: .*ssb, .*tlsm"):
        preflight("small", catalog=catalog, method="tslm")


def test_ssb_without_a_model_or_with_a_missing_one_is_refused_before_compute(catalog):
    before = _snapshot(catalog.parent)
    res, _, cpu = _seis("run", "small", "--catalog", str(catalog), "--denoiser", "ssb")
    assert "SSB needs a model artifact folder" in _one_line_error(res)
    res, _, _ = _seis(
        "run",
        "small",
        "--catalog",
        str(catalog),
        "--denoiser",
        "ssb",
        "--param",
        f"model={catalog.parent / 'no_such_model'}",
    )
    assert f"SSB model folder {catalog.parent / 'no_such_model'} does not exist" in _one_line_error(res)
    assert _snapshot(catalog.parent) == before and not (catalog.parent / "data" / "stores").exists()


@pytest.fixture(scope="module")
def ssb_model(tmp_path_factory):
    from seiscore.methods.ssb import SSBModelConfig, save_model
    from seiscore.methods.ssb.model import SSBModel

    return str(save_model(SSBModel(SSBModelConfig(patch=16)), tmp_path_factory.mktemp("ssb") / "model"))


def test_ssb_parameters_model_and_gpu_rule(catalog, ssb_model, tmp_path):
    from seiscore.execution.resources import gpu_available

    with pytest.raises(PreflightError, match="unknown SSB parameter 'batch_sise'; did you mean 'batch_size'"):
        preflight("small", catalog=catalog, denoiser="ssb", params={"model": ssb_model, "batch_sise": 4})
    not_an_artifact = tmp_path / "empty_model"
    not_an_artifact.mkdir()
    with pytest.raises(FileNotFoundError, match="model_card.json is missing"):
        preflight("small", catalog=catalog, denoiser="ssb", params={"model": str(not_an_artifact)})
    if not gpu_available():  # the same rule as the run's placement: no GPU and no allow_cpu -> refused
        with pytest.raises(PreflightError, match="allow_cpu=true"):
            preflight("small", catalog=catalog, denoiser="ssb", params={"model": ssb_model})
    plan = preflight("small", catalog=catalog, denoiser="ssb", params={"model": ssb_model, "allow_cpu": True})
    assert plan.method == "ssb" and plan.params["allow_cpu"] is True and plan.tiles.count == 1  # 32 inlines = one stack
    with pytest.raises(PreflightError, match="smaller than the model's 16 x 16 patch"):
        preflight(
            "small",
            catalog=_catalog(tmp_path / "narrow", _small_segy(tmp_path)),
            denoiser="ssb",
            params={"model": ssb_model, "allow_cpu": True, "section_dim": "sample"},
        )


def _small_segy(directory: Path) -> Path:
    import numpy as np

    from seiscore.io.segy_write import write_cube

    return write_cube(directory / "narrow.sgy", np.ones((20, 12, 30), np.float32))


def test_ssb_params_schema_matches_the_denoiser_signature():
    from seiscore.methods.ssb import denoise

    names = set(inspect.signature(denoise).parameters) - {"volume", "model", "axis", "return_gate"}
    assert set(SSBParams.model_fields) == names


def test_check_prints_the_plan_the_run_uses_and_writes_nothing(catalog, capsys):
    from seiscore.cli import main
    from seiscore.data.catalog import load_catalog
    from seiscore.execution.pipeline import ensure_ingested, make_job
    from seiscore.methods.registry import resolve_spec

    params = ["--param", f'tiles={{"tile": {TILES["tile"]}, "halo": {TILES["halo"]}}}'.replace("None", "null")]
    before = _snapshot(catalog.parent)
    assert main(["run", "small", "--catalog", str(catalog), "--check", *params]) == 0
    text = capsys.readouterr().out
    assert _snapshot(catalog.parent) == before  # nothing created (no store yet), nothing touched
    assert "tiles       : 4 (grid 4 x 1 x 1)" in text and "from the SEG-Y headers" in text
    assert "output store: " in text and "does not exist yet" in text and "planned peak per tile" in text
    assert "task budget" in text

    entry = load_catalog(catalog).get("small")
    ensure_ingested(entry.source_path, entry.store, chunks=entry.chunks)
    spec = resolve_spec(entry, None, {"tiles": TILES})
    job = make_job(entry.store, entry.output, spec)  # what the flow plans
    before = _snapshot(catalog.parent)
    plan = preflight("small", catalog=catalog, params={"tiles": TILES})
    assert plan.shape_from == "the input store"
    assert (plan.tiles.count, plan.tiles.grid, plan.tiles.chunks) == (job.plan.n_tiles, job.plan.grid, job.plan.chunks)
    assert plan.tiles.block == (16, 40, 60)  # an 8-inline core with 4 inlines of halo on both sides
    assert plan.peak_memory_per_tile == get_method("tlsm").peak_memory(spec, (16, 40, 60))  # the memory model
    assert _snapshot(catalog.parent) == before
    # the default TLSM tiles (44 + halo 2 along the tube axis) on the same store
    default = preflight("small", catalog=catalog)
    assert default.tiles.count == make_job(entry.store, entry.output, resolve_spec(entry, None, None)).plan.n_tiles


def test_check_imports_neither_prefect_nor_distributed(catalog):
    code = (
        "import sys; from seiscore.cli import main\n"
        "rc = main(['run', 'small', '--catalog', sys.argv[1], '--check'])\n"
        "roots = ('prefect', 'distributed', 'flows', 'tasks', 'torch')\n"
        "found = {m for m in sys.modules if m.split('.')[0] in roots or m == 'dask.distributed'}\n"
        # the seis run command itself is a plug-in from flows.commands (entry point); no flow module loads
        "print(rc, sorted(m for m in found if m != 'flows' and not m.startswith('flows.commands')))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(catalog)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        # the GPU's memory given: on a machine with an NVIDIA driver, reading it would import torch
        env={**os.environ, "PYTHONPATH": str(REPO), "SEIS_GPU_MEMORY_BYTES": "80GB"},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "0 []"


def test_source_and_memory_problems_are_one_line(tmp_path, segy, monkeypatch):
    (tmp_path / "adir.sgy").mkdir()
    with pytest.raises(PreflightError, match="is a directory, not a SEG-Y file"):
        preflight("small", catalog=_catalog(tmp_path, tmp_path / "adir.sgy"))
    os.mkfifo(tmp_path / "fifo.sgy")
    with pytest.raises(PreflightError, match="is not a regular file"):
        preflight("small", catalog=_catalog(tmp_path, tmp_path / "fifo.sgy"))
    with pytest.raises(PreflightError, match="not found"):
        preflight("small", catalog=_catalog(tmp_path, tmp_path / "missing.sgy"))
    with pytest.raises(PreflightError, match="reference .*clean.sgy not found"):
        preflight("small", catalog=_catalog(tmp_path, segy, f"    reference: {tmp_path / 'clean.sgy'}\n"))
    catalog = _catalog(tmp_path, segy)
    monkeypatch.setenv("SEIS_DASK_MEMORY_LIMIT", "1MB")
    with pytest.raises(PreflightError, match="one tile needs ~.* but a worker may use 976.6 KiB"):
        preflight("small", catalog=catalog)
    monkeypatch.setenv("SEIS_DASK_MEMORY_LIMIT", "4GB")
    assert preflight("small", catalog=catalog).workers.memory_limit == 4 * 10**9


def test_reprocess_preflights_every_survey_before_starting(tmp_path, segy):
    extra = (
        "  broken:\n"
        f"    source: {tmp_path / 'missing.sgy'}\n"
        "    store: data/stores/broken.zarr\n"
        "    output: data/stores/broken_denoised.zarr\n"
        "    method:\n"
        "      name: tlsm\n"
        "      params: {lambda1: 2}\n"
        "      axes: {smooth: crossline, footprint: sample, tube: inline}\n"
    )
    catalog = _catalog(tmp_path, segy, extra)
    res, _, cpu = _seis("reprocess", "--catalog", str(catalog))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "1 of 2 surveys fail the pre-flight, nothing started: survey 'broken': source" in res.stderr
    assert not (tmp_path / "data" / "stores").exists()
    # a parameter typo is in the survey's spec, which the catalog validates: refused on loading, with the close name
    catalog.write_text(catalog.read_text().replace("{lambda1: 2}", "{lamda1: 2}"))
    res, _, cpu = _seis("reprocess", "--catalog", str(catalog))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert (
        "survey 'broken': field 'method.params.lamda1': unknown TLSM parameter 'lamda1'; did you mean 'lambda1'"
    ) in res.stderr
    assert not (tmp_path / "data" / "stores").exists()


@pytest.mark.slow
def test_flow_fails_before_ingest_then_runs_and_check_reports_up_to_date(catalog, dask_cluster, monkeypatch, tmp_path):
    from flows.process_survey import run_process_survey

    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")
    run = dict(scheduler=dask_cluster.scheduler_address, catalog=str(catalog))
    with pytest.raises(PreflightError, match="did you mean 'tau'"):
        run_process_survey("small", params={"tua": 0.3}, **run)
    assert not (catalog.parent / "data" / "stores").exists()  # failed before ingest: no store created
    params = {"tiles": TILES}
    result = run_process_survey("small", params=params, **run)
    assert result["status"] == "completed"
    plan = preflight("small", catalog=catalog, params=params)
    assert plan.up_to_date is True and "up to date" in plan.up_to_date_reason
    changed = preflight("small", catalog=catalog, params={**params, "tau": 0.4})
    assert changed.up_to_date is False and "out of date" in changed.up_to_date_reason
