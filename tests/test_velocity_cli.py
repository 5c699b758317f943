"""``seis velocity make-data|info|compress|decode``: real stores and archives, user mistakes as one line + exit 2.

The command is the plug-in ``velocity`` of ``seiscore.commands`` (conftest regenerates the entry points when the
installed metadata predates it); it runs in-process here (``seiscore.cli.main``), no flow is started: the flow
runs are in tests/test_velocity_flows.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

# Prefect is imported here, not inside a test: its console log handler binds to the sys.stderr of the moment, and
# a test's capsys stream is closed after the test (later flow runs in the session would write to a closed file).
from deployments.serve import velocity_deployments
from flows.reprocess_archive import survey_names
from seiscore.cli import main
from seiscore.data.velocity import read_velocity_store, write_velocity_store


@pytest.fixture(autouse=True)
def _threads():
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("SEIS_DATA_ROOTS", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


def _seis(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["velocity", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("seis velocity: error: "), err
    for needle in needles:
        assert needle in err, err


def test_make_data_writes_a_generated_collection_store_and_npy(roots, capsys):
    code, out, err = _seis(capsys, "make-data", str(roots / "c.zarr"), "--per-family", "2", "--shape", "24", "20")
    assert code == 0, err
    models, names, grid, attrs = read_velocity_store(roots / "c.zarr")
    assert models.shape == (20, 24, 20) and len(set(names)) == 20 and "20 models of 24 x 20" in out
    assert attrs["generator"] == {
        "n_per_family": 2,
        "families": attrs["generator"]["families"],
        "shape": [24, 20],
        "seed": 0,
    }
    assert len(set(attrs["family"])) == 10 and grid.dz == 10.0
    # the same recipe in one generate() call gives the same models (make-data renders family by family)
    from seiscore.data.openfwi_synth import generate

    assert np.array_equal(generate(2, shape=(24, 20))[0], models)
    # OpenFWI layout (N, 1, nz, nx), two families only
    code, _, err = _seis(
        capsys,
        "make-data",
        str(roots / "c.npy"),
        "--per-family",
        "3",
        "--families",
        "flatvel_a,style_b",
        "--shape",
        "16",
        "16",
    )
    assert code == 0, err
    arr = np.load(roots / "c.npy")
    assert arr.shape == (6, 1, 16, 16) and arr.dtype == np.float32 and 1400 < arr.min() and arr.max() < 5000
    # an existing store is refused without --overwrite, replaced with it
    code, _, err = _seis(capsys, "make-data", str(roots / "c.zarr"), "--per-family", "1", "--shape", "8", "8")
    _one_line_error(code, err, "exists")
    code, _, err = _seis(
        capsys, "make-data", str(roots / "c.zarr"), "--per-family", "1", "--shape", "8", "8", "--overwrite"
    )
    assert code == 0 and read_velocity_store(roots / "c.zarr")[0].shape == (10, 8, 8)


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--per-family", "0"], ["n_per_family must be at least 1"]),
        (["--families", "flatvel_c"], ["unknown family 'flatvel_c'"]),
        (["--shape", "0", "8"], ["0"]),
    ],
)
def test_make_data_mistakes_are_one_line(roots, capsys, args, needles):
    code, _, err = _seis(capsys, "make-data", str(roots / "x.zarr"), *args)
    _one_line_error(code, err, *needles)
    assert not (roots / "x.zarr").exists()


def test_make_data_outside_the_data_roots_is_refused(roots, tmp_path, capsys):
    code, _, err = _seis(capsys, "make-data", str(tmp_path / "elsewhere.zarr"), "--per-family", "1")
    _one_line_error(code, err, "outside the data roots")
    assert not (tmp_path / "elsewhere.zarr").exists()


def test_compress_refuses_bad_collections_in_one_line_before_starting(roots, tmp_path, capsys):
    good = np.full((3, 8, 8), 2000.0, np.float32)
    bad = good.copy()
    bad[1, 2, 3] = np.nan
    np.save(roots / "bad.npy", bad[:, None])
    code, _, err = _seis(capsys, "compress", str(roots / "bad.npy"))
    _one_line_error(code, err, "model 'bad_0001'", "NaN")
    code, _, err = _seis(capsys, "compress", str(roots / "missing.zarr"))
    _one_line_error(code, err, "missing.zarr")
    write_velocity_store(roots / "ok.zarr", good)
    code, _, err = _seis(capsys, "compress", str(roots / "ok.zarr"), "--archive", str(tmp_path / "out.zarr"))
    _one_line_error(code, err, "outside the data roots")
    code, _, err = _seis(capsys, "compress", str(roots / "ok.zarr"), "--latent-dtype", "float16", "--max-error", "0")
    _one_line_error(code, err, "max_error must be > 0")
    assert not (roots / "ok_archive.zarr").exists() and not (tmp_path / "out.zarr").exists()


def test_info_and_decode_mistakes_on_an_archive(roots, capsys, tiny_archive):
    code, out, err = _seis(capsys, "info", str(tiny_archive))
    assert code == 0, err
    assert "4 models" in out and "ratio per model" in out and "codec mix" in out
    code, out, err = _seis(capsys, "info", str(tiny_archive), "--json")
    facts = json.loads(out)
    assert facts["models"] == 4 and facts["latent_dim"] == 8 and facts["codec_mix"] == {"siren": 4}
    assert facts["sizes"]["ratio_per_model"] == pytest.approx(16 * 12 * 4 / (8 * 4), rel=1e-3)
    code, _, err = _seis(capsys, "info", str(roots / "nothing.zarr"))
    _one_line_error(code, err, "nothing.zarr")
    out_path = str(roots / "d.npy")
    for args, needle in (
        (["--factor", "0"], "factor 0"),
        (["--shape", "0", "12"], "resolution"),
        (["--models", "m000000,nope"], "no model 'nope'"),
    ):
        code, _, err = _seis(capsys, "decode", str(tiny_archive), out_path, *args)
        _one_line_error(code, err, needle)
    assert not (roots / "d.npy").exists()


@pytest.fixture
def tiny_archive(roots):
    """A 4-model latent-only archive of a small random decoder (no fit needed for the CLI's checks)."""
    import torch

    from seiscore.data.velocity import VelocityGrid
    from seiscore.methods.siren.archive import write_archive
    from seiscore.methods.siren.config import AutoDecoderConfig
    from seiscore.methods.siren.model import VelocityAutoDecoder

    config = AutoDecoderConfig.small(latent_dim=8, width=16)
    decoder = VelocityAutoDecoder(config, generator=torch.Generator().manual_seed(0))
    latents = np.random.default_rng(0).normal(0, 0.01, (4, 8)).astype(np.float32)
    names = [f"m{i:06d}" for i in range(4)]
    return write_archive(
        roots / "tiny.zarr", decoder, latents, names, VelocityGrid(), (16, 12), card={"collection": "t"}
    )


def test_catalog_entry_resolves_and_its_deployment_exists(tmp_path, monkeypatch, capsys):
    """A velocity2d catalog entry: ``compress ENTRY`` pre-flights against its store (an unknown parameter is one
    line), reprocess leaves it out, and the nightly compress deployment is built for it."""
    import yaml

    from seiscore.core.settings import get_settings
    from seiscore.data.catalog import load_catalog

    monkeypatch.delenv("SEIS_DATA_ROOTS", raising=False)
    cat = tmp_path / "cat.yaml"
    entry = {
        "kind": "velocity2d",
        "source": "data/v.zarr",
        "store": "data/v.zarr",
        "output": "data/v_archive.zarr",
        "method": {"name": "siren", "params": {"source": "data/v.zarr", "epochs": 5}},
    }
    cat.write_text(yaml.safe_dump({"surveys": {"vel": entry}}))
    (tmp_path / "data").mkdir()
    write_velocity_store(tmp_path / "data" / "v.zarr", np.full((2, 8, 8), 2500.0, np.float32))
    code, _, err = _seis(capsys, "compress", "vel", "--catalog", str(cat), "--param", "epoch=3")
    _one_line_error(code, err, "epoch")
    code, _, err = _seis(capsys, "compress", "nope", "--catalog", str(cat))
    _one_line_error(code, err, "'nope'", "known: vel")
    assert survey_names(load_catalog(cat)) == []
    monkeypatch.setenv("SEIS_CATALOG", str(cat))
    deps = {(d.flow_name, d.name): d for d in velocity_deployments(get_settings())}
    assert deps[("compress-velocity-archive", "nightly-vel")].parameters == {"collection": "vel"}
    assert not deps[("decode-velocity", "manual")].schedules


def test_the_siren_benchmark_is_listed():
    from seiscore.bench.__main__ import available

    assert "siren" in available()


def test_reusing_a_decoder_takes_only_encoding_settings(roots, tmp_path):
    from seiscore.execution.fit import FitRun
    from seiscore.execution.velocity import plan_compress
    from seiscore.methods.siren.config import AutoDecoderConfig
    from seiscore.methods.siren.train import fit_autodecoder

    models = np.linspace(1600, 4000, 3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    store = write_velocity_store(roots / "v.zarr", models)
    config = AutoDecoderConfig.small(width=8, hidden=1, latent_dim=4, epochs=1)
    summary = fit_autodecoder(models, None, config, FitRun(tmp_path / "fit", config, seed=0))
    decoder = Path(summary["artifact"]) if "artifact" in summary else tmp_path / "fit" / "artifacts" / "decoder"
    plan = plan_compress(str(store), decoder=decoder, params={"encode_steps": 5, "allow_cpu": True})
    assert plan.fit_folder is None and plan.encode == {"encode_steps": 5} and plan.decoder == str(decoder.resolve())
    assert plan.archive == str((roots / "v_archive.zarr").resolve()) and plan.shape == (8, 8)
    with pytest.raises(ValueError, match=r"\['epochs'\] change the decoder"):
        plan_compress(str(store), decoder=decoder, params={"epochs": 3})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plan_compress(str(store), decoder=tmp_path / "nope")
