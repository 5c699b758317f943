"""Side systems never fail a run: the process-survey flow on a survey too small for BRISQUE / PIQE, with the
OpenLineage endpoint down, completes and publishes its output (metrics n/a with reasons, events spooled)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import xarray as xr

from seiscore.core.lineage import read_events, read_lineage

SHAPE = (8, 20, 12)  # time slices 8 x 20: smaller than the 16 x 16 images BRISQUE and PIQE score


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.slow
def test_narrow_survey_with_lineage_down_completes(tmp_path, monkeypatch, write_synthetic_segy, dask_cluster):
    from flows.process_survey import run_process_survey
    from seiscore import io
    from seiscore.cli import main

    noisy, _, cube, _ = write_synthetic_segy(tmp_path / "segy", SHAPE)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "surveys:\n  narrow:\n"
        f"    source: {noisy}\n    store: data/stores/narrow.zarr\n    output: data/stores/narrow_denoised.zarr\n"
        "    denoiser: {name: tlsm, preset: synthetic,"
        " axes: {smooth: crossline, footprint: sample, tube: inline}}\n"
    )
    url = _closed_port_url()
    monkeypatch.setenv("SEIS_OPENLINEAGE_URL", url)
    monkeypatch.setenv("SEIS_LINEAGE_DIR", str(tmp_path / "ol"))
    monkeypatch.setenv("SEIS_CODE_VERSION", "test")

    result = run_process_survey(
        "narrow", scheduler=dask_cluster.scheduler_address, catalog=str(catalog), params={"iterations": 3}
    )

    out = tmp_path / "data" / "stores" / "narrow_denoised.zarr"
    assert result["status"] == "completed" and io.is_complete(out)
    amp = xr.open_zarr(str(out))["amplitude"].values
    assert amp.shape == SHAPE and np.isfinite(amp).all() and not np.allclose(amp, cube)
    metrics = read_lineage(out).metrics
    assert metrics["brisque_before"] is None and metrics["piqe_after"] is None
    assert metrics["not_computed"]["brisque"].startswith("time slices are 8 x 20 (inline x crossline)")
    assert metrics["leakage"] is not None
    assert "n/a (time slices are 8 x 20" in open(result["qc_report"], encoding="utf-8").read()

    spooled = read_events(tmp_path / "ol" / "spool.jsonl")
    assert [e["eventType"] for e in spooled] == ["START", "COMPLETE"]
    assert {e["run"]["runId"] for e in spooled} == {result["run_id"]}

    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert main(["lineage", "flush", "--url", f"http://127.0.0.1:{server.server_port}"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert [e["eventType"] for e in received] == ["START", "COMPLETE"]
    assert not (tmp_path / "ol" / "spool.jsonl").exists()
