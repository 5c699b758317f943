"""What a user sees: tile progress, exports of up-to-date outputs, QC on every store, quiet output.

A small synthetic survey (segyio-written SEG-Y, its clean reference) runs through the real
process-survey flow on the session's Dask cluster and Prefect harness; ``seis run`` itself runs in
a subprocess to check what it prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seiscore.core import progress

REPO = Path(__file__).resolve().parents[1]
TILES = {"tile": [8, None, None], "halo": [2, 0, 0]}
LOG_KEYS = ("PREFECT_LOGGING_LEVEL", "DASK_LOGGING__DISTRIBUTED")


def _catalog(directory: Path, noisy: Path, clean: Path) -> Path:
    path = directory / "catalog.yaml"
    path.write_text(
        "surveys:\n  small:\n"
        f"    source: {noisy}\n    reference: {clean}\n"
        "    store: data/small.zarr\n    output: data/small_denoised.zarr\n    chunks: [8, 40, 60]\n"
        "    denoiser: {name: tlsm, preset: synthetic, params: {iterations: 3},"
        " axes: {smooth: crossline, footprint: sample, tube: inline}}\n"
    )
    return path


@pytest.fixture(scope="module")
def processed(tmp_path_factory, write_synthetic_segy, dask_cluster, prefect_harness):
    """The survey after one flow run (3 tiles), with the progress events the run reported."""
    from flows.process_survey import run_process_survey

    d = tmp_path_factory.mktemp("ux")
    noisy, clean, _, _ = write_synthetic_segy(d / "segy", (24, 40, 60))
    catalog = _catalog(d, noisy, clean)
    events: list[progress.Progress] = []
    mp = pytest.MonkeyPatch()
    mp.setenv("SEIS_LINEAGE_DIR", str(d / "ol"))
    mp.setenv("SEIS_CODE_VERSION", "test")
    run = dict(scheduler=dask_cluster.scheduler_address, catalog=str(catalog), params={"tiles": TILES})
    with progress.listening(events.append):
        result = run_process_survey("small", **run)
    yield {"dir": d, "catalog": catalog, "result": result, "events": events, "run": run}
    mp.undo()


def test_progress_reports_every_tile_written(processed):
    tiles = [e for e in processed["events"] if e.what == "tiles"]
    assert processed["result"]["tiles_computed"] == 3
    assert [(e.done, e.total) for e in tiles] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert {e.label for e in tiles} == {"small_denoised.zarr"}


def test_export_segy_on_an_up_to_date_output_exports_once(processed):
    import segyio

    from flows.process_survey import run_process_survey

    segy = processed["dir"] / "data" / "small_denoised.sgy"
    assert not segy.exists()  # the first run did not export
    again = run_process_survey("small", export_segy=True, **processed["run"])
    assert again["skipped"] and again["tiles_computed"] == 0
    assert again["segy"] and Path(again["segy"]).resolve() == segy.resolve() and segy.is_file()
    with segyio.open(segy, ignore_geometry=True) as f:
        assert f.tracecount == 24 * 40 and len(f.samples) == 60
    mtime = segy.stat().st_mtime_ns
    third = run_process_survey("small", export_segy=True, **processed["run"])  # current: left as it is
    assert third["skipped"] and Path(third["segy"]).resolve() == segy.resolve() and segy.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("store", ["small.zarr", "small_denoised.zarr", "small_reference.zarr"])
def test_seis_qc_works_on_every_store_the_product_writes(processed, store, tmp_path, monkeypatch, capsys):
    from seiscore.cli import main

    for key in LOG_KEYS:  # main() sets them for its process; keep the session's as they are
        monkeypatch.setenv(key, os.environ.get(key, "INFO"))
    path = processed["dir"] / "data" / store
    monkeypatch.chdir(tmp_path)
    assert main(["qc", str(path), "-o", "report.html", "--max-slices", "4"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.is_absolute() and printed == (tmp_path / "report.html").resolve() and printed.is_file()


def _seis(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from seiscore.cli import main; sys.exit(main())", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_seis_run_is_quiet_by_default_and_verbose_with_v(tmp_path, write_synthetic_segy, dask_cluster, prefect_harness):
    noisy, clean, _, _ = write_synthetic_segy(tmp_path / "segy", (16, 40, 60))
    catalog = _catalog(tmp_path, noisy, clean)
    env = {k: v for k, v in os.environ.items() if k not in LOG_KEYS}
    env.update(
        SEIS_LINEAGE_DIR=str(tmp_path / "ol"),
        SEIS_CODE_VERSION="test",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    args = ["run", "small", "--catalog", str(catalog), "--scheduler", dask_cluster.scheduler_address, "--export-segy"]
    quiet = _seis(args, env)
    assert quiet.returncode == 0, quiet.stderr
    lines = (quiet.stdout + quiet.stderr).splitlines()
    assert not [ln for ln in lines if re.search(r"\| (INFO|DEBUG) +\||distributed\.|Traceback", ln)], lines
    assert len(lines) <= 15, lines
    assert quiet.stdout.startswith("small: done")
    printed = [Path(m) for m in re.findall(r"(?:output store|SEG-Y|QC report) +: (\S+)", quiet.stdout)]
    assert len(printed) == 3 and all(p.is_absolute() and p.exists() for p in printed), quiet.stdout

    verbose = _seis(["-v", *args], env)  # up to date now: the SEG-Y is current, nothing recomputed
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.startswith("small: up to date")
    assert re.search(r"\| INFO +\| Flow run .* - Beginning flow run", verbose.stderr), verbose.stderr
