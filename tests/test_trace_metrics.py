"""Trace metrics, ObsPy pickers, band-pass selection and the STFT masking baseline (issue 14 §4)."""

from __future__ import annotations

import numpy as np
import pytest

from seiscore.data import quake_synth as qs
from seiscore.metrics import picks as pk
from seiscore.metrics import traces as tm


def test_snr_and_l2_on_constructed_cases():
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 3, 500))
    err = rng.standard_normal((4, 3, 500))
    # Scale the error so that the SNR of every trace is exactly 10 dB.
    err *= np.sqrt((x0**2).sum(-1, keepdims=True) / (err**2).sum(-1, keepdims=True) / 10.0)
    est = x0 + err
    np.testing.assert_allclose(tm.snr_rec(x0, est), 10.0, atol=1e-9)
    np.testing.assert_allclose(tm.relative_l2(x0, est), np.sqrt(0.1), rtol=1e-9)
    noisy = x0 + 10 * err  # 20 dB worse in power
    np.testing.assert_allclose(tm.delta_snr(x0, est, noisy), 20.0, atol=1e-9)
    assert np.isposinf(tm.snr_rec(x0, x0)).all()
    x0z = x0.copy()
    x0z[0, 1] = 0
    assert np.isnan(tm.snr_rec(x0z, est)[0, 1])
    with pytest.raises(tm.TraceMetricError, match="shape"):
        tm.snr_rec(x0, est[..., :10])


def test_cc_finds_a_shift_within_the_lag_limit():
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((2, 3, 1000))
    shifted = np.roll(x0, 7, axis=-1)  # 0.07 s at 100 Hz
    c = tm.cc(x0, shifted, 100.0)
    assert (c > 0.98).all()
    assert (np.abs(tm.rho0(x0, shifted)) < 0.15).all()
    far = np.roll(x0, 20, axis=-1)  # 0.2 s: outside |tau| <= 0.1 s
    assert (tm.cc(x0, far, 100.0) < 0.2).all()
    np.testing.assert_allclose(tm.cc(x0, 3.0 * x0 + 1.0), 1.0, atol=1e-12)


def test_amplitude_and_windowed_snr():
    x0 = np.zeros((1, 3, 3000))
    x0[0, :, 1000:1100] = np.sin(np.linspace(0, 20, 100))
    peak = np.abs(x0).max(-1)
    np.testing.assert_allclose(tm.amplitude_error(x0, 0.8 * x0), 0.2, atol=1e-12)
    del peak
    # Noise power 0.01 before P, signal + noise after: SNR_win = 10 log10((Ps + Pn) / Pn).
    rng = np.random.default_rng(2)
    n = rng.standard_normal((1, 3, 3000))
    n /= n.std(-1, keepdims=True) * 10
    sig = np.zeros((1, 3, 3000))
    sig[0, :, 1000:1500] = 1.0
    val = tm.snr_win(sig + n, np.array([1000.0]), 100.0)
    pn = ((n[0, :, 450:950]) ** 2).mean(-1)
    ps = ((sig + n)[0, :, 1000:1500] ** 2).mean(-1)
    np.testing.assert_allclose(val[0], 10 * np.log10(ps / pn), rtol=1e-12)
    assert np.isnan(tm.snr_win(sig, np.array([np.nan]), 100.0)).all()
    assert np.isnan(tm.snr_win(sig, np.array([20.0]), 100.0)).all()  # no room for the noise window


def test_trace_metrics_and_summary():
    pairs = qs.make_pairs(8, 4)
    m = tm.trace_metrics(pairs.clean, pairs.noisy, noisy=pairs.noisy, p_sample=pairs.p_sample)
    assert set(m) == {"snr", "cc", "rho0", "amp_err", "rel_l2", "dsnr", "snr_win"}
    assert all(v.shape == (8,) for v in m.values())
    np.testing.assert_allclose(m["dsnr"], 0.0, atol=1e-9)
    s = tm.summarise(m)
    assert np.isfinite(s["snr"]) and -1 <= s["cc"] <= 1


def test_pickers_on_a_synthetic_event():
    pairs = qs.make_pairs(12, 5)
    picks = pk.pick(pairs.clean)
    assert set(picks) == {"ar_p", "ar_s", "baer_p"}
    clean = pk.score_picks(picks["baer_p"], pairs.p_sample)
    assert clean["recall@0.5"] >= 0.9 and abs(clean["res_mean@0.5"]) < 0.1
    ar = pk.score_picks(picks["ar_p"], pairs.p_sample)
    assert ar["recall@0.5"] >= 0.8
    # Clean picks are at least as good as noisy ones.
    noisy = pk.pick_scores(pairs.noisy, pairs.p_sample, pairs.s_sample)
    assert noisy["baer_p"]["recall@0.5"] <= clean["recall@0.5"]
    # Score definitions on a constructed case: 3 arrivals, 2 picks, one within 0.1 s, one 0.3 s off.
    sc = pk.score_picks(np.array([105.0, 230.0, np.nan]), np.array([100.0, 200.0, 300.0]))
    assert sc["recall@0.1"] == pytest.approx(1 / 3) and sc["precision@0.1"] == pytest.approx(1 / 2)
    assert sc["recall@0.5"] == pytest.approx(2 / 3) and sc["precision@0.5"] == pytest.approx(1.0)
    assert sc["res_mean@0.5"] == pytest.approx(0.175) and sc["f1@0.5"] == pytest.approx(0.8)
    with pytest.raises(pk.PickError, match="three-component"):
        pk.pick(np.zeros((2, 1, 100)))


def test_bandpass_selection_on_validation():
    from seiscore.methods.cdiffsd import baselines as bl

    val = qs.make_pairs(24, 6, split="train")
    choice = bl.choose_bandpass(val.noisy, val.clean)
    assert len(choice.table) == 15 and (choice.low, choice.high) in choice.table
    assert choice.table[(choice.low, choice.high)] == max(choice.table.values())
    # Band-passing with the chosen corners improves the validation SNR over the noisy input.
    assert choice.table[(choice.low, choice.high)] > np.nanmean(tm.snr_rec(val.clean, val.noisy))
    keep = val.noisy.copy()
    out = bl.bandpass(val.noisy, choice.low, choice.high)
    np.testing.assert_array_equal(keep, val.noisy)
    assert out.dtype == np.float32 and out.shape == val.noisy.shape
    with pytest.raises(bl.BandpassError, match="corners"):
        bl.bandpass(val.noisy, 1.0, 60.0)


def test_stft_mask_round_trip_and_training_step():
    import torch

    from seiscore.methods.cdiffsd import stft_mask as sm

    torch.set_num_threads(1)
    x = torch.randn(2, 3000)
    np.testing.assert_allclose(sm.istft(sm.stft(x), 3000).numpy(), x.numpy(), atol=1e-5)
    pairs = qs.make_pairs(4, 7)
    a = sm.train_stft_mask(pairs.clean, pairs.noisy, seed=3, batch_size=4, steps=2, width=4)
    b = sm.train_stft_mask(pairs.clean, pairs.noisy, seed=3, batch_size=4, steps=2, width=4)
    assert a.steps == 2 and len(a.history) == 2 and np.isfinite(a.history).all()
    assert a.history == b.history
    out = a.denoise(pairs.noisy[:2])
    assert out.shape == (2, 3, 3000) and out.dtype == np.float32 and np.isfinite(out).all()
    # A mask in [0, 1] never adds energy beyond the input's (up to STFT edge effects).
    assert (out**2).sum() <= 1.01 * (pairs.noisy[:2].astype(np.float64) ** 2).sum()


def test_ar_pick_s_is_dropped_where_obspy_reads_before_its_buffer():
    # ar_pick's S search reads lta_s samples before its buffers when its P pick comes before lta_s - l_p:
    # the S pick there depends on stray memory, so it is reported as no pick.
    fs = 100.0
    edge = (int(pk.AR_PARAMS["lta_s"] * fs) - int(pk.AR_PARAMS["l_p"] * fs)) / fs
    assert pk.s_pick_defined(np.array([edge, edge - 0.01, np.nan]), fs).tolist() == [True, False, False]
    pairs = qs.make_pairs(12, 5)
    early = np.roll(pairs.clean, -int((pairs.p_sample.max() / fs - 1.0) * fs), axis=-1)  # P at <= 1 s
    picks = pk.pick(early, fs)
    assert np.isfinite(picks["ar_p"]).any()
    assert np.isnan(picks["ar_s"][picks["ar_p"] / fs < edge]).all()
    late = pk.pick(pairs.clean, fs)  # the synthetic P arrives at 5-12 s: every S pick is defined
    assert np.isfinite(late["ar_s"]).sum() >= 10
