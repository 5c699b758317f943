"""Backbones of the two experts: ``DINOv3ViTModel`` and ``Swinv2Model`` from ``transformers``.

Pretrained weights are read only from a local folder in the Hugging Face layout
(``config.json`` + ``model.safetensors``); nothing is downloaded (``local_files_only``),
whatever ``HF_HUB_OFFLINE`` says. Without a folder a random-initialised model is built
from the given configuration, seeded, so that tests and CPU demos use the same classes.

:func:`feature_map` turns the backbone's last hidden state into a (B, C, H / s, W / s)
grid, ``s`` being :func:`stride` (ViT: the patch size; Swin V2: patch size x 2^(stages-1)).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import DINOv3ViTConfig, DINOv3ViTModel, Swinv2Config, Swinv2Model

from seiscore.methods.ssb.config import BackboneConfig

_CLASSES = {"dinov3": (DINOv3ViTConfig, DINOv3ViTModel, "dinov3_vit"), "swinv2": (Swinv2Config, Swinv2Model, "swinv2")}
# Stochastic layers off: the backbone is frozen and training must be reproducible.
_DETERMINISTIC = {
    "dinov3": {"drop_path_rate": 0.0},
    "swinv2": {"drop_path_rate": 0.0, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
}


def _check_folder(cfg: BackboneConfig) -> Path:
    folder = Path(cfg.pretrained).expanduser()
    expected = "a local Hugging Face folder with config.json and model.safetensors"
    if not folder.is_dir():
        raise FileNotFoundError(f"{cfg.kind} backbone folder {folder} does not exist; expected {expected}")
    for name in ("config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{cfg.kind} backbone folder {folder} has no {name}; expected {expected}")
    model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    want = _CLASSES[cfg.kind][2]
    if model_type != want:
        raise ValueError(
            f"{cfg.kind} backbone folder {folder} holds a {model_type!r} model; expected model_type {want!r}"
        )
    return folder


def build_backbone(cfg: BackboneConfig) -> torch.nn.Module:
    """The backbone of ``cfg``: loaded from ``cfg.pretrained`` or random-initialised with ``cfg.init_seed``."""
    config_cls, model_cls, _ = _CLASSES[cfg.kind]
    if cfg.pretrained is not None:
        folder = _check_folder(cfg)
        config = config_cls.from_pretrained(folder, local_files_only=True, **_DETERMINISTIC[cfg.kind], **cfg.hf_config)
        model, info = model_cls.from_pretrained(folder, config=config, local_files_only=True, output_loading_info=True)
        bad = {k: v for k, v in info.items() if k in ("missing_keys", "mismatched_keys") and v}
        if bad:
            raise ValueError(
                f"{cfg.kind} backbone weights in {folder / 'model.safetensors'} do not match config.json: {bad}"
            )
    else:
        config = config_cls(**{**_DETERMINISTIC[cfg.kind], **cfg.hf_config})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.init_seed)
            model = model_cls(config)
    model.requires_grad_(False)
    return model.eval()


def stride(backbone: torch.nn.Module) -> int:
    """Pixels per output token along each axis."""
    c = backbone.config
    if c.model_type == "swinv2":
        return int(c.patch_size) * 2 ** (len(c.depths) - 1)
    return int(c.patch_size)


def out_channels(backbone: torch.nn.Module) -> int:
    """Channels of the backbone's last feature map (Swin V2: ``embed_dim * 2^(stages - 1)``; ViT: hidden size)."""
    c = backbone.config
    return int(c.embed_dim * 2 ** (len(c.depths) - 1)) if c.model_type == "swinv2" else int(c.hidden_size)


def feature_map(backbone: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Run the backbone on (B, 3, H, W) pixels and return patch tokens as (B, C, H / s, W / s)."""
    b, _, h, w = pixels.shape
    s = stride(backbone)
    tokens = backbone(pixel_values=pixels).last_hidden_state
    if backbone.config.model_type == "dinov3_vit":
        tokens = tokens[:, 1 + backbone.config.num_register_tokens :]  # drop CLS and register tokens
    gh, gw = h // s, w // s
    return tokens.transpose(1, 2).reshape(b, tokens.shape[-1], gh, gw)
