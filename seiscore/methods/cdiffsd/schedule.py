"""The cold-diffusion schedule shared by training and inference (spec §2.1, §2.4).

With ``beta_t`` (t = 0 .. T-1), ``abar_t = prod_{s<=t} (1 - beta_s)``, ``a_t = sqrt(abar_t)`` and
``b_t = sqrt(1 - abar_t)``, the degradation of a clean trace ``x0`` towards the observed noisy trace ``y`` is

.. math:: D(x_0, y, t) = a_t x_0 + b_t y .

- linear: ``beta_t = linspace(s 1e-4, s 0.02, T)`` with ``s = 1000 / T``, so ``a_{T-1} ~ 0`` and
  ``x_{T-1} ~ y`` (T = 300: ``a_{T-1} = 0.006``); betas are clipped at :data:`BETA_MAX` (only T < 50 reach it);
- cosine (option, as released): ``beta_t = cos^2(((t/T) + s)/(1 + s) pi/2) (0.02 - 1e-4) + 1e-4``, ``s = 0.008``
  (beta *decreases* with t and ``a_{T-1} = 0.22``: ``x_{T-1} != y``);
- angle (design, for small T): the steps evenly spaced in the angle ``phi_t = pi/2 (t + 1)/T``,
  ``a_t = cos(phi_t)``, ``b_t = sin(phi_t)`` (``abar_t = cos^2 phi_t``, ``beta_t = 1 - abar_t / abar_{t-1}``):
  ``a_t`` falls strictly from ``cos(pi/(2T))`` to 0, so ``x_{T-1} = y`` exactly and no step is spent where
  ``x_t ~ y`` (the scaled linear schedule at T = 20 clips beta at 0.999 and has ``a_t < 0.06`` for 8 of its 20
  steps).

:class:`ColdSchedule` is the one object training and sampling read their coefficients from. Only with
``legacy_test_schedule`` do the sampling coefficients differ: the released test code's *unscaled* linear
``1e-4 .. 0.02``, kept to reproduce its behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seiscore.methods.cdiffsd.config import CDiffSDConfig

# Betas are clipped here: the scaled linear schedule exceeds 1 for T < 50 (T = 5: up to 4), which would make
# 1 - beta negative; T >= 50 is unaffected.
BETA_MAX = 0.999


def betas(T: int, kind: str = "linear", *, scaled: bool = True, cosine_s: float = 0.008) -> np.ndarray:
    """``beta_t`` of the ``kind`` schedule with ``T`` steps (float64); ``scaled=False``: the unscaled linear one."""
    if kind == "linear":
        s = 1000.0 / T if scaled else 1.0
        return np.minimum(np.linspace(s * 1e-4, s * 0.02, T, dtype=np.float64), BETA_MAX)
    if kind == "cosine":
        t = np.arange(T, dtype=np.float64)
        return np.cos(((t / T) + cosine_s) / (1 + cosine_s) * np.pi / 2) ** 2 * (0.02 - 1e-4) + 1e-4
    if kind == "angle":
        abar = np.cos(np.pi / 2 * np.arange(1, T + 1, dtype=np.float64) / T) ** 2
        abar[-1] = 0.0  # cos(pi/2) is 6e-17 in floating point: the last step is y exactly
        return 1.0 - abar / np.concatenate(([1.0], abar[:-1]))
    raise ValueError(f"unknown CDiffSD schedule {kind!r}: 'linear', 'cosine' or 'angle'")


def coefficients(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a_t, b_t) = (sqrt(abar_t), sqrt(1 - abar_t))`` of ``beta_t`` (float64)."""
    abar = np.cumprod(1.0 - beta)
    return np.sqrt(abar), np.sqrt(1.0 - abar)


@dataclass(frozen=True)
class ColdSchedule:
    """Coefficients ``a_t``, ``b_t`` for training (``a``, ``b``) and for sampling (``sample_a``, ``sample_b``:
    the same arrays unless ``legacy_test_schedule``), float64 of length ``T``, and the cold sampler's update
    (``sampler``, :mod:`seiscore.methods.cdiffsd.sampler`)."""

    T: int
    kind: str
    a: np.ndarray
    b: np.ndarray
    sample_a: np.ndarray
    sample_b: np.ndarray
    legacy: bool = False
    sampler: str = "anchored"

    @classmethod
    def from_config(cls, cfg: CDiffSDConfig) -> ColdSchedule:
        """The schedule of ``cfg`` (``T``, ``schedule``, ``cosine_s``, ``legacy_test_schedule``, ``sampler``)."""
        a, b = coefficients(betas(cfg.T, cfg.schedule, cosine_s=cfg.cosine_s))
        if cfg.legacy_test_schedule:
            sa, sb = coefficients(betas(cfg.T, "linear", scaled=False))
        else:
            sa, sb = a, b
        for arr in (a, b, sa, sb):
            arr.setflags(write=False)
        return cls(
            T=cfg.T,
            kind=cfg.schedule,
            a=a,
            b=b,
            sample_a=sa,
            sample_b=sb,
            legacy=cfg.legacy_test_schedule,
            sampler=cfg.sampler,
        )

    @property
    def start(self) -> int:
        """Step the sampler starts at: ``T-1`` (``x_{T-1} ~ y``); the released code's ``T-2`` when legacy."""
        return self.T - 2 if self.legacy else self.T - 1

    def degrade(self, x0, y, t):
        """``D(x0, y, t) = a_t x0 + b_t y`` for torch tensors ``x0``, ``y`` of shape [B, C, L] and steps
        ``t`` (int tensor [B]) with the training coefficients."""
        a, b = self.torch_coeffs(t, x0)
        return a * x0 + b * y

    def torch_coeffs(self, t, like, *, sampling: bool = False):
        """``(a_t, b_t)`` gathered for steps ``t`` (int tensor [B]) as tensors [B, 1, 1] of ``like``'s dtype and
        device."""
        import torch

        a = self.sample_a if sampling else self.a
        b = self.sample_b if sampling else self.b
        idx = t.detach().cpu().numpy()
        at = torch.as_tensor(a[idx], dtype=like.dtype, device=like.device).view(-1, 1, 1)
        bt = torch.as_tensor(b[idx], dtype=like.dtype, device=like.device).view(-1, 1, 1)
        return at, bt
