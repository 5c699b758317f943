"""The velocity archive (seiscore.methods.siren.archive): a real Zarr group with a SIREN decoder, latents and
per-model payloads; exact decoding after reload, float16 latents, any resolution, bytes accounting, refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import zarr
from test_siren_model import layered_models  # the same generated maps as the model tests

from seiscore.data.velocity import VelocityGrid
from seiscore.execution.fit import FitRun
from seiscore.methods.siren.archive import ArchiveError, open_archive, write_archive
from seiscore.methods.siren.config import AutoDecoderConfig, SirenError
from seiscore.methods.siren.encode import encode_models
from seiscore.methods.siren.train import fit_autodecoder, load_decoder, psnr_global

torch.set_num_threads(1)
SHAPE = (16, 16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small decoder fitted on 24 maps (a few seconds) and 3 held-out maps encoded with it."""
    folder = tmp_path_factory.mktemp("fit")
    cfg = AutoDecoderConfig.small(epochs=40, batch_maps=12, encode_steps=60)
    models = layered_models(24)
    run = FitRun(folder, cfg, seed=0)
    run.start()
    fit_autodecoder(models, None, cfg, run)
    decoder, card = load_decoder(folder)
    held = layered_models(3, seed=9)
    latents = encode_models(decoder, held, cfg, seed=1)
    return decoder, card, held, latents


def test_archive_round_trip_is_bitwise_and_decodes_the_encoded_models(trained, tmp_path):
    decoder, card, held, latents = trained
    names = ["a", "b", "c"]
    grid = VelocityGrid(dz=5.0, dx=7.5)
    path = write_archive(tmp_path / "v.zarr", decoder, latents, names, grid, SHAPE, family=["f", "f", "g"], card=card)
    assert not list(tmp_path.glob(".*"))  # the temporary sibling was renamed into place
    arc = open_archive(path)
    assert arc.names == names and arc.codecs == ["siren"] * 3 and arc.family == ["f", "f", "g"]
    assert arc.shape == SHAPE and arc.grid == grid and arc.card["data_hash"] == card["data_hash"]
    assert arc.latents.dtype == np.float32 and np.array_equal(arc.latents, latents)
    out = arc.decode()
    assert out.shape == (3, *SHAPE) and out.dtype == np.float32
    assert np.array_equal(out, decoder.decode(latents, shape=SHAPE))  # what the decoder gives in memory
    assert np.array_equal(open_archive(path).decode(), out)  # and after reopening: the same bits
    # batch-invariant: a model decodes to the same bits whatever it is decoded with
    assert np.array_equal(arc.decode("b"), out[1:2]) and np.array_equal(arc.decode([2, "a"]), out[[2, 0]])
    assert psnr_global(out, held).mean() > 20  # the encoded models come back
    # plain zarr sees the layout of the docstring
    root = zarr.open_group(str(path), mode="r")
    assert root.attrs["format"] == "seiscore-velocity-archive" and root.attrs["format_version"] == 1
    assert root["decoder/body.0.linear.weight"].shape == (64, 34) and root["offsets"][:].tolist() == [0, 0, 0, 0]


def test_float16_latents_any_resolution_and_points(trained, tmp_path):
    decoder, _, held, latents = trained
    arc = open_archive(
        write_archive(tmp_path / "h.zarr", decoder, latents, list("xyz"), None, SHAPE, latent_dtype="float16")
    )
    assert arc.latents.dtype == np.float16
    out = arc.decode()
    assert np.array_equal(out, decoder.decode(latents.astype(np.float16).astype(np.float32), shape=SHAPE))
    assert np.array_equal(open_archive(arc.path).decode(), out)
    fine = arc.decode(factor=2)
    assert fine.shape == (3, 32, 32) and np.array_equal(fine, arc.decode(shape=(32, 32)))
    assert np.isfinite(fine).all() and 1000 < fine.min() and fine.max() < 5000
    assert np.allclose(fine[:, ::31, ::31], out[:, ::15, ::15], atol=1e-2)  # the corners are shared
    pts = np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.3]], np.float32)
    at = arc.decode("y", coords=pts)
    assert at.shape == (1, 3) and np.allclose(at[0, :2], out[1, [0, -1], [0, -1]], atol=1e-2)
    ratios = arc.compression_ratios()
    raw = 4 * 16 * 16
    assert ratios["per_model"] == pytest.approx(raw / (32 * 2))
    assert (
        ratios["float16"] == pytest.approx(raw / 64) and ratios["decoder_bytes"] == 4 * decoder.decoder.n_parameters()
    )
    assert ratios["amortised"] == pytest.approx(3 * raw / (3 * 64 + ratios["decoder_bytes"]))


def test_payload_codecs_and_the_hybrid_are_dispatched_per_model(trained, tmp_path):
    decoder, _, held, latents = trained
    codecs = pytest.importorskip("seiscore.methods.siren.codecs")
    hybrid = pytest.importorskip("seiscore.methods.siren.hybrid")
    prediction = decoder.decode(latents[0], shape=SHAPE)[0]  # decoded alone; the archive decodes all three
    residual = hybrid.hybrid_encode(held[0], prediction, max_error=10.0)
    lossless = codecs.get_codec("zstd").encode(held[2])
    bounded = codecs.encode_to_error("sz3", held[1], 10.0)
    path = write_archive(
        tmp_path / "c.zarr",
        decoder,
        latents,
        list("abc"),
        None,
        SHAPE,
        codecs=["hybrid", "sz3", "zstd"],
        payloads=[residual, bounded, lossless],
    )
    arc = open_archive(path)
    assert arc.payload(2) == lossless and arc.model_bytes().tolist() == [
        128 + len(residual),
        len(bounded),
        len(lossless),
    ]
    out = arc.decode()
    assert np.abs(out[0] - held[0]).max() <= 10.0 and np.abs(out[1] - held[1]).max() <= 10.0
    assert np.array_equal(out[2], held[2])  # the lossless reference codec
    assert np.array_equal(open_archive(path).decode(), out)
    fine = arc.decode(factor=2)
    assert fine.shape == (3, 32, 32) and np.allclose(fine[:, ::31, ::31], out[:, ::15, ::15], atol=1e-2)
    assert arc.compression_ratios()["codecs"] == {"hybrid": 1, "sz3": 1, "zstd": 1}


def test_bad_archives_and_requests_are_one_line_errors(trained, tmp_path):
    decoder, _, _, latents = trained
    path = write_archive(tmp_path / "v.zarr", decoder, latents, list("abc"), None, SHAPE)
    arc = open_archive(path)
    for kwargs in (
        {"shape": (0, 16)},
        {"shape": (-4, 4)},
        {"factor": 0},
        {"factor": -2},
        {"shape": (8, 8), "factor": 2},
    ):
        with pytest.raises(SirenError) as err:
            arc.decode(**kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(ArchiveError, match="no model named 'q'"):
        arc.decode("q")
    with pytest.raises(FileExistsError):
        write_archive(path, decoder, latents, list("abc"), None, SHAPE)
    with pytest.raises(ArchiveError, match="names must be unique"):
        write_archive(tmp_path / "u.zarr", decoder, latents, list("aac"), None, SHAPE)
    bad = latents.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ArchiveError, match="model 'b': its latent holds NaN"):
        write_archive(tmp_path / "n.zarr", decoder, bad, list("abc"), None, SHAPE)
    with pytest.raises(ArchiveError, match="codec 'sz3' needs a payload"):
        write_archive(tmp_path / "p.zarr", decoder, latents, list("abc"), None, SHAPE, codecs=["siren", "sz3", "siren"])
    # another format version
    other = tmp_path / "old.zarr"
    shutil.copytree(path, other)
    doc = json.loads((other / "zarr.json").read_text())
    doc["attributes"]["format_version"] = 2
    (other / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(ArchiveError, match="format version 2; this seiscore reads version 1") as err:
        open_archive(other)
    assert "\n" not in str(err.value)
    # a missing decoder tensor
    broken = tmp_path / "broken.zarr"
    shutil.copytree(path, broken)
    shutil.rmtree(broken / "decoder" / "out.bias")
    doc = json.loads((broken / "zarr.json").read_text())
    doc.get("consolidated_metadata", {}).get("metadata", {}).pop("decoder/out.bias", None)
    (broken / "zarr.json").write_text(json.dumps(doc))
    with pytest.raises(ArchiveError, match="missing 1 array\\(s\\): decoder/out.bias"):
        open_archive(broken)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_archive(tmp_path / "nowhere.zarr")
