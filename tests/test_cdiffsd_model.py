"""CDiffSD model (issue 14 §3, spec §2): the cold schedule, the U-Net, the two-pass loss, the cold sampler and
``direct``, ``denoise`` with event-wise normalisation, exact save / load, bad artifacts, seeded resumable
training through the fit mode, the per_item method on a real trace store and ObsPy's example event."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seiscore.execution.fit import TENSORS, ArtifactError, FitCheckpoint, fit_method
from seiscore.methods.cdiffsd.config import CDiffSDConfig, CDiffSDError
from seiscore.methods.cdiffsd.loss import unfolded_loss
from seiscore.methods.cdiffsd.model import FORMAT_VERSION, CDiffSDModel
from seiscore.methods.cdiffsd.sampler import cold_sample, direct, visited_steps
from seiscore.methods.cdiffsd.schedule import ColdSchedule, betas, coefficients
from seiscore.methods.cdiffsd.unet1d import UNet1D

torch.set_num_threads(1)


def _events(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Small clean 3-C wavelets and noisy versions (generated here: fast, seeded)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, None, :]
    onset = rng.uniform(0.2, 0.5, size=(n, 1, 1)) * length
    f = rng.uniform(0.02, 0.08, size=(n, 3, 1))
    env = np.exp(-np.clip(t - onset, 0, None) / (0.1 * length)) * (t >= onset)
    clean = (env * np.sin(2 * np.pi * f * (t - onset)) * rng.uniform(0.3, 1.0, size=(n, 3, 1))).astype(np.float32)
    noisy = (clean + 0.3 * rng.standard_normal(clean.shape)).astype(np.float32)
    return clean, noisy


# -- schedule and sampler --------------------------------------------------------------------------------------
def test_linear_schedule_ends_at_the_noisy_trace_and_cosine_does_not():
    s = ColdSchedule.from_config(CDiffSDConfig(T=300))
    assert np.all(np.diff(s.a) < 0) and np.all(np.diff(s.b) > 0)
    assert s.a[-1] == pytest.approx(0.006, abs=5e-4) and s.b[0] == pytest.approx(0.018, abs=1e-3)
    clean, noisy = _events(4, 256, 0)
    x0, y = torch.from_numpy(clean), torch.from_numpy(noisy)
    xt = s.degrade(x0, y, torch.full((4,), 299))
    assert float((xt - y).abs().max()) < 0.01 * float(y.abs().max())  # x_{T-1} ~ y
    cos = ColdSchedule.from_config(CDiffSDConfig(T=300, schedule="cosine"))
    assert cos.a[-1] == pytest.approx(0.22, abs=0.01)
    legacy = ColdSchedule.from_config(CDiffSDConfig(T=300, legacy_test_schedule=True))
    assert np.array_equal(legacy.a, s.a) and legacy.sample_a[-1] == pytest.approx(0.22, abs=0.01)
    assert legacy.start == 298 and s.start == 299
    tiny = ColdSchedule.from_config(CDiffSDConfig(T=5))  # betas clipped: still a valid schedule
    assert np.all(np.isfinite(tiny.a)) and tiny.a[-1] < 1e-3


@pytest.mark.parametrize("T", [2, 5, 20, 300])
def test_angle_schedule_ends_exactly_at_y_with_evenly_spaced_angles(T):
    s = ColdSchedule.from_config(CDiffSDConfig(T=T, schedule="angle"))
    phi = np.pi / 2 * np.arange(1, T + 1) / T
    np.testing.assert_allclose(s.a, np.cos(phi), atol=1e-12)
    np.testing.assert_allclose(s.b, np.sin(phi), atol=1e-12)
    assert np.all(np.diff(s.a) < 0) and np.all(np.diff(s.b) > 0)  # monotone: every step changes x_t
    assert s.a[-1] == 0.0 and s.b[-1] == 1.0 and s.start == T - 1
    np.testing.assert_allclose(np.diff(np.arctan2(s.b, s.a)), np.pi / 2 / T, atol=1e-12)  # evenly spaced angles
    beta = betas(T, "angle")
    assert np.all((beta > 0) & (beta <= 1)) and np.array_equal(coefficients(beta)[0], s.a)
    clean, noisy = _events(3, 64, 2)
    x0, y = torch.from_numpy(clean), torch.from_numpy(noisy)
    assert torch.equal(s.degrade(x0, y, torch.full((3,), T - 1)), y)  # x_{T-1} == y exactly
    lin = ColdSchedule.from_config(CDiffSDConfig(T=T))
    assert (s.a > 0.06).sum() >= (lin.a > 0.06).sum()  # never more near-y steps than the scaled linear one


def test_strided_sampling_visits_evenly_spaced_steps_and_keeps_the_oracle_fixed_point():
    assert visited_steps(19) == list(range(19, -1, -1)) and visited_steps(19, 30) == list(range(19, -1, -1))
    assert visited_steps(19, 3) == [19, 10, 0] and visited_steps(19, 5) == [19, 14, 10, 5, 0]
    with pytest.raises(ValueError, match="at least 2"):
        visited_steps(19, 1)
    with pytest.raises(ValueError):
        CDiffSDConfig(sampling_steps=1)
    s = ColdSchedule.from_config(CDiffSDConfig(T=20, schedule="angle"))
    clean, noisy = _events(2, 64, 3)
    x0, y = torch.from_numpy(clean).double(), torch.from_numpy(noisy).double()
    seen = []

    def oracle(x, t):
        seen.append(int(t[0]))
        return x0

    torch.testing.assert_close(cold_sample(oracle, s, y, evaluations=4), x0, rtol=1e-12, atol=1e-12)
    assert seen == visited_steps(19, 4)
    w = {k: 0.5 + 0.02 * k for k in range(20)}  # an imperfect network: the stride changes the result

    def net(x, t):
        return w[int(t[0])] * x

    full, strided = cold_sample(net, s, y), cold_sample(net, s, y, evaluations=4)
    x = y  # the strided anchored chain by hand: s -> next visited step p
    for k, p in zip([19, 13, 6, 0], [13, 6, 0, None]):
        x0h = w[k] * x
        x = x0h if p is None else x + (s.a[p] - s.a[k]) * x0h + (s.b[p] - s.b[k]) * y
    torch.testing.assert_close(strided, x, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(full, strided)
    _, noisy = _events(2, 64, 5)
    m_all = CDiffSDModel(CDiffSDConfig(T=6, length=64), seed=3)
    m_two = CDiffSDModel(CDiffSDConfig(T=6, length=64, sampling_steps=2), seed=3)
    assert not np.allclose(m_all.denoise(noisy, "sampling"), m_two.denoise(noisy, "sampling"))


@pytest.mark.parametrize("kw", [{"T": 300}, {"T": 20}, {"T": 50, "schedule": "cosine"}])
@pytest.mark.parametrize("sampler", ["released", "consistent", "anchored"])
def test_sampler_with_an_oracle_network(kw, sampler):
    """An exact network: ``consistent`` and ``anchored`` end at x0, the released update at (1 + b_0) x0."""
    s = ColdSchedule.from_config(CDiffSDConfig(**kw, sampler=sampler))
    assert s.sampler == sampler
    clean, noisy = _events(3, 128, 1)
    x0, y = torch.from_numpy(clean).double(), torch.from_numpy(noisy).double()
    seen = []

    def oracle(x, t):
        seen.append(int(t[0]))
        return x0

    out = cold_sample(oracle, s, y)
    assert seen == list(range(kw["T"] - 1, -1, -1))
    gain = 1 + s.b[0] if sampler == "released" else 1.0
    torch.testing.assert_close(out, gain * x0, rtol=1e-9, atol=1e-9)
    seen.clear()
    assert torch.equal(direct(oracle, s, y), x0) and seen == [kw["T"] - 1]


def test_sampler_updates_follow_their_formulas_and_the_config_selects_them():
    assert CDiffSDConfig().sampler == "anchored"  # default: the best measured on the quick benchmark model
    with pytest.raises(ValueError, match="sampler"):
        CDiffSDConfig(sampler="ddim")
    s = ColdSchedule.from_config(CDiffSDConfig(T=3, sampler="released"))
    a, b = s.sample_a, s.sample_b
    torch.manual_seed(0)
    y = torch.randn(2, 3, 16, dtype=torch.float64)
    w = {0: 0.5, 1: 0.7, 2: 0.9}  # an imperfect linear "network": R(x, t) = w_t x

    def net(x, t):
        return w[int(t[0])] * x

    def by_hand(form):
        x = y
        for k in (2, 1, 0):
            x0h = w[k] * x
            n_hat = (x - (a[k] + b[k]) * x0h) / b[k]
            if form == "released":
                x = (b[k] + a[k - 1]) * x0h + b[k - 1] * n_hat if k else x - a[k] * x0h - b[k] * n_hat + x0h
            elif k == 0:
                x = x0h
            elif form == "consistent":
                x = (a[k - 1] + b[k - 1]) * x0h + b[k - 1] * n_hat
            else:
                x = x - (a[k] * x0h + b[k] * y) + (a[k - 1] * x0h + b[k - 1] * y)
        return x

    outs = {}
    for form in ("released", "consistent", "anchored"):
        outs[form] = cold_sample(net, s, y, sampler=form)
        torch.testing.assert_close(outs[form], by_hand(form), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(outs["released"], outs["anchored"])
    assert not torch.allclose(outs["consistent"], outs["anchored"])
    torch.testing.assert_close(cold_sample(net, s, y), outs["released"], rtol=0, atol=0)  # the schedule's choice
    with pytest.raises(ValueError, match="unknown CDiffSD sampler"):
        cold_sample(net, s, y, sampler="ddim")
    # the configuration reaches denoise(mode="sampling")
    _, noisy = _events(2, 64, 5)
    m_rel = CDiffSDModel(CDiffSDConfig(T=4, length=64, sampler="released"), seed=3)
    m_anc = CDiffSDModel(CDiffSDConfig(T=4, length=64, sampler="anchored"), seed=3)
    assert np.array_equal(m_rel.denoise(noisy), m_anc.denoise(noisy))
    assert not np.allclose(m_rel.denoise(noisy, "sampling"), m_anc.denoise(noisy, "sampling"))


# -- network and loss --------------------------------------------------------------------------------------------
def test_unet_has_the_spec_size_and_keeps_shapes():
    net = UNet1D(CDiffSDConfig())
    assert sum(p.numel() for p in net.parameters()) == 347_937  # the released model's count (spec §2.2)
    x = torch.randn(2, 1, 3000)
    assert net(x, torch.tensor([0, 299])).shape == (2, 1, 3000)
    net3 = UNet1D(CDiffSDConfig(channels=3, length=512))
    assert net3(torch.randn(1, 3, 512), torch.tensor([3])).shape == (1, 3, 512)
    with pytest.raises(ValueError, match="not divisible by 8"):
        CDiffSDConfig(length=3001)


def test_linear_attention_cheap_order_equals_the_plain_order():
    from seiscore.methods.cdiffsd.unet1d import LinearAttention

    torch.manual_seed(0)
    for c in (8, 64):
        att = LinearAttention(c, 4, 32)
        torch.nn.init.normal_(att.out_norm.gain)
        x = torch.randn(3, c, 200)
        torch.testing.assert_close(att(x), att.forward_reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("legacy", [False, True])
def test_two_pass_loss_decreases_over_a_few_steps(legacy):
    cfg = CDiffSDConfig(T=5, length=256, channels=3)
    model = CDiffSDModel(cfg, seed=0)
    clean, noisy = _events(8, 256, 2)
    x0, y = torch.from_numpy(clean), torch.from_numpy(noisy)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for k in range(12):
        loss, parts = unfolded_loss(
            model, model.schedule, x0, y, torch.Generator().manual_seed(k), legacy_unfold=legacy
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        assert loss.item() == pytest.approx(parts["loss_first"] + 3.0 * parts["loss_second"], rel=1e-5)
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_previous_unfold_step_makes_the_second_pass_one_anchored_sampler_transition():
    s = ColdSchedule.from_config(CDiffSDConfig(T=6, schedule="angle"))
    clean, noisy = _events(16, 64, 4)
    x0, y = torch.from_numpy(clean).double(), torch.from_numpy(noisy).double()
    calls = []

    def net(x, t):  # records its inputs; an imperfect estimate so that the two passes differ
        calls.append((x, t.clone()))
        return 0.9 * x0 + 0.05 * y

    for step in ("random", "previous"):
        calls.clear()
        unfolded_loss(net, s, x0, y, torch.Generator().manual_seed(0), unfold_step=step)
        (x1, t1), (x2, t2) = calls
        torch.testing.assert_close(x1, s.degrade(x0, y, t1))
        if step == "previous":
            assert torch.equal(t2, (t1 - 1).clamp(min=0))
        else:
            assert not torch.equal(t2, (t1 - 1).clamp(min=0))
        a2, b2 = s.torch_coeffs(t2, x0)
        torch.testing.assert_close(x2, a2 * (0.9 * x0 + 0.05 * y) + b2 * y)  # a_{t'} x0_hat + b_{t'} y
    with pytest.raises(ValueError, match="unfold_step"):
        unfolded_loss(net, s, x0, y, unfold_step="next")
    with pytest.raises(ValueError):
        CDiffSDConfig(unfold_step="next")


# -- denoise, save / load, bad artifacts --------------------------------------------------------------------------
def test_denoise_normalises_per_event_and_checks_its_input():
    model = CDiffSDModel(CDiffSDConfig(T=5, length=256), seed=1)
    _, noisy = _events(5, 256, 3)
    noisy[2] = 0.0
    before = noisy.copy()
    out = model.denoise(noisy, batch_size=2)
    assert out.dtype == np.float32 and out.shape == noisy.shape and np.array_equal(noisy, before)
    assert np.all(out[2] == 0)
    scaled = model.denoise(noisy * 1e4, batch_size=5)  # scale-free up to float rounding (other batch size too)
    np.testing.assert_allclose(scaled, out * 1e4, rtol=0, atol=2e-3 * float(np.abs(out).max()) * 1e4)
    bad = noisy.copy()
    bad[3, 1, 7] = np.nan
    with pytest.raises(CDiffSDError, match="window 3 has NaN"):
        model.denoise(bad)
    with pytest.raises(CDiffSDError, match="expected \\[windows, 3 components"):
        model.denoise(noisy[:, :2])
    with pytest.raises(CDiffSDError, match="multiple of 8"):
        model.denoise(noisy[..., :250])
    with pytest.raises(CDiffSDError, match="unknown CDiffSD mode"):
        model.denoise(noisy, "fast")


def test_save_load_reproduces_outputs_exactly_and_refuses_bad_artifacts(tmp_path):
    model = CDiffSDModel(CDiffSDConfig(T=4, length=256), seed=5)
    _, noisy = _events(3, 256, 4)
    direct_out, sampled = model.denoise(noisy), model.denoise(noisy, "sampling")
    folder = model.save(tmp_path / "m", {"note": "test"})
    loaded = CDiffSDModel.load(folder)
    assert np.array_equal(loaded.denoise(noisy), direct_out)
    assert np.array_equal(loaded.denoise(noisy, "sampling"), sampled)
    assert loaded.card["note"] == "test" and loaded.card["model_config"]["T"] == 4
    # another format version
    card = json.loads((folder / "model_card.json").read_text())
    (folder / "model_card.json").write_text(json.dumps({**card, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ArtifactError, match="format version 2; this seiscore .* reads version 1"):
        CDiffSDModel.load(folder)
    # missing tensors
    from safetensors.torch import load_file, save_file

    (folder / "model_card.json").write_text(json.dumps(card))
    tensors = load_file(str(folder / TENSORS))
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, str(folder / TENSORS))
    with pytest.raises(ArtifactError, match=f"1 missing tensor.*{dropped}"):
        CDiffSDModel.load(folder)
    with pytest.raises(CDiffSDError, match="does not exist"):
        CDiffSDModel.load(tmp_path / "nowhere")
    (folder / "model_card.json").write_text(json.dumps({**card, "format": "seiscore-ssb"}))
    with pytest.raises(ArtifactError, match="describes format 'seiscore-ssb'"):
        CDiffSDModel.load(folder)


def test_obspy_example_event_through_denoise():
    import obspy

    st = obspy.read()  # BW.RJOB EHZ/EHN/EHE, 100 Hz, 3000 samples
    x = np.stack([st.select(component=c)[0].data for c in "ZNE"])[None].astype(np.float32)
    model = CDiffSDModel(CDiffSDConfig(), seed=0)
    out = model.denoise(x)
    assert out.shape == (1, 3, 3000) and np.isfinite(out).all()
    assert np.abs(out).max() > 0


# -- training through the fit mode: seeded, resumable, artifact --------------------------------------------------
TRAIN = {
    "T": 5,
    "channels": 3,
    "n_train": 8,
    "n_val": 4,
    "epochs": 2,
    "batch_size": 4,
    "steps_per_epoch": 2,
    "lr": 1e-3,
    "allow_cpu": True,
    "threads": 1,
}


class Stop(Exception):
    pass


def test_training_resumes_identically_and_writes_a_loadable_artifact(tmp_path):
    spec = {"name": "cdiffsd-train", "params": TRAIN}
    full = fit_method(spec, tmp_path / "a", seed=7)

    def stop_after_first_checkpoint(event):
        if isinstance(event, FitCheckpoint):
            raise Stop

    with pytest.raises(Stop):
        fit_method(spec, tmp_path / "b", seed=7, callback=stop_after_first_checkpoint)
    resumed = fit_method(spec, tmp_path / "b", seed=7)
    assert resumed["data_hash"] == full["data_hash"] and resumed["val"] == full["val"]
    a, b = CDiffSDModel.load(full["artifact"]), CDiffSDModel.load(resumed["artifact"])
    for k, v in a.tensors().items():
        assert torch.equal(v, b.tensors()[k]), k
    card = a.card
    assert card["data_hash"] == full["data_hash"] and card["seed"] == 7 and "val_snr_direct" in card["val_metrics"]
    assert card["config"]["params"]["T"] == 5 and card["model_config"]["channels"] == 3


# -- the registered per_item method on a real trace store ---------------------------------------------------------
def test_cdiffsd_method_denoises_a_trace_store_batch_by_batch(tmp_path):
    from seiscore.data.kinds import get_kind
    from seiscore.data.traces import Record, create_trace_output, records_to_windows, write_trace_store
    from seiscore.execution.per_item import pending_batches, plan_items, process_batch
    from seiscore.methods.registry import get_method, parse_spec

    model = CDiffSDModel(CDiffSDConfig(T=3, length=256), seed=2)
    folder = model.save(tmp_path / "model")
    clean, noisy = _events(2, 700, 6)
    records = [Record(id=f"XX.S{i}..EH?", data=noisy[i], sampling_rate=100.0) for i in range(2)]
    windows = records_to_windows(records, length=256, hop=128)
    store = write_trace_store(tmp_path / "in.zarr", windows)
    spec = {"name": "cdiffsd", "model": str(folder), "batch_size": 3}
    method = get_method("cdiffsd")
    assert method.resources(parse_spec(spec)) == {}
    assert method.resources(parse_spec({**spec, "params": {"mode": "sampling"}})) == {"GPU": 1}
    assert method.check(parse_spec(spec), get_kind("traces3c"), (10, 3, 256)) == []
    job = plan_items(store, tmp_path / "out.zarr", spec, "traces3c")
    create_trace_output(store, job.output_store, chunks=job.chunks)  # as the denoise-traces flow does
    job.state().begin("test-run", job)
    for b in pending_batches(job):
        process_batch(job, b)
    import zarr

    out = zarr.open_group(str(job.output_store), mode="r", use_consolidated=False)["amplitude"][...]
    data = windows.data  # each task's batch of 3 windows is one denoise call: the same numbers bit for bit
    expected = np.concatenate([model.denoise(data[i : i + 3]) for i in range(0, len(data), 3)])
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(Exception, match="CDiffSD needs a model artifact folder"):
        parse_spec({"name": "cdiffsd"})
