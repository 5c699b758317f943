"""Denoise a cube with an SSB model, section by section.

The cube is cut into 2-D sections along ``axis``; each section is normalised
(:mod:`seiscore.methods.ssb.scaling`), reflect-padded to a whole number of patch strides and cut into
overlapping ``patch`` x ``patch`` patches (stride = patch - overlap). Predictions are
overlap-added with a separable window w(t) = sin^2(pi/2 (t + 1/2) / overlap) on both
``overlap``-wide borders and 1 inside, divided by the summed window (so any overlap blends
smoothly), cropped, de-normalised and put back in the input's orientation and dtype.
Runs on CUDA when available (float16 autocast), else on CPU if ``allow_cpu``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seiscore.core.validation import as_float_volume
from seiscore.execution.resources import require_gpu
from seiscore.methods.ssb.model import Mode, SSBModel
from seiscore.methods.ssb.scaling import denormalise, normalise, section_stats


def pick_device(device: str | torch.device | None = None, allow_cpu: bool = True) -> torch.device:
    """``device`` as given, else CUDA when available; CPU only when ``allow_cpu`` (the one GPU rule,
    :func:`seiscore.execution.resources.require_gpu`)."""
    requested = None if device is None else str(torch.device(device))
    return torch.device(require_gpu(allow_cpu, "SSB", requested=requested))


def blend_window(patch: int, overlap: int) -> np.ndarray:
    """(patch, patch) window: sin^2 ramps over ``overlap`` samples at each border, 1 inside."""
    t = np.arange(patch, dtype=np.float64) + 0.5
    ramp = np.ones(patch)
    if overlap > 0:
        edge = np.minimum(t, patch - t)
        ramp = np.where(edge < overlap, np.sin(0.5 * np.pi * np.minimum(edge / overlap, 1.0)) ** 2, 1.0)
    return np.outer(ramp, ramp)


@contextmanager
def _eval_mode(model: torch.nn.Module):
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def _padded(n: int, patch: int, step: int) -> int:
    return patch + -(-(n - patch) // step) * step


def denoise_sections(
    sections: np.ndarray,
    model: SSBModel,
    *,
    batch_size: int = 32,
    device: torch.device | None = None,
    mode: Mode = "blend",
    overlap: int | None = None,
    return_gate: bool = False,
):
    """Denoise a (n, H, W) stack of sections; returns float64 (n, H, W) (and the gate maps in [0, 1])."""
    n, h, w = sections.shape
    p = model.cfg.patch
    if h < p or w < p:
        raise ValueError(
            f"sections of {h}x{w} samples are smaller than one {p}x{p} model patch; "
            "use a larger section axis or a smaller patch"
        )
    overlap = p // 4 if overlap is None else int(overlap)
    if not 0 <= overlap < p:
        raise ValueError(f"overlap must be in [0, {p}), got {overlap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if return_gate and mode != "blend":
        raise ValueError("return_gate needs mode='blend' (single experts have no gate)")
    device = device or next(model.parameters()).device
    step = p - overlap
    hp, wp = _padded(h, p, step), _padded(w, p, step)
    per_section = ((hp - p) // step + 1) * ((wp - p) // step + 1)
    chunk = max(1, 4 * batch_size // per_section)
    mu, sd = section_stats(sections)
    win = torch.as_tensor(blend_window(p, overlap), dtype=torch.float32, device=device).reshape(1, p * p, 1)
    out = np.empty((n, h, w), dtype=np.float64)
    gate = np.empty((n, h, w), dtype=np.float32) if return_gate else None
    fold = lambda cols, c: F.fold(cols, (hp, wp), p, stride=step)  # noqa: E731
    amp = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    with _eval_mode(model), torch.inference_mode(), amp:
        for s0 in range(0, n, chunk):
            z = torch.as_tensor(
                normalise(sections[s0 : s0 + chunk], mu[s0 : s0 + chunk], sd[s0 : s0 + chunk]), device=device
            )
            c = z.shape[0]
            z = F.pad(z[:, None], (0, wp - w, 0, hp - h), mode="reflect")
            cols = F.unfold(z, p, stride=step)  # (c, p*p, L)
            patches = cols.transpose(1, 2).reshape(-1, 1, p, p)
            preds, gates = [], []
            for b0 in range(0, patches.shape[0], batch_size):
                res = model(patches[b0 : b0 + batch_size], mode=mode)
                preds.append(res.denoised.float())
                if return_gate:
                    gates.append(res.gate.float())
            norm = fold(win.expand(c, -1, cols.shape[-1]), c)
            blended = lambda t: (fold(torch.cat(t).reshape(c, -1, p * p).transpose(1, 2) * win, c) / norm)[:, 0, :h, :w]  # noqa: E731
            out[s0 : s0 + c] = blended(preds).cpu().numpy()
            if return_gate:
                gate[s0 : s0 + c] = blended(gates).cpu().numpy()
    out = denormalise(out, mu, sd)
    return (out, gate) if return_gate else out


def denoise(
    volume,
    model: SSBModel | str | Path,
    axis: int = 0,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    allow_cpu: bool = True,
    *,
    mode: Mode = "blend",
    overlap: int | None = None,
    return_gate: bool = False,
):
    """Denoise a 3-D ``volume`` with an SSB ``model`` (or an artifact folder) on 2-D sections along ``axis``.

    Returns a new array with the volume's shape and dtype (and, with ``return_gate``, the float32
    gate map g, same shape: 1 = DINOv3, 0 = Swin V2). The input is never modified.
    """
    vol = as_float_volume("volume", volume, ndim=3, min_len=1)
    if axis not in (0, 1, 2, -1, -2, -3):
        raise ValueError(f"axis must be 0, 1 or 2 for a 3-D volume, got {axis}")
    if not isinstance(model, SSBModel):
        from seiscore.methods.ssb.artifacts import load_model

        model = load_model(model)
    dev = pick_device(device, allow_cpu)
    model.to(dev)
    res = denoise_sections(
        np.moveaxis(vol, axis, 0),
        model,
        batch_size=batch_size,
        device=dev,
        mode=mode,
        overlap=overlap,
        return_gate=return_gate,
    )
    if return_gate:
        out, gate = res
        return np.moveaxis(out, 0, axis).astype(vol.dtype), np.moveaxis(gate, 0, axis)
    return np.moveaxis(res, 0, axis).astype(vol.dtype)
