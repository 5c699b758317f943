"""SSB model artifacts: ``model.safetensors`` + ``model_card.json`` in one folder.

The tensors are LoRA adapters, decoder heads and the router, plus the backbone weights when a
backbone is random-initialised (pretrained backbones are referenced by folder, not copied).
The card records the format version, the model configuration, backbone identifiers and
configurations, parameter counts and whatever the trainer adds (training data description
and hash, held-out metrics, gate statistics). Loading checks the version and that every
expected tensor is present with its shape, so a reloaded model reproduces outputs exactly.
Writing, reading and the checks are the fit mode's (:mod:`seiscore.execution.fit`); this module adds
what is SSB's: which tensors, the backbone and parameter cards, rebuilding the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from seiscore.execution import fit
from seiscore.methods.ssb.config import EXPERTS, SSBModelConfig
from seiscore.methods.ssb.model import SSBModel

FORMAT = "seiscore-ssb"
FORMAT_VERSION = 1
TENSORS, CARD = fit.TENSORS, fit.CARD


def parameter_counts(model: SSBModel) -> dict[str, int]:
    """Parameters of ``model`` by part: total, router, per expert frozen backbone / LoRA / head, trainable."""
    count = lambda pred: sum(p.numel() for n, p in model.named_parameters() if pred(n))  # noqa: E731
    out = {"total": count(lambda n: True), "router": count(lambda n: n.startswith("router."))}
    for e in EXPERTS:
        out[f"{e}_backbone_frozen"] = count(lambda n, e=e: n.startswith(f"experts.{e}.backbone.") and "lora_" not in n)
        out[f"{e}_lora"] = count(lambda n, e=e: n.startswith(f"experts.{e}.") and "lora_" in n)
        out[f"{e}_head"] = count(lambda n, e=e: n.startswith(f"experts.{e}.head."))
    out["trainable"] = out["router"] + sum(out[f"{e}_lora"] + out[f"{e}_head"] for e in EXPERTS)
    return out


def _backbone_card(model: SSBModel) -> dict[str, Any]:
    card = {}
    for name in EXPERTS:
        cfg = model.cfg.expert(name).backbone
        bb = model.experts[name].backbone
        card[name] = {
            "class": type(bb).__name__,
            "identifier": str(cfg.pretrained) if cfg.pretrained else f"random-init(seed={cfg.init_seed})",
            "config": bb.config.to_dict(),
        }
    return card


def model_tensors(model: SSBModel) -> dict[str, torch.Tensor]:
    """The tensors an artifact stores (adapters, heads, router; random-init backbones)."""
    state = model.state_dict()
    return {k: state[k] for k in model.artifact_keys()}


def model_card(model: SSBModel) -> dict[str, Any]:
    """The SSB part of the model card: model configuration, backbones, parameter counts."""
    return {
        "model_config": json.loads(model.cfg.model_dump_json()),
        "backbones": _backbone_card(model),
        "parameters": parameter_counts(model),
    }


def save_model(
    model: SSBModel, folder: str | Path, card: dict[str, Any] | None = None, *, overwrite: bool = False
) -> Path:
    """Write the artifact atomically (temporary folder renamed into place); return its path."""
    return fit.write_artifact(
        folder,
        model_tensors(model),
        {**model_card(model), **(card or {})},
        format=FORMAT,
        format_version=FORMAT_VERSION,
        overwrite=overwrite,
    )


def read_card(folder: str | Path) -> dict[str, Any]:
    """The model card of an artifact folder, after checking its format and version."""
    return fit.read_card(folder, format=FORMAT, format_version=FORMAT_VERSION)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> SSBModel:
    """Rebuild the model of an artifact folder (backbones from the card's configuration) and load its tensors."""
    model = SSBModel(SSBModelConfig.model_validate(read_card(folder)["model_config"]))
    state = model.state_dict()
    expected = {k: tuple(state[k].shape) for k in model.artifact_keys()}
    _, tensors = fit.read_artifact(folder, format=FORMAT, format_version=FORMAT_VERSION, expected=expected)
    model.load_state_dict(tensors, strict=False)
    return model.to(device).eval()
