"""Velocity metrics, conventional codecs (budget / max error), the hybrid codec and the per-model choice — real
zfpy, pysz, imagecodecs and numcodecs, on generated OpenFWI-like maps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from seiscore.data.openfwi_synth import generate
from seiscore.methods.siren.codecs import (
    NAMES,
    BoundError,
    BudgetError,
    CodecError,
    PCABasis,
    decode,
    encode_to_budget,
    encode_to_error,
    equal_bytes_table,
    equal_error_table,
    fit_pca,
    get_codec,
)
from seiscore.methods.siren.hybrid import hybrid_decode, hybrid_encode
from seiscore.methods.siren.select import choose_codec
from seiscore.metrics.velocity import (
    MetricInputError,
    max_abs_error,
    mse_normalised,
    psnr_global,
    psnr_local,
    ratio_amortised,
    ratio_per_model,
    ssim_velocity,
)

LOSSY = ("zfp", "sz3", "jpeg2k", "downsample", "qzstd")


@pytest.fixture(scope="module")
def maps():
    models, _, labels, _ = generate(1, seed=11)  # one map per family
    return models, labels


@pytest.fixture(scope="module")
def basis() -> PCABasis:
    return fit_pca(generate(4, seed=12)[0], 24)


def _smooth_error(shape, amplitude, seed=0):
    f = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), 6.0)
    return (amplitude * f / np.abs(f).max()).astype(np.float32)


# -- metrics --------------------------------------------------------------------------------------------------
def test_metrics_definitions(maps):
    true = maps[0][:3]
    pred = true + np.float32(30.0)  # 30 m/s everywhere = 0.01 on normalised maps
    np.testing.assert_allclose(mse_normalised(pred, true), 1e-4, rtol=1e-5)
    np.testing.assert_allclose(psnr_global(pred, true), 40.0, rtol=1e-5)
    rng = true.max(axis=(1, 2)) - true.min(axis=(1, 2))
    np.testing.assert_allclose(psnr_local(pred, true), 20 * np.log10(rng / 30.0), rtol=1e-5)
    np.testing.assert_allclose(max_abs_error(pred, true), 30.0, rtol=1e-6)
    assert np.isinf(psnr_global(true, true)).all()
    np.testing.assert_allclose(ssim_velocity(true, true), 1.0)
    assert (ssim_velocity(pred + _smooth_error(true.shape[1:], 200.0), true) < 1.0).all()
    # batched = one at a time; the caller's arrays are untouched
    before = pred.copy()
    np.testing.assert_allclose(psnr_global(pred[1], true[1]), psnr_global(pred, true)[1:2])
    np.testing.assert_array_equal(pred, before)
    assert round(ratio_per_model(4900, 1024), 2) == 19.14
    assert round(ratio_amortised(1000, 4900, 1024, 4 * 1_183_745), 2) == 3.4
    with pytest.raises(MetricInputError, match="differ in shape"):
        psnr_global(pred[:2], true)


# -- codecs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOSSY)
def test_encode_to_error_meets_the_bound(maps, name):
    models, labels = maps
    for bound in (10.0, 1.0):
        for m, family in zip(models, labels):
            payload = encode_to_error(name, m, bound)
            out = get_codec(name).decode(payload, m.shape)  # a fresh codec: the payload describes itself
            assert out.dtype == np.float32 and out.shape == m.shape
            assert np.abs(out.astype(np.float64) - m).max() <= bound, (name, family, bound)
    # a looser bound never needs more bytes (on a layered and on a style map)
    for m in models[[3, 9]]:
        assert len(encode_to_error(name, m, 50.0)) <= len(encode_to_error(name, m, 1.0))


def test_lossless_and_pca(maps, basis):
    models = maps[0]
    for m in models:
        np.testing.assert_array_equal(decode("zstd", get_codec("zstd").encode(m), m.shape), m)
    m = models[9]
    payload = encode_to_budget("pca", m, 40, basis=basis)  # 10 coefficients
    assert len(payload) == 40
    coeffs = basis.components[:10].astype(np.float64) @ (m.ravel() - basis.mean)
    expect = basis.mean + coeffs @ basis.components[:10]
    np.testing.assert_allclose(decode("pca", payload, m.shape, basis=basis).ravel(), expect, atol=0.05)
    with pytest.raises(BoundError, match="pca cannot meet a maximum error of 0.5 m/s"):
        encode_to_error("pca", m, 0.5, basis=basis)


@pytest.mark.parametrize("budget", [512, 1024])
def test_encode_to_budget_honours_the_budget(maps, basis, budget):
    models = maps[0]
    for name in ("zfp", "sz3", "jpeg2k", "pca", "downsample", "qzstd"):
        opts = {"basis": basis} if name == "pca" else {}
        for m in models[[1, 6, 9]]:
            payload = encode_to_budget(name, m, budget, **opts)
            assert 0 < len(payload) <= budget, (name, len(payload))
            decoded = decode(name, payload, m.shape, **opts)
            if budget == 1024:  # more bytes, no worse
                low = decode(name, encode_to_budget(name, m, 448, **opts), m.shape, **opts)
                assert psnr_global(decoded, m)[0] >= psnr_global(low, m)[0] - 0.5, name
    assert len(encode_to_budget("downsample", models[0], budget)) == (1024 if budget == 1024 else 484)
    with pytest.raises(BudgetError, match="zstd .* over the budget of 20"):
        encode_to_budget("zstd", models[9], 20)


def test_equal_bytes_table(maps, basis):
    models, labels = maps
    rows = equal_bytes_table(models, 512, pca_basis=basis, families=labels)
    by = {r["codec"]: r for r in rows}
    assert set(by) == {"zstd", "zfp", "sz3", "jpeg2k", "pca-24", "downsample", "qzstd"}
    for name, row in by.items():
        assert row["n"] + row["n_failed"] == len(models)
        if name != "zstd":
            assert row["mean_bytes"] <= 512 and row["n_failed"] == 0
        assert set(row["psnr_g_by_family"]) == set(row["psnr_g_pooled_by_family"]) == set(labels)
    assert by["zstd"]["psnr_g"] == np.inf and by["zstd"]["ssim"] == 1.0
    assert by["sz3"]["psnr_g"] > by["zfp"]["psnr_g"]  # error-bounded coding wins on piecewise-constant maps
    assert "pca-24" not in {r["codec"] for r in equal_bytes_table(models[:2], 512, codecs=("pca", "sz3"))}


def test_equal_error_table(maps, basis):
    models, labels = maps
    rows = equal_error_table(models, 10.0, pca_basis=basis, codecs=("sz3", "qzstd", "pca"), families=labels)
    by = {r["codec"]: r for r in rows}
    assert by["sz3"]["n_failed"] == by["qzstd"]["n_failed"] == 0 and by["sz3"]["max_abs_error"] <= 10.0
    assert by["pca-24"]["n_failed"] > 0  # 24 components cannot bring every map within 10 m/s
    best = by["best-single-per-model"]
    assert best["mean_bytes"] <= min(by["sz3"]["mean_bytes"], by["qzstd"]["mean_bytes"])
    assert set(best["bytes_by_family"]) == set(labels)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: get_codec("webp"), CodecError, "unknown codec 'webp'"),
        (lambda m: encode_to_error("sz3", np.where(m > 2000, np.nan, m), 10), CodecError, "NaN or infinite"),
        (lambda m: encode_to_error("sz3", m[None], 10), CodecError, r"one \(nz, nx\) velocity model"),
        (lambda m: encode_to_error("zfp", m, -1), CodecError, "finite, non-negative"),
        (lambda m: encode_to_budget("jpeg2k", m, 0), CodecError, "max_bytes must be positive"),
        (lambda m: get_codec("pca"), CodecError, "needs its shared basis"),
        (lambda m: decode("zstd", b"not zstd at all", m.shape), CodecError, "zstd payload does not decode"),
        (lambda m: decode("downsample", b"\0" * 7, m.shape), CodecError, "matches no coarse grid"),
        (lambda m: decode("jpeg2k", b"\0" * 4, m.shape), CodecError, "shorter than its header"),
        (lambda m: decode("sz3", get_codec("sz3").encode(m), (0, 5)), CodecError, "shape must be positive"),
    ],
)
def test_bad_input_is_one_line(maps, call, error, message):
    with pytest.raises(error, match=message) as info:
        call(maps[0][4])
    assert "\n" not in str(info.value)


# -- hybrid and choice ----------------------------------------------------------------------------------------
def test_hybrid_meets_the_bound_and_beats_sz3_with_a_good_prediction(maps):
    models, labels = maps
    for m, family in zip(models, labels):
        good = m + _smooth_error(m.shape, 3.0)  # prediction within 3 m/s, smooth error
        bad = np.full_like(m, 3000.0)
        for prediction in (good, bad):
            payload = hybrid_encode(m, prediction, 10.0)
            out = hybrid_decode(payload, prediction)
            assert np.abs(out.astype(np.float64) - m).max() <= 10.0, family
        assert len(hybrid_encode(m, good, 10.0)) <= len(encode_to_error("sz3", m, 10.0)), family
    before = models[0].copy()
    hybrid_encode(models[0], models[0] + 1.0, 5.0)
    np.testing.assert_array_equal(models[0], before)
    with pytest.raises(CodecError, match="prediction has shape"):
        hybrid_encode(models[0], models[0][:10], 10.0)
    with pytest.raises(CodecError, match="unknown residual coder tag 7"):
        hybrid_decode(b"\x07abc", models[0])


def test_choose_codec_honours_the_bound_and_picks_the_smallest(maps, basis):
    models, labels = maps
    candidates = ("siren", "hybrid", "sz3", "zfp", "jpeg2k", "qzstd")
    for m, family in zip(models[[2, 5, 8, 9]], [labels[i] for i in (2, 5, 8, 9)]):
        prediction = ndimage.gaussian_filter(m.astype(np.float64), 1.0).astype(np.float32)
        name, payload, nbytes, err = choose_codec(m, 10.0, candidates, prediction=prediction, latent_bytes=64)
        assert err <= 10.0
        sizes = {"hybrid": 64 + len(hybrid_encode(m, prediction, 10.0))}
        sizes |= {c: len(encode_to_error(c, m, 10.0)) for c in candidates[2:]}
        if np.abs(prediction - m).max() <= 10.0:
            sizes["siren"] = 64
        assert nbytes == min(sizes.values()), (family, name, sizes)
        assert name == min(sizes, key=lambda c: (sizes[c], candidates.index(c)))
        if name == "hybrid":
            assert np.abs(hybrid_decode(payload, prediction) - m).max() <= 10.0
        elif name != "siren":
            assert np.abs(decode(name, payload, m.shape) - m).max() <= 10.0
        # deterministic
        assert choose_codec(m, 10.0, candidates, prediction=prediction, latent_bytes=64)[:3] == (name, payload, nbytes)
    m = models[9]
    near = m + _smooth_error(m.shape, 2.0)
    assert choose_codec(m, 10.0, candidates, prediction=near, latent_bytes=8)[:3] == ("siren", b"", 8)
    # without a prediction the predictive candidates are skipped; pca needs its basis
    assert choose_codec(m, 10.0, ("siren", "sz3"))[0] == "sz3"
    assert choose_codec(m, 1e4, ("pca",), basis=basis)[0] == "pca"
    with pytest.raises(CodecError, match="need the SIREN prediction"):
        choose_codec(m, 10.0, ("siren", "hybrid"))
    with pytest.raises(CodecError, match="unknown candidate codec 'png'"):
        choose_codec(m, 10.0, ("png",))
    with pytest.raises(CodecError, match="no candidate meets a maximum error of 0.1 m/s"):
        choose_codec(m, 0.1, ("pca",), basis=basis)
    assert set(NAMES) >= {"zstd", "zfp", "sz3", "jpeg2k", "pca", "downsample"}


def test_baselines_runner_on_a_tiny_collection(capsys):
    from seiscore.methods.siren.baselines import main, split_collection

    train, test, labels = split_collection(3, 1, seed=4)
    assert train.shape == (20, 70, 70) and test.shape == (10, 70, 70) and len(set(labels)) == 10
    assert main(["--per-family", "2", "--held-out", "1", "--budgets", "512", "--components", "8",
                 "--max-error", "50"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "## 512 B per model (10 held-out maps, PCA on 10)" in out and "| pca-8 |" in out
    assert "best-single-per-model" in out
