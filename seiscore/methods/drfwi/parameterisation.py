"""The five velocity parameterisations of DRFWI, as ``nn.Module`` s whose :meth:`velocity` returns ``v (nz, nx)``.

=============  ====================================================================  ==========================
mode           velocity model (before the bounds)                                    trainable
=============  ====================================================================  ==========================
grid           ``v = m``, ``m`` initialised with ``m_init``                          the grid ``m``
mean-denorm    ``v = mu + S f(x)``, ``mu = mean(m_init)``                            SIREN ``Theta``
pretrain       as mean-denorm; stage 1 fits ``Theta`` to ``m_init`` (L1)             SIREN ``Theta``
s-denorm       ``v = m_init + S (f(x) - f_0(x))``                                    SIREN ``Theta``
a-denorm       ``v = b + S (f(x) - f_0(x))``, ``b = m_init + G_sigma * db``          ``Theta`` and ``db``
=============  ====================================================================  ==========================

``f = Siren(2, width, hidden, 1)`` evaluated on the grid's coordinates in ``[-1, 1]^2``
(:func:`seiscore.nn.siren.grid_coordinates`), initialised from a seeded ``torch.Generator``; ``f_0`` is its
output at initialisation, stored as a constant buffer, so s-denorm and a-denorm start *exactly* at ``m_init``
(without it a random SIREN adds a ~100 m/s rms perturbation, spec §2.3). ``db`` is a zero-initialised grid
smoothed by a normalised Gaussian of ``sigma`` cells (replicated edges), so only long wavelengths of the
background move; it has its own learning rate (see :mod:`.invert`).

Bounds: ``v`` is *clamped* to ``[vmin, vmax]``. A clamp is the identity inside the bounds, so a model that
starts inside them (s-denorm: ``m_init``) starts exactly there and its gradients are the plain FWI gradients;
cells pushed onto a bound get no gradient until the shared weights move them back. (A sigmoid mapping would
change the meaning of S and bend every gradient, and could not reproduce ``m_init`` exactly in float32.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seiscore.nn.siren import Siren, grid_coordinates


def _as_tensor(m: np.ndarray | torch.Tensor, dtype: torch.dtype, device=None) -> torch.Tensor:
    """A new tensor (never a view of the caller's array)."""
    if isinstance(m, torch.Tensor):
        return m.detach().to(device=device, dtype=dtype).clone()
    return torch.tensor(np.array(m, dtype=np.float64), dtype=dtype, device=device)


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``sigma`` cells over ``+-ceil(3 sigma)``."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """``G_sigma * field`` for a 2-D field: separable normalised Gaussian, edges replicated (differentiable)."""
    k = gaussian_kernel(sigma, field.dtype).to(field.device)
    r = (k.numel() - 1) // 2
    x = F.pad(field[None, None], (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[0, 0]


class Parameterisation(nn.Module):
    """Base: ``velocity()`` is ``clamp(raw(), vmin, vmax)``; subclasses define :meth:`raw`."""

    mode: str = ""

    def __init__(self, shape: tuple[int, int], bounds: tuple[float, float]):
        super().__init__()
        self.shape = (int(shape[0]), int(shape[1]))
        self.vmin, self.vmax = float(bounds[0]), float(bounds[1])

    def raw(self) -> torch.Tensor:
        """The unbounded model ``(nz, nx)``."""
        raise NotImplementedError

    def velocity(self) -> torch.Tensor:
        """The velocity model ``(nz, nx)`` in m/s, clamped to the bounds."""
        return torch.clamp(self.raw(), self.vmin, self.vmax)

    def forward(self) -> torch.Tensor:
        """Same as :meth:`velocity`."""
        return self.velocity()

    def network_parameters(self) -> list[nn.Parameter]:
        """The SIREN's weights (empty for grid)."""
        return []

    def param_groups(self, lr: float, background_lr: float) -> list[dict]:
        """Optimiser parameter groups: everything at ``lr`` (a-denorm: the background at ``background_lr``)."""
        return [{"params": list(self.parameters()), "lr": lr}]


class GridModel(Parameterisation):
    """Conventional FWI: the velocity grid itself, initialised with ``m_init``."""

    mode = "grid"

    def __init__(self, m_init, bounds=(1400.0, 5000.0), *, dtype=torch.float32, device=None):
        m = _as_tensor(m_init, dtype, device)
        super().__init__(tuple(m.shape), bounds)
        self.model = nn.Parameter(m)

    def raw(self) -> torch.Tensor:
        """The grid."""
        return self.model


class _NetworkModel(Parameterisation):
    """Common part of the SIREN modes: the network, its coordinates and the scale S."""

    def __init__(
        self,
        m_init,
        bounds=(1400.0, 5000.0),
        *,
        scale: float | str = 1000.0,
        width: int = 256,
        hidden: int = 4,
        omega_0: float = 30.0,
        seed: int = 0,
        dtype=torch.float32,
        device=None,
    ):
        m = _as_tensor(m_init, dtype, device)
        super().__init__(tuple(m.shape), bounds)
        s = float(m.std()) if scale == "std" else float(scale)
        if not s > 0:
            raise ValueError(f"scale S must be positive, got {s:g} (scale={scale!r})")
        self.scale = s
        self.register_buffer("m_init", m)
        self.register_buffer("coords", grid_coordinates(self.shape, dtype=dtype, device=device))
        gen = torch.Generator().manual_seed(int(seed))
        self.net = Siren(2, width, hidden, 1, omega_0=omega_0, generator=gen).to(device=device, dtype=dtype)

    def f(self) -> torch.Tensor:
        """The network's output on the grid ``(nz, nx)``."""
        return self.net(self.coords).reshape(self.shape)

    def network_parameters(self) -> list[nn.Parameter]:
        """The SIREN's weights."""
        return list(self.net.parameters())


class MeanDenormModel(_NetworkModel):
    """``v = mu + S f(x)`` with ``mu`` the mean of ``m_init``: the network creates the whole model."""

    mode = "mean-denorm"

    def __init__(self, m_init, bounds=(1400.0, 5000.0), **kw):
        super().__init__(m_init, bounds, **kw)
        self.mu = float(self.m_init.mean())

    def raw(self) -> torch.Tensor:
        """``mu + S f``."""
        return self.mu + self.scale * self.f()


class PretrainModel(MeanDenormModel):
    """mean-denorm whose weights are first fitted to ``m_init`` (stage 1, :func:`pretrain`)."""

    mode = "pretrain"


class SDenormModel(_NetworkModel):
    """``v = m_init + S (f(x) - f_0(x))``: the network only represents the perturbation; exactly ``m_init`` at
    initialisation."""

    mode = "s-denorm"

    def __init__(self, m_init, bounds=(1400.0, 5000.0), **kw):
        super().__init__(m_init, bounds, **kw)
        with torch.no_grad():
            self.register_buffer("f0", self.f().clone())

    def background(self) -> torch.Tensor:
        """The static background ``m_init``."""
        return self.m_init

    def raw(self) -> torch.Tensor:
        """``background + S (f - f_0)``."""
        return self.background() + self.scale * (self.f() - self.f0)


class ADenormModel(SDenormModel):
    """``v = b + S (f(x) - f_0(x))`` with the adaptive background ``b = m_init + G_sigma * db`` (``db`` a
    zero-initialised trainable grid)."""

    mode = "a-denorm"

    def __init__(self, m_init, bounds=(1400.0, 5000.0), *, sigma: float = 10.0, **kw):
        super().__init__(m_init, bounds, **kw)
        self.sigma = float(sigma)
        self.delta_b = nn.Parameter(torch.zeros_like(self.m_init))

    def background(self) -> torch.Tensor:
        """``m_init + G_sigma * db``."""
        return self.m_init + gaussian_smooth(self.delta_b, self.sigma)

    def param_groups(self, lr: float, background_lr: float) -> list[dict]:
        """The network at ``lr``, the background update at ``background_lr`` (m/s per step)."""
        return [{"params": self.network_parameters(), "lr": lr}, {"params": [self.delta_b], "lr": background_lr}]


MODELS: dict[str, type[Parameterisation]] = {
    "grid": GridModel,
    "mean-denorm": MeanDenormModel,
    "pretrain": PretrainModel,
    "s-denorm": SDenormModel,
    "a-denorm": ADenormModel,
}


def build(config, m_init, *, device=None) -> Parameterisation:
    """The parameterisation of ``config.mode`` (an :class:`~seiscore.methods.drfwi.config.InversionConfig`)
    for ``m_init (nz, nx)`` m/s, its network seeded by ``config.seed``."""
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    device = device if device is not None else config.device
    if config.mode == "grid":
        return GridModel(m_init, config.bounds, dtype=dtype, device=device)
    kw = dict(
        scale=config.scale,
        width=config.width,
        hidden=config.hidden,
        omega_0=config.omega_0,
        seed=config.seed,
        dtype=dtype,
        device=device,
    )
    if config.mode == "a-denorm":
        kw["sigma"] = config.background_sigma
    return MODELS[config.mode](m_init, config.bounds, **kw)


def pretrain(
    model: Parameterisation,
    target: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-4,
    tol: float = 0.005,
    optimizer: torch.optim.Optimizer | None = None,
    start: int = 0,
    on_step=None,
) -> tuple[int, float]:
    """Stage 1 of Pretrain-DRFWI: minimise ``mean |v - target|`` (L1 on the velocity) with Adam until the mean
    relative error ``mean(|v - target| / target)`` is below ``tol`` or ``steps`` steps were made.

    ``on_step(step, l1, rel)`` is called after each step (e.g. progress events, checkpoints). Returns
    ``(steps done, final relative error)``."""
    opt = optimizer if optimizer is not None else torch.optim.Adam(model.network_parameters(), lr=lr)
    rel = float("inf")
    step = start
    while step < steps:
        opt.zero_grad(set_to_none=True)
        v = model.raw()
        diff = (v - target).abs()
        rel = float((diff.detach() / target).mean())
        if rel < tol:
            break
        loss = diff.mean()
        loss.backward()
        opt.step()
        step += 1
        if on_step is not None:
            on_step(step, float(loss), rel)
    else:
        with torch.no_grad():
            rel = float(((model.raw() - target).abs() / target).mean())
    return step, rel
