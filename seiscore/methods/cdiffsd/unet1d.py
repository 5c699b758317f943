"""The 1-D U-Net ``R(x_t, t) -> x0_hat`` of CDiffSD, written here from the structure in spec §2.2.

Levels ``dim * dim_mults`` (default 8/16/32/64 channels on 3000/1500/750/375 samples):

- time: sinusoidal embedding of ``t`` (``dim`` features) -> Linear(dim, 4 dim) -> GELU -> Linear(4 dim, 4 dim);
- a k=7 input convolution to ``dim`` channels (kept for a skip to the output block);
- encoder, per level: two ResNet blocks (Conv1d k=3 + GroupNorm + SiLU, twice; the time embedding gives a
  per-channel scale and shift after the first norm; 1x1 convolution on the residual path when the width changes),
  a residual linear attention (pre-normalised, ``attn_heads x attn_dim_head``), then a stride-2 k=4 convolution
  (the last level: a k=3 convolution that only widens);
- middle: ResNet block, full (softmax) attention, ResNet block;
- decoder, mirrored: each ResNet block takes the skip of its encoder twin concatenated; nearest x2 upsampling + k=3
  convolution between levels;
- output: a ResNet block on the concatenated input-convolution skip, then a 1x1 convolution to ``channels``.

The network predicts the clean trace (not the noise). No code was copied from any project.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seiscore.methods.cdiffsd.config import CDiffSDConfig


class TimeEmbedding(nn.Module):
    """Sinusoidal features of the step ``t``: ``[sin(t w_k), cos(t w_k)]`` with ``w_k = 10000^(-k/(h-1))``."""

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """[B] steps -> [B, dim] features."""
        arg = t.to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class ConvNormAct(nn.Module):
    """Conv1d k=3 -> GroupNorm -> (optional time scale/shift) -> SiLU."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, 3, padding=1)
        self.norm = nn.GroupNorm(groups, cout)

    def forward(self, x: torch.Tensor, scale_shift: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """One conv-norm-activation; ``scale_shift``: ``x (1 + scale) + shift`` after the norm."""
        h = self.norm(self.conv(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            h = torch.addcmul(shift, h, scale + 1.0)
        return F.silu(h)


class ResBlock(nn.Module):
    """Two conv-norm-SiLU layers with a time-conditioned scale/shift, plus the (1x1 when widened) residual."""

    def __init__(self, cin: int, cout: int, time_dim: int, groups: int):
        super().__init__()
        self.time = nn.Linear(time_dim, 2 * cout)
        self.block1 = ConvNormAct(cin, cout, groups)
        self.block2 = ConvNormAct(cout, cout, groups)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """``x`` [B, cin, L], ``temb`` [B, time_dim] -> [B, cout, L]."""
        scale, shift = self.time(F.silu(temb))[:, :, None].chunk(2, dim=1)
        return self.block2(self.block1(x, (scale, shift))) + self.skip(x)


class ChannelNorm(nn.Module):
    """Normalisation over the channels of each sample (a per-channel gain), as before attention."""

    def __init__(self, dim: int):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean_c) / sqrt(var_c + eps) * gain``."""
        return _channel_norm(x) * self.gain


def _channel_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    # mean and mean square as two reductions: torch.var_mean over the (strided) channel dim was 5x slower on CPU
    centred = x - x.mean(dim=1, keepdim=True)
    return centred * torch.rsqrt(centred.square().mean(dim=1, keepdim=True) + eps)


class LinearAttention(nn.Module):
    """Linear attention along time: softmax of queries over features, of keys over time; ``O(L)``.

    Per head, with ``q, k, v = W_q x_n, W_k x_n, W_v x_n`` (``x_n`` the channel-normalised input):
    ``context = softmax_L(k) v^T`` (d x d), ``o = context^T softmax_d(q) / sqrt(d)`` and the output
    ``x + norm(W_o o + b_o)``. :meth:`forward` evaluates the same products in a cheaper order (associativity):
    ``context = (softmax_L(k) x_n^T) W_v^T`` never forms ``v`` (d x L per head), and ``W_o`` is folded into
    ``context`` before it meets ``q``, so ``o`` (heads * d x L) is never formed either - a 3x cut of the work at the
    first level (8 channels against 128 attention features), same weights, same result up to rounding.
    :meth:`forward_reference` is the plain order (tests compare them).
    """

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.dim_head, self.scale = heads, dim_head, dim_head**-0.5
        hidden = heads * dim_head
        self.norm = ChannelNorm(dim)
        self.qkv = nn.Conv1d(dim, 3 * hidden, 1, bias=False)
        self.out = nn.Conv1d(hidden, dim, 1)
        self.out_norm = ChannelNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual linear attention: ``x + norm(out(attn(norm(x))))`` (the cheap order, see the class doc)."""
        b, c, n = x.shape
        h, d = self.heads, self.dim_head
        xn = self.norm(x)
        w = self.qkv.weight.view(3 * h * d, c)
        qk = F.conv1d(xn, w[: 2 * h * d, :, None]).view(b, 2, h * d, n)
        q = qk[:, 0].view(b, h, d, n).softmax(dim=-2).view(b, h * d, n)
        k = qk[:, 1].view(b, h, d, n).softmax(dim=-1).view(b, h * d, n)
        kx = torch.bmm(k, xn.transpose(1, 2)).view(b, h, d, c)  # [B, H, d_k, C]
        wv = w[2 * h * d :].view(h, d, c)
        context = torch.matmul(kx, wv.transpose(1, 2))  # [B, H, d_k, d_v]
        wo = self.out.weight.view(c, h, d)  # [C, H, d_v]
        m = torch.einsum("chv,bhkv->bchk", wo, context).reshape(b, c, h * d) * self.scale
        out = torch.bmm(m, q) + self.out.bias.view(1, c, 1)
        return x + self.out_norm(out)

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The same attention in the plain order (forms ``v`` and ``o``)."""
        b, _, n = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, 3, self.heads, -1, n).unbind(1)  # [B, H, d, L]
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.matmul(k, v.transpose(-1, -2))  # [B, H, d, d]
        o = torch.matmul(context.transpose(-1, -2), q)  # [B, H, d, L]
        return x + self.out_norm(self.out(o.reshape(b, -1, n)))


class Attention(nn.Module):
    """Full softmax attention along time (used at the coarsest level)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        hidden = heads * dim_head
        self.norm = ChannelNorm(dim)
        self.qkv = nn.Conv1d(dim, 3 * hidden, 1, bias=False)
        self.out = nn.Conv1d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual attention: ``x + out(softmax(q k^T / sqrt(d)) v)``."""
        b, _, n = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, 3, self.heads, -1, n).transpose(-1, -2).unbind(1)  # [B, H, L, d]
        o = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(o.transpose(-1, -2).reshape(b, -1, n))


class Level(nn.Module):
    """One encoder or decoder level: two ResNet blocks, a linear attention, a resampling convolution."""

    def __init__(self, cin: int, cout: int, skip: int, time_dim: int, cfg: CDiffSDConfig, resample: nn.Module):
        super().__init__()
        self.res1 = ResBlock(cin + skip, cin, time_dim, cfg.groups)
        self.res2 = ResBlock(cin + skip, cin, time_dim, cfg.groups)
        self.attn = LinearAttention(cin, cfg.attn_heads, cfg.attn_dim_head)
        self.resample = resample


class Upsample(nn.Module):
    """Nearest-neighbour x2 upsampling, then a k=3 convolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, cin, L] -> [B, cout, 2L]."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet1D(nn.Module):
    """``R(x, t)``: [B, channels, L] and steps [B] -> the clean-trace estimate [B, channels, L] (see module doc)."""

    def __init__(self, cfg: CDiffSDConfig, channels: int | None = None):
        super().__init__()
        self.channels = cfg.channels if channels is None else channels
        dim, time_dim = cfg.dim, 4 * cfg.dim
        widths = [dim] + [dim * m for m in cfg.dim_mults]
        pairs = list(zip(widths[:-1], widths[1:]))
        last = len(pairs) - 1
        self.time = nn.Sequential(
            TimeEmbedding(dim), nn.Linear(dim, time_dim), nn.GELU(), nn.Linear(time_dim, time_dim)
        )
        self.inp = nn.Conv1d(self.channels, dim, 7, padding=3)
        self.down = nn.ModuleList(
            Level(
                cin,
                cout,
                0,
                time_dim,
                cfg,
                nn.Conv1d(cin, cout, 4, stride=2, padding=1) if i < last else nn.Conv1d(cin, cout, 3, padding=1),
            )
            for i, (cin, cout) in enumerate(pairs)
        )
        mid = widths[-1]
        self.mid1 = ResBlock(mid, mid, time_dim, cfg.groups)
        self.mid_attn = Attention(mid, cfg.attn_heads, cfg.attn_dim_head)
        self.mid2 = ResBlock(mid, mid, time_dim, cfg.groups)
        self.up = nn.ModuleList(
            Level(
                cout,
                cin,
                cin,
                time_dim,
                cfg,
                Upsample(cout, cin) if i < last else nn.Conv1d(cout, cin, 3, padding=1),
            )
            for i, (cin, cout) in enumerate(reversed(pairs))
        )
        self.out_res = ResBlock(2 * dim, dim, time_dim, cfg.groups)
        self.out = nn.Conv1d(dim, self.channels, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The clean-trace estimate of ``x`` [B, channels, L] at steps ``t`` [B]."""
        temb = self.time(t)
        x = self.inp(x)
        first = x
        skips = []
        for level in self.down:
            x = level.res1(x, temb)
            skips.append(x)
            x = level.res2(x, temb)
            x = level.attn(x)
            skips.append(x)
            x = level.resample(x)
        x = self.mid2(self.mid_attn(self.mid1(x, temb)), temb)
        for level in self.up:
            x = level.res1(torch.cat([x, skips.pop()], dim=1), temb)
            x = level.res2(torch.cat([x, skips.pop()], dim=1), temb)
            x = level.attn(x)
            x = level.resample(x)
        x = self.out_res(torch.cat([x, first], dim=1), temb)
        return self.out(x)


def build_nets(cfg: CDiffSDConfig) -> nn.ModuleList:
    """The U-Nets of ``cfg``: three single-channel ones (Z, N, E) for ``channels=1``, one 3-channel one otherwise."""
    return nn.ModuleList(UNet1D(cfg) for _ in range(cfg.n_nets))
