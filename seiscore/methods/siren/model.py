"""The velocity auto-decoder: one SIREN decoder shared by every model, conditioned on a per-model latent.

``f(x, z) = Siren(concat(x, z))`` with ``x`` in ``[-1, 1]^2`` (depth, distance; ``linspace(-1, 1, n)`` per
axis on the native grid, so a finer grid samples the same square: super-resolution) and ``z`` the model's
latent. The output is the normalised velocity ``v_n = (v - vmin) / (vmax - vmin)``.

Batched evaluation: the first layer is affine in the concatenated input, so
``W [x; z] + b = W_x x + (W_z z + b)``; the coordinate term ``(P, width)`` and the latent term ``(B, width)``
are computed once and broadcast to ``(B, P, width)``; the remaining layers are one matmul chain over all
models and points (training, encoding). Decoding (:meth:`VelocityAutoDecoder.predict`) folds ``omega_0`` into the
weights and runs one chain per model over its points, so that a model's decoded bits never depend on the batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from seiscore.methods.siren.config import AutoDecoderConfig, SirenError
from seiscore.nn.siren import Siren, grid_coordinates

# Elements of one (points x width) activation per decode chunk: 2**25 float32 = 128 MiB.
DECODE_CHUNK_ELEMENTS = 1 << 25


def check_shape(shape: Sequence[int], what: str = "decode shape") -> tuple[int, int]:
    """``shape`` as ``(nz, nx)`` of positive integers, else a one-line :class:`SirenError`."""
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise SirenError(f"{what} must be two positive integers (nz, nx), got {shape!r}") from None
    if len(out) != 2 or any(s < 1 for s in out) or any(float(a) != float(b) for a, b in zip(out, shape)):
        raise SirenError(f"{what} must be two positive integers (nz, nx), got {tuple(shape)!r}")
    return out  # type: ignore[return-value]


class VelocityAutoDecoder(nn.Module):
    """SIREN decoder ``Siren(2 + L, width, hidden, 1, omega_0)`` of ``config``, seeded by ``generator``.

    ``forward(coords (P, 2), latents (B, L)) -> (B, P)`` normalised velocities (differentiable);
    ``decode(latents, shape=... | coords=...)`` -> m/s NumPy float32 without gradients;
    ``interpolate(z_a, z_b, alphas)`` -> the latents ``(1 - a) z_a + a z_b``.
    """

    def __init__(self, config: AutoDecoderConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.decoder = Siren(
            2 + config.latent_dim, config.width, config.hidden, 1, omega_0=config.omega_0, generator=generator
        )
        self.latents: torch.Tensor | None = None  # the training latents, when loaded from a fit's artifact

    @property
    def latent_dim(self) -> int:
        """Latent size L."""
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        """Device of the decoder's weights."""
        return self.decoder.out.weight.device

    def forward(self, coords: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Normalised velocities ``(B, P)`` of ``B`` latents at ``P`` points ``coords`` (on ``[-1, 1]^2``)."""
        first = self.decoder.body[0]
        w, b = first.linear.weight, first.linear.bias
        at_points = coords @ w[:, :2].T  # (P, width)
        per_model = latents @ w[:, 2:].T + b  # (B, width)
        h = torch.sin(first.omega_0 * (at_points.unsqueeze(0) + per_model.unsqueeze(1)))  # (B, P, width)
        for layer in self.decoder.body[1:]:
            h = layer(h)
        return self.decoder.out(h).squeeze(-1)

    def _latents(self, latents) -> torch.Tensor:
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32) if not torch.is_tensor(latents) else latents)
        z = z.detach().to(device=self.device, dtype=torch.float32)
        if z.ndim == 1:
            z = z.unsqueeze(0)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise SirenError(f"latents must be (n, {self.latent_dim}), got {tuple(z.shape)}")
        if not bool(torch.isfinite(z).all()):
            raise SirenError("latents hold NaN or infinite values")
        return z

    def _inference_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(omega_0 W, omega_0 b)`` of every sine layer and ``(W, b)`` of the output: the decode path folds
        ``omega_0`` into the weights so each layer is one ``addmm`` and one in-place ``sin``."""
        layers = [(m.omega_0 * m.linear.weight, m.omega_0 * m.linear.bias) for m in self.decoder.body]
        return [*layers, (self.decoder.out.weight, self.decoder.out.bias)]

    @torch.no_grad()
    def predict(self, latents, coords: torch.Tensor, *, chunk_elements: int = DECODE_CHUNK_ELEMENTS) -> torch.Tensor:
        """Normalised velocities ``(B, P)`` without gradients; equals :meth:`forward` to float32 rounding.

        Batch-invariant: each model is one matmul chain over its points (in chunks of ``chunk_elements //
        width`` points), so a model decodes to the same bits whatever it is decoded with (a hybrid codec's
        prediction at decode time is the one it was encoded against; chunked decoding on workers equals one
        pass). A BLAS product's rows may round differently with the number of rows, hence no stacking of
        models into one product."""
        z = self._latents(latents)
        coords = coords.to(device=self.device, dtype=torch.float32)
        weights = self._inference_weights()
        (w0, b0), hidden, (wo, bo) = weights[0], weights[1:-1], weights[-1]
        step = max(1, chunk_elements // self.config.width)
        chunks = [coords[i : i + step] @ w0[:, :2].T for i in range(0, coords.shape[0], step)]  # (p, width) each
        out = torch.empty((z.shape[0], coords.shape[0]), device=self.device)
        for j in range(z.shape[0]):
            per_model = torch.addmm(b0, z[j : j + 1], w0[:, 2:].T)  # (1, width)
            start = 0
            for at_points in chunks:
                h = (at_points + per_model).sin_()
                for w, b in hidden:
                    h = torch.addmm(b, h, w.T).sin_()
                out[j, start : start + h.shape[0]] = torch.addmm(bo, h, wo.T).squeeze(1)
                start += h.shape[0]
        return out

    def decode(
        self,
        latents,
        shape: Sequence[int] | None = None,
        coords=None,
        *,
        chunk_elements: int = DECODE_CHUNK_ELEMENTS,
    ) -> np.ndarray:
        """Velocities in m/s (float32, no gradients) of ``latents`` ``(B, L)`` (or one ``(L,)``):
        ``(B, nz, nx)`` on the grid ``shape`` (coordinates ``linspace(-1, 1, n)`` per axis: the native grid or
        any finer one), or ``(B, P)`` at points ``coords`` ``(P, 2)`` (depth, distance on ``[-1, 1]``)."""
        if (shape is None) == (coords is None):
            raise SirenError("decode needs exactly one of shape=(nz, nx) or coords=(P, 2)")
        if shape is not None:
            grid = check_shape(shape)
            pts = grid_coordinates(grid)
        else:
            pts = torch.as_tensor(np.asarray(coords, dtype=np.float32) if not torch.is_tensor(coords) else coords)
            if pts.ndim != 2 or pts.shape[1] != 2:
                raise SirenError(f"decode coords must be (P, 2) points on [-1, 1], got shape {tuple(pts.shape)}")
            if not bool(torch.isfinite(pts).all()):
                raise SirenError("decode coords hold NaN or infinite values")
        v_n = self.predict(latents, pts, chunk_elements=chunk_elements)
        v = (v_n * self.config.vrange + self.config.vmin).cpu().numpy().astype(np.float32, copy=False)
        return v.reshape(v.shape[0], *grid) if shape is not None else v

    @staticmethod
    def interpolate(z_a, z_b, alphas) -> np.ndarray:
        """Latents ``(len(alphas), L)`` float32 on the segment ``(1 - a) z_a + a z_b``."""
        za = np.asarray(z_a.detach().cpu() if torch.is_tensor(z_a) else z_a, dtype=np.float32).reshape(-1)
        zb = np.asarray(z_b.detach().cpu() if torch.is_tensor(z_b) else z_b, dtype=np.float32).reshape(-1)
        if za.shape != zb.shape:
            raise SirenError(f"interpolate: latents of different sizes {za.shape} and {zb.shape}")
        a = np.asarray(alphas, dtype=np.float32).reshape(-1, 1)
        return ((1 - a) * za + a * zb).astype(np.float32)
