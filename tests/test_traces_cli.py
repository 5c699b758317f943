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
from seiscore.execution.preflight import preflight


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
    files = sorted(f.name for f in (roots / "demo").glob("*.sac"))
    assert files == [f"ST0{i}.{c}.sac" for i in range(2) for c in "ENZ"]
    z = obspy.read(str(roots / "demo" / "ST00.Z.sac"))[0]
    assert (z.stats.npts, z.stats.sampling_rate, z.stats.channel) == (4500, 100.0, "HHZ")
    picks = (roots / "demo" / "picks.csv").read_text().splitlines()
    assert picks[0] == "id,p_sample,s_sample" and len(picks) == 3
    p0 = float(picks[1].split(",")[1])
    assert z.stats.sac.a == pytest.approx(p0 / 100.0, abs=1e-3)  # the P pick travels in the SAC header
    clean = obspy.read(str(roots / "demo" / "clean" / "ST00.Z.sac"))[0]
    assert not np.allclose(clean.data, z.data)  # noise was added

    store = roots / "stores" / "demo_windows.zarr"
    code, out, err = _seis(capsys, "ingest", str(roots / "demo" / "*.sac"), "--store", str(store))
    assert code == 0, err
    assert "demo: 2 records in 4 windows" in out  # 4500 samples: windows at 0 and 1500 per record
    code, out, err = _seis(capsys, "ingest", str(roots / "demo" / "*.sac"), "--store", str(store))
    assert code == 0 and "nothing rewritten" in out, err

    code, out, err = _seis(capsys, "info", str(store))
    assert code == 0, err
    assert "2 records, 4 windows (complete)" in out and "SY.ST00..HH" in out and f"P {p0:.0f}" in out
    assert "3000 samples every 1500 at 100 Hz" in out

    code, out, err = _seis(
        capsys, "make-data", str(roots / "ms"), "--records", "1", "--seconds", "30", "--format", "mseed"
    )
    assert code == 0 and [f.name for f in (roots / "ms").glob("*.mseed")] == ["ST00.mseed"], err


@pytest.mark.parametrize(
    "case",
    [
        "no_match",
        "stead_without_csv",
        "folder_not_store",
        "wrong_kind",
        "bad_hop",
        "nan_record",
        "denoise_without_model",
        "denoise_missing_model",
        "denoise_foreign_model",
        "train_unknown_param",
    ],
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
        args = ["ingest", str(roots / "demo" / "*.sac"), "--hop", "4000"]
        needles = ["hop 4000", "3000"]
    elif case.startswith("denoise"):
        _seis(capsys, "make-data", str(roots / "demo"), "--records", "1", "--seconds", "30")
        args = ["denoise", str(roots / "demo" / "*.sac")]
        if case == "denoise_without_model":
            needles = ["needs a model artifact folder"]
        elif case == "denoise_missing_model":
            args += ["--model", str(roots / "no_model")]
            needles = ["no_model", "does not exist"]
        else:  # an artifact folder of another format (a SIREN-like card)
            (roots / "other").mkdir()
            (roots / "other" / "model_card.json").write_text('{"format": "siren-decoder", "format_version": 1}')
            args += ["--model", str(roots / "other")]
            needles = ["other"]
    elif case == "train_unknown_param":
        args = ["train", "--out", str(roots / "run"), "--param", "epochz=3"]
        needles = ["epochz"]
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
    with pytest.raises(ValueError, match="kind traces3c.*seis traces denoise station_a"):
        preflight("station_a", catalog=str(catalog))  # seis run / process-survey refuse them in one line
    repo = load_catalog(Path(__file__).resolve().parents[1] / "data_catalog.yaml").get("traces_demo")
    assert repo.kind == "traces3c" and repo.method.name == "cdiffsd" and repo.method.model.endswith("artifacts/model")
    manual = deps[("train-cdiffsd", "manual")]
    assert not manual.schedules and manual.entrypoint == "flows.train_cdiffsd.train_cdiffsd"
    assert {"folder", "params", "seed"} <= set(manual._parameter_openapi_schema.properties)
