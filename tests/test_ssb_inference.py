"""SSB inference on cubes: shape/dtype/orientation, exact patch reassembly, input checks, PSNR gain after training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seiscore.data.synth import make_survey
from seiscore.methods.ssb import DataConfig, SSBModelConfig, StageConfig, TrainConfig, denoise, load_model, train
from seiscore.methods.ssb.inference import blend_window, pick_device
from seiscore.methods.ssb.model import SSBModel
from seiscore.metrics import psnr

torch.set_num_threads(1)


def identity_model() -> SSBModel:
    """A real residual SSB model whose heads predict zero noise, so that its output is its input."""
    model = SSBModel(SSBModelConfig(patch=16, residual=True))
    with torch.no_grad():
        for expert in model.experts.values():
            expert.head.convs[-1].weight.zero_()
            expert.head.convs[-1].bias.zero_()
    return model


@pytest.mark.parametrize("axis,overlap", [(0, None), (1, 0), (2, 7)])
def test_reassembly_and_normalisation_are_exact(axis, overlap):
    rng = np.random.default_rng(1)
    vol = (3.0 + 250.0 * rng.standard_normal((19, 37, 45))).astype(np.float64)  # arbitrary scale and offset
    copy = vol.copy()
    out, gate = denoise(vol, identity_model(), axis=axis, batch_size=5, overlap=overlap, return_gate=True)
    assert out.shape == vol.shape and out.dtype == np.float64 and gate.shape == vol.shape
    assert np.allclose(out, vol, rtol=0, atol=1e-3)
    assert np.array_equal(vol, copy), "the caller's array was modified"
    assert ((gate >= 0) & (gate <= 1)).all()


def test_blend_window_is_smooth_and_flat_inside():
    w = blend_window(16, 4)
    assert w.shape == (16, 16) and np.allclose(w, w.T) and w[8, 8] == 1.0
    assert 0 < w[0, 0] < w[1, 1] < w[3, 3] < 1.0
    assert np.array_equal(blend_window(16, 0), np.ones((16, 16)))


def test_bad_inputs_are_named():
    model = identity_model()
    vol = np.zeros((4, 32, 32), np.float32)
    assert denoise(vol[:1], model).shape == (1, 32, 32)  # a single section is a valid cube
    with pytest.raises(ValueError, match="3-D"):
        denoise(vol[0], model)
    with pytest.raises(ValueError, match="integer"):
        denoise(vol.astype(np.int16), model)
    bad = vol.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        denoise(bad, model)
    with pytest.raises(ValueError, match="smaller than one 16x16 model patch"):
        denoise(vol, model, axis=1)  # sections of 4 x 32
    with pytest.raises(ValueError, match="axis"):
        denoise(vol, model, axis=3)
    with pytest.raises(ValueError, match="overlap"):
        denoise(vol, model, overlap=16)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="allow_cpu=True"):
            pick_device(None, allow_cpu=False)
        with pytest.raises(RuntimeError, match="needs a GPU"):
            denoise(vol, model, allow_cpu=False)


def test_short_training_then_denoise_improves_psnr(tmp_path):
    data = DataConfig(
        noise_levels=((0.2, 0.02), (0.5, 0.03)),
        survey_shape=(6, 32, 48),
        train_surveys_per_level=2,
        crops_per_survey=32,
        heldout_shape=(4, 32, 48),
        heldout_sections_per_level=1,
    )
    cfg = TrainConfig(
        model=SSBModelConfig(patch=16),
        data=data,
        expert_stage=StageConfig(epochs=3, lr=3e-3, batch_size=16),
        router_stage=StageConfig(epochs=1, batch_size=16),
        joint_stage=StageConfig(epochs=2, lr=1e-3, batch_size=16),
        variants=("residual",),
        train_base=False,
        output_dir=tmp_path,
        epoch_eval_sections=1,
    )
    model = load_model(train(cfg).artifacts["residual_joint"])
    noisy, clean = make_survey(n_inline=8, n_crossline=40, n_time=56, footprint_peak=0.3, sigma=0.02, seed=77)
    out = denoise(noisy, model, axis=0, batch_size=8)
    assert out.shape == noisy.shape and out.dtype == np.float32
    before, after = psnr(clean, noisy, axis=0), psnr(clean, out, axis=0)
    assert after > before + 3, (before, after)
