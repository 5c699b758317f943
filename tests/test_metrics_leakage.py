"""Signal leakage (local similarity of denoised data and removed noise)."""

import numpy as np
import pytest
from scipy import ndimage

from seiscore.metrics.leakage import leakage_per_slice, local_similarity, smooth_divide


@pytest.fixture(scope="module")
def signal():
    rng = np.random.default_rng(0)
    s = ndimage.gaussian_filter(rng.normal(size=(6, 80, 96)), (0, 2, 2))
    return s / s.std()


def test_random_noise_removed_gives_low_leakage(signal):
    noise = np.random.default_rng(1).normal(size=signal.shape)
    mean, maps = leakage_per_slice(signal, noise)
    assert maps.shape == signal.shape
    assert (mean < 0.1).all()


def test_signal_copy_removed_gives_high_leakage(signal):
    mean, _ = leakage_per_slice(signal, signal.copy())
    assert (mean > 0.8).all()


def test_leakage_grows_with_the_fraction_of_signal_removed(signal):
    noise = np.random.default_rng(2).normal(size=signal.shape)
    means = [leakage_per_slice(signal, k * signal + noise)[0].mean() for k in (0.0, 0.3, 1.0, 3.0)]
    assert means == sorted(means) and means[-1] > 3 * means[0]


def test_local_leakage_is_located_where_signal_was_removed(signal):
    removed = np.random.default_rng(3).normal(size=signal.shape)
    removed[:, :, 48:] += 2 * signal[:, :, 48:]
    _, maps = leakage_per_slice(signal, removed)
    assert maps[:, 10:70, 60:90].mean() > 2.5 * maps[:, 10:70, 5:35].mean()


def test_smooth_division_recovers_a_smooth_ratio():
    rng = np.random.default_rng(4)
    den = rng.normal(size=(120, 100))
    ratio = 1.5 + 0.5 * np.sin(np.linspace(0, np.pi, 100))[None, :] * np.ones((120, 1))
    est = smooth_divide(ratio * den, den, radius=3, niter=50, dtype=np.float64)
    assert np.abs(est[20:-20, 20:-20] - ratio[20:-20, 20:-20]).max() < 0.1


def test_3d_similarity_and_input_checks(signal):
    sim = local_similarity(signal, 2 * signal, radius=2)
    assert sim.shape == signal.shape and sim[:, 10:-10, 10:-10].min() > 0.7
    with pytest.raises(ValueError, match="same shape"):
        local_similarity(signal, signal[:, :-1])
    with pytest.raises(ValueError, match="finite"):
        local_similarity(signal, np.full(signal.shape, np.nan))
    with pytest.raises(ValueError, match="radius"):
        local_similarity(signal, signal, radius=-1)
