"""The realistic-shape synthetic survey: slabs concatenate exactly, seeded, scaled, noisy as documented."""

import numpy as np
import pytest

from seiscore.data.synth_realistic import RealisticConfig, iter_slabs, make_realistic, realistic_slab

SHAPE = (12, 48, 160)


def test_slabs_concatenate_into_the_whole_cube():
    noisy, clean = make_realistic(SHAPE, seed=3)
    assert noisy.dtype == clean.dtype == np.float32 and noisy.shape == SHAPE
    parts = list(iter_slabs(SHAPE, seed=3, slab=5))
    assert [(a, b) for a, b, _, _ in parts] == [(0, 5), (5, 10), (10, 12)]
    np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), noisy)
    np.testing.assert_array_equal(np.concatenate([p[3] for p in parts]), clean)
    odd = realistic_slab(7, 9, SHAPE, seed=3)
    np.testing.assert_array_equal(odd[0], noisy[7:9])


def test_seeded_and_scaled():
    a = realistic_slab(0, 4, SHAPE, seed=1)
    b = realistic_slab(0, 4, SHAPE, seed=1)
    c = realistic_slab(0, 4, SHAPE, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    noisy, clean = make_realistic((16, 128, 500), seed=0)
    assert 0.3 < np.abs(clean).max() < 1.6  # fixed scale: about [-1, 1]
    assert np.abs(clean).mean() > 0.01  # events everywhere, not an empty cube
    residual = noisy - clean
    # Footprint alternates along crossline (period 4) and is constant along inline; the rest is sigma noise.
    fp = residual.mean(axis=0)
    cfg = RealisticConfig()
    decay = cfg.footprint_peak * np.exp(-np.arange(500) * cfg.dt / cfg.footprint_decay)
    np.testing.assert_allclose(fp[0::4].mean(axis=0), decay, atol=0.003)
    np.testing.assert_allclose(fp[2::4].mean(axis=0), -decay, atol=0.003)
    quiet = residual - fp[None]
    assert abs(quiet.std() - cfg.sigma) < 0.002


def test_bad_slab_one_line():
    with pytest.raises(ValueError, match="slab"):
        realistic_slab(5, 5, SHAPE)
    with pytest.raises(ValueError, match="shape"):
        realistic_slab(0, 1, (4, 4))
