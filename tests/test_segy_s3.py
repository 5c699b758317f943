"""SEG-Y on object storage (issue 13): ingest from ``s3://`` by ranged reads, export to ``s3://`` by one upload.

Against a real S3-compatible server on loopback (moto's ``ThreadedMotoServer``), reached through the standard
environment only (``AWS_ENDPOINT_URL`` and the ``AWS_*`` credentials), as a user's S3 would be.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import xarray as xr

from seiscore.cli import main as seis_main
from seiscore.io import IncompleteStoreError, export, ingest, open_survey
from seiscore.io.info import describe
from seiscore.io.segy_write import SegyWriteSpec, write_cube
from seiscore.io.store import set_attrs

BUCKET = "seis-test"
SHAPE = (7, 9, 24)


@pytest.fixture
def s3(s3_server):
    """An fsspec filesystem on the session's moto server (tests/conftest.py ``s3_server``: bucket ``seis-test``,
    reached through the standard AWS environment only)."""
    from seiscore.io.location import fs_for

    return fs_for(f"s3://{BUCKET}")[0]


def _object_gets(caplog, key: str) -> list[str]:
    """HTTP status of every GET of ``key`` the server logged (werkzeug's request log)."""
    pattern = re.compile(rf'"GET /{BUCKET}/{re.escape(key)}(?:\?[^ ]*)? HTTP/[0-9.]+" (\d+)')
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", r.getMessage()) for r in caplog.records]  # werkzeug colours them
    return [m.group(1) for line in lines if (m := pattern.search(line))]


@pytest.mark.parametrize("missing", [False, True], ids=["regular", "irregular"])
def test_ingest_from_s3_by_ranged_reads_equals_a_local_ingest(tmp_path, s3, caplog, missing):
    rng = np.random.default_rng(7)
    cube = rng.standard_normal(SHAPE).astype(np.float32)
    dead = (rng.random(SHAPE[:2]) < 0.2) if missing else None  # irregular: the full header scan, remotely
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(format=1), missing=dead)
    key = f"survey/{'irregular' if missing else 'regular'}.sgy"
    s3.put_file(str(src), f"{BUCKET}/{key}")
    local = ingest(src, tmp_path / "local.zarr", chunks=(2, 4, 8))
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        remote = ingest(f"s3://{BUCKET}/{key}", tmp_path / "remote.zarr", chunks=(2, 4, 8))
    gets = _object_gets(caplog, key)
    assert gets and set(gets) == {"206"}, gets  # only ranged GETs: the object is never fetched whole
    a, b = xr.open_zarr(str(local)), xr.open_zarr(str(remote))
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert b.attrs["source_file"] == f"s3://{BUCKET}/{key}"
    assert {k: v for k, v in a.attrs.items() if k != "source_file"} == {
        k: v for k, v in b.attrs.items() if k != "source_file"
    }


def test_export_to_s3_appears_whole_and_replaces_only_its_own(tmp_path, s3, capsys):
    cube = np.random.default_rng(8).standard_normal(SHAPE).astype(np.float32)
    src = write_cube(tmp_path / "in.sgy", cube)
    store = ingest(src, tmp_path / "s.zarr")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    url = f"s3://{BUCKET}/out/denoised.sgy"
    assert export(store, url, scratch=scratch) == url
    assert s3.cat_file(f"{BUCKET}/out/denoised.sgy") == src.read_bytes()  # byte for byte
    assert list(scratch.iterdir()) == []  # the local temporary is gone
    with pytest.raises(FileExistsError, match="already exists"):
        export(store, url, scratch=scratch)
    set_attrs(store, {"processing": "denoised by a test"})
    export(store, url, overwrite=True, scratch=scratch)  # its own export: replaced
    assert "denoised by a test" in s3.cat_file(f"{BUCKET}/out/denoised.sgy", start=0, end=3200).decode("cp037")
    # an object seiscore did not write is never replaced
    s3.pipe_file(f"{BUCKET}/out/foreign.sgy", b"keep me")
    with pytest.raises(ValueError, match="not something seiscore wrote"):
        export(store, f"s3://{BUCKET}/out/foreign.sgy", overwrite=True, scratch=scratch)
    assert s3.cat_file(f"{BUCKET}/out/foreign.sgy") == b"keep me"
    # a failed export leaves no object (and no local temporary)
    import zarr

    zarr.open_group(str(store), mode="r+").attrs["seiscore_complete"] = False
    with pytest.raises(IncompleteStoreError):
        export(store, f"s3://{BUCKET}/out/never.sgy", scratch=scratch)
    assert not s3.exists(f"{BUCKET}/out/never.sgy") and list(scratch.iterdir()) == []
    # the CLI: seis info and seis ingest take the URL as it is
    assert seis_main(["info", url]) == 0
    assert "SEG-Y file" in capsys.readouterr().out
    assert seis_main(["ingest", url, str(tmp_path / "again.zarr")]) == 0
    np.testing.assert_array_equal(open_survey(tmp_path / "again.zarr")["amplitude"].values, cube)


def test_s3_source_to_s3_store_to_s3_segy(tmp_path, s3):
    """The whole way on object storage (stores at URLs: part sc-store): SEG-Y object -> store -> SEG-Y object."""
    cube = np.random.default_rng(10).standard_normal(SHAPE).astype(np.float32)
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(format=1))
    s3.put_file(str(src), f"{BUCKET}/all/in.sgy")
    store = ingest(f"s3://{BUCKET}/all/in.sgy", f"s3://{BUCKET}/all/in.zarr")
    assert export(store, f"s3://{BUCKET}/all/out.sgy", scratch=tmp_path) == f"s3://{BUCKET}/all/out.sgy"
    assert s3.cat_file(f"{BUCKET}/all/out.sgy") == src.read_bytes()
    info = describe(f"s3://{BUCKET}/all/in.zarr")  # seis info on the store at its URL
    assert info["kind"] == "survey store" and info["complete"] and info["dims"]["sample"] == SHAPE[2]


def test_catalog_survey_with_an_s3_source_ingests_from_the_cli(tmp_path, s3):
    """``source: s3://...`` in the catalog (no credentials there): ``seis ingest --survey`` reads it remotely."""
    import yaml

    cube = np.random.default_rng(11).standard_normal(SHAPE).astype(np.float32)
    src = write_cube(tmp_path / "in.sgy", cube)
    s3.put_file(str(src), f"{BUCKET}/cat/in.sgy")
    catalog = tmp_path / "cat.yaml"
    entry = {
        "source": f"s3://{BUCKET}/cat/in.sgy",
        "store": "data/stores/in.zarr",
        "output": "data/stores/out.zarr",
        "denoiser": {"name": "tlsm", "preset": "synthetic", "axes": {"smooth": "crossline", "tube": "inline"}},
    }
    catalog.write_text(yaml.safe_dump({"surveys": {"remote": entry}}))
    assert seis_main(["ingest", "--survey", "remote", "--catalog", str(catalog)]) == 0
    ds = open_survey(tmp_path / "data" / "stores" / "in.zarr")
    np.testing.assert_array_equal(ds["amplitude"].values, cube)
    assert ds.attrs["source_file"] == f"s3://{BUCKET}/cat/in.sgy"


def test_other_fsspec_protocols_take_the_same_route(tmp_path):
    """``memory://`` (any fsspec filesystem): ingest from it and export to it."""
    import fsspec

    fs = fsspec.filesystem("memory")
    cube = np.random.default_rng(9).standard_normal(SHAPE).astype(np.float32)
    src = write_cube(tmp_path / "in.sgy", cube, SegyWriteSpec(endian="little"))
    fs.pipe_file("/seis/in.sgy", src.read_bytes())
    try:
        store = ingest("memory://seis/in.sgy", tmp_path / "s.zarr")
        np.testing.assert_array_equal(open_survey(store)["amplitude"].values, cube)
        export(store, "memory://seis/out.sgy", scratch=tmp_path)
        assert fs.cat_file("/seis/out.sgy") == src.read_bytes()
    finally:
        fs.rm("/seis", recursive=True)


def test_missing_object_is_one_line(tmp_path, s3):
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/nope.sgy"):
        ingest(f"s3://{BUCKET}/nope.sgy", tmp_path / "s.zarr")
    assert not (tmp_path / "s.zarr").exists()
