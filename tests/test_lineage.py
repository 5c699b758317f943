"""Lineage records and OpenLineage events through the real file and HTTP transports."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import zarr

from seiscore.lineage import DatasetRef, LineageRecord, content_hash, emit_event, read_events, read_lineage, write_lineage
from seiscore.settings import PipelineSettings


def _record(**kw) -> LineageRecord:
    fields = {"denoiser": {"name": "tlsm", "params": {"tau": 0.5}}, **kw}
    return LineageRecord(survey="s", input=DatasetRef(uri="/data/in.sgy", content_hash="blake2b:00"),
                         output=DatasetRef(uri="/data/out.zarr"), **fields)


def test_content_hash_of_files_and_trees(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 10_000_000)
    assert content_hash(f) == "blake2b:" + hashlib.blake2b(f.read_bytes(), digest_size=20).hexdigest()
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "b").write_bytes(b"1")
    h1 = content_hash(tmp_path / "tree")
    (tmp_path / "tree" / "b").write_bytes(b"2")
    assert content_hash(tmp_path / "tree") != h1


def test_record_round_trips_through_store_attrs_and_reuse_key(tmp_path):
    store = tmp_path / "o.zarr"
    zarr.open_group(str(store), mode="w")
    rec = _record()
    assert rec.code["version"] and "numpy" in rec.dependencies
    write_lineage(store, rec)
    back = read_lineage(store)
    assert back == rec and back.reuse_key() == rec.reuse_key()
    other = _record(denoiser={"name": "tlsm", "params": {"tau": 0.4}})
    assert other.reuse_key() != rec.reuse_key()
    assert read_lineage(tmp_path / "missing.zarr") is None


def test_file_transport_events(tmp_path):
    settings = PipelineSettings(lineage_dir=tmp_path / "ol")
    rec = _record()
    emit_event(rec, "START", settings)
    rec.error = "RuntimeError: tile 1-0-0 failed"
    emit_event(rec, "FAIL", settings)
    events = read_events(tmp_path / "ol" / "events.jsonl")
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert {e["run"]["runId"] for e in events} == {rec.run_id}
    assert events[0]["job"]["namespace"] == "seiscore" and events[0]["job"]["name"] == "process_survey.s"
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == rec.error
    assert events[0]["inputs"][0]["name"] == "/data/in.sgy"


def test_http_transport_posts_to_the_configured_endpoint():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = PipelineSettings(openlineage_url=f"http://127.0.0.1:{server.server_port}")
        rec = _record()
        emit_event(rec, "COMPLETE", settings)
    finally:
        server.shutdown()
    assert len(received) == 1
    path, body = received[0]
    assert path == "/api/v1/lineage" and body["eventType"] == "COMPLETE" and body["run"]["runId"] == rec.run_id
    assert body["run"]["facets"]["seiscore"]["record"]["denoiser"]["params"] == {"tau": 0.5}
