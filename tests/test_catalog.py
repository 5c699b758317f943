"""The catalog loader: shipped entries, path resolution, and errors naming the survey and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seiscore.data.catalog import CatalogError, load_catalog

REPO_CATALOG = Path(__file__).resolve().parents[1] / "data_catalog.yaml"

GOOD = {
    "source": "data/a.sgy",
    "store": "data/stores/a.zarr",
    "output": "data/stores/a_out.zarr",
    "denoiser": {
        "name": "tlsm",
        "preset": "synthetic",
        "params": {"iterations": 5},
        "axes": {"smooth": "crossline", "footprint": "sample", "tube": "inline"},
    },
}


def _write(tmp_path, surveys) -> Path:
    path = tmp_path / "cat.yaml"
    path.write_text(yaml.safe_dump({"surveys": surveys}))
    return path


def test_shipped_catalog_entries():
    cat = load_catalog(REPO_CATALOG)
    synth, pen = cat.get("synthetic_demo"), cat.get("penobscot")
    assert synth.denoiser.axes.as_kwargs() == {"smooth": "crossline", "footprint": "sample", "tube": "inline"}
    assert pen.denoiser.axes.as_kwargs() == {"smooth": "crossline", "footprint": "inline", "tube": "sample"}
    assert synth.reference and pen.reference is None
    for entry in (synth, pen):
        assert Path(entry.source).is_relative_to(REPO_CATALOG.parent / "data")
        assert Path(entry.store).is_absolute() and entry.store != entry.output


def test_relative_paths_resolve_against_catalog_folder(tmp_path):
    cat = load_catalog(_write(tmp_path, {"a": GOOD}))
    entry = cat.get("a")
    assert entry.source_path == tmp_path / "data" / "a.sgy"
    assert entry.denoiser.params == {"iterations": 5} and entry.il_byte == 189 and entry.sorting == "auto"
    with pytest.raises(CatalogError, match="no survey 'b'.*known: a"):
        cat.get("b")


@pytest.mark.parametrize(
    "change,field",
    [
        (
            {"denoiser": {**GOOD["denoiser"], "axes": {"smooth": "inline", "footprint": "inline", "tube": "sample"}}},
            "denoiser.axes",
        ),
        ({"denoiser": {**GOOD["denoiser"], "name": "bm3d"}}, "denoiser.name"),
        ({"il_byte": 190}, "il_byte"),
        ({"sample_unit": "s"}, "sample_unit"),
        ({"store": None}, "store"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_entry_names_survey_and_field(tmp_path, change, field):
    entry = {**GOOD, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(CatalogError) as err:
        load_catalog(_write(tmp_path, {"good": GOOD, "broken": entry}))
    msg = str(err.value)
    assert "survey 'broken'" in msg and f"'{field}" in msg, msg


def test_tlsm_without_axes_and_malformed_files(tmp_path):
    entry = {**GOOD, "denoiser": {"name": "tlsm"}}
    with pytest.raises(CatalogError, match="survey 'x'.*axes"):
        load_catalog(_write(tmp_path, {"x": entry}))
    bad = tmp_path / "bad.yaml"
    bad.write_text("surveys: [1, 2")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)
    bad.write_text("surveys: [1, 2]")
    with pytest.raises(CatalogError, match="'surveys' mapping"):
        load_catalog(bad)
    with pytest.raises(FileNotFoundError):
        load_catalog(tmp_path / "missing.yaml")
