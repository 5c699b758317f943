"""SSB artifacts and backbones: exact save/load round trip, version and tensor checks, local pretrained folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from seiscore.methods.ssb import (
    BackboneConfig,
    ExpertConfig,
    SSBModelConfig,
    denoise,
    load_model,
    read_card,
    save_model,
)
from seiscore.methods.ssb.backbones import build_backbone
from seiscore.methods.ssb.config import TINY_DINO
from seiscore.methods.ssb.model import SSBModel

torch.set_num_threads(1)


def _perturbed_model(cfg: SSBModelConfig) -> SSBModel:
    """A model whose adapters, heads and router differ from their initialisation (as after training)."""
    model = SSBModel(cfg)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".backbone." not in name or "lora_" in name:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def _volume():
    return np.random.default_rng(0).standard_normal((3, 40, 48)).astype(np.float32)


def test_round_trip_reproduces_outputs_exactly(tmp_path):
    model = _perturbed_model(SSBModelConfig(patch=16, residual=True))
    path = save_model(model, tmp_path / "m", {"heldout_metrics": {"blend": {"psnr": 1.0}}})
    card = read_card(path)
    assert card["format_version"] == 1 and card["model_config"]["residual"] is True
    assert (
        card["backbones"]["dino"]["class"] == "DINOv3ViTModel" and card["backbones"]["swin"]["class"] == "Swinv2Model"
    )
    assert card["parameters"]["dino_lora"] > 0 and card["heldout_metrics"]["blend"]["psnr"] == 1.0
    loaded = load_model(path)
    v = _volume()
    out_a, g_a = denoise(v, model, axis=0, return_gate=True)
    out_b, g_b = denoise(v, loaded, axis=0, return_gate=True)
    out_c = denoise(v, path, axis=0)  # an artifact folder is accepted too
    assert np.array_equal(out_a, out_b) and np.array_equal(g_a, g_b) and np.array_equal(out_a, out_c)
    with pytest.raises(FileExistsError, match="already exists"):
        save_model(model, path)
    assert save_model(model, path, overwrite=True) == path  # its own artifact: replaced
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not an SSB model artifact"):  # never a folder it did not write
        save_model(model, user, overwrite=True)
    assert (user / "notes.txt").read_text() == "keep"


def test_other_version_and_missing_tensors_are_refused(tmp_path):
    path = save_model(SSBModel(SSBModelConfig(patch=16)), tmp_path / "m")
    card = json.loads((path / "model_card.json").read_text())
    tensors = load_file(str(path / "model.safetensors"))
    dropped = next(k for k in tensors if "lora_B" in k)
    del tensors[dropped]
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match="1 missing tensor"):
        load_model(path)
    (path / "model_card.json").write_text(json.dumps({**card, "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="model_card.json is missing"):
        load_model(tmp_path)


def test_pretrained_backbone_from_local_folder(tmp_path):
    folder = tmp_path / "dinov3-tiny"
    torch.manual_seed(5)
    DINOv3ViTModel(DINOv3ViTConfig(**TINY_DINO)).save_pretrained(folder)
    loaded = build_backbone(BackboneConfig(kind="dinov3", pretrained=folder))
    reference = DINOv3ViTModel.from_pretrained(folder)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), reference.state_dict().values()))
    # an SSB artifact on a pretrained backbone references it instead of copying its weights
    cfg = SSBModelConfig(patch=16, dino=ExpertConfig(backbone=BackboneConfig(kind="dinov3", pretrained=folder)))
    model = _perturbed_model(cfg)
    path = save_model(model, tmp_path / "m")
    keys = load_file(str(path / "model.safetensors")).keys()
    assert not [k for k in keys if k.startswith("experts.dino.backbone.") and "lora_" not in k]
    assert [k for k in keys if k.startswith("experts.swin.backbone.") and "lora_" not in k]  # random-init: stored
    assert read_card(path)["backbones"]["dino"]["identifier"] == str(folder)
    v = _volume()
    assert np.array_equal(denoise(v, model), denoise(v, load_model(path)))


def test_missing_or_mismatched_backbone_folders_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; expected a local Hugging Face folder"):
        build_backbone(BackboneConfig(kind="swinv2", pretrained=tmp_path / "nope"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text(json.dumps({"model_type": "swinv2"}))
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        build_backbone(BackboneConfig(kind="swinv2", pretrained=tmp_path / "half"))
    DINOv3ViTModel(DINOv3ViTConfig(**TINY_DINO)).save_pretrained(tmp_path / "dino")
    with pytest.raises(ValueError, match="expected model_type 'swinv2'"):
        build_backbone(BackboneConfig(kind="swinv2", pretrained=tmp_path / "dino"))
    with pytest.raises(ValueError, match="looks like a Hub id"):
        BackboneConfig(kind="dinov3", pretrained="facebook/dinov3-vits16-pretrain-lvd1689m")
