"""``seis traces make-data|ingest|info`` on real MiniSEED files, and user mistakes as one line + exit 2.

The command is the plug-in ``traces`` of ``seiscore.commands``; it runs in-process (``seiscore.cli.main``). No
flow is started here (a pre-flight refuses every case before a server or cluster would start): the flow runs
are in tests/test_traces_flow.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Prefect is imported here, not inside a test: its console log handler binds to the sys.stderr of the moment.
from deployments.serve import traces_deployments
from flows.reprocess_archive import survey_names
from seiscore.cli import main
from seiscore.data.catalog import load_catalog


@pytest.fixture
def roots(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def _seis(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["traces", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("seis traces: error: "), err
    for needle in needles:
        assert needle in err, err


def test_make_data_ingest_info(roots, capsys):
    import obspy

    code, out, err = _seis(capsys, "make-data", str(roots / "demo"), "--records", "2", "--seconds", "45")
    assert code == 0, err
    files = sorted((roots / "demo").glob("*.mseed"))
    assert [f.name for f in files] == ["ST00.mseed", "ST01.mseed"]
    st = obspy.read(str(files[0]))
    assert sorted(tr.stats.channel for tr in st) == ["HHE", "HHN", "HHZ"]
    assert all(tr.stats.npts == 4500 and tr.stats.sampling_rate == 100.0 for tr in st)
    picks = (roots / "demo" / "picks.csv").read_text().splitlines()
    assert picks[0] == "id,p_sample,s_sample" and len(picks) == 3
    clean = obspy.read(str(roots / "demo" / "clean" / "ST00.mseed"))
    noisy_z = st.select(component="Z")[0].data
    assert not np.allclose(clean.select(component="Z")[0].data, noisy_z)  # noise was added

    store = roots / "stores" / "demo_windows.zarr"
    code, out, err = _seis(capsys, "ingest", str(roots / "demo" / "*.mseed"), "--store", str(store))
    assert code == 0, err
    assert "2 records in 4 windows" in out  # 4500 samples: windows at 0 and 1500 per record
    code, out, err = _seis(capsys, "ingest", str(roots / "demo" / "*.mseed"), "--store", str(store))
    assert code == 0 and "nothing rewritten" in out, err

    code, out, err = _seis(capsys, "info", str(store))
    assert code == 0, err
    assert "2 records, 4 windows (complete)" in out and "SY.ST00..HH" in out
    assert "3000 samples every 1500 at 100 Hz" in out


@pytest.mark.parametrize(
    "case",
    ["no_match", "stead_without_csv", "folder_not_store", "wrong_kind", "bad_hop", "nan_record"],
)
def test_bad_input_is_one_line(roots, capsys, case):
    import obspy

    catalog = roots.parent / "catalog.yaml"
    if case == "no_match":
        args = ["ingest", str(roots / "none" / "*.mseed")]
        needles = ["no waveform file matches"]
    elif case == "stead_without_csv":
        (roots / "events.hdf5").write_bytes(b"\x89HDF\r\n")
        args = ["ingest", str(roots / "events.hdf5")]
        needles = ["events.csv", "not found"]
    elif case == "folder_not_store":
        (roots / "folder").mkdir()
        (roots / "folder" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
        args = ["ingest", str(roots / "folder")]
        needles = ["not a complete trace store"]
    elif case == "wrong_kind":
        catalog.write_text(
            "surveys:\n  seismic:\n    source: data/s.sgy\n    store: data/s.zarr\n    output: data/o.zarr\n"
            "    method: {name: tlsm}\n"
        )
        args = ["ingest", "seismic", "--catalog", str(catalog)]
        needles = ["'seismic'", "poststack3d", "traces3c"]
    elif case == "bad_hop":
        _seis(capsys, "make-data", str(roots / "demo"), "--records", "1", "--seconds", "30")
        args = ["ingest", str(roots / "demo" / "*.mseed"), "--hop", "4000"]
        needles = ["hop 4000", "3000"]
    else:  # a record holding NaN samples: the record is named
        data = np.zeros(3500, dtype=np.float32)
        data[100] = np.nan
        traces = [
            obspy.Trace(
                data.copy(), header={"network": "XX", "station": "BAD", "channel": f"HH{c}", "sampling_rate": 100}
            )
            for c in "ZNE"
        ]
        obspy.Stream(traces).write(str(roots / "bad.mseed"), format="MSEED")
        args = ["ingest", str(roots / "bad.mseed")]
        needles = ["XX.BAD", "NaN"]
    code, out, err = _seis(capsys, *args)
    _one_line_error(code, err, *needles)
    assert not list(roots.rglob("*_windows.zarr")), "nothing written on a refused input"


def test_nightly_deployment_per_traces_entry(roots, monkeypatch):
    from seiscore.core.settings import get_settings

    catalog = roots.parent / "catalog.yaml"
    catalog.write_text(
        "surveys:\n  station_a:\n    kind: traces3c\n    source: data/a/*.mseed\n    store: data/a.zarr\n"
        "    output: data/a_denoised.zarr\n    method: {name: cdiffsd, model: data/m, params: {mode: direct}}\n"
    )
    monkeypatch.setenv("SEIS_CATALOG", str(catalog))
    deps = {(d.flow_name, d.name): d for d in traces_deployments(get_settings())}
    nightly = deps[("denoise-traces", "nightly-station_a")]
    assert nightly.parameters == {"source": "station_a"} and nightly.schedules[0].schedule.cron == "0 2 * * *"
    assert nightly.entrypoint == "flows.denoise_traces.denoise_traces"
    props = nightly._parameter_openapi_schema.properties
    assert {"source", "model", "mode", "params", "force"} <= set(props) and all(
        p.get("description") for p in props.values()
    )
    assert survey_names(load_catalog(catalog)) == []  # reprocess-archive leaves trace records to denoise-traces
    repo = load_catalog(Path(__file__).resolve().parents[1] / "data_catalog.yaml").get("traces_demo")
    assert repo.kind == "traces3c" and repo.method.name == "cdiffsd" and repo.method.model.endswith("artifacts/model")
    manual = deps[("train-cdiffsd", "manual")]
    assert not manual.schedules and manual.entrypoint == "flows.train_cdiffsd.train_cdiffsd"
    assert {"folder", "params", "seed"} <= set(manual._parameter_openapi_schema.properties)
