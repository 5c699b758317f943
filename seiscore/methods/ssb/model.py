"""The SSB model: two experts (Swin V2, DINOv3) and a router blending them per pixel.

Direct variant:    y = (1 - g) E_swin(x) + g E_dino(x)
Residual variant:  y = x - [(1 - g) R_swin(x) + g R_dino(x)]   (experts predict the noise)
The router sees [x, E_swin, E_dino, |E_swin - E_dino|] built from the experts' raw outputs.
``mode`` "swin" / "dino" evaluates a single expert (no router).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from seiscore.methods.ssb.config import EXPERTS, SSBModelConfig
from seiscore.methods.ssb.experts import Expert
from seiscore.methods.ssb.router import Router, blend

Mode = Literal["blend", "swin", "dino"]


@dataclass
class SSBOutput:
    """What :class:`SSBModel` returns: the denoised sections and the router's gate (None for one expert)."""

    denoised: torch.Tensor
    gate: torch.Tensor | None = None


class SSBModel(nn.Module):
    """SSB: the raw outputs of the Swin V2 and DINOv3 experts blended per pixel by the router's gate ``g``,
    ``(1 - g) * swin + g * dino`` (the noise estimate, subtracted from the input, when ``cfg.residual``)."""

    def __init__(self, cfg: SSBModelConfig):
        super().__init__()
        self.cfg = cfg
        self.experts = nn.ModuleDict({name: Expert(cfg.expert(name), residual=cfg.residual) for name in EXPERTS})
        self.router = Router(cfg.router, seed=cfg.dino.backbone.init_seed + 2)
        self.stride = max(e.stride for e in self.experts.values())
        if cfg.patch % self.stride or any(cfg.patch % e.stride for e in self.experts.values()):
            raise ValueError(
                f"patch {cfg.patch} must be a multiple of each backbone's stride "
                f"({ {n: e.stride for n, e in self.experts.items()} })"
            )

    def forward(self, x: torch.Tensor, mode: Mode = "blend") -> SSBOutput:
        """Denoise (B, 1, H, W) sections with the blend (``mode='blend'``) or one expert (``'swin'``, ``'dino'``)."""
        if mode in EXPERTS:
            expert = self.experts[mode]
            return SSBOutput(expert.denoised(x))
        if mode != "blend":
            raise ValueError(f"mode must be 'blend', 'swin' or 'dino', got {mode!r}")
        raw_swin, raw_dino = self.experts["swin"](x), self.experts["dino"](x)
        g = self.router(x, raw_swin, raw_dino)
        mixed = blend(raw_swin, raw_dino, g)
        return SSBOutput(x - mixed if self.cfg.residual else mixed, g)

    def set_trainable(self, part: Literal["expert:swin", "expert:dino", "router", "joint"]) -> None:
        """Enable gradients on one stage's parameters only (backbone base weights stay frozen)."""
        for name, p in self.named_parameters():
            in_backbone = ".backbone." in name
            adaptable = not in_backbone or "lora_" in name
            if part == "router":
                on = name.startswith("router.")
            elif part == "joint":
                on = adaptable
            else:
                on = adaptable and name.startswith(f"experts.{part.split(':')[1]}.")
            p.requires_grad_(on)

    def artifact_keys(self) -> list[str]:
        """State-dict keys an artifact must hold: all but the frozen weights of pretrained backbones."""
        keys = []
        for key in self.state_dict():
            expert = key.split(".")[1] if key.startswith("experts.") else None
            pretrained = expert is not None and self.cfg.expert(expert).backbone.pretrained is not None
            if pretrained and ".backbone." in key and "lora_" not in key:
                continue
            keys.append(key)
        return keys
