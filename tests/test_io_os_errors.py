"""What the OS refuses becomes one line naming the path, and nothing half-written is left behind.

Real refusals only: a directory, a FIFO, a file the user cannot read (a non-root process), a full disk
(a 2 MiB tmpfs when this process may mount one, and everywhere a file-size limit: the kernel's EFBIG).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import seiscore.cli as cli
from seiscore.execution.pipeline import ensure_ingested
from seiscore.io.os_errors import NotAFileError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def seis(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["ingest", "export"])
    return cli.main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_directory_source_is_named_a_directory(tmp_path, seis, capsys):
    src = tmp_path / "survey.sgy"
    src.mkdir()
    assert seis(["ingest", str(src), str(tmp_path / "out.zarr")]) == 2
    assert _one_line(capsys) == f"seis ingest: error: {src} is a directory, not a SEG-Y file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["survey.sgy"]
    with pytest.raises(NotAFileError, match="is a directory, not a SEG-Y file"):
        ensure_ingested(src, tmp_path / "out.zarr")


def test_fifo_source_is_refused_without_blocking(tmp_path, seis, capsys):
    src = tmp_path / "survey.sgy"
    os.mkfifo(src)
    assert seis(["ingest", str(src), str(tmp_path / "out.zarr")]) == 2
    assert _one_line(capsys) == f"seis ingest: error: {src} is not a regular file (a FIFO); give a SEG-Y file"
    # the pipeline hashes its source first: opening a FIFO would wait for a writer forever
    outcome = []

    def call():
        try:
            ensure_ingested(src, tmp_path / "out.zarr")
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "ensure_ingested blocked on a FIFO"
    assert isinstance(outcome[0], NotAFileError)


def test_missing_source_is_not_found(tmp_path, seis, capsys):
    assert seis(["ingest", str(tmp_path / "nope.sgy"), str(tmp_path / "out.zarr")]) == 2
    assert _one_line(capsys) == f"seis ingest: error: SEG-Y file not found: {tmp_path / 'nope.sgy'}"


def _seis_subprocess(
    args: list[str], *, cwd: Path, as_nobody: bool = False, fsize: int | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``seis ARGS`` in a fresh interpreter, optionally as user nobody (via setpriv) or under a file-size limit."""

    def before_exec():
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if as_nobody else []
    code = f"import sys; from seiscore.cli import main; sys.exit(main({args!r}))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(cwd / "numba"), "HOME": str(cwd)}
    return subprocess.run(
        [*prefix, sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=before_exec,
    )


def test_unreadable_source_is_permission_denied(write_synthetic_segy):
    as_nobody = os.geteuid() == 0  # root reads anything: run as nobody
    if as_nobody and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop to a user that lacks the permission")
    # pytest's own temporary folders are private to this user: a world-traversable one instead
    with tempfile.TemporaryDirectory(prefix="seis-perm-") as folder:
        base = Path(folder)
        base.chmod(0o777)
        src, *_ = write_synthetic_segy(base / "d", shape=(6, 8, 20))
        (base / "d").chmod(0o777)
        src.chmod(0)
        proc = _seis_subprocess(["ingest", str(src), str(base / "d" / "out.zarr")], cwd=base, as_nobody=as_nobody)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == f"seis ingest: error: permission denied: {src}"
        assert not (base / "d" / "out.zarr").exists()
        # a readable source, a folder this user cannot write: the folder is named
        src.chmod(0o644)
        (base / "ro").mkdir(mode=0o755)
        if not as_nobody:
            (base / "ro").chmod(0o555)
        proc = _seis_subprocess(["ingest", str(src), str(base / "ro" / "out.zarr")], cwd=base, as_nobody=as_nobody)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == f"seis ingest: error: permission denied: {base / 'ro'}"
        assert list((base / "ro").iterdir()) == []


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".seiscore-tmp"))


def test_disk_full_during_ingest_leaves_no_temporary(tmp_path, write_synthetic_segy):
    src, *_ = write_synthetic_segy(tmp_path / "d", shape=(30, 40, 200))  # ~1.2 MB
    out = tmp_path / "d" / "s.zarr"
    proc = _seis_subprocess(["ingest", str(src), str(out), "--compression", "none"], cwd=tmp_path, fsize=200_000)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert (
        last == f"seis ingest: error: disk full writing {out.with_name('.s.zarr.seiscore-tmp')} (file size limit)"
        f"; free some space and rerun"
    )
    assert _temporaries(out.parent) == [] and not out.exists()


def test_disk_full_during_export_leaves_no_temporary(tmp_path, write_synthetic_segy):
    from seiscore.io import ingest

    src, *_ = write_synthetic_segy(tmp_path / "d", shape=(30, 40, 200))
    store = ingest(src, tmp_path / "d" / "s.zarr")
    dest = tmp_path / "d" / "out.sgy"
    proc = _seis_subprocess(["export", str(store), str(dest)], cwd=tmp_path, fsize=300_000)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"seis export: error: disk full writing {dest.parent}/.out.sgy.seiscore-tmp")
    assert _temporaries(dest.parent) == [] and not dest.exists()


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs (needs the right to mount, e.g. root in a container that allows it)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_full_filesystem_ingest_and_export(tmp_path, small_fs, seis, capsys, write_synthetic_segy):
    """ENOSPC from a real full file system: one line each, and the space is given back."""
    from seiscore.io import ingest

    src, *_ = write_synthetic_segy(tmp_path / "d", shape=(40, 60, 200))  # ~2.5 MB: more than fits
    assert seis(["ingest", str(src), str(small_fs / "s.zarr"), "--compression", "none"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    tmp = small_fs / ".s.zarr.seiscore-tmp"
    assert line == f"seis ingest: error: disk full writing {tmp}; free some space and rerun"
    assert [p.name for p in small_fs.iterdir() if not p.name.endswith(".seiscore-lock")] == []
    assert os.statvfs(small_fs).f_bfree == os.statvfs(small_fs).f_blocks  # the disk is not left full

    store = ingest(src, tmp_path / "d" / "s.zarr")
    # before: pwrite's short count on the full disk was ignored and the export "succeeded" with missing traces
    assert seis(["export", str(store), str(small_fs / "out.sgy")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    tmp = small_fs / ".out.sgy.seiscore-tmp"
    assert line == f"seis export: error: disk full writing {tmp}; free some space and rerun"
    assert [p.name for p in small_fs.iterdir() if not p.name.endswith(".seiscore-lock")] == []
