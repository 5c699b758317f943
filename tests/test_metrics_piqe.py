"""PIQE: against a literal per-block transcription of MATLAB's algorithm, and ordering."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from seiscore.metrics.mscn import mscn
from seiscore.metrics.piqe import piqe, piqe_block_maps


def _piqe_loops(img: np.ndarray) -> float:
    """Block-by-block PIQE written the way MATLAB's piqe.m loops (independent of the vectorised code)."""
    im = img.astype(np.float64)
    pr, pc = (-im.shape[0]) % 16, (-im.shape[1]) % 16
    im = np.pad(im, ((0, pr), (0, pc)), mode="edge")
    norm = mscn(im / 255.0)
    total, n_active = 0.0, 0
    for i in range(0, im.shape[0], 16):
        for j in range(0, im.shape[1], 16):
            b = norm[i : i + 16, j : j + 16]
            v = b.var(ddof=1)
            if v <= 0.1:
                continue
            n_active += 1
            impaired = False
            for edge in (b[0, :], b[:, 15], b[15, :], b[:, 0]):
                for s in range(11):
                    if edge[s : s + 6].std(ddof=1) < 0.1:
                        impaired = True
            center = np.concatenate([b[:, 7], b[:, 8]])
            surround = np.delete(b, [7, 9], axis=1).ravel()  # MATLAB deletes col 8, then col 9 of the rest
            ratio = center.std(ddof=1) / surround.std(ddof=1)
            ratio = 0.0 if np.isnan(ratio) else ratio
            sigma = np.sqrt(v)
            beta = abs(sigma - ratio) / max(sigma, ratio)
            total += impaired * (1 - v) + (sigma > 2 * beta) * v
    return 100.0 * (total + 1) / (n_active + 1)


@pytest.mark.parametrize("shape", [(96, 128), (101, 77)])
def test_matches_block_loop_transcription(shape):
    rng = np.random.default_rng(3)
    img = data.camera()[150 : 150 + shape[0], 200 : 200 + shape[1]].astype(np.float64)
    img[:40, :40] = 120.0  # a flat patch: inactive blocks and impaired edges
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).round()
    assert piqe(img) == pytest.approx(_piqe_loops(img), rel=1e-12)


def test_stack_scores_each_image():
    a, b = data.camera()[:128, :128], data.coins()[:128, :128]
    np.testing.assert_allclose(piqe(np.stack([a, b])), [piqe(a), piqe(b)])


def test_uniform_image_scores_100():
    assert piqe(np.full((64, 64), 90, np.uint8)) == 100.0
    assert not piqe_block_maps(np.full((64, 64), 90, np.uint8))["active"].any()


def test_blur_and_noise_raise_the_score():
    rng = np.random.default_rng(0)
    clean = data.camera().astype(np.float64)
    s = {
        "clean": piqe(clean),
        "blur1": piqe(ndimage.gaussian_filter(clean, 1)),
        "blur2": piqe(ndimage.gaussian_filter(clean, 2)),
        "noisy1": piqe(np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255)),
        "noisy2": piqe(np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255)),
    }
    assert s["clean"] < s["blur1"] < s["blur2"]
    assert s["clean"] < s["noisy1"] < s["noisy2"]
