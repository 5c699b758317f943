"""Stores on object storage (issue 13, Deliver 3): locations, markers, locks, resume and Dask, on a real S3 server.

The server is moto's S3 server on loopback (the session fixture ``s3_server``): the product reaches it only
through the standard AWS environment (``AWS_ENDPOINT_URL`` and test credentials).
"""

from __future__ import annotations

import os

import pytest

from seiscore.io import location as loc


def test_split_roots_keeps_urls_whole(monkeypatch):
    text = os.pathsep.join(["/data", "s3://bucket/seis", "/scratch"])
    assert loc.split_roots(text) == ["/data", "s3://bucket/seis", "/scratch"]
    assert loc.split_roots("s3://b/p") == ["s3://b/p"]
    assert loc.split_roots("") == []


def test_url_arithmetic_never_goes_through_path():
    url = "s3://bucket//surveys/out.zarr/"
    assert loc.is_remote(url) and not loc.is_remote("/x/y") and not loc.is_remote("file:///x/y")
    assert loc.normalize(url) == "s3://bucket/surveys/out.zarr"
    assert loc.join(url, "tile_state", "done") == "s3://bucket/surveys/out.zarr/tile_state/done"
    assert loc.parent(url) == "s3://bucket/surveys"
    assert loc.parent("s3://bucket/x") == "s3://bucket"
    assert loc.name(url) == "out.zarr"
    assert loc.with_name(url, ".out.zarr.seiscore-staging") == "s3://bucket/surveys/.out.zarr.seiscore-staging"
    assert loc.is_relative_to("s3://bucket/surveys/out.zarr", "s3://bucket/surveys")
    assert not loc.is_relative_to("s3://bucket/surveys-old/x", "s3://bucket/surveys")
    assert not loc.is_relative_to("/bucket/surveys/x", "s3://bucket/surveys")
    with pytest.raises(loc.LocationError, match=r"'\.\.'"):
        loc.normalize("s3://bucket/surveys/../other")


def test_fs_for_uses_the_standard_environment(s3_server, tmp_path):
    import zarr

    base = f"s3://seis-test/{tmp_path.name}"
    fs, path = loc.fs_for(base + "/a.bin")
    assert path == f"seis-test/{tmp_path.name}/a.bin"
    loc.write_bytes(base + "/a.bin", b"abc")
    assert loc.read_bytes(base + "/a.bin") == b"abc" and loc.is_file(base + "/a.bin")
    with pytest.raises(FileExistsError):
        loc.write_bytes(base + "/a.bin", b"xyz", exclusive=True)  # conditional PUT: If-None-Match *
    g = zarr.create_group(loc.zarr_store(base + "/z.zarr"), zarr_format=3)
    g.create_array("a", shape=(4,), chunks=(2,), dtype="f4")[:] = 1.5
    assert zarr.open_group(loc.zarr_store(base + "/z.zarr", read_only=True), mode="r")["a"][:].tolist() == [1.5] * 4
    assert loc.listdir(base) == ["a.bin", "z.zarr"]
    loc.remove(base + "/z.zarr")
    assert not loc.exists(base + "/z.zarr") and loc.exists(base + "/a.bin")
