"""SIREN: multilayer perceptrons with sine activations (Sitzmann et al., NeurIPS 2020).

The one implementation of the sine layer in seiscore, used by the velocity-archive auto-decoder
(:mod:`seiscore.methods.siren`) and by the neural reparameterisation of FWI (:mod:`seiscore.methods.drfwi`).

A sine layer computes

    h = sin(omega_0 * (W x + b))

with the initialisation that keeps the pre-activations' distribution fixed through depth:
first layer ``W ~ U(-1/n_in, 1/n_in)``, later layers ``W ~ U(-sqrt(6/n_in)/omega_0, sqrt(6/n_in)/omega_0)``,
biases PyTorch's default ``U(-1/sqrt(n_in), 1/sqrt(n_in))``. The output layer is linear with the hidden-layer
weight law. Initialisation draws from an explicit ``torch.Generator`` when one is given, so a seeded model is
the same on every machine and independent of other random draws.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def first_layer_bound(n_in: int) -> float:
    """Half-width of the uniform weight law of the first sine layer, ``1 / n_in``."""
    return 1.0 / n_in


def hidden_layer_bound(n_in: int, omega_0: float) -> float:
    """Half-width of the uniform weight law of later layers, ``sqrt(6 / n_in) / omega_0``."""
    return math.sqrt(6.0 / n_in) / omega_0


def _uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        tensor.uniform_(-bound, bound, generator=generator)


class SineLayer(nn.Module):
    """``sin(omega_0 * (W x + b))`` with SIREN's initialisation (``first``: the input layer's law)."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        omega_0: float = 30.0,
        first: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if n_in < 1 or n_out < 1:
            raise ValueError(f"sine layer sizes must be positive, got {n_in} -> {n_out}")
        self.omega_0, self.first = float(omega_0), bool(first)
        self.linear = nn.Linear(n_in, n_out)
        bound = first_layer_bound(n_in) if first else hidden_layer_bound(n_in, omega_0)
        _uniform_(self.linear.weight, bound, generator)
        _uniform_(self.linear.bias, 1.0 / math.sqrt(n_in), generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``sin(omega_0 * (x @ W.T + b))``."""
        return torch.sin(self.omega_0 * self.linear(x))


class Siren(nn.Module):
    """A SIREN MLP: ``n_in -> width`` (first sine layer), ``hidden`` sine layers ``width -> width``, and a linear
    output ``width -> n_out``.

    ``Siren(258, 512, 4, 1)`` is the velocity auto-decoder's table (1,183,745 parameters);
    ``Siren(2, 256, 4, 1)`` the FWI reparameterisation's.
    """

    def __init__(
        self,
        n_in: int,
        width: int,
        hidden: int,
        n_out: int = 1,
        *,
        omega_0: float = 30.0,
        omega_0_first: float | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if hidden < 0:
            raise ValueError(f"number of hidden sine layers must be >= 0, got {hidden}")
        first_w0 = omega_0 if omega_0_first is None else omega_0_first
        layers: list[nn.Module] = [SineLayer(n_in, width, omega_0=first_w0, first=True, generator=generator)]
        layers += [SineLayer(width, width, omega_0=omega_0, generator=generator) for _ in range(hidden)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, n_out)
        _uniform_(self.out.weight, hidden_layer_bound(width, omega_0), generator)
        _uniform_(self.out.bias, 1.0 / math.sqrt(width), generator)
        self.n_in, self.width, self.hidden, self.n_out = n_in, width, hidden, n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n_in) -> (..., n_out)``."""
        return self.out(self.body(x))

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())


def grid_coordinates(shape: tuple[int, ...], *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Coordinates of a regular grid of ``shape`` on ``[-1, 1]`` per axis (``linspace(-1, 1, n)``), as
    ``(prod(shape), len(shape))`` in C order (row-major, the last axis fastest)."""
    if any(n < 1 for n in shape):
        raise ValueError(f"grid shape must be positive in every axis, got {tuple(shape)}")
    axes = [torch.linspace(-1.0, 1.0, n, dtype=dtype, device=device) for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)
