"""Clean stops: Ctrl-C / SIGTERM on a real ``seis run``, and two runs sharing one input store.

The signal tests start ``seis run`` as a subprocess in its own session, without ``PREFECT_API_URL`` (so it
starts its temporary Prefect server, as a user's run does), wait until its tiles are submitted and send the
signal: SIGINT to the whole process group, as a terminal's Ctrl-C does; SIGTERM to the main process only, as
``kill`` does. They assert the exit code, the time to exit, what was printed after the signal, and that no
process the run started (temporary server, Dask workers) is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from seiscore.execution.pipeline import ensure_ingested
from seiscore.io.locks import StoreLocked, lock_path, store_lock

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_HOME=str(tmp_path / "prefect"),
        SEIS_DASK_WORKERS="1",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
    )
    return env


# -- ingest lock ----------------------------------------------------------------------------------------

INGEST_SCRIPT = """
import json, sys, time
from seiscore.execution.pipeline import ensure_ingested
print("ready", flush=True)
sys.stdin.readline()  # go
t0 = time.time()
store, ref, ingested = ensure_ingested(sys.argv[1], sys.argv[2], lock_wait_s=float(sys.argv[3]))
print(json.dumps({"ingested": ingested, "start": t0, "end": time.time()}))
"""


@pytest.mark.slow
def test_two_runs_sharing_an_input_store_both_succeed(tmp_path, write_synthetic_segy):
    """Before: both ingested into the same hidden temporary at once, and one or both failed. Now the second
    waits for the first and reuses its complete store."""
    src, *_ = write_synthetic_segy(tmp_path / "d", shape=(60, 80, 300))
    store = tmp_path / "d" / "shared.zarr"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INGEST_SCRIPT, str(src), str(store), "600"],
            env=_env(tmp_path),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    procs[0].stdin.write("go\n")
    procs[0].stdin.flush()
    deadline = time.monotonic() + 60
    while not store.with_name(".shared.zarr.seiscore-tmp").exists():  # the first is writing: now the second
        assert time.monotonic() < deadline and procs[0].poll() is None
        time.sleep(0.005)
    procs[1].stdin.write("go\n")
    procs[1].stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    first, second = results
    assert first["ingested"] and not second["ingested"]
    assert second["start"] < first["end"] <= second["end"]  # it came while the first was ingesting, and waited
    from seiscore.io import is_complete, open_survey

    assert is_complete(store)
    assert open_survey(store)["amplitude"].shape == (60, 80, 300)
    assert not store.with_name(".shared.zarr.seiscore-tmp").exists()


def test_waiting_disabled_gives_one_line(tmp_path, write_synthetic_segy):
    src, *_ = write_synthetic_segy(tmp_path / "d", shape=(6, 8, 20))
    store = tmp_path / "d" / "s.zarr"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom seiscore.io.locks import store_lock\n"
            "with store_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n",
            str(store),
        ],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLocked) as info:
            ensure_ingested(src, store, lock_wait_s=0)
        assert str(info.value) == (
            f"input store {store} is being written by another run (lock {lock_path(store)}); wait for it to finish"
        )
        assert not store.exists()
    finally:
        holder.kill()
        holder.wait()
    with store_lock(store, wait_s=5):  # released with its process
        pass


def test_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(tmp_path):
    store = tmp_path / "s.zarr"
    with store_lock(store, wait_s=0), store_lock(store, wait_s=0):  # ensure_ingested holds it around ingest
        seen = []

        def other():
            try:
                with store_lock(store, wait_s=0.2):
                    seen.append("acquired")
            except StoreLocked:
                seen.append("locked")

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert seen == ["locked"]


# -- signals on a real run ---------------------------------------------------------------------------------


@pytest.fixture
def long_run(tmp_path, write_synthetic_segy):
    """A tiny survey whose single tile runs TLSM long enough to be interrupted (``seis run`` arguments)."""
    write_synthetic_segy(tmp_path / "data", shape=(12, 16, 40))
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "surveys": {
                    "tiny": {
                        "source": "data/noisy.sgy",
                        "store": "data/tiny.zarr",
                        "output": "data/tiny_out.zarr",
                        "denoiser": {
                            "name": "tlsm",
                            "preset": "synthetic",
                            "axes": {"smooth": "crossline", "footprint": "sample", "tube": "inline"},
                        },
                    }
                }
            }
        )
    )
    return ["run", "tiny", "--catalog", str(catalog), "--param", "iterations=10000"]


def _interrupt(args: list[str], tmp_path: Path, signum: int, *, group: bool) -> dict:
    argv = ["-v", *args]  # -v: the flow's log says when the tiles start
    code = f"import sys; from seiscore.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "to denoise" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(300), "".join(lines)[-3000:]
        time.sleep(2)  # the tile is running on a worker
        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert any("uvicorn" in " ".join(p.cmdline()) for p in descendants), "no temporary Prefect server?"
        n_before = len(lines)
        t0 = time.monotonic()
        os.killpg(proc.pid, signum) if group else os.kill(proc.pid, signum)
        proc.wait(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(10)
    time.sleep(0.5)
    left = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return {"code": proc.returncode, "elapsed": elapsed, "after": lines[n_before:], "left": left}


@pytest.mark.slow
def test_ctrl_c_stops_a_run_quickly_with_one_line(tmp_path, long_run):
    """Before: 136-222 s, ~190-400 lines with tracebacks, exit 1."""
    out = _interrupt(long_run, tmp_path, signal.SIGINT, group=True)
    assert out["code"] == 130, "".join(out["after"])
    assert out["elapsed"] < 10
    assert len(out["after"]) <= 3 and not any("Traceback" in line for line in out["after"]), out["after"]
    assert out["after"][-1].startswith("seis run: interrupted;")
    assert out["left"] == []


@pytest.mark.slow
def test_sigterm_stops_a_run_and_its_temporary_server(tmp_path, long_run):
    """Before: the main process died and the temporary Prefect server kept running."""
    out = _interrupt(long_run, tmp_path, signal.SIGTERM, group=False)
    assert out["code"] == 143, "".join(out["after"])
    assert out["elapsed"] < 10
    assert len(out["after"]) <= 3 and not any("Traceback" in line for line in out["after"]), out["after"]
    assert out["after"][-1].startswith("seis run: stopped by SIGTERM;")
    assert out["left"] == []
