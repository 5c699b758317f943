"""The SIREN auto-decoder (seiscore.methods.siren): initialisation statistics, the batched forward, decoding at any
resolution, a small joint fit against the same-size PCA, held-out encoding, exact resume, the decoder artifact, the
fit-mode method, and one-line refusals. CI-size configuration (spec section 8), generated layered maps, CPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from seiscore.data.velocity import VelocityModelError
from seiscore.execution.fit import ArtifactError, FitEpoch, FitRun, fit_method
from seiscore.methods.siren.config import AutoDecoderConfig, SirenError
from seiscore.methods.siren.encode import encode_models
from seiscore.methods.siren.model import VelocityAutoDecoder
from seiscore.methods.siren.train import fit_autodecoder, load_decoder, psnr_global
from seiscore.nn.siren import SineLayer, grid_coordinates

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
SHAPE = (16, 16)
# CI configuration (spec section 8): the small decoder and its tuned optimisation settings, 200 epochs
FIT = AutoDecoderConfig.small(epochs=200, encode_steps=150)


def layered_models(n: int, shape=SHAPE, seed: int = 0) -> np.ndarray:
    """Layered maps: 2-3 layers, tilted and gently curved interfaces, velocities increasing with depth (m/s)."""
    rng = np.random.default_rng(seed)
    nz, nx = shape
    z = np.linspace(0, 1, nz)[:, None, None]
    x = np.linspace(-0.5, 0.5, nx)[None, :, None]
    out = np.empty((n, nz, nx), np.float32)
    for i in range(n):
        k = int(rng.integers(2, 4))
        depth = np.sort(rng.uniform(0.15, 0.85, k - 1))
        tilt, amp, freq, phase = rng.uniform(-0.4, 0.4), rng.uniform(0, 0.08), rng.uniform(0.5, 2), rng.uniform(0, 6)
        surface = depth + tilt * x + amp * np.sin(2 * np.pi * freq * x + phase)
        out[i] = np.sort(rng.uniform(1500, 4500, k))[(z > surface).sum(-1)]
    return out


def pca_psnr(models: np.ndarray, k: int) -> float:
    """Mean PSNR_g of the rank-k PCA reconstruction (mean + k components, plain SVD) of ``models``."""
    flat = models.reshape(len(models), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    rec = (flat - mean) @ vt[:k].T @ vt[:k] + mean
    return float(psnr_global(rec, flat).mean())


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("siren_fit")
    models = layered_models(200)
    run = FitRun(folder, FIT, seed=0)
    run.start()
    summary = fit_autodecoder(models, None, FIT, run)
    return folder, models, summary


# -- the network -------------------------------------------------------------------------------------------
def test_initialisation_bounds_and_preactivation_statistics():
    cfg = AutoDecoderConfig(latent_dim=32, width=256, hidden=3)
    model = VelocityAutoDecoder(cfg, generator=torch.Generator().manual_seed(0))
    layers = [m for m in model.decoder.body if isinstance(m, SineLayer)]
    assert layers[0].linear.weight.abs().max() <= 1 / 34 and layers[0].linear.weight.abs().max() > 0.9 / 34
    bound = math.sqrt(6 / 256) / 30
    for layer in layers[1:]:
        w = layer.linear.weight
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        assert abs(float(w.detach().std()) - bound / math.sqrt(3)) < 0.05 * bound  # uniform law: std = bound / sqrt(3)
    assert model.decoder.out.weight.abs().max() <= bound
    # pre-activations omega_0 (W h + b) of the hidden sine layers keep their spread through depth
    pre = []
    for layer in layers[1:]:
        layer.register_forward_hook(lambda m, inp, out: pre.append(float((m.omega_0 * m.linear(inp[0])).std())))
    gen = torch.Generator().manual_seed(1)
    coords = torch.rand(4096, 2, generator=gen) * 2 - 1
    with torch.no_grad():
        model(coords, torch.randn(4, 32, generator=gen) * 0.01)
    assert len(pre) == 3 and all(0.8 < p < 2.5 for p in pre), pre
    assert max(pre) / min(pre) < 1.25, pre
    assert AutoDecoderConfig().n_parameters() == 1_183_745  # the paper's table (spec 2.1)
    assert {k: tuple(v.shape) for k, v in model.decoder.state_dict().items()} == cfg.parameter_shapes()


def test_batched_forward_equals_the_concatenated_input_and_decodes_any_grid():
    cfg = AutoDecoderConfig.small()
    model = VelocityAutoDecoder(cfg, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(3, 32, generator=gen) * 0.5
    coords = grid_coordinates((5, 7))
    concat = torch.cat([coords.expand(3, -1, -1), z[:, None, :].expand(-1, 35, -1)], dim=-1)
    with torch.no_grad():
        assert torch.allclose(model(coords, z), model.decoder(concat).squeeze(-1), atol=1e-5)
    native = model.decode(z, shape=(5, 7))
    assert native.shape == (3, 5, 7) and native.dtype == np.float32
    direct = model.decoder(concat).squeeze(-1).detach().numpy() * 3000 + 1500
    assert np.allclose(native.reshape(3, -1), direct, atol=0.05)  # denormalised to m/s
    fine = model.decode(z, shape=(9, 13))  # linspace(-1, 1, k): the native nodes are every other one
    assert fine.shape == (3, 9, 13) and np.allclose(fine[:, ::2, ::2], native, atol=0.05)
    small_chunks = model.decode(z, shape=(9, 13), chunk_elements=64 * 3 * 10)
    assert np.allclose(small_chunks, fine, atol=1e-3)
    pts = model.decode(z[0], coords=np.array([[-1, -1], [1, 1]], np.float32))
    assert pts.shape == (1, 2) and np.allclose(pts[0], [native[0, 0, 0], native[0, -1, -1]], atol=0.05)
    mid = VelocityAutoDecoder.interpolate(z[0], z[1], [0, 0.5, 1])
    assert np.allclose(mid[0], z[0].numpy()) and np.allclose(mid[2], z[1].numpy())
    assert np.allclose(mid[1], (z[0] + z[1]).numpy() / 2, atol=1e-6)
    for bad in ((0, 7), (5, -1), (5,), (2.5, 3)):
        with pytest.raises(SirenError) as err:
            model.decode(z, shape=bad)
        assert "\n" not in str(err.value)
    with pytest.raises(SirenError, match="latents must be \\(n, 32\\)"):
        model.decode(torch.zeros(2, 31), shape=(4, 4))
    with pytest.raises(SirenError, match="NaN"):
        model.decode(torch.full((1, 32), float("nan")), shape=(4, 4))


# -- fitting ------------------------------------------------------------------------------------------------
def test_small_fit_beats_the_same_size_pca_on_its_training_maps(fitted):
    """Spec section 8: PSNR_g of the fitted training maps above PCA with k = latent_dim (basis fitted on the same
    maps, plain SVD)."""
    folder, models, summary = fitted
    pca = pca_psnr(models, FIT.latent_dim)
    assert summary["psnr_g"] > pca, (summary["psnr_g"], pca)
    decoder, card = load_decoder(folder)
    assert card["format"] == "seiscore-siren-decoder" and card["format_version"] == 1
    assert card["n_models"] == len(models) and card["shape"] == list(SHAPE) and len(card["names"]) == len(models)
    assert card["training"]["psnr_g"] == pytest.approx(summary["psnr_g"]) and len(card["data_hash"]) == 64
    again = decoder.decode(decoder.latents, shape=SHAPE)
    assert psnr_global(again, models).mean() == pytest.approx(summary["psnr_g"], abs=1e-3)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == FIT.epochs and rows[-1]["loss"] < rows[0]["loss"] / 3


def test_held_out_encoding_improves_on_the_mean_latent_and_is_deterministic(fitted):
    folder, models, _ = fitted
    decoder, _ = load_decoder(folder)
    held = layered_models(6, seed=42)
    z = encode_models(decoder, held, seed=0)
    assert z.shape == (6, FIT.latent_dim) and z.dtype == np.float32
    mean = decoder.latents.mean(dim=0, keepdim=True).repeat(6, 1)
    encoded = psnr_global(decoder.decode(z, shape=SHAPE), held)
    baseline = psnr_global(decoder.decode(mean, shape=SHAPE), held)
    assert encoded.mean() > baseline.mean() + 5 and (encoded > baseline).all(), (encoded, baseline)
    assert all(p.requires_grad for p in decoder.parameters())  # frozen only while encoding
    again = encode_models(decoder, held[:4], seed=0, batch_maps=2)  # other chunks: each latent's own trajectory
    assert np.allclose(again, z[:4], atol=1e-4)
    assert np.array_equal(encode_models(decoder, held[:4], seed=0, batch_maps=2), again)
    with pytest.raises(VelocityModelError, match="model 1 holds NaN"):
        encode_models(decoder, np.stack([held[0], np.full(SHAPE, np.nan, np.float32)]))


class Stop(Exception):
    pass


def test_resumed_fit_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    cfg = AutoDecoderConfig.small(epochs=7, batch_maps=4, checkpoint_every=2, patience=1)
    models = layered_models(10, shape=(8, 8), seed=5)

    def stop_at_5(event):
        if isinstance(event, FitEpoch) and event.epoch == 4:
            raise Stop

    whole = FitRun(tmp_path / "whole", cfg, seed=7)
    fit_autodecoder(models, None, cfg, whole)
    cut = FitRun(tmp_path / "cut", cfg, seed=7, callback=stop_at_5)
    with pytest.raises(Stop):
        fit_autodecoder(models, None, cfg, cut)  # stops after epoch 4; the last checkpoint is epoch 3
    resumed = fit_autodecoder(models, None, cfg, FitRun(tmp_path / "cut", cfg, seed=7))
    a = load_file(str(tmp_path / "whole/artifacts/decoder/model.safetensors"))
    b = load_file(str(tmp_path / "cut/artifacts/decoder/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (tmp_path / "cut/metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3, 4, 4, 5, 6]  # epoch 4 redone after the resume
    assert resumed["final_loss"] == json.loads((tmp_path / "whole/metrics.jsonl").read_text().splitlines()[-1])["loss"]


def test_bad_models_and_artifacts_are_one_line_errors(fitted, tmp_path):
    folder, models, _ = fitted
    bad = models[:4].copy()
    bad[2, 3, 3] = np.nan
    cfg = AutoDecoderConfig.small(epochs=1)
    with pytest.raises(VelocityModelError, match="model 'c' holds NaN") as err:
        fit_autodecoder(bad, list("abcd"), cfg, FitRun(tmp_path / "nan", cfg, seed=0))
    assert "\n" not in str(err.value)
    art = folder / "artifacts" / "decoder"
    wrong = tmp_path / "wrong_version"
    wrong.mkdir()
    card = json.loads((art / "model_card.json").read_text())
    (wrong / "model_card.json").write_text(json.dumps({**card, "format_version": 9}))
    with pytest.raises(ArtifactError, match="format version 9") as err:
        load_decoder(wrong)
    assert "\n" not in str(err.value)
    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / "model_card.json").write_text(json.dumps(card))
    tensors = load_file(str(art / "model.safetensors"))
    tensors.pop("decoder.out.bias")
    save_file(tensors, str(missing / "model.safetensors"))
    with pytest.raises(ArtifactError, match="1 missing tensor\\(s\\) \\['decoder.out.bias'\\]") as err:
        load_decoder(missing)
    assert "\n" not in str(err.value)


# -- the method ---------------------------------------------------------------------------------------------
def test_siren_method_fits_through_the_registry_and_lists_without_torch(tmp_path):
    from seiscore.methods.registry import get_method, parse_spec

    source = tmp_path / "maps.npy"
    np.save(source, layered_models(6, shape=(8, 8))[:, None])  # the OpenFWI layout (N, 1, nz, nx)
    params = {"source": str(source), "allow_cpu": True, "epochs": 3, "width": 16, "hidden": 1, "latent_dim": 4}
    method = get_method("siren")
    assert method.mode == "fit" and method.data_kinds == ("velocity2d",)
    assert method.resources(parse_spec({"name": "siren", "params": params})) == {"GPU": 1}
    summary = fit_method({"name": "siren", "params": params}, tmp_path / "run", seed=2)
    decoder, card = load_decoder(tmp_path / "run")
    assert card["names"][0] == "maps_0000" and decoder.latents.shape == (6, 4) and summary["epochs"] == 3
    with pytest.raises(ValueError, match="SIREN needs the models to fit on"):
        parse_spec({"name": "siren", "params": {"epochs": 3}})
    with pytest.raises(ValueError, match="unknown SIREN parameter 'epoch'"):
        parse_spec({"name": "siren", "params": {"source": "x", "epoch": 3}})
    code = (
        "import sys\nfrom seiscore.methods import registry\n"
        "registry.method_table(); registry.parse_spec({'name': 'siren', 'params': {'source': 'm.npy'}})\n"
        "print('torch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=os.environ)
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr[-2000:]
