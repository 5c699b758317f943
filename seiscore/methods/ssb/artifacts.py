"""SSB model artifacts: ``model.safetensors`` + ``model_card.json`` in one folder.

The tensors are LoRA adapters, decoder heads and the router, plus the backbone weights when a
backbone is random-initialised (pretrained backbones are referenced by folder, not copied).
The card records the format version, the model configuration, backbone identifiers and
configurations, parameter counts and whatever the trainer adds (training data description
and hash, held-out metrics, gate statistics). Loading checks the version and that every
expected tensor is present with its shape, so a reloaded model reproduces outputs exactly.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

import seiscore
from seiscore.core.safety import UnsafePathError, may_replace
from seiscore.methods.ssb.config import EXPERTS, SSBModelConfig
from seiscore.methods.ssb.model import SSBModel

FORMAT = "seiscore-ssb"
FORMAT_VERSION = 1
TENSORS, CARD = "model.safetensors", "model_card.json"


def parameter_counts(model: SSBModel) -> dict[str, int]:
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


def save_model(
    model: SSBModel, folder: str | Path, card: dict[str, Any] | None = None, *, overwrite: bool = False
) -> Path:
    """Write the artifact atomically (temporary folder renamed into place); return its path."""
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"model artifact folder {folder} already exists; pass overwrite=True to replace it")
    if folder.exists() and not (_is_artifact(folder) or may_replace(folder)):  # never a folder it did not write
        raise UnsafePathError(
            f"model artifact folder {folder} exists and is not an SSB model artifact; refusing to "
            f"replace it whatever overwrite says: move it away or choose another folder"
        )
    state = model.state_dict()
    tensors = {k: state[k].detach().cpu().contiguous() for k in model.artifact_keys()}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seiscore_version": seiscore.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model_config": json.loads(model.cfg.model_dump_json()),
        "backbones": _backbone_card(model),
        "parameters": parameter_counts(model),
        "tensors": len(tensors),
        **(card or {}),
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_file(tensors, str(tmp / TENSORS), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        (tmp / CARD).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def _is_artifact(folder: Path) -> bool:
    try:
        return json.loads((folder / CARD).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_card(folder: str | Path) -> dict[str, Any]:
    """The model card of an artifact folder, after checking its format and version."""
    folder = Path(folder)
    path = folder / CARD
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not an SSB model artifact: {CARD} is missing")
    card = json.loads(path.read_text())
    if card.get("format") != FORMAT:
        raise ValueError(f"{path} describes format {card.get('format')!r}, expected {FORMAT!r}")
    if card.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"SSB artifact {folder} has format version {card.get('format_version')}; "
            f"this seiscore ({seiscore.__version__}) reads version {FORMAT_VERSION}: retrain or convert it"
        )
    return card


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> SSBModel:
    """Rebuild the model of an artifact folder (backbones from the card's configuration) and load its tensors."""
    folder = Path(folder)
    card = read_card(folder)
    if not (folder / TENSORS).is_file():
        raise FileNotFoundError(f"SSB artifact {folder} has a model card but no {TENSORS}")
    model = SSBModel(SSBModelConfig.model_validate(card["model_config"]))
    tensors = load_file(str(folder / TENSORS))
    expected = model.artifact_keys()
    missing = [k for k in expected if k not in tensors]
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"SSB artifact {folder / TENSORS} does not match its model card: "
            f"{len(missing)} missing tensor(s) {missing[:5]}, {len(unexpected)} unexpected {unexpected[:5]}"
        )
    state = model.state_dict()
    wrong = [
        f"{k} {tuple(tensors[k].shape)} != {tuple(state[k].shape)}"
        for k in expected
        if tensors[k].shape != state[k].shape
    ]
    if wrong:
        raise ValueError(f"SSB artifact {folder / TENSORS} has tensors of the wrong shape: {wrong[:5]}")
    model.load_state_dict(tensors, strict=False)
    return model.to(device).eval()
