"""Paths are safe by construction: bad catalog entries are refused before anything starts, and nothing is touched.

Each case of issue 11 ("a catalog entry can delete data") goes through the real ``seis run S --catalog C``
on a segyio-written survey beside a real ingested store and folders of user files; the refusal is one
line, exit code 2, and the whole tree (paths, sizes, mtimes, hashes) is the same afterwards. The library
functions refuse to replace what the product did not write, whatever ``overwrite`` says.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

import flows.process_survey
import flows.reprocess_archive
import seiscore.cli as cli
from seiscore.core.safety import (
    UnsafePathError,
    check_write_target,
    check_write_targets,
    data_roots,
    is_owned,
    mark_owned,
    may_replace,
    sidecar,
)

# Prefect is imported here, not inside a test: its log handlers bind to the sys.stderr of the moment, and a
# test's capsys stream is closed after that test.
SHAPE = (16, 16, 24)  # time slices of at least 16 x 16 (BRISQUE)
DENOISER = {
    "name": "tlsm",
    "preset": "synthetic",
    "params": {"iterations": 2},
    "axes": {"smooth": "crossline", "footprint": "sample", "tube": "inline"},
}


@pytest.fixture(scope="module")
def tiny_segy(tmp_path_factory):
    from seiscore.io.segy_write import write_cube

    cube = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    return write_cube(tmp_path_factory.mktemp("src") / "tiny.sgy", cube)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory, tiny_segy):
    from seiscore.io import ingest

    return ingest(tiny_segy, tmp_path_factory.mktemp("store") / "tiny.zarr")


@pytest.fixture
def site(tmp_path, tiny_segy, tiny_store, monkeypatch):
    """A catalog folder: data/tiny.sgy (source), data/stores/tiny.zarr (its store), user folders and files."""
    monkeypatch.delenv("SEIS_DATA_ROOTS", raising=False)
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "lineage-events"))
    site = tmp_path / "site"
    data = site / "data"
    (data / "stores").mkdir(parents=True)
    shutil.copy2(tiny_segy, data / "tiny.sgy")
    shutil.copytree(tiny_store, data / "stores" / "tiny.zarr")
    for victim in (data / "victim", site / "victim"):
        (victim / "sub").mkdir(parents=True)
        (victim / "notes.txt").write_text("my notes\n")
        (victim / "sub" / "results.bin").write_bytes(os.urandom(1000))
    (site / "README.txt").write_text("a user file beside the catalog\n")
    (data / "results_qc").mkdir()
    (data / "results_qc" / "report.html").write_text("<p>my own report</p>")
    return site


def _catalog(site: Path, **fields) -> Path:
    entry = {
        "source": "data/tiny.sgy",
        "store": "data/stores/tiny.zarr",
        "output": "data/stores/tiny_denoised.zarr",
        "denoiser": DENOISER,
        **fields,
    }
    path = site / "cat.yaml"
    path.write_text(yaml.safe_dump({"surveys": {"tiny": entry}}))
    return path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (and ``root``): kind, size, mtime and content hash."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.lstat()
        digest = hashlib.blake2b(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else None
        out[str(path.relative_to(root))] = (path.is_dir(), path.is_symlink(), st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def no_flow(monkeypatch):
    """A tripwire: the refusal must come before the flow (Prefect server, Dask cluster) starts."""

    def started(*args, **kwargs):
        raise AssertionError("the flow started for a refused catalog entry")

    monkeypatch.setattr(flows.process_survey, "run_process_survey", started)
    monkeypatch.setattr(flows.reprocess_archive, "reprocess_archive", started)


def _refused(capsys, argv: list[str], *fragments: str) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"seis {argv[0]}: error: survey 'tiny': "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


CASES = {
    # id: (catalog fields, extra arguments, fragments of the refusal)
    "output-is-the-source": ({"output": "data/tiny.sgy"}, [], ["output store", "data/tiny.sgy is the source SEG-Y"]),
    "store-is-the-source": ({"store": "data/tiny.sgy"}, [], ["input store", "data/tiny.sgy is the source SEG-Y"]),
    "export-onto-the-source": (
        {"output": "data/tiny"},
        ["--export-segy"],
        ["SEG-Y export", "data/tiny.sgy is the source SEG-Y"],
    ),
    "output-segy-is-the-source": (
        {"output_segy": "data/tiny.sgy"},
        ["--export-segy"],
        ["SEG-Y export (catalog field 'output_segy')", "is the source SEG-Y"],
    ),
    "output-is-a-user-folder": ({"output": "data/victim"}, [], ["output store", "data/victim exists and is not"]),
    "store-is-a-user-folder": ({"store": "data/victim"}, [], ["input store", "data/victim exists and is not"]),
    "output-is-a-user-folder-outside-data": ({"output": "victim"}, [], ["site/victim is outside the data roots"]),
    "output-is-the-input-store": ({"output": "data/stores/tiny.zarr"}, [], ["tiny.zarr is the input store"]),
    "output-is-the-data-folder": ({"output": "data"}, [], ["site/data contains the source SEG-Y"]),
    "output-is-the-catalog-folder": ({"output": "."}, [], ["output store", "site contains the catalog file"]),
    "dotdot-escapes-the-root": (
        {"output": "data/../../elsewhere.zarr"},
        [],
        ["elsewhere.zarr is outside the data roots"],
    ),
    "dotdot-stays-inside": ({"output": "data/stores/../tiny.sgy"}, [], ["data/tiny.sgy is the source SEG-Y"]),
    "output-inside-the-input-store": ({"output": "data/stores/tiny.zarr/out.zarr"}, [], ["is inside the input store"]),
    "qc-folder-is-a-user-folder": ({"output": "data/results.zarr"}, [], ["QC report folder", "data/results_qc exists"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_catalog_entry_is_refused_and_nothing_is_touched(case, site, capsys, no_flow):
    fields, extra, fragments = CASES[case]
    catalog = _catalog(site, **fields)
    before = snapshot(site.parent)
    _refused(capsys, ["run", "tiny", "--catalog", str(catalog), *extra], *fragments)
    assert snapshot(site.parent) == before


def test_absolute_output_outside_the_roots(site, tmp_path_factory, capsys, no_flow):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    catalog = _catalog(site, output=str(elsewhere / "out.zarr"))
    before, before_elsewhere = snapshot(site.parent), snapshot(elsewhere)
    _refused(capsys, ["run", "tiny", "--catalog", str(catalog)], f"{elsewhere}/out.zarr is outside the data roots")
    assert snapshot(site.parent) == before and snapshot(elsewhere) == before_elsewhere


def test_output_is_a_git_repository(site, capsys, no_flow):
    subprocess.run(["git", "init", "-q", str(site)], check=True)
    catalog = _catalog(site, output=".")
    before = snapshot(site.parent)
    _refused(capsys, ["run", "tiny", "--catalog", str(catalog)], "site is a git repository")
    assert snapshot(site.parent) == before


def test_symlink_out_of_the_root(site, capsys, no_flow):
    (site / "data" / "link").symlink_to(site / "victim")
    catalog = _catalog(site, output="data/link/out.zarr")
    before = snapshot(site.parent)
    _refused(capsys, ["run", "tiny", "--catalog", str(catalog)], "site/victim/out.zarr is outside the data roots")
    assert snapshot(site.parent) == before


def test_reprocess_refuses_before_starting(site, capsys, no_flow):
    catalog = _catalog(site, output="data")
    before = snapshot(site.parent)
    _refused(capsys, ["reprocess", "--catalog", str(catalog)], "contains the source SEG-Y")
    assert snapshot(site.parent) == before


def test_more_roots_from_the_settings(site, tmp_path_factory, monkeypatch):
    from seiscore.core.settings import get_settings
    from seiscore.data.catalog import load_catalog

    extra = tmp_path_factory.mktemp("scratch")
    catalog = _catalog(site, output=str(extra / "out.zarr"))
    monkeypatch.setenv("SEIS_DATA_ROOTS", f"{extra}{os.pathsep}{site / 'nope'}")
    settings = get_settings()
    assert data_roots(catalog, settings) == [site / "data", extra, site / "nope"]
    targets = check_write_targets(load_catalog(catalog).get("tiny"), settings, catalog)
    assert targets["output"] == extra / "out.zarr" and targets["output_segy"] == extra / "out.sgy"
    assert targets["qc"] == extra / "out_qc" and targets["output_tmp"] == extra / ".out.zarr.seiscore-tmp"


# ---------------------------------------------------------------- the rules, one by one


def test_symlink_escaping_a_root_is_resolved(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "escape").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside/out.zarr is outside the data roots"):
        check_write_target(root / "escape" / "out.zarr", what="output store", roots=[root])
    (root / "inner").mkdir()
    (root / "alias").symlink_to(root / "inner")
    assert check_write_target(root / "alias" / "x.zarr", what="output store", roots=[root]) == root / "inner" / "x.zarr"


def test_parent_of_inside_and_equal_to_a_protected_path(tmp_path):
    root = tmp_path / "data"
    src = root / "a" / "src.sgy"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"x")
    prot = [("source SEG-Y", src)]
    for path, rule in (
        (root / "a", "contains the source SEG-Y"),
        (src, "is the source SEG-Y"),
        (src / "x.zarr", "is inside the source SEG-Y"),
        (root, "contains the source SEG-Y"),
    ):
        with pytest.raises(UnsafePathError, match=rule):
            check_write_target(path, what="output store", roots=[root], protected=prot)
    with pytest.raises(UnsafePathError, match="is the data root itself"):
        check_write_target(root, what="output store", roots=[root])
    with pytest.raises(UnsafePathError, match="inside a .git folder"):
        check_write_target(root / ".git" / "x", what="output store", roots=[root])
    # a folder only appended to (replace=False) may hold a protected path
    assert (
        check_write_target(root / "a", what="lineage folder", roots=None, protected=prot, replace=False) == root / "a"
    )
    assert src.read_bytes() == b"x"


def test_inside_a_repository_is_fine_but_not_its_root(tmp_path):
    repo = tmp_path / "checkout"
    (repo / ".git").mkdir(parents=True)
    prot = [("git repository", repo)]
    assert check_write_target(repo / "data" / "x.zarr", what="output store", roots=[repo / "data"], protected=prot)
    for path in (repo, tmp_path):
        with pytest.raises(UnsafePathError, match="git repository"):
            check_write_target(path, what="output store", roots=None, protected=prot)


def test_marks_of_what_the_product_wrote(tmp_path, tiny_segy, tiny_store):
    from seiscore.io import export

    assert is_owned(tiny_store) and not is_owned(tiny_segy)
    user = tmp_path / "user"
    user.mkdir()
    assert may_replace(user) and not is_owned(user)  # empty: nothing to lose
    (user / "a.txt").write_text("a")
    assert not may_replace(user)
    mark_owned(user)
    assert is_owned(user) and may_replace(user)

    dest = export(tiny_store, tmp_path / "out.sgy")
    assert is_owned(dest) and sidecar(dest).is_file()
    export(tiny_store, dest, overwrite=True)  # its own file: replaced
    assert is_owned(dest)
    st = dest.stat()
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))  # touched by someone else: no longer the product's
    assert not is_owned(dest)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert is_owned(dest)
    with open(dest, "r+b") as fh:  # edited in place
        fh.seek(100)
        fh.write(b"EDITED")
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not is_owned(dest)
    copy = tmp_path / "copy.sgy"
    shutil.copy(dest, copy)
    assert not is_owned(copy)


def test_replacing_an_owned_store_is_allowed(tmp_path, tiny_segy):
    from seiscore.io import ingest

    store = ingest(tiny_segy, tmp_path / "data" / "s.zarr")
    assert check_write_target(store, what="input store", roots=[tmp_path / "data"]) == store
    assert ingest(tiny_segy, store, overwrite=True) == store


# ---------------------------------------------------------------- the library refuses, whatever overwrite says


def test_library_writes_never_replace_foreign_paths(site, tiny_segy, capsys):
    from seiscore.io import create_output_store, export, ingest
    from seiscore.io.store import publish

    data, store = site / "data", site / "data" / "stores" / "tiny.zarr"
    foreign = site / "README.txt"
    before = snapshot(site.parent)
    for call, rule in (
        (lambda: ingest(tiny_segy, data / "victim", overwrite=True), "exists and is not"),
        (lambda: ingest(data / "tiny.sgy", data / "tiny.sgy", overwrite=True), "is the source SEG-Y"),
        (lambda: create_output_store(store, data / "victim", overwrite=True), "exists and is not"),
        (lambda: create_output_store(store, store, overwrite=True), "is the input store"),
        (lambda: create_output_store(store, store / "out.zarr"), "inside the input store"),
        (lambda: export(store, foreign, overwrite=True), "exists and is not"),
        (lambda: export(store, data / "victim", overwrite=True), "exists and is not"),
        (lambda: publish(store, data / "victim"), "exists and is not"),
    ):
        with pytest.raises(UnsafePathError, match=rule):
            call()
    assert snapshot(site.parent) == before

    # from the command line: one line, exit code 2
    assert cli.main(["export", str(store), str(foreign), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seis export: error: SEG-Y file") and "exists and is not" in err and err.count("\n") == 1
    assert cli.main(["ingest", str(data / "tiny.sgy"), str(data / "victim"), "--overwrite"]) == 2
    assert "exists and is not" in capsys.readouterr().err
    assert cli.main(["qc", str(store), "--output", str(foreign), "--force"]) == 2
    assert "seis qc: error: QC report" in capsys.readouterr().err
    assert cli.main(["qc", str(store), "--output", str(store), "--force"]) == 2
    assert "is the store" in capsys.readouterr().err
    assert snapshot(site.parent) == before


def test_make_data_never_overwrites_a_file_it_did_not_write(site, capsys):
    before = snapshot(site.parent)
    assert (
        cli.main(
            [
                "make-data",
                "synthetic",
                str(site / "data" / "tiny.sgy"),
                "--reference",
                str(site / "README.txt"),
                "--overwrite",
            ]
        )
        == 2
    )
    assert "seis make-data: error: demo SEG-Y file" in capsys.readouterr().err
    assert snapshot(site.parent) == before


def test_direct_commands_apply_the_configured_roots(site, tiny_segy, monkeypatch, capsys):
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(site / "data"))
    before = snapshot(site.parent)
    assert cli.main(["ingest", str(tiny_segy), str(site / "out.zarr")]) == 2
    assert "outside the data roots" in capsys.readouterr().err
    assert snapshot(site.parent) == before
    assert cli.main(["ingest", str(tiny_segy), str(site / "data" / "new.zarr")]) == 0
    assert is_owned(site / "data" / "new.zarr")


# ---------------------------------------------------------------- a legitimate run still works


@pytest.mark.slow
def test_legitimate_run_writes_where_the_catalog_says_and_replaces_its_own(site, capsys, dask_cluster, monkeypatch):
    from seiscore import io

    monkeypatch.setenv("SEIS_CODE_VERSION", "test")
    monkeypatch.setenv("SEIS_TASK_RETRY_DELAY_S", "0")
    catalog = _catalog(site, output_segy="data/exports/tiny_denoised.sgy", chunks=[16, 16, 24])
    argv = ["run", "tiny", "--catalog", str(catalog), "--scheduler", dask_cluster.scheduler_address, "--export-segy"]
    source = snapshot(site / "data")["tiny.sgy"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    out, segy = site / "data" / "stores" / "tiny_denoised.zarr", site / "data" / "exports" / "tiny_denoised.sgy"
    assert (
        io.is_complete(out)
        and is_owned(out)
        and is_owned(segy)
        and is_owned(site / "data" / "stores" / "tiny_denoised_qc")
    )
    assert not out.with_suffix(".sgy").exists()  # the catalog's output_segy is honoured
    assert f"SEG-Y        : {segy}" in capsys.readouterr().out
    first = segy.stat().st_mtime_ns
    assert cli.main([*argv, "--force"]) == 0  # its own store, export and QC folder are replaced
    assert io.is_complete(out) and is_owned(segy) and segy.stat().st_mtime_ns != first
    assert snapshot(site / "data")["tiny.sgy"] == source
