"""Lineage records and OpenLineage events through the real file and HTTP transports."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import zarr

from seiscore.core.lineage import (
    DatasetRef,
    LineageRecord,
    content_hash,
    emit_event,
    read_events,
    read_lineage,
    write_lineage,
)
from seiscore.core.settings import PipelineSettings


def _record(**kw) -> LineageRecord:
    fields = {"denoiser": {"name": "tlsm", "params": {"tau": 0.5}}, **kw}
    return LineageRecord(
        survey="s",
        input=DatasetRef(uri="/data/in.sgy", content_hash="blake2b:00"),
        output=DatasetRef(uri="/data/out.zarr"),
        **fields,
    )


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


# --- an unreachable endpoint never fails a run: spool, one warning, flush -----------------------------------


class _Endpoint:
    """A real HTTP server on loopback that records the POSTed events and answers ``status`` (after ``delay_s``)."""

    def __init__(self, status: int = 201, delay_s: float = 0.0):
        received = self.received = []
        self.status = status
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(delay_s)
                if endpoint.status < 300:
                    received.append(body)
                self.send_response(endpoint.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _spooled(lineage_dir) -> list[dict]:
    path = lineage_dir / "spool.jsonl"
    return read_events(path) if path.exists() else []


def test_endpoint_down_spools_with_one_warning_then_flush_sends_in_order(tmp_path, capsys):
    from seiscore.cli import main

    down = PipelineSettings(openlineage_url=_closed_port_url(), lineage_dir=tmp_path / "ol")
    rec = _record()
    t0 = time.perf_counter()
    first = emit_event(rec, "START", down)
    second = emit_event(rec, "COMPLETE", down)
    assert time.perf_counter() - t0 < 5
    assert first and "unavailable (connection failed)" in first and str(tmp_path / "ol" / "spool.jsonl") in first
    assert "\n" not in first and second is None  # one warning line per run
    assert [(e["eventType"], e["run"]["runId"]) for e in _spooled(tmp_path / "ol")] == [
        ("START", rec.run_id),
        ("COMPLETE", rec.run_id),
    ]
    assert (tmp_path / "ol" / "spool.jsonl").read_text().endswith("}\n")

    # still down: the flush sends nothing, keeps both and says so (exit status 1)
    assert main(["lineage", "flush", "--url", down.openlineage_url, "--lineage-dir", str(tmp_path / "ol")]) == 1
    assert "sent 0 spooled event(s)" in capsys.readouterr().out and len(_spooled(tmp_path / "ol")) == 2

    up = _Endpoint()
    try:
        assert main(["lineage", "flush", "--url", up.url, "--lineage-dir", str(tmp_path / "ol")]) == 0
        assert main(["lineage", "flush", "--url", up.url, "--lineage-dir", str(tmp_path / "ol")]) == 0
    finally:
        up.close()
    out = capsys.readouterr().out
    assert "sent 2 spooled event(s)" in out and "sent 0 spooled event(s)" in out  # exactly once
    assert [e["eventType"] for e in up.received] == ["START", "COMPLETE"]
    assert up.received[0]["run"]["facets"]["seiscore"]["record"]["run_id"] == rec.run_id
    assert not (tmp_path / "ol" / "spool.jsonl").exists()


def test_next_run_sends_the_spooled_events_first(tmp_path):
    lineage_dir = tmp_path / "ol"
    old = _record()
    assert emit_event(old, "START", PipelineSettings(openlineage_url=_closed_port_url(), lineage_dir=lineage_dir))
    up = _Endpoint()
    try:
        new = _record()
        assert emit_event(new, "START", PipelineSettings(openlineage_url=up.url, lineage_dir=lineage_dir)) is None
        assert emit_event(new, "COMPLETE", _unused(tmp_path, up.url)) is None
    finally:
        up.close()
    assert [e["run"]["runId"] for e in up.received] == [old.run_id, new.run_id, new.run_id]
    assert _spooled(lineage_dir) == []
    assert not (tmp_path / "unused").exists()  # with nothing spooled, sending touches no file


def _unused(tmp_path, url):
    return PipelineSettings(openlineage_url=url, lineage_dir=tmp_path / "unused")


def test_error_answers_and_slow_endpoints_spool_too(tmp_path):
    from seiscore.core.lineage_spool import SpoolingTransport

    failing = _Endpoint(status=500)
    try:
        rec = _record()
        warning = emit_event(rec, "START", PipelineSettings(openlineage_url=failing.url, lineage_dir=tmp_path / "ol"))
        assert "HTTP 500" in warning and failing.received == []
        # the endpoint recovers: the next event goes out after the spooled one
        failing.status = 201
        assert (
            emit_event(_record(), "START", PipelineSettings(openlineage_url=failing.url, lineage_dir=tmp_path / "ol"))
            is None
        )
        assert [e["run"]["runId"] for e in failing.received][0] == rec.run_id and len(failing.received) == 2
    finally:
        failing.close()

    slow = _Endpoint(delay_s=2.0)
    try:
        from seiscore.core.lineage import make_client

        client = make_client(PipelineSettings(openlineage_url=slow.url, lineage_dir=tmp_path / "slow"))
        client.transport = SpoolingTransport(slow.url, tmp_path / "slow", timeout_s=0.3)
        t0 = time.perf_counter()
        warning = emit_event(_record(), "COMPLETE", PipelineSettings(), client=client)
        assert time.perf_counter() - t0 < 1.5 and "no answer within the timeout" in warning
        assert [e["eventType"] for e in _spooled(tmp_path / "slow")] == ["COMPLETE"]
    finally:
        slow.close()
