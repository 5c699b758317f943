"""Encoding new velocity models with the decoder frozen (DeepSDF inference): the real compression path.

For each model ``i`` the latent minimises ``mean_p (f(x_p, z_i) - v_n,i(x_p))^2 + lam ||z_i||^2`` with the
decoder's weights fixed (``requires_grad`` off during the encoding, restored after), by ``encode_steps`` Adam
steps at ``encode_lr`` from ``z_i ~ N(0, sigma^2)`` drawn from a generator seeded by ``seed``. The loss summed
over the models of a batch makes each latent's gradient, hence its Adam trajectory, independent of the other
models in the batch: all models go through one batched matmul chain, in chunks of ``batch_maps`` models.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from seiscore.data.velocity import validate_models
from seiscore.methods.siren.config import AutoDecoderConfig
from seiscore.methods.siren.model import VelocityAutoDecoder
from seiscore.methods.siren.train import objective
from seiscore.nn.siren import grid_coordinates


def encode_models(
    decoder: VelocityAutoDecoder,
    models: np.ndarray,
    config: AutoDecoderConfig | None = None,
    seed: int = 0,
    *,
    batch_maps: int | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> np.ndarray:
    """Latents ``(N, L)`` float32 of ``models`` ``(N, nz, nx)`` m/s (validated, never modified; any grid: its
    coordinates are ``linspace(-1, 1, n)`` per axis) under the frozen ``decoder`` (on its own device).

    ``config`` gives the encoding's steps, learning rate, prior and the normalisation (default: the decoder's);
    ``batch_maps`` models are optimised together (default ``config.batch_maps``); ``callback(step, loss)``
    sees the mean objective after each step of each chunk. Seeded: the same input gives the same latents."""
    config = config or decoder.config
    if config.threads:
        torch.set_num_threads(config.threads)
    arr = validate_models(models)
    n, nz, nx = arr.shape
    device = decoder.device
    coords = grid_coordinates((nz, nx), device=device)
    target_all = (arr.reshape(n, -1) - config.vmin) / config.vrange
    gen = torch.Generator().manual_seed(int(seed))
    init = torch.randn(n, decoder.latent_dim, generator=gen) * config.sigma
    chunk = max(1, batch_maps or config.batch_maps)
    out = np.empty((n, decoder.latent_dim), dtype=np.float32)
    flags = [p.requires_grad for p in decoder.parameters()]
    was_training = decoder.training
    decoder.eval()
    for p in decoder.parameters():
        p.requires_grad_(False)
    try:
        for start in range(0, n, chunk):
            target = torch.as_tensor(target_all[start : start + chunk], dtype=torch.float32, device=device)
            z = torch.nn.Parameter(init[start : start + chunk].clone().to(device))
            opt = torch.optim.Adam([z], lr=config.encode_lr)
            for step in range(config.encode_steps):
                per_model = objective(decoder(coords, z), target, z, config.lam)
                opt.zero_grad(set_to_none=True)
                per_model.sum().backward()
                opt.step()
                if callback is not None:
                    callback(step, float(per_model.detach().mean()))
            out[start : start + chunk] = z.detach().cpu().numpy()
    finally:
        for p, flag in zip(decoder.parameters(), flags):
            p.requires_grad_(flag)
        decoder.train(was_training)
    return out
