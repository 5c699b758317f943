"""SSB model pieces: blend and TV against hand computations, LoRA placement, frozen backbones, loss decrease."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seiscore.methods.ssb import ExpertConfig, LoRASettings, SSBModelConfig
from seiscore.methods.ssb.config import TINY_DINO, TINY_SWIN, BackboneConfig
from seiscore.methods.ssb.model import SSBModel
from seiscore.methods.ssb.router import blend, ssb_loss, total_variation

PATCH = 16
torch.set_num_threads(1)  # the CI machine's 2 cores are shared: one thread avoids OpenMP oversubscription


def tiny_config(**update) -> SSBModelConfig:
    return SSBModelConfig(patch=PATCH, **update)


def test_blend_matches_formula_by_hand():
    e_swin = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    e_dino = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    g = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    # (1 - g) * swin + g * dino, element by element
    expected = torch.tensor([[1.0, 20.0], [0.5 * 3 + 0.5 * 30, 0.75 * 4 + 0.25 * 40]])
    assert torch.allclose(blend(e_swin, e_dino, g), expected)


def test_total_variation_by_hand():
    g = torch.tensor([[0.0, 1.0, 1.0], [0.5, 0.5, 0.0]])
    # vertical |g[i+1,j]-g[i,j]|: 0.5, 0.5, 1.0 -> mean 2/3; horizontal: 1, 0, 0, 0.5 -> mean 3/8
    assert total_variation(g).item() == pytest.approx(2 / 3 + 3 / 8)
    assert total_variation(torch.full((4, 5), 0.3)).item() == 0.0
    out, clean = torch.zeros(2, 3), torch.ones(2, 3)
    assert ssb_loss(out, clean, g, 0.005).item() == pytest.approx(1.0 + 0.005 * (2 / 3 + 3 / 8))


def test_lora_only_on_attention_projections_and_base_has_none():
    model = SSBModel(tiny_config())
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora and all(".attention." in n for n in lora)
    assert any("q_proj.lora_A" in n for n in lora) and any("self.query.lora_A" in n for n in lora)
    assert all(
        n.split(".lora_")[0].rsplit(".", 1)[-1]
        in {"q_proj", "k_proj", "v_proj", "o_proj", "query", "key", "value", "dense"}
        for n in lora
    )
    a = next(p for n, p in model.named_parameters() if n.endswith("q_proj.lora_A.default.weight"))
    assert a.shape[0] == 16  # default rank r = 16
    base = SSBModel(
        tiny_config(
            dino=ExpertConfig(backbone=BackboneConfig(kind="dinov3", hf_config=TINY_DINO), lora=None),
            swin=ExpertConfig(backbone=BackboneConfig(kind="swinv2", hf_config=TINY_SWIN), lora=None),
        )
    )
    assert not [n for n, _ in base.named_parameters() if "lora_" in n]


def _pairs(n=32, seed=0):
    """Noisy/clean 16x16 crops: smooth dipping layers plus stripes and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:PATCH, 0:PATCH]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    clean = np.sin(0.5 * y[None] + 0.2 * x[None] + phase)
    noisy = clean + 0.5 * np.where(x % 4 < 2, 1.0, -1.0)[None] + 0.2 * rng.standard_normal((n, PATCH, PATCH))
    t = lambda a: torch.as_tensor(a[:, None], dtype=torch.float32)  # noqa: E731
    return t(noisy), t(clean)


@pytest.mark.parametrize(
    "part,mode", [("expert:dino", "dino"), ("expert:swin", "swin"), ("router", "blend"), ("joint", "blend")]
)
def test_training_steps_lower_loss_and_touch_only_trainable_parts(part, mode):
    torch.manual_seed(0)
    model = SSBModel(tiny_config(residual=part == "joint"))
    model.set_trainable(part)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable
    assert not [n for n in trainable if ".backbone." in n and "lora_" not in n], "frozen backbone weights are trainable"
    if part == "router":
        assert all(n.startswith("router.") for n in trainable)
    if part.startswith("expert:"):
        other = "swin" if part.endswith("dino") else "dino"
        assert not [n for n in trainable if n.startswith(f"experts.{other}.") or n.startswith("router.")]
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    noisy, clean = _pairs()
    model.train()
    losses = []
    for _ in range(12):
        res = model(noisy, mode=mode)
        loss = ssb_loss(res.denoised, clean, res.gate, 0.005)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < (0.999 if part == "router" else 0.9) * losses[0], losses
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable, sorted(changed - trainable)[:3]
    if part != "router":
        assert any("lora_B" in n for n in changed) or part.startswith("expert:") and any(".head." in n for n in changed)


def test_gate_in_unit_interval_and_single_expert_modes():
    model = SSBModel(tiny_config()).eval()
    noisy, _ = _pairs(4)
    with torch.no_grad():
        res = model(noisy)
        assert res.gate.shape == noisy.shape and 0 <= res.gate.min() and res.gate.max() <= 1
        swin, dino = model(noisy, mode="swin").denoised, model(noisy, mode="dino").denoised
    assert torch.allclose(res.denoised, (1 - res.gate) * swin + res.gate * dino, atol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        model(noisy, mode="both")


def test_patch_must_fit_backbone_strides():
    with pytest.raises(ValueError, match="multiple of each backbone's stride"):
        SSBModel(SSBModelConfig(patch=12))


def test_lora_settings_default_to_the_poster():
    assert (LoRASettings().r, LoRASettings().alpha) == (16, 64)
    assert SSBModelConfig().router.tv_weight == 0.005
