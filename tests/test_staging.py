"""The last good result stays readable: runs write a staging version, published atomically when complete.

- a run that fails (a typo in a parameter, a tile that cannot be read) leaves the published output
  byte-identical and complete; its partial work waits in the staging version, which a rerun resumes;
- a first run killed mid-tiles publishes nothing (``xarray.open_zarr`` on the output path fails),
  ``seis status`` says in-progress while it runs and interrupted once its process is gone, and a
  rerun resumes the staging version without recomputing its blocks;
- a swap cut short between its renames (or after the exchange) is repaired by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import zarr
from test_pipeline_cluster import _wait_for
from test_pipeline_flow import PARAMS, TILES, _amplitude, _catalog

from seiscore import io
from seiscore.core.lineage import read_lineage
from seiscore.execution.blockwise.state import TileState
from seiscore.execution.status import survey_status
from seiscore.execution.versions import (
    VERSION_ATTR,
    journal_path,
    publish_staging,
    recover,
    retired_path,
    staging_path,
    survey_state,
)

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (32, 40, 60)


def _survey(d: Path, write_synthetic_segy, shape=SHAPE, seed=0) -> dict:
    noisy, clean, _, _ = write_synthetic_segy(d / "segy", shape, seed=seed)
    return {
        "dir": d,
        "catalog": _catalog(d, noisy, clean),
        "output": d / "data" / "stores" / "small_denoised.zarr",
        "store": d / "data" / "stores" / "small.zarr",
    }


@pytest.fixture()
def env(monkeypatch, tmp_path, dask_cluster):
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")
    monkeypatch.setenv("SEIS_TASK_RETRIES", "0")
    monkeypatch.setenv("SEIS_TASK_RETRY_DELAY_S", "0")
    return {"scheduler": dask_cluster.scheduler_address, "cluster": dask_cluster}


def _run(survey, env, params=PARAMS, **kw):
    from flows.process_survey import run_process_survey

    return run_process_survey("small", scheduler=env["scheduler"], catalog=str(survey["catalog"]), params=params, **kw)


def _digest(store: Path) -> str:
    return hashlib.blake2b(_amplitude(store).tobytes(), digest_size=16).hexdigest()


def _corrupt_last_input_chunk(store: Path) -> tuple[Path, bytes]:
    """Make the input chunk of inlines 24..31 unreadable: tiles 2 and 3 fail on a real read error."""
    chunk_dir = store / "amplitude" / "c"
    victim = next(p for p in sorted(chunk_dir.rglob("*")) if p.is_file() and p.relative_to(chunk_dir).parts[0] == "3")
    good = victim.read_bytes()
    victim.write_bytes(b"not a compressed chunk")
    return victim, good


@pytest.mark.slow
def test_failed_runs_leave_the_published_version_intact_and_a_rerun_resumes(
    tmp_path, write_synthetic_segy, env, prefect_harness
):
    survey = _survey(tmp_path / "s", write_synthetic_segy)
    out = survey["output"]
    first = _run(survey, env)
    assert first["status"] == "completed"
    good = _digest(out)

    # A typo in a parameter name (the issue's `--param tua=0.3`): refused, before or during the tiles.
    with pytest.raises(Exception, match="tua"):
        _run(survey, env, params={**PARAMS, "tua": 0.3})
    assert _digest(out) == good and io.is_complete(out)

    # A crash mid-tiles: tile 0 is written, tiles 2 and 3 cannot read their input.
    params = {**PARAMS, "iterations": 6}
    victim, chunk = _corrupt_last_input_chunk(survey["store"])
    try:
        with pytest.raises(Exception, match="denoise tile 2-0-0"):
            _run(survey, env, params=params)
    finally:
        victim.write_bytes(chunk)
    assert _digest(out) == good  # byte-identical, complete, opened by plain xarray with its lineage
    ds = xr.open_zarr(str(out))
    assert ds.attrs["seiscore_complete"] and read_lineage(out).run_id == first["run_id"]
    assert read_lineage(out).status == "completed"
    staging = staging_path(out)
    assert TileState(staging).done() == {"0-0-0"} and not io.is_complete(staging)
    status = survey_status("small", str(survey["catalog"]))
    assert status["state"] == "interrupted" and status["complete"]
    assert status["published"]["run"]["run_id"] == first["run_id"]
    assert status["staging"]["tiles"] == {"done": 1, "total": 4, "grid": [4, 1, 1]}
    assert status["staging"]["run"]["status"] == "failed" and "denoise tile 2-0-0" in status["staging"]["run"]["error"]

    # The same run again resumes the staging version: blocks 0 and 1 and tile 0 are not redone.
    resumed = _run(survey, env, params=params)
    assert resumed["tiles_computed"] == 2 and resumed["metrics"]["tiles_written"] == 3
    assert _digest(out) != good and read_lineage(out).run_id == resumed["run_id"]
    assert read_lineage(out).status == "completed" and read_lineage(out).metrics["psnr_after"] > 0
    assert not staging.parent.exists()
    assert survey_status("small", str(survey["catalog"]))["state"] == "published"


def _cli_run(survey, env, tmp_path) -> subprocess.Popen:
    params = ["--param", f"tiles={json.dumps(TILES)}", "--param", "iterations=60"]
    code = "import sys; from seiscore.cli import main; sys.exit(main())"
    penv = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "run",
            "small",
            "--catalog",
            str(survey["catalog"]),
            "--scheduler",
            env["scheduler"],
            *params,
        ],
        env=penv,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _cluster_idle(cluster) -> None:
    """Wait until the tasks the killed run left running on the workers have finished."""
    from distributed import Client

    with Client(cluster) as client:
        _wait_for(lambda: not any(client.processing().values()), 120, "the killed run's tasks to end")


@pytest.mark.slow
def test_killed_first_run_publishes_nothing_status_says_interrupted_and_a_rerun_resumes(
    tmp_path, write_synthetic_segy, env, prefect_harness
):
    survey = _survey(tmp_path / "s", write_synthetic_segy, shape=(48, 40, 60), seed=5)
    out, staging = survey["output"], staging_path(survey["output"])
    catalog = str(survey["catalog"])
    proc = _cli_run(survey, env, tmp_path)
    try:
        _wait_for(
            lambda: staging.exists() and len(TileState(staging).ready()) >= 1 or proc.poll() is not None,
            300,
            "the first denoised block",
        )
        assert proc.poll() is None, "the run ended before it could be killed"
        running = survey_status("small", catalog)
        assert running["state"] == "in-progress" and running["owner"]["pid"] == proc.pid
        assert running["owner"]["alive"] is True and running["staging"]["run"]["status"] == "running"
        assert len(TileState(staging).ready()) < 6, "every block was computed before the kill"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    _cluster_idle(env["cluster"])

    assert not out.exists()
    with pytest.raises(Exception):
        xr.open_zarr(str(out))
    killed = survey_status("small", catalog)
    assert killed["state"] == "interrupted" and killed["published"] is None
    assert killed["owner"]["pid"] == proc.pid and killed["owner"]["alive"] is False
    assert killed["staging"]["run"]["status"] == "interrupted"  # its lineage still says "running"
    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from seiscore.cli import main; sys.exit(main())",
            "status",
            "small",
            "--catalog",
            catalog,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert cli.returncode == 0 and cli.stdout.startswith("small: interrupted") and f"pid {proc.pid}" in cli.stdout

    ready, done = TileState(staging).ready(), TileState(staging).done()
    resumed = _run(survey, env, params={"tiles": TILES, "iterations": 60})
    assert resumed["status"] == "completed"
    assert resumed["tiles_computed"] == 6 - len(ready) and resumed["metrics"]["tiles_written"] == 6 - len(done)
    assert io.is_complete(out) and not staging.parent.exists()
    assert survey_status("small", catalog)["state"] == "published"


# --- publish and recovery, on small stores (no Prefect) ----------------------------------------------------------


@pytest.fixture()
def versions(tmp_path, write_synthetic_segy):
    """An input store and a factory of complete output versions filled with a constant."""
    noisy, _, _, _ = write_synthetic_segy(tmp_path / "segy", (8, 6, 20))
    store = io.ingest(noisy, tmp_path / "in.zarr")

    def make(path: Path, value: float) -> Path:
        io.create_output_store(store, path)
        zarr.open_group(str(path), mode="r+")["amplitude"][...] = value
        io.mark_complete(path)
        return path

    return make


def _value(store: Path) -> float:
    return float(xr.open_zarr(str(store))["amplitude"].values.mean())


def test_publish_replaces_the_published_version_atomically(tmp_path, versions):
    out = tmp_path / "data" / "out.zarr"
    staging = staging_path(out)
    io.create_output_store(tmp_path / "in.zarr", staging)  # incomplete: refused
    with pytest.raises(io.IncompleteStoreError):
        publish_staging(staging, out)
    assert not out.exists()
    publish_staging(versions(staging, 1.0), out)
    assert _value(out) == 1.0 and not staging.parent.exists()
    publish_staging(versions(staging, 2.0), out)
    assert _value(out) == 2.0 and not staging.parent.exists()
    assert not retired_path(out).exists() and not journal_path(out).exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.zarr"]


def test_recover_after_a_crash_between_the_two_renames(tmp_path, versions):
    out = versions(tmp_path / "out.zarr", 1.0)
    staging = versions(staging_path(out), 2.0)
    # The fallback swap (no RENAME_EXCHANGE) died after moving the old version aside.
    journal_path(out).write_text(json.dumps({"version": "v2"}))
    os.rename(out, retired_path(out))
    assert survey_state(out)["state"] == "interrupted"
    actions = recover(out)
    assert any("new version put in place" in a for a in actions)
    assert _value(out) == 2.0
    assert not retired_path(out).exists() and not staging.parent.exists() and not journal_path(out).exists()
    assert survey_state(out)["state"] == "published"


def test_recover_puts_the_old_version_back_when_the_new_one_is_not_complete(tmp_path, versions):
    out = versions(tmp_path / "out.zarr", 1.0)
    staging = staging_path(out)
    io.create_output_store(tmp_path / "in.zarr", staging)
    os.rename(out, retired_path(out))
    recover(out)
    assert _value(out) == 1.0 and not retired_path(out).exists()
    assert staging.exists()  # the incomplete staging version stays, for a rerun to resume


def test_recover_after_a_crash_right_after_the_exchange(tmp_path, versions):
    out = versions(tmp_path / "out.zarr", 1.0)
    staging = versions(staging_path(out), 2.0)
    io.set_attrs(staging, {VERSION_ATTR: "v2"})
    journal_path(out).write_text(json.dumps({"version": "v2"}))
    # renameat2(RENAME_EXCHANGE) done, the process died before moving the old version away
    tmp = tmp_path / "swap"
    os.rename(out, tmp)
    os.rename(staging, out)
    os.rename(tmp, staging)
    assert _value(staging) == 1.0
    recover(out)
    assert _value(out) == 2.0 and not staging.parent.exists() and not journal_path(out).exists()


def test_recover_keeps_a_complete_staging_version_when_the_swap_never_happened(tmp_path, versions):
    out = versions(tmp_path / "out.zarr", 1.0)
    staging = versions(staging_path(out), 2.0)
    journal_path(out).write_text(json.dumps({"version": "v2"}))  # crash after the journal, before the swap
    recover(out)
    assert _value(out) == 1.0 and _value(staging) == 2.0 and not journal_path(out).exists()
    publish_staging(staging, out)
    assert _value(out) == 2.0


def test_publish_falls_back_to_two_renames_where_the_filesystem_cannot_exchange(tmp_path, versions, monkeypatch):
    import seiscore.execution.versions as v

    out = versions(tmp_path / "out.zarr", 1.0)
    staging = versions(staging_path(out), 2.0)
    monkeypatch.setattr(v, "_exchange", lambda a, b: False)  # e.g. a filesystem without RENAME_EXCHANGE
    publish_staging(staging, out)
    assert _value(out) == 2.0 and not staging.parent.exists() and not retired_path(out).exists()


def test_an_incomplete_store_left_at_the_published_path_is_moved_to_staging(tmp_path, versions):
    out = tmp_path / "out.zarr"
    io.create_output_store(tmp_path / "in.zarr", out)  # what older versions left after a failed run
    zarr.open_group(str(out), mode="r+").create_group("tile_state")
    assert survey_state(out)["state"] == "interrupted"
    recover(out)
    assert not out.exists() and staging_path(out).exists()
    with pytest.raises(FileNotFoundError):
        xr.open_zarr(str(out))
