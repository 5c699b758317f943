"""Router, soft spatial blend and the gate's total variation (poster, sections 3-4).

Blend:   y = (1 - g) * E_swin + g * E_dino,   g = sigmoid(router([x, E_swin, E_dino, |E_swin - E_dino|]))
TV:      TV(g) = mean |g[i+1, j] - g[i, j]| + mean |g[i, j+1] - g[i, j]|
Loss:    L = L1(y, clean) + 0.005 * TV(g)
"""

from __future__ import annotations

import torch
from torch import nn

from seiscore.methods.ssb.config import RouterConfig


def blend(e_swin: torch.Tensor, e_dino: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(1 - g) * e_swin + g * e_dino (g = 1 selects DINOv3, g = 0 Swin V2)."""
    return (1.0 - g) * e_swin + g * e_dino


def total_variation(g: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV of a gate map over its last two axes, each term a mean of absolute differences."""
    return (g[..., 1:, :] - g[..., :-1, :]).abs().mean() + (g[..., :, 1:] - g[..., :, :-1]).abs().mean()


def router_inputs(noisy: torch.Tensor, e_swin: torch.Tensor, e_dino: torch.Tensor) -> torch.Tensor:
    """The router's 4 input channels: noisy, both experts' outputs and their absolute difference."""
    return torch.cat([noisy, e_swin, e_dino, (e_swin - e_dino).abs()], dim=1)


class Router(nn.Module):
    """Small CNN: 4 channels -> ``channels`` (3x3 conv + GELU) x (n_layers - 1) -> 1 -> sigmoid."""

    def __init__(self, cfg: RouterConfig, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # reproducible initialisation
            torch.manual_seed(seed)
            layers: list[nn.Module] = []
            ch = 4
            for _ in range(cfg.n_layers - 1):
                layers += [nn.Conv2d(ch, cfg.channels, 3, padding=1), nn.GELU()]
                ch = cfg.channels
            self.net = nn.Sequential(*layers, nn.Conv2d(ch, 1, 3, padding=1))

    def forward(self, noisy: torch.Tensor, e_swin: torch.Tensor, e_dino: torch.Tensor) -> torch.Tensor:
        """Per-pixel gate ``g`` in (0, 1), the weight of the DINOv3 expert."""
        return torch.sigmoid(self.net(router_inputs(noisy, e_swin, e_dino)))


def ssb_loss(output: torch.Tensor, clean: torch.Tensor, g: torch.Tensor | None, tv_weight: float) -> torch.Tensor:
    """L1(output, clean) + tv_weight * TV(g) (no TV term without a gate)."""
    loss = (output - clean).abs().mean()
    return loss if g is None else loss + tv_weight * total_variation(g)
