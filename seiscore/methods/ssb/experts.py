"""An expert: frozen backbone + optional LoRA adapters (peft) + a light decoder head.

Input: (B, 1, H, W) normalised sections, replicated to the backbone's 3 channels.
The head projects each token (1x1 conv) to s^2 * c values, pixel-shuffles them back to
full resolution (c channels, s = backbone stride), concatenates the noisy input and
applies a few 3x3 convolutions down to one channel. A *direct* expert predicts the clean
section; a *residual* expert predicts the noise n, its denoised section being x - n.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from seiscore.methods.ssb.backbones import build_backbone, feature_map, out_channels, stride
from seiscore.methods.ssb.config import ExpertConfig, HeadConfig

# Attention projections that receive LoRA adapters (regular expressions on module names).
LORA_TARGETS = {
    "dinov3": r".*attention\.(q_proj|k_proj|v_proj|o_proj)",
    "swinv2": r".*attention\.(self\.(query|key|value)|output\.dense)",
}


class DecoderHead(nn.Module):
    """Tokens (B, C, h, w) + noisy (B, 1, H, W) -> (B, 1, H, W)."""

    def __init__(self, in_channels: int, stride: int, cfg: HeadConfig):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, cfg.channels * stride * stride, kernel_size=1)
        self.shuffle = nn.PixelShuffle(stride)
        layers: list[nn.Module] = []
        ch = cfg.channels + 1
        for _ in range(cfg.n_convs - 1):
            layers += [nn.Conv2d(ch, cfg.channels, 3, padding=1), nn.GELU()]
            ch = cfg.channels
        layers.append(nn.Conv2d(ch, 1, 3, padding=1))
        self.convs = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, C, h, w) and the noisy input (B, 1, H, W) -> (B, 1, H, W) head output."""
        up = self.shuffle(self.proj(tokens))
        return self.convs(torch.cat([up, noisy], dim=1))


class Expert(nn.Module):
    """Frozen backbone (+ LoRA when ``cfg.lora`` is set) and a trainable head.

    ``forward`` returns the head's raw prediction (clean section, or noise when
    ``residual``); :meth:`denoised` always returns the clean estimate.
    """

    def __init__(self, cfg: ExpertConfig, residual: bool = False):
        super().__init__()
        self.cfg, self.residual = cfg, residual
        backbone = build_backbone(cfg.backbone)
        self.stride = stride(backbone)
        with torch.random.fork_rng(devices=[]):  # adapters and head initialised reproducibly
            torch.manual_seed(cfg.backbone.init_seed + 1)
            if cfg.lora is not None:
                lora = LoraConfig(
                    r=cfg.lora.r,
                    lora_alpha=cfg.lora.alpha,
                    lora_dropout=cfg.lora.dropout,
                    target_modules=LORA_TARGETS[cfg.backbone.kind],
                    bias="none",
                )
                backbone = inject_adapter_in_model(lora, backbone)
                for name, p in backbone.named_parameters():
                    p.requires_grad_("lora_" in name)
            self.head = DecoderHead(out_channels(backbone), self.stride, cfg.head)
        self.backbone = backbone

    def train(self, mode: bool = True) -> "Expert":
        """Set training mode for the head and adapters; the frozen backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()  # frozen backbone: no stochastic layers, fixed norms
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The head's raw output for (B, 1, H, W) sections (H, W multiples of the backbone stride)."""
        _, _, h, w = x.shape
        if h % self.stride or w % self.stride:
            raise ValueError(f"expert input {h}x{w} is not a multiple of the backbone stride {self.stride}")
        tokens = feature_map(self.backbone, x.expand(-1, 3, -1, -1))
        return self.head(tokens, x)

    def denoised(self, x: torch.Tensor, raw: torch.Tensor | None = None) -> torch.Tensor:
        """The denoised sections: ``x - raw`` for a residual expert (it predicts the noise), else ``raw``."""
        raw = self(x) if raw is None else raw
        return x - raw if self.residual else raw


def trainable_names(module: nn.Module) -> list[str]:
    """Names of the parameters that require gradients."""
    return [n for n, p in module.named_parameters() if p.requires_grad]
