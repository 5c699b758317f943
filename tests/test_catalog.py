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
    "method": {
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
    assert synth.method.axes.as_kwargs() == {"smooth": "crossline", "footprint": "sample", "tube": "inline"}
    assert pen.method.axes.as_kwargs() == {"smooth": "crossline", "footprint": "inline", "tube": "sample"}
    assert synth.reference and pen.reference is None
    assert (synth.method.preset, pen.method.preset) == ("synthetic", "penobscot")
    assert synth.kind == "poststack3d" and synth.dims == ("inline", "crossline", "sample")
    for entry in (synth, pen):
        assert Path(entry.source).is_relative_to(REPO_CATALOG.parent / "data")
        assert Path(entry.store).is_absolute() and entry.store != entry.output


def test_relative_paths_resolve_against_catalog_folder(tmp_path):
    cat = load_catalog(_write(tmp_path, {"a": GOOD}))
    entry = cat.get("a")
    assert entry.source_path == tmp_path / "data" / "a.sgy"
    assert entry.method.params.model_dump() == {"iterations": 5} and entry.il_byte == 189 and entry.sorting == "auto"
    with pytest.raises(CatalogError, match="no survey 'b'.*known: a"):
        cat.get("b")


@pytest.mark.parametrize(
    "change,field",
    [
        (
            {"method": {**GOOD["method"], "axes": {"smooth": "inline", "footprint": "inline", "tube": "sample"}}},
            "method.axes",
        ),
        ({"method": {**GOOD["method"], "name": "bm3d"}}, "method.name"),
        ({"method": {**GOOD["method"], "params": {"tau": -1}}}, "method.params.tau"),
        ({"method": {**GOOD["method"], "params": {"tua": 1}}}, "method.params.tua"),
        ({"kind": "traces2d"}, "kind"),
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


def test_tlsm_axes_default_and_malformed_files(tmp_path):
    entry = {**GOOD, "method": {"name": "tlsm"}}
    spec = load_catalog(_write(tmp_path, {"x": entry})).get("x").method
    assert spec.axes.as_kwargs() == {"smooth": "crossline", "footprint": "sample", "tube": "inline"}
    assert spec.preset is None and spec.params.model_dump() == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text("surveys: [1, 2")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)
    bad.write_text("surveys: [1, 2]")
    with pytest.raises(CatalogError, match="'surveys' mapping"):
        load_catalog(bad)
    with pytest.raises(FileNotFoundError):
        load_catalog(tmp_path / "missing.yaml")


def test_old_denoiser_key_is_read_and_both_keys_are_refused(tmp_path):
    old = {k: v for k, v in GOOD.items() if k != "method"} | {"denoiser": GOOD["method"]}
    entry = load_catalog(_write(tmp_path, {"a": old})).get("a")
    assert entry.method == load_catalog(_write(tmp_path, {"a": GOOD})).get("a").method
    with pytest.raises(CatalogError, match="survey 'a'.*'method' only") as err:
        load_catalog(_write(tmp_path, {"a": {**GOOD, "denoiser": GOOD["method"]}}))
    assert "\n" not in str(err.value)
    with pytest.raises(CatalogError, match="survey 'a': field 'denoiser.axes'"):
        load_catalog(_write(tmp_path, {"a": {**old, "denoiser": {"name": "tlsm", "axes": {"tube": "time"}}}}))


def test_a_method_must_accept_the_entry_kind(tmp_path):
    from seiscore.data.kinds import DataKind, register_kind
    from seiscore.data.kinds import _registered as registered_kinds

    register_kind(DataKind(name="traces_test", dims=("trace", "sample"), chunks=(64, None)))
    try:
        with pytest.raises(CatalogError, match="survey 'a'.*'tlsm' does not run on traces_test data"):
            load_catalog(_write(tmp_path, {"a": {**GOOD, "kind": "traces_test"}}))
    finally:
        registered_kinds.pop("traces_test")


@pytest.fixture(scope="module")
def ssb_artifact(tmp_path_factory):
    """A real (tiny, random) SSB model artifact in a catalog folder's models/ folder."""
    from seiscore.methods.ssb import SSBModelConfig, save_model
    from seiscore.methods.ssb.model import SSBModel

    folder = tmp_path_factory.mktemp("ssb_catalog")
    save_model(SSBModel(SSBModelConfig(patch=16)), folder / "models" / "x")
    return folder


def test_an_ssb_survey_is_configured_in_the_catalog(ssb_artifact, write_synthetic_segy):
    """The SSB defect: the catalog forbade 'model'. Now the spec parses, its model path resolves against the
    catalog folder, and the pre-flight accepts the survey with the real artifact."""
    from seiscore.execution.preflight import preflight
    from seiscore.methods.ssb.method import SSBSpec

    segy = write_synthetic_segy(ssb_artifact / "data", (32, 40, 60))[0]
    ssb = {
        "source": str(segy),
        "store": "data/stores/s.zarr",
        "output": "data/stores/s_out.zarr",
        "method": {"name": "ssb", "model": "models/x", "params": {"allow_cpu": True}},
    }
    path = ssb_artifact / "cat.yaml"
    path.write_text(yaml.safe_dump({"surveys": {"s": ssb}}))
    entry = load_catalog(path).get("s")
    assert isinstance(entry.method, SSBSpec)
    assert entry.method.model == str(ssb_artifact / "models" / "x") and entry.method.params.allow_cpu is True
    plan = preflight("s", catalog=path)
    assert plan.method == "ssb" and plan.spec == entry.method and plan.params["allow_cpu"] is True
    assert plan.tiles.count == 1 and plan.tiles.halo == (0, 0, 0)  # one stack of 32 inline sections
    weights = (ssb_artifact / "models" / "x" / "model.safetensors").stat().st_size
    assert plan.peak_memory_per_tile == int(6 * 4 * 32 * 40 * 60) + weights
    with pytest.raises(CatalogError, match="survey 's': field 'method': SSB needs a model artifact folder"):
        path.write_text(yaml.safe_dump({"surveys": {"s": {**ssb, "method": {"name": "ssb"}}}}))
        load_catalog(path)
