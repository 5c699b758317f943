"""BRISQUE: MSCN by hand, features against OpenCV-contrib, SVR against libsvm, score ordering."""

import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from seiscore.metrics.brisque import (
    aggd_fit,
    brisque,
    brisque_features,
    brisque_from_features,
    ggd_fit,
    load_model,
    model_name,
    resize_half,
    scale_features,
)
from seiscore.metrics.mscn import mscn

# Our features vs cv2.quality.QualityBRISQUE_computeFeatures: OpenCV returns float32 and
# accumulates its shape grid in float32, so we allow 1e-3 relative (plus 1e-4 absolute).
RTOL, ATOL = 1e-3, 1e-4


def _penobscot_slices():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "penobscot" / "penobscot_250x150x40.npy"
    if not path.exists():
        return []
    cube = np.load(path)
    out = []
    for k in (0, 17, 39):
        s = cube[:, :, k].astype(np.float64)
        out.append(np.round(255 * (s - s.min()) / (s.max() - s.min())).astype(np.uint8))
    return out


def _test_images():
    rng = np.random.default_rng(1)
    cam = data.camera()
    imgs = [cam[100:300, 50:331], data.coins(), data.text()[:, :301]]  # odd sizes exercise the resize
    imgs.append(
        np.clip(
            ndimage.gaussian_filter(cam.astype(float), 1.5)[::3, ::3] + rng.normal(0, 8, (171, 171)), 0, 255
        ).astype(np.uint8)
    )
    return imgs + _penobscot_slices()


@pytest.mark.parametrize("img", _test_images(), ids=lambda a: f"{a.shape[0]}x{a.shape[1]}")
def test_features_match_opencv_contrib(img):
    ours = brisque_features(img)
    ref = cv2.quality.QualityBRISQUE_computeFeatures(img).ravel().astype(np.float64)
    assert ours.shape == ref.shape == (36,)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)


def test_stack_features_equal_single_image_features():
    imgs = _test_images()[:1] * 2
    cam2 = data.camera()[300:500, 50:331]
    stack = np.stack([imgs[0], cam2])
    f = brisque_features(stack)
    np.testing.assert_array_equal(f[0], brisque_features(imgs[0]))
    np.testing.assert_array_equal(f[1], brisque_features(cam2))


def test_mscn_matches_hand_computation():
    img = (
        np.add.outer(np.arange(9.0), 2 * np.arange(9.0)) ** 1.5 / 40.0 + np.eye(9) * 0.3
    )  # values in [0, ~3], not constant
    img = img / img.max()
    x = np.arange(7) - 3
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    padded = np.pad(img, 3, mode="edge")
    expected = np.empty_like(img)
    for i in range(9):
        for j in range(9):
            win = padded[i : i + 7, j : j + 7]
            mu = (w * win).sum()
            sd = np.sqrt(abs((w * win * win).sum() - mu * mu))
            expected[i, j] = (img[i, j] - mu) / (sd + 1 / 255)
    np.testing.assert_allclose(mscn(img), expected, rtol=1e-12, atol=1e-12)


def test_ggd_and_aggd_fit_recover_known_shapes():
    rng = np.random.default_rng(0)
    gauss = rng.normal(0, 2.0, 400_000)
    lap = rng.laplace(0, 1.0, 400_000)
    a, var = ggd_fit(gauss)
    assert a == pytest.approx(2.0, abs=0.03) and var == pytest.approx(4.0, rel=0.01)
    assert ggd_fit(lap)[0] == pytest.approx(1.0, abs=0.03)
    alpha, sl, sr = aggd_fit(gauss)
    assert (
        alpha == pytest.approx(2.0, abs=0.03)
        and sl == pytest.approx(2.0, rel=0.01)
        and sr == pytest.approx(2.0, rel=0.01)
    )
    # a true AGGD (shape 2, left scale 1, right scale 2): left mass 1 / (1 + 2)
    mag = np.abs(rng.normal(0, 1.0, 400_000))
    skew = np.where(rng.random(400_000) < 1 / 3, -mag, 2.0 * mag)
    alpha, sl, sr = aggd_fit(skew)
    assert (
        sl == pytest.approx(1.0, rel=0.01)
        and sr == pytest.approx(2.0, rel=0.01)
        and alpha == pytest.approx(2.0, abs=0.05)
    )


def test_resize_half_matches_opencv_cubic():
    img = data.camera()[:201, :157].astype(np.float64) / 255
    ref = cv2.resize(img, (157 // 2, 201 // 2), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(resize_half(img[None])[0], ref, atol=1e-6)


def test_numpy_svr_equals_libsvm_predict():
    from libsvm import svmutil

    f = brisque_features(np.stack([data.camera()[:256, :256], data.camera()[256:, 256:]]))
    rows = [{j + 1: float(v) for j, v in enumerate(r)} for r in scale_features(f)]
    expected, _, _ = svmutil.svm_predict([0.0, 0.0], rows, load_model()["model"], "-q")
    np.testing.assert_allclose(brisque_from_features(f), expected, rtol=1e-10)
    assert "svm.txt" in model_name() and "brisque" in model_name()


def test_blur_and_noise_raise_the_score():
    rng = np.random.default_rng(0)
    clean = data.camera().astype(np.float64)
    blur1, blur2 = ndimage.gaussian_filter(clean, 1), ndimage.gaussian_filter(clean, 2)
    noisy1 = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255)
    noisy2 = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255)
    s = {k: brisque(v) for k, v in dict(clean=clean, blur1=blur1, blur2=blur2, noisy1=noisy1, noisy2=noisy2).items()}
    assert s["clean"] < s["blur1"] < s["blur2"]
    assert s["clean"] < s["noisy1"] < s["noisy2"]


def test_constant_image_scores_nan_and_bad_inputs_are_rejected():
    assert np.isnan(brisque(np.full((32, 32), 7, np.uint8)))
    with pytest.raises(ValueError, match="16 x 16"):
        brisque(np.zeros((8, 40)))
    with pytest.raises(ValueError, match="NaN"):
        brisque(np.full((20, 20), np.nan))
    with pytest.raises(ValueError, match="2-D image or a stack"):
        brisque_features(np.zeros((2, 2, 20, 20)))
