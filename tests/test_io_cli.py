"""``seis make-data / ingest / info / export`` end to end through the real CLI entry point."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import seiscore.cli as cli
from seiscore.data.datasets import PENOBSCOT_NPY
from seiscore.io import open_survey

MINE = ["datasets", "ingest", "export", "info"]


@pytest.fixture
def seis(monkeypatch):
    # only this area's sub-commands: the test does not depend on other modules' import state
    monkeypatch.setattr(cli, "COMMAND_MODULES", MINE)
    return cli.main


@pytest.mark.skipif(not PENOBSCOT_NPY.is_file(), reason="shared Penobscot cube not present")
def test_penobscot_from_catalog_to_segy_and_back(tmp_path, seis, capsys):
    catalog = tmp_path / "cat.yaml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "surveys": {
                    "penobscot": {
                        "source": "data/pen.sgy",
                        "store": "data/stores/pen.zarr",
                        "output": "data/stores/pen_out.zarr",
                        "denoiser": {
                            "name": "tlsm",
                            "preset": "penobscot",
                            "axes": {"smooth": "crossline", "footprint": "inline", "tube": "sample"},
                        },
                    }
                }
            }
        )
    )
    assert seis(["make-data", "penobscot", "--catalog", str(catalog)]) == 0
    src = tmp_path / "data" / "pen.sgy"
    assert seis(["ingest", "--survey", "penobscot", "--catalog", str(catalog)]) == 0
    ds = open_survey(tmp_path / "data" / "stores" / "pen.zarr")
    np.testing.assert_array_equal(ds["amplitude"].values, np.load(PENOBSCOT_NPY))
    assert ds.sizes == {"inline": 250, "crossline": 150, "sample": 40}
    np.testing.assert_allclose(ds["sample"].values[:3], [0.0, 4.0, 8.0])
    assert int(ds["inline"][0]) == 1000 and float(ds["cdp_x"][0, 1]) - float(ds["cdp_x"][0, 0]) == 25.0

    capsys.readouterr()
    assert seis(["info", str(src)]) == 0
    text = capsys.readouterr().out
    assert "1000 .. 1249 (250)" in text and "4-byte IEEE float" in text and "traces                     37500" in text
    assert seis(["info", str(tmp_path / "data" / "stores" / "pen.zarr"), "--json"]) == 0
    assert '"complete": true' in capsys.readouterr().out

    out = tmp_path / "back.sgy"
    assert seis(["export", str(tmp_path / "data" / "stores" / "pen.zarr"), str(out)]) == 0
    assert out.read_bytes() == src.read_bytes()
    capsys.readouterr()
    assert seis(["export", str(tmp_path / "data" / "stores" / "pen.zarr"), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seis export: error:") and "--overwrite" in err and "\n" not in err
    assert (
        seis(["export", str(tmp_path / "data" / "stores" / "pen.zarr"), str(out), "--format", "ibm", "--overwrite"])
        == 0
    )


def test_cli_errors_are_one_line(tmp_path, seis, capsys):
    junk = tmp_path / "junk.sgy"
    junk.write_bytes(b"\x00" * 5000)
    assert seis(["ingest", str(junk), str(tmp_path / "s.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a SEG-Y file" in err and str(junk) in err and "\n" not in err
    assert not (tmp_path / "s.zarr").exists()
    assert seis(["ingest", str(junk)]) == 2
    assert "need SOURCE and STORE" in capsys.readouterr().err
    assert seis(["info", str(tmp_path / "nothing")]) == 2
    assert "no such file" in capsys.readouterr().err
