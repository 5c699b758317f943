"""PSNR / SSIM in the paper convention against scikit-image's implementations."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from seiscore.data.synth import make_survey
from seiscore.metrics import minmax_255, psnr, psnr_per_slice, ssim, ssim_per_slice


@pytest.fixture(scope="module")
def cubes():
    noisy, clean = make_survey(n_inline=12, n_crossline=40, n_time=48, sigma=0.05)
    return clean, noisy


def test_psnr_per_slice_matches_skimage(cubes):
    clean, noisy = cubes
    r, e = minmax_255(clean), minmax_255(noisy)
    expected = [peak_signal_noise_ratio(r[:, :, k], e[:, :, k], data_range=255) for k in range(r.shape[2])]
    np.testing.assert_allclose(psnr_per_slice(clean, noisy), expected, rtol=1e-10)
    assert psnr(clean, noisy) == pytest.approx(np.mean(expected))


def test_ssim_per_slice_matches_skimage(cubes):
    clean, noisy = cubes
    r, e = minmax_255(clean), minmax_255(noisy)
    expected = [
        structural_similarity(
            r[:, :, k], e[:, :, k], data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        for k in range(r.shape[2])
    ]
    np.testing.assert_allclose(ssim_per_slice(clean, noisy), expected, rtol=1e-6)
    assert ssim(clean, clean) == pytest.approx(1.0)


def test_sampled_slices_scored_with_whole_array_ranges_match_the_full_computation():
    from seiscore.metrics import psnr_per_slice, ssim_per_slice

    rng = np.random.default_rng(11)
    ref = rng.standard_normal((16, 20, 9)).cumsum(axis=0)
    est = ref + 0.3 * rng.standard_normal(ref.shape)
    pick = [1, 4, 7]
    ranges = {"reference_range": (ref.min(), ref.max()), "estimate_range": (est.min(), est.max())}
    full_p, full_s = psnr_per_slice(ref, est, axis=2), ssim_per_slice(ref, est, axis=2)
    np.testing.assert_allclose(
        psnr_per_slice(ref[:, :, pick], est[:, :, pick], axis=2, **ranges), full_p[pick], rtol=1e-12
    )
    np.testing.assert_allclose(
        ssim_per_slice(ref[:, :, pick], est[:, :, pick], axis=2, **ranges), full_s[pick], rtol=1e-12
    )
    assert not np.allclose(psnr_per_slice(ref[:, :, pick], est[:, :, pick], axis=2), full_p[pick])  # own ranges differ
