"""Cold sampling and the one-step ``direct`` estimate (spec §2.4).

Sampling starts at the observed noisy trace, ``x = y`` (``x_{T-1} ~ y`` for the linear schedule). With
``D(x0, y, t) = a_t x0 + b_t y = (a_t + b_t) x0 + b_t n`` (``n = y - x0``), at each ``s = T-1 .. 0``:
``x0_hat = R(x, s)``, ``n_hat = (x - (a_s + b_s) x0_hat) / b_s``, and the update (``sampler``, a
:class:`~seiscore.methods.cdiffsd.config.CDiffSDConfig` field) is one of

- ``released`` (the released code): ``x <- x - (a_s x0_hat + b_s n_hat) + (a_{s-1} x0_hat + b_{s-1} n_hat)``,
  i.e. ``x <- (b_s + a_{s-1}) x0_hat + b_{s-1} n_hat``: ``D(x0_hat, s)`` is written without the signal that
  ``y`` carries, so ``x`` leaves the training manifold by ``(b_s - b_{s-1}) x0_hat`` per step; with an exact
  network the chain ends at ``(1 + b_0) x0``;
- ``consistent``: Bansal et al.'s ``x <- x - D(x0_hat, s) + D(x0_hat, s-1)`` with the estimated noise,
  ``x <- (a_{s-1} + b_{s-1}) x0_hat + b_{s-1} n_hat = a_{s-1} x0_hat + b_{s-1} y_hat``
  (``y_hat = (x - a_s x0_hat) / b_s``; ``x - D(x0_hat, s)`` is then 0, a DDIM-like step);
- ``anchored``: Bansal et al.'s improved update with the *observed* ``y`` (known at inference):
  ``x <- x - D(x0_hat, y, s) + D(x0_hat, y, s-1) = x + (a_{s-1} - a_s) x0_hat + (b_{s-1} - b_s) y``, whose
  inputs are the ones the corrected two-pass loss trains on (``a_t x0_hat + b_t y``).

At ``s = 0`` the chain returns ``x0_hat`` (``consistent``, ``anchored``: exact for an exact network) or
``x - D_released(x0_hat, 0) + x0_hat`` (``released``). ``direct`` is one evaluation ``R(y, T-1)``. The legacy
schedule (``legacy_test_schedule``) starts at ``T-2`` and uses the released test code's coefficients.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from seiscore.methods.cdiffsd.schedule import ColdSchedule

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SAMPLERS = ("released", "consistent", "anchored")


def direct(net: Net, schedule: ColdSchedule, y: torch.Tensor) -> torch.Tensor:
    """One network evaluation at the last step: ``R(y, T-1)``."""
    t = torch.full((y.shape[0],), schedule.T - 1, dtype=torch.long, device=y.device)
    return net(y, t)


def visited_steps(start: int, evaluations: int | None = None) -> list[int]:
    """The steps the chain evaluates the network at: ``start, start-1, .., 0`` (``evaluations`` None), or
    ``evaluations`` steps evenly spaced from ``start`` to 0 (rounded, duplicates dropped; always both ends)."""
    if evaluations is None or evaluations >= start + 1:
        return list(range(start, -1, -1))
    if evaluations < 2:
        raise ValueError(f"CDiffSD sampling needs at least 2 network evaluations, got {evaluations}")
    return [int(v) for v in dict.fromkeys(np.rint(np.linspace(start, 0, int(evaluations))).astype(int))]


def cold_sample(
    net: Net,
    schedule: ColdSchedule,
    y: torch.Tensor,
    *,
    start: int | None = None,
    sampler: str | None = None,
    evaluations: int | None = None,
) -> torch.Tensor:
    """The cold reverse chain from ``x = y`` at step ``start`` (default: the schedule's) down to 0, with the
    ``sampler`` update (default: the schedule's, i.e. the configuration's; see the module docstring).

    ``evaluations``: strided chain over :func:`visited_steps` (``s-1`` in the updates becomes the next visited
    step); None: every step."""
    start = schedule.start if start is None else int(start)
    form = schedule.sampler if sampler is None else sampler
    if form not in SAMPLERS:
        raise ValueError(f"unknown CDiffSD sampler {form!r}: one of {', '.join(SAMPLERS)}")
    a, b = schedule.sample_a, schedule.sample_b
    steps = visited_steps(start, evaluations)
    x = y
    for s, p in zip(steps, steps[1:] + [-1]):
        t = torch.full((y.shape[0],), s, dtype=torch.long, device=y.device)
        x0_hat = net(x, t)
        a_s, b_s = float(a[s]), float(b[s])
        if form == "released":
            n_hat = (x - (a_s + b_s) * x0_hat) / b_s
            current = a_s * x0_hat + b_s * n_hat
            previous = float(a[p]) * x0_hat + float(b[p]) * n_hat if s > 0 else x0_hat
            x = x - current + previous
        elif s == 0:
            x = x0_hat
        elif form == "consistent":
            a_p, b_p = float(a[p]), float(b[p])
            n_hat = (x - (a_s + b_s) * x0_hat) / b_s
            x = (a_p + b_p) * x0_hat + b_p * n_hat
        else:  # anchored
            a_p, b_p = float(a[p]), float(b[p])
            x = x + (a_p - a_s) * x0_hat + (b_p - b_s) * y
    return x
