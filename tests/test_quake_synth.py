"""Synthetic earthquakes and noise (seiscore.data.quake_synth): physics, exact arrivals, mixing rules."""

from __future__ import annotations

import numpy as np
import pytest

from seiscore.data import quake_synth as qs


def test_events_shapes_seeded_and_exact_arrivals():
    ev = qs.make_events(40, 7)
    assert ev.clean.shape == (40, 3, 3000) and ev.clean.dtype == np.float32
    np.testing.assert_allclose(np.abs(ev.clean).max(axis=(1, 2)), 1.0, rtol=1e-6)
    again = qs.make_events(40, 7)
    np.testing.assert_array_equal(ev.clean, again.clean)
    assert not np.array_equal(ev.clean, qs.make_events(40, 8).clean)
    # Geometry: tP in 5-12 s, tS = tP + d (1/Vs - 1/Vp) <= 27 s.
    tp, ts = ev.p_sample / 100.0, ev.s_sample / 100.0
    assert (tp >= 5).all() and (tp <= 12).all() and (ts <= 27 + 1e-9).all()
    d = ev.params["distance_km"]
    np.testing.assert_allclose(ts - tp, d * (1 / qs.VS_KM_S - 1 / qs.VP_KM_S), rtol=1e-12)
    # Causal onset: exactly zero before the P sample, energy right after it.
    idx = np.arange(3000)
    before = idx[None, :] < ev.p_sample[:, None]
    assert np.abs(np.where(before[:, None, :], ev.clean, 0)).max() == 0.0
    first = np.ceil(ev.p_sample).astype(int)
    after = np.abs(ev.clean[np.arange(40), :, :][:, :, None, :]).squeeze(2)
    win = (idx[None, :] >= first[:, None]) & (idx[None, :] < first[:, None] + 50)
    assert (np.where(win[:, None, :], after, 0).max(axis=(1, 2)) > 1e-4).all()
    # P mostly on Z: in the first 0.5 s after P, Z carries more energy than either horizontal on average.
    e = (np.where(win[:, None, :], ev.clean, 0) ** 2).sum(-1)
    assert np.median(e[:, 0] / e[:, 1:].max(1)) > 1.0
    # S is stronger than P on the horizontals.
    s_first = np.ceil(ev.s_sample).astype(int)
    s_win = (idx[None, :] >= s_first[:, None]) & (idx[None, :] < s_first[:, None] + 100)
    es = (np.where(s_win[:, None, :], ev.clean, 0) ** 2).sum(-1)
    assert np.median(es[:, 1:].sum(1) / np.maximum(e[:, 1:].sum(1), 1e-30)) > 1.0


def test_brune_corner_follows_magnitude():
    ev = qs.make_events(300, 1)
    fc, mag = ev.params["fc_hz"], ev.params["magnitude"]
    assert np.corrcoef(np.log(fc), mag)[0, 1] < -0.7
    assert fc.min() >= 0.3 and fc.max() <= 25.0


def test_noise_kinds_unit_peak_and_real_pool():
    noise, kinds = qs.make_noise(48, 3, with_kinds=True)
    assert noise.shape == (48, 3, 3000) and noise.dtype == np.float32
    np.testing.assert_allclose(np.abs(noise).max(axis=(1, 2)), 1.0, rtol=1e-6)
    assert set(kinds) <= set(qs.NOISE_KINDS) and len(set(kinds)) >= 3
    np.testing.assert_array_equal(noise, qs.make_noise(48, 3))
    real = qs.make_noise(12, 4, kinds=("real",), split="test")
    assert np.isfinite(real).all() and (real.std(axis=-1) > 1e-3).all()
    # Train and test windows come from disjoint parts of the records: no identical windows.
    train = qs.make_noise(12, 4, kinds=("real",), split="train")
    assert not np.array_equal(train, real)
    demo = qs.demo_noise_record()
    assert demo.ndim == 1 and demo.size > 30000


def test_noise_bad_arguments():
    with pytest.raises(qs.QuakeSynthError, match="kinds"):
        qs.make_noise(2, 0, kinds=("thunder",))
    with pytest.raises(qs.QuakeSynthError, match="split"):
        qs.make_noise(2, 0, split="val")
    with pytest.raises(qs.QuakeSynthError, match="shape"):
        qs.mix_snr(np.zeros((2, 3, 10)), np.zeros((2, 3, 11)), 0.0)
    with pytest.raises(qs.QuakeSynthError, match="seed"):
        qs.make_pairs(2, "x")


def test_paper_mix_and_snr_mix():
    ev = qs.make_events(20, 2)
    clean = ev.clean * np.linspace(0.1, 50, 20, dtype=np.float32)[:, None, None]  # arbitrary event scales
    noise = qs.make_noise(20, 5, kinds=("coloured",))
    keep = clean.copy()
    noisy = qs.mix_paper(clean, noise, 11)
    np.testing.assert_array_equal(clean, keep)  # caller's array untouched
    r = qs.paper_ratios(20, 11)
    assert set(np.round(r * 100).astype(int)) <= set(range(40, 66))
    peak = np.abs(clean).max(axis=(1, 2))
    np.testing.assert_allclose(noisy - clean, (r * peak)[:, None, None] * noise, atol=1e-4 * peak.max())
    target = np.linspace(-5, 20, 20)
    swept = qs.mix_snr(clean, noise, target)
    np.testing.assert_allclose(qs.power_snr_db(clean, swept), target, atol=1e-3)


def test_make_pairs_seeded():
    a = qs.make_pairs(16, 9)
    b = qs.make_pairs(16, 9)
    np.testing.assert_array_equal(a.noisy, b.noisy)
    assert a.noisy.shape == a.clean.shape == (16, 3, 3000)
    np.testing.assert_allclose(qs.power_snr_db(a.clean, a.noisy), a.snr_db)
    s = qs.make_pairs(16, 9, snr_db=0.0)
    np.testing.assert_allclose(s.snr_db, 0.0, atol=1e-3)
    assert np.isnan(s.ratio).all()
