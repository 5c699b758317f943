"""Shared fixtures: one Prefect test harness per session, a small local Dask cluster, small surveys.

- ``prefect_harness``: a temporary Prefect server + SQLite database for the whole session
  (starting one takes several seconds, so every test shares it). Its API URL is exported as
  ``PREFECT_API_URL`` so Dask worker processes started afterwards report to it too.
- ``dask_cluster``: two worker processes (1 thread each) on 127.0.0.1, started after the harness and the S3 server
  (its workers inherit the AWS environment that points ``s3://`` at it).
- ``s3_server``: a real S3-compatible server on loopback for the session (moto's ``ThreadedMotoServer``), with the
  standard AWS environment set (test credentials, region, ``AWS_ENDPOINT_URL``), so every ``s3://`` URL of the
  product, of subprocesses and of Dask workers started afterwards reaches it with no seiscore setting; the bucket
  ``seis-test`` exists. Yields the endpoint URL; tests make their own prefix (e.g. from ``tmp_path.name``).
- ``write_synthetic_segy``: writes a small synthetic survey (and its clean reference) with segyio.

Entry points (``seis run`` / ``demo`` / ``serve`` reach the library only through ``seiscore.commands``) come from
the installed metadata. When it is older than ``pyproject.toml`` (an editable install made before the entry
points changed; ``make setup`` reinstalls), the session regenerates it with setuptools' ``egg_info`` in the
repository root, where ``pip install -e`` writes it too, and puts the root first on ``sys.path`` and
``PYTHONPATH`` so that subprocesses see the same commands; the report header says so.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_METADATA_NOTE: list[str] = []


def _stale_entry_points() -> list[str]:
    """Entry points declared in pyproject.toml that the installed metadata lacks or maps elsewhere."""
    from importlib.metadata import entry_points

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("entry-points", {})
    stale = []
    for group, eps in declared.items():
        installed = {ep.name: ep.value for ep in entry_points(group=group)}
        stale += [f"{group}:{name}" for name, value in eps.items() if installed.get(name) != value]
    return stale


def pytest_configure(config):
    stale = _stale_entry_points()
    if not stale:
        return
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "egg_info"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    importlib.invalidate_caches()
    if still := _stale_entry_points():
        pytest.exit(f"installed seiscore metadata lacks the entry points {still}: run `make setup`", returncode=4)
    _METADATA_NOTE.append(f"seiscore metadata regenerated in {ROOT} (installed one lacked {', '.join(stale)})")


def pytest_report_header(config):
    return _METADATA_NOTE


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    old = os.environ.get("PREFECT_API_URL")
    with prefect_test_harness(server_startup_timeout=120):
        os.environ["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        try:
            yield os.environ["PREFECT_API_URL"]
        finally:
            if old is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = old


S3_BUCKET = "seis-test"
_S3_ENV = {
    "AWS_ACCESS_KEY_ID": "seiscore-test",
    "AWS_SECRET_ACCESS_KEY": "seiscore-test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server():
    """Endpoint URL of a moto S3 server on 127.0.0.1 (standard AWS environment set; bucket ``seis-test``)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {**_S3_ENV, "AWS_ENDPOINT_URL": endpoint}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from seiscore.io.location import fs_for

        fs, _ = fs_for(f"s3://{S3_BUCKET}")
        fs.mkdir(S3_BUCKET)
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture(scope="session")
def dask_cluster(prefect_harness, s3_server):
    from distributed import LocalCluster

    aws = {k: os.environ[k] for k in (*_S3_ENV, "AWS_ENDPOINT_URL") if k in os.environ}
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        env={"PREFECT_API_URL": prefect_harness, **aws},
    ) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def write_synthetic_segy():
    """``write(dir, shape=(il, xl, t), seed=0) -> (noisy.sgy, clean.sgy, noisy, clean)`` (segyio, IEEE float)."""
    from seiscore.data.synth import make_survey
    from seiscore.io.segy_write import write_cube

    def write(directory: Path, shape=(24, 40, 60), seed: int = 0):
        noisy, clean = make_survey(n_inline=shape[0], n_crossline=shape[1], n_time=shape[2], seed=seed)
        directory.mkdir(parents=True, exist_ok=True)
        return write_cube(directory / "noisy.sgy", noisy), write_cube(directory / "clean.sgy", clean), noisy, clean

    return write


@pytest.fixture(autouse=True)
def _log_levels_per_test():
    """``seis`` called in-process sets its log-level variables in ``os.environ`` (quiet by default); restore them
    after each test so later subprocesses (and ``-v``) see the environment the test started with."""
    from seiscore.cli.output import QUIET_ENV

    saved = {k: os.environ.get(k) for k in QUIET_ENV}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
