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
    # chunk objects are read with one GET each: no size request (HEAD, and a LIST when missing) before it
    import s3fs

    asked = []
    info = s3fs.S3FileSystem._info

    async def counting_info(self, path, *args, **kwargs):
        asked.append(path)
        return await info(self, path, *args, **kwargs)

    s3fs.S3FileSystem._info = counting_info
    try:
        assert zarr.open_group(loc.zarr_store(base + "/z.zarr", read_only=True), mode="r")["a"][:].sum() == 6.0
    finally:
        s3fs.S3FileSystem._info = info
    assert asked == []
    assert loc.listdir(base) == ["a.bin", "z.zarr"]
    loc.remove(base + "/z.zarr")
    assert not loc.exists(base + "/z.zarr") and loc.exists(base + "/a.bin")


def test_other_fsspec_protocols_take_the_same_route(tmp_path, write_synthetic_segy):
    """A store at ``memory://`` (fsspec's in-process filesystem) is ingested and read through the same code."""
    import numpy as np

    from seiscore import io

    noisy_path, _, noisy, _ = write_synthetic_segy(tmp_path, (6, 8, 16))
    url = f"memory://seis/{tmp_path.name}/in.zarr"
    io.ingest(str(noisy_path), url)
    assert io.is_complete(url)
    np.testing.assert_array_equal(io.open_survey(url)["amplitude"].values, noisy.astype(np.float32))


# ---------------------------------------------------------------- stores, safety and locks on S3

SHAPE = (12, 16, 32)
SPEC = {
    "name": "tlsm",
    "preset": "synthetic",
    "axes": {"smooth": "crossline", "footprint": "sample", "tube": "inline"},
    "tiles": {"tile": [4, None, None], "halo": [2, 0, 0]},
    "params": {"iterations": 3},
}


def run_blockwise(input_store, output, *, stop_after: int | None = None) -> str:
    """The library side of a blockwise run (what process-survey does between ingest and QC): lock, recover, plan,
    prepare or resume the staging version, denoise and write the pending tiles, mark complete and publish.
    ``stop_after``: SIGKILL this process after that many tiles are written (a crash, for the resume test)."""
    import signal

    from seiscore import io
    from seiscore.execution.blockwise.jobs import denoise_tile, pending_work, write_tile
    from seiscore.execution.blockwise.state import TileState, survey_lock
    from seiscore.execution.pipeline import make_job, prepare_output, run_key
    from seiscore.execution.versions import publish_staging, recover, staging_path
    from seiscore.methods.registry import parse_spec

    with survey_lock(output, owner="test"):
        recover(output)
        staging = staging_path(output)
        job = make_job(input_store, staging, parse_spec(SPEC))
        prepare_output(job, run_key("object-storage-test", job))
        to_compute, to_write = pending_work(job.plan, TileState(staging))
        for key in to_compute:
            denoise_tile(job, key)
        for n, key in enumerate(sorted(to_write)):
            if stop_after is not None and n == stop_after:
                os.kill(os.getpid(), signal.SIGKILL)
            write_tile(job, key)
        io.mark_complete(staging)
        TileState(staging).clear_blocks()
        publish_staging(staging, output)
    return str(output)


@pytest.fixture(scope="module")
def surveys(tmp_path_factory, s3_server, write_synthetic_segy):
    """A small SEG-Y ingested locally and into S3, and the local run's output (the reference)."""
    from seiscore import io

    d = tmp_path_factory.mktemp("objstore")
    noisy_path, _, noisy, _ = write_synthetic_segy(d / "segy", SHAPE)
    prefix = f"s3://seis-test/{d.name}"
    local_in, s3_in = d / "in.zarr", f"{prefix}/in.zarr"
    io.ingest(str(noisy_path), str(local_in))
    io.ingest(str(noisy_path), s3_in)
    local_out = run_blockwise(local_in, d / "out.zarr")
    return {"dir": d, "prefix": prefix, "s3_in": s3_in, "local_out": local_out, "source": noisy_path}


def _amplitude(store):
    from seiscore import io

    return io.open_survey(store)["amplitude"].values


def test_ingest_to_s3_marks_complete_last(surveys):
    import numpy as np

    from seiscore import io
    from seiscore.io.errors import StoreError

    s3_in = surveys["s3_in"]
    assert io.is_complete(s3_in)
    np.testing.assert_array_equal(_amplitude(s3_in), _amplitude(surveys["dir"] / "in.zarr"))
    fs, path = loc.fs_for(s3_in)
    assert not [k for k in fs.find(loc.parent(path)) if "seiscore-tmp" in k]  # built locally, nothing left
    # the root zarr.json carries the flag: without it the store is not complete, and open_survey refuses it
    root = loc.join(s3_in, "zarr.json")
    doc = loc.read_bytes(root)
    loc.remove(root, recursive=False)
    try:
        assert not io.is_complete(s3_in)
        with pytest.raises(StoreError, match="not a survey store"):
            io.open_survey(s3_in)
    finally:
        loc.write_bytes(root, doc)
    assert io.is_complete(s3_in)


def test_safety_rules_apply_to_object_paths(surveys):
    from seiscore.core.safety import UnsafePathError, check_write_target, data_roots
    from seiscore.core.settings import get_settings

    prefix = surveys["prefix"]
    root = f"{prefix}/root"
    settings = get_settings(data_roots=f"{surveys['dir']}{os.pathsep}{root}")
    roots = data_roots(None, settings)
    assert roots == [surveys["dir"], root]
    assert check_write_target(f"{root}//a/out.zarr/", what="output", roots=roots) == f"{root}/a/out.zarr"
    with pytest.raises(UnsafePathError, match="outside the data roots"):
        check_write_target(f"{prefix}/root-other/out.zarr", what="output", roots=roots)
    with pytest.raises(UnsafePathError, match=r"'\.\.'"):
        check_write_target(f"{root}/../escape.zarr", what="output", roots=roots)
    with pytest.raises(UnsafePathError, match="is the data root itself"):
        check_write_target(root, what="output", roots=roots)
    with pytest.raises(UnsafePathError, match="inside the input store"):
        check_write_target(
            f"{root}/in.zarr/x", what="output", roots=roots, protected=[("input store", f"{root}/in.zarr")]
        )
    foreign = f"{root}/foreign.zarr"
    loc.write_bytes(f"{foreign}/data.bin", b"someone else's")  # no product mark: never replaced
    with pytest.raises(UnsafePathError, match="not something seiscore wrote"):
        check_write_target(foreign, what="output", roots=roots)
    assert check_write_target(surveys["s3_in"], what="store", roots=None) == surveys["s3_in"]  # the product's own


def test_lease_lock_is_exclusive_and_taken_over_when_dead(surveys):
    import json
    from concurrent.futures import ThreadPoolExecutor

    from seiscore.io.locks import StoreLocked, object_lease, read_lease

    url = f"{surveys['prefix']}/lease-test.lock"

    def second() -> None:
        with object_lease(url, wait_s=0, owner="second"):
            pass

    with object_lease(url, owner="first") as held:  # re-entrant within a thread; other threads and processes wait
        assert read_lease(held)["owner"] == "first"
        with ThreadPoolExecutor(1) as pool, pytest.raises(StoreLocked, match="first"):
            pool.submit(second).result()
    assert read_lease(url) is None  # released
    # a lease left by a dead holder (expired) is taken over at once
    loc.write_bytes(url, json.dumps({"owner": "dead", "host": "elsewhere", "pid": 1, "expires": 0}).encode())
    with object_lease(url, wait_s=0, owner="third"):
        assert read_lease(url)["owner"] == "third"


def test_blockwise_run_on_s3_equals_local_and_resumes_after_a_kill(surveys):
    """A run with its stores on S3 killed (SIGKILL) after 2 tiles: nothing is published, its tile records and
    lease are objects; the next run takes the dead holder's lease over, resumes (writes only the rest) and
    publishes the same output as the local run."""
    import subprocess
    import sys

    import numpy as np

    from seiscore import io
    from seiscore.execution.blockwise.state import TileState, lock_owner
    from seiscore.execution.versions import staging_path, survey_state

    out = f"{surveys['prefix']}/out.zarr"
    code = (
        "import sys; sys.path.insert(0, sys.argv[3]); from test_object_storage import run_blockwise; "
        "run_blockwise(sys.argv[1], sys.argv[2], stop_after=2)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, surveys["s3_in"], out, os.path.dirname(__file__)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not loc.exists(out)  # nothing published
    staging = staging_path(out)
    assert len(TileState(staging).done()) == 2 and not io.is_complete(staging)
    assert lock_owner(out)["alive"] is False  # a dead process on this host
    state = survey_state(out)
    assert state["state"] == "interrupted" and state["staging"]["tiles"]["done"] == 2

    written = []
    import seiscore.execution.blockwise.jobs as jobs

    original = jobs.write_tile

    def counting(job, key):
        written.append(key)
        return original(job, key)

    jobs.write_tile = counting
    try:
        run_blockwise(surveys["s3_in"], out)
    finally:
        jobs.write_tile = original
    assert len(written) == 1  # 3 tiles, 2 written before the kill
    assert io.is_complete(out) and not loc.exists(staging) and lock_owner(out) is None
    np.testing.assert_array_equal(_amplitude(out), _amplitude(surveys["local_out"]))
    assert survey_state(out)["state"] == "published"


def test_dask_workers_sharing_only_the_object_store(surveys, tmp_path):
    """Two Dask worker processes, each started in its own working folder with its own temporary folder, share
    nothing with the client but the S3 server: the tiles they denoise and write give the local run's output."""
    import subprocess
    import sys

    import numpy as np
    from distributed import Client, LocalCluster

    from seiscore import io
    from seiscore.execution.blockwise.jobs import denoise_tile, pending_work, write_tile
    from seiscore.execution.blockwise.state import TileState
    from seiscore.execution.pipeline import make_job, prepare_output, run_key
    from seiscore.execution.versions import publish_staging, staging_path
    from seiscore.methods.registry import parse_spec

    out = f"{surveys['prefix']}/dask_out.zarr"
    staging = staging_path(out)
    job = make_job(surveys["s3_in"], staging, parse_spec(SPEC))
    prepare_output(job, run_key("object-storage-dask", job))
    to_compute, to_write = pending_work(job.plan, TileState(staging))
    workers = []
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None, host="127.0.0.1") as cluster:
        try:
            for i in range(2):
                home = tmp_path / f"worker{i}"
                (home / "tmp").mkdir(parents=True)
                env = {**os.environ, "TMPDIR": str(home / "tmp"), "HOME": str(home)}
                workers.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "distributed.cli.dask_worker",
                            cluster.scheduler_address,
                            "--nworkers",
                            "1",
                            "--nthreads",
                            "1",
                            "--local-directory",
                            str(home / "dask"),
                            "--name",
                            f"w{i}",
                            "--no-dashboard",
                        ],
                        cwd=home,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            with Client(cluster) as client:
                client.wait_for_workers(2, timeout=120)

                def on_worker(fn, key):  # pickled by value: the workers know nothing of this test module
                    from distributed import get_worker

                    return {**fn(job, key), "worker": get_worker().name}

                infos = client.gather(client.map(on_worker, [denoise_tile] * len(to_compute), to_compute, pure=False))
                keys = sorted(to_write)
                infos += client.gather(client.map(on_worker, [write_tile] * len(keys), keys, pure=False))
                ran_on = {i["worker"] for i in infos}
        finally:
            for w in workers:
                w.terminate()
                w.wait(timeout=60)
    assert len(ran_on) == 2, ran_on  # both workers took tiles
    io.mark_complete(staging)
    publish_staging(staging, out)
    np.testing.assert_array_equal(_amplitude(out), _amplitude(surveys["local_out"]))
    for i in range(2):  # nothing of the stores landed in a worker's folders
        assert not [p for p in (tmp_path / f"worker{i}").rglob("*.zarr")]


def test_process_survey_with_stores_on_s3(surveys, monkeypatch, tmp_path, dask_cluster):
    """The process-survey flow on the session's Dask cluster with the input store, output store and QC report on S3
    (a bucket prefix as the data root): the published output equals the local run's; a rerun is a no-op."""
    import numpy as np

    from flows.process_survey import run_process_survey
    from seiscore import io
    from seiscore.core.lineage import read_lineage

    root = f"{surveys['prefix']}/flow"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "surveys:\n"
        "  s3small:\n"
        f"    source: {surveys['source']}\n"
        f"    store: {root}/in.zarr\n"
        f"    output: {root}/out.zarr\n"
        "    method:\n"
        "      name: tlsm\n"
        "      preset: synthetic\n"
        "      axes: {smooth: crossline, footprint: sample, tube: inline}\n"
    )
    monkeypatch.setenv("SEIS_DATA_ROOTS", root)
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")
    params = {"tiles": SPEC["tiles"], **SPEC["params"]}
    run = dict(scheduler=dask_cluster.scheduler_address, catalog=str(catalog), params=params)
    result = run_process_survey("s3small", **run)
    assert result["status"] == "completed" and not result["skipped"]
    out = f"{root}/out.zarr"
    assert io.is_complete(out) and io.is_complete(f"{root}/in.zarr")
    np.testing.assert_array_equal(_amplitude(out), _amplitude(surveys["local_out"]))
    rec = read_lineage(out)
    assert rec.status == "completed" and rec.output.uri == out
    assert loc.is_file(f"{root}/out_qc/s3small_qc.html") and loc.is_file(f"{root}/out_qc/.seiscore-owned")
    assert not [n for n in loc.listdir(root) if "seiscore-staging" in n or n.endswith(".lock")]
    assert run_process_survey("s3small", **run)["skipped"]  # up to date: nothing recomputed


def test_a_replacement_cut_short_leaves_an_incomplete_store_the_next_run_replaces(tmp_path, write_synthetic_segy):
    """What a crash in the middle of replacing a store at a URL leaves (root flagged incomplete, some objects
    gone) is refused by readers, still the product's, and replaced by the next ingest."""
    import json

    import numpy as np

    from seiscore import io
    from seiscore.core.safety import is_owned
    from seiscore.io.errors import IncompleteStoreError

    noisy_path, _, noisy, _ = write_synthetic_segy(tmp_path, (6, 8, 16))
    url = f"memory://seis/{tmp_path.name}/cut.zarr"
    io.ingest(str(noisy_path), url)
    root = loc.join(url, "zarr.json")
    doc = json.loads(loc.read_bytes(root))
    doc["attributes"]["seiscore_complete"] = False  # step 1 of a removal, then a crash after some deletions
    loc.write_bytes(root, json.dumps(doc).encode())
    loc.remove(loc.join(url, "amplitude"))
    assert not io.is_complete(url) and is_owned(url)
    with pytest.raises(IncompleteStoreError):
        io.open_survey(url)
    io.ingest(str(noisy_path), url)  # not complete: replaced without --overwrite
    np.testing.assert_array_equal(io.open_survey(url)["amplitude"].values, noisy.astype(np.float32))


def test_stores_on_object_storage_default_to_larger_chunks():
    """Ingest's default chunks: 1 MiB locally, 4 MiB (whole 256-sample stretches) at a URL, clipped to the cube."""
    from seiscore.io.plan import resolve_chunks

    assert resolve_chunks(None, (1000, 1024, 1000)) == (64, 64, 64)
    assert resolve_chunks(None, (1000, 1024, 1000), remote=True) == (64, 64, 256)
    assert resolve_chunks(None, (10, 1024, 100), remote=True) == (10, 64, 100)
    assert resolve_chunks((32, 32, 32), (1000, 1024, 1000), remote=True) == (32, 32, 32)


def test_upload_holds_a_bounded_number_of_files_at_once(s3_server, tmp_path, monkeypatch):
    """A store is uploaded a few files at a time, not all at once: s3fs reads each small file whole into memory
    and fsspec's default puts RLIMIT_NOFILE / 8 files at once, which held a whole 4 GB survey (about 8 GB) in
    the flow process while ingest uploaded it. Here 24 files of 64 KiB under a 256 KiB bound: at most 4 files
    (their bytes) are being put at once, and all arrive."""
    import asyncio

    import s3fs

    from tests.conftest import S3_BUCKET

    size, n = 64 * 2**10, 24
    src = tmp_path / "store"
    (src / "c").mkdir(parents=True)
    for i in range(n):
        (src / "c" / f"{i}").write_bytes(os.urandom(size))
    (src / "zarr.json").write_bytes(b"{}")
    monkeypatch.setattr(loc, "UPLOAD_BYTES_IN_FLIGHT", 4 * size, raising=False)

    held, peak = [0], [0]
    put_file = s3fs.S3FileSystem._put_file

    async def counting_put_file(self, lpath, rpath, *args, **kwargs):
        held[0] += os.path.getsize(lpath)
        peak[0] = max(peak[0], held[0])
        try:
            await asyncio.sleep(0.01)  # let every file put at once start before any ends (as slow uploads do)
            return await put_file(self, lpath, rpath, *args, **kwargs)
        finally:
            held[0] -= os.path.getsize(lpath)

    monkeypatch.setattr(s3fs.S3FileSystem, "_put_file", counting_put_file)
    url = f"s3://{S3_BUCKET}/upload-bound/store.zarr"
    loc.upload(src, url)
    assert 0 < peak[0] <= 4 * size, f"{peak[0]} bytes of files were being uploaded at once"
    fs, path = loc.fs_for(url)
    assert sorted(loc.listdir(loc.join(url, "c")), key=int) == [str(i) for i in range(n)]
    assert fs.cat_file(f"{path}/c/7") == (src / "c" / "7").read_bytes()
    assert fs.cat_file(f"{path}/zarr.json") == b"{}"
