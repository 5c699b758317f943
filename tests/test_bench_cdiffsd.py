"""The cdiffsd benchmark's report and target checks on a constructed result (the run itself is CPU minutes)."""

from __future__ import annotations

import json

from seiscore.bench import cdiffsd as bench


def _result(n_sampling=None):
    metrics = dict(snr=1.0, dsnr=0.0, cc=0.7, rho0=0.7, amp_err=0.2, rel_l2=1.0, snr_win=3.0)
    names = ["noisy (identity)", "band-pass 0.5-15 Hz", "STFT masking", "CDiffSD direct", "CDiffSD sampling"]
    table = [{"method": n, **metrics, "snr": float(i), "cc": 0.7 + 0.01 * i, "windows": 8, "seconds": 1.0}
             for i, n in enumerate(names)]  # fmt: skip
    picks = [{"version": v, **{f"{p}.{k}": 0.5 for p in ("ar_p", "ar_s", "baer_p")
                               for k in ("recall@0.1", "recall@0.5", "precision@0.5", "res_mean@0.5", "res_std@0.5")}}
             for v in ["clean", *names]]  # fmt: skip
    if n_sampling:
        table += [{**table[1], "method": f"band-pass 0.5-15 Hz [first {n_sampling}]", "snr": 9.0}]
        picks += [{**picks[1], "version": f"noisy (identity) [first {n_sampling}]", "baer_p.recall@0.5": 0.9}]
    return {
        "params": {"n_test": 8}, "n_sampling": n_sampling, "device": "cpu", "torch_threads": 2, "wall_seconds": 1.0,
        "quick": True, "cdiffsd_training": {"steps": 3, "seconds": 1.0, "loss_first": 2.0, "loss_last": 1.0,
                                            "parameters": 10, "crop": 1000},
        "stft_training": {"steps": 2, "seconds": 1.0, "loss_first": 0.7, "loss_last": 0.6},
        "bandpass": {"low": 0.5, "high": 15.0}, "test_input_snr_db": {"mean": 1.0, "median": 1.0},
        "table": table, "sweep": [{"snr_in": 0.0, **table[0]}], "picks": picks,
        "cost": [{"method": "CDiffSD direct", "device": "cpu", "ms_per_window": 12.0}],
        "demo": {"p_ref_sample": 100.0, "event_snr_win": 20.0,
                 "rows": [{"ratio": 0.5, "method": "CDiffSD direct", **metrics, "p_error_s": 0.02}]},
    }  # fmt: skip


def test_targets_and_markdown(tmp_path, monkeypatch):
    res = _result()
    t = res["targets"] = bench._targets(res)
    assert t["direct beats band-pass in mean SNR"] and t["sampling beats band-pass in mean CC"]
    assert t["direct P recall@0.5 (baer_p) >= noisy"]
    md = bench.markdown(res, "python -m seiscore.bench cdiffsd --quick", "loaded machine")
    for part in ("Synthetic test set", "SNR sweep", "Picking", "Cost per 3-C window", "Real-data demo", "Targets"):
        assert part in md
    # The sampling mode on a subset is judged against the other versions on that subset.
    sub = _result(n_sampling=4)
    ts = bench._targets(sub)
    assert not ts["sampling beats band-pass in mean SNR"] and ts["direct beats band-pass in mean SNR"]
    assert not ts["sampling P recall@0.5 (baer_p) >= noisy"]
    # --from-json rebuilds the report from the stored figures.
    monkeypatch.setattr("seiscore.bench.common.RESULTS_DIR", tmp_path)
    src = tmp_path / "r.json"
    src.write_text(json.dumps({**res, "targets": t, "command": "x", "note": ""}))
    assert bench.main(["--from-json", str(src), "--name", "rebuilt"]) == 0
    assert "Targets" in (tmp_path / "rebuilt.md").read_text()


def test_step_budget_training_is_reproducible_and_ablations_are_reported():
    from types import SimpleNamespace

    import numpy as np

    rng = np.random.default_rng(0)
    clean = rng.standard_normal((6, 3, 64)).astype(np.float32)
    pairs = SimpleNamespace(clean=clean, noisy=clean + 0.5 * rng.standard_normal(clean.shape).astype(np.float32))
    cfg = {"channels": 3, "dim": 8, "dim_mults": (1, 2), "attn_heads": 1, "attn_dim_head": 4, "T": 5, "batch_size": 2}
    a, info = bench.train_cdiffsd(cfg, pairs, seconds=0.0, seed=3, crop=32, steps=3)
    b, _ = bench.train_cdiffsd(cfg, pairs, seconds=0.0, seed=3, crop=32, steps=3)
    assert info["steps"] == 3 and info["lr_schedule"].startswith("cosine")
    for (ka, va), (kb, vb) in zip(a.tensors().items(), b.tensors().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy()), ka  # a step budget: same seed, same model
    res = {"params": {"ablation_steps": 3, "ablation_only": True}, "device": "cpu", "torch_threads": 1,
           "wall_seconds": 1.0, "ablation": [{"method": "v", "steps": 3, "seconds": 0.1, "loss_last": 0.5,
                                             "snr": 1.0, "dsnr": 0.5, "cc": 0.6}]}  # fmt: skip
    md = bench.markdown(res, "cmd", "")
    assert "Ablations (3 steps each" in md and "Synthetic test set" not in md
