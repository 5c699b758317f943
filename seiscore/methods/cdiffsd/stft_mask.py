"""DeepDenoiser-style STFT masking baseline (Zhu, Mousavi & Beroza 2019), written and trained here (spec §5).

Each component is treated as its own trace (as DeepDenoiser does). Short-time Fourier transform at
the record's rate with a 30-sample Hann window, FFT length 60, hop 15 and zero padding at both ends
(``torch.stft(center=True, pad_mode="constant")``): 31 frequencies x (L/15 + 1) frames. The real and
imaginary parts, divided by their standard deviation per trace, are the 2 input channels of a small
2-D U-Net (:class:`MaskUNet`: two down-samplings, skip concatenations) that outputs two logits per
time-frequency cell; their softmax is the (signal, noise) mask pair. Training target: the ideal masks
``M_s = |S| / (|S| + |N|)``, ``M_n = 1 - M_s`` from the clean signal S and the noise N = y - x0 of the
training pairs; loss: the cross-entropy ``-mean(M_s log p_s + M_n log p_n)``. Denoising: inverse STFT of
``p_s * STFT(y)`` (the amplitude scale of the input is kept: the mask is applied to the raw STFT).

:func:`train_stft_mask` is seeded (same pairs, seed and steps -> same weights on one machine and
thread count) and accepts a time budget (``max_seconds``) for the quick benchmark.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

NPERSEG, NFFT, HOP = 30, 60, 15


class STFTMaskError(ValueError):
    """Bad input to the STFT masking baseline."""


def _window(device) -> torch.Tensor:
    return torch.hann_window(NPERSEG, periodic=True, device=device)


def stft(x: torch.Tensor) -> torch.Tensor:
    """Complex STFT of traces ``[B, L]`` -> ``[B, 31, frames]``."""
    return torch.stft(
        x, n_fft=NFFT, hop_length=HOP, win_length=NPERSEG, window=_window(x.device), center=True,
        pad_mode="constant", return_complex=True,
    )  # fmt: skip


def istft(z: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`stft` back to ``[B, length]``."""
    return torch.istft(
        z, n_fft=NFFT, hop_length=HOP, win_length=NPERSEG, window=_window(z.device), center=True, length=length
    )


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class MaskUNet(nn.Module):
    """2-D U-Net on (real, imag) STFT channels -> 2 mask logits (signal, noise) per cell."""

    def __init__(self, width: int = 8):
        super().__init__()
        w = int(width)
        self.enc1 = _block(2, w)
        self.enc2 = _block(w, 2 * w)
        self.mid = _block(2 * w, 4 * w)
        self.down1 = nn.Conv2d(w, w, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1)
        self.dec2 = _block(4 * w + 2 * w, 2 * w)
        self.dec1 = _block(2 * w + w, w)
        self.head = nn.Conv2d(w, 2, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits [B, 2, F, T] for input [B, 2, F, T] (any F, T)."""
        e1 = self.enc1(z)
        e2 = self.enc2(self.down1(e1))
        m = self.mid(self.down2(e2))
        u2 = nn.functional.interpolate(m, size=e2.shape[-2:], mode="nearest")
        d2 = self.dec2(torch.cat([u2, e2], 1))
        u1 = nn.functional.interpolate(d2, size=e1.shape[-2:], mode="nearest")
        d1 = self.dec1(torch.cat([u1, e1], 1))
        return self.head(d1)


def _features(spec: torch.Tensor) -> torch.Tensor:
    """(real, imag) divided by their standard deviation per trace: [B, 2, F, T]."""
    feat = torch.stack([spec.real, spec.imag], 1)
    std = feat.flatten(1).std(dim=1).clamp_min(1e-12)
    return feat / std[:, None, None, None]


def _flat(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    arr = np.asarray(x)
    if arr.ndim != 3:
        raise STFTMaskError(f"x: need [n, components, L] windows, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise STFTMaskError("x: NaN or infinite samples")
    return arr.reshape(-1, arr.shape[-1]).astype(np.float32), arr.shape


@dataclass
class STFTMaskDenoiser:
    """A trained (or fresh) masking network with its training history."""

    net: MaskUNet
    history: list = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0

    def denoise(self, x, batch_size: int = 256) -> np.ndarray:
        """Denoised float32 windows of ``x`` [n, C, L] (same shape; ``x`` untouched)."""
        flat, shape = _flat(x)
        out = np.empty_like(flat)
        self.net.eval()
        with torch.inference_mode():
            for lo in range(0, flat.shape[0], batch_size):
                y = torch.from_numpy(flat[lo : lo + batch_size])
                spec = stft(y)
                mask = torch.softmax(self.net(_features(spec)), dim=1)[:, 0]
                out[lo : lo + batch_size] = istft(spec * mask, y.shape[-1]).numpy()
        return out.reshape(shape)


def mask_loss(net: MaskUNet, clean: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the predicted mask pair and the ideal masks of (clean, noisy) traces [B, L]."""
    s = stft(clean)
    y = stft(noisy)
    nspec = y - s
    ms = s.abs() / (s.abs() + nspec.abs()).clamp_min(1e-12)
    logp = torch.log_softmax(net(_features(y)), dim=1)
    return -(ms * logp[:, 0] + (1.0 - ms) * logp[:, 1]).mean()


def train_stft_mask(
    clean,
    noisy,
    *,
    seed: int = 0,
    width: int = 8,
    batch_size: int = 32,
    steps: int = 1000,
    lr: float = 1e-3,
    max_seconds: float | None = None,
    net: MaskUNet | None = None,
) -> STFTMaskDenoiser:
    """Train the masking net on pairs ``[n, C, L]`` (components as separate traces) with Adam.

    Random mini-batches of traces, each divided by its noisy trace's peak (the masks are scale-free).
    Stops after ``steps`` or ``max_seconds``, whichever comes first. Seeded.
    """
    c_flat, shape = _flat(clean)
    y_flat, shape_y = _flat(noisy)
    if shape != shape_y:
        raise STFTMaskError(f"noisy: shape {shape_y} does not match clean {shape}")
    peak = np.maximum(np.abs(y_flat).max(-1, keepdims=True), 1e-12)
    c_flat, y_flat = c_flat / peak, y_flat / peak
    gen = torch.Generator().manual_seed(int(seed))
    if net is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            net = MaskUNet(width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history = []
    t0 = time.perf_counter()
    net.train()
    done = 0
    for _step in range(int(steps)):
        idx = torch.randint(0, c_flat.shape[0], (batch_size,), generator=gen).numpy()
        loss = mask_loss(net, torch.from_numpy(c_flat[idx]), torch.from_numpy(y_flat[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        done += 1
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    return STFTMaskDenoiser(net=net, history=history, steps=done, seconds=time.perf_counter() - t0)
