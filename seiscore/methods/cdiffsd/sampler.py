"""Cold sampling and the one-step ``direct`` estimate (spec §2.4).

Sampling starts at the observed noisy trace, ``x = y`` (``x_{T-1} ~ y`` for the linear schedule), and for
``s = T-1 .. 0``:

.. math::
    \\hat x_0 = R(x, s),\\quad \\hat n = \\frac{x - (a_s + b_s)\\hat x_0}{b_s},\\quad
    x \\leftarrow x - (a_s \\hat x_0 + b_s \\hat n) + (a_{s-1} \\hat x_0 + b_{s-1} \\hat n)

with the second term ``x0_hat`` at ``s = 0`` (Bansal et al.'s improved sampler ``x_{s-1} = x_s - D(x0_hat, s) +
D(x0_hat, s-1)`` written with the noise estimate). With an exact network the chain ends at ``(1 + b_0) x0``.
``direct`` is one evaluation ``R(y, T-1)``. The legacy schedule (``legacy_test_schedule``) starts at ``T-2``
and uses the released test code's coefficients.
"""

from __future__ import annotations

from typing import Callable

import torch

from seiscore.methods.cdiffsd.schedule import ColdSchedule

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def direct(net: Net, schedule: ColdSchedule, y: torch.Tensor) -> torch.Tensor:
    """One network evaluation at the last step: ``R(y, T-1)``."""
    t = torch.full((y.shape[0],), schedule.T - 1, dtype=torch.long, device=y.device)
    return net(y, t)


def cold_sample(net: Net, schedule: ColdSchedule, y: torch.Tensor, *, start: int | None = None) -> torch.Tensor:
    """The cold reverse chain from ``x = y`` at step ``start`` (default: the schedule's) down to 0."""
    start = schedule.start if start is None else int(start)
    a, b = schedule.sample_a, schedule.sample_b
    x = y
    for s in range(start, -1, -1):
        t = torch.full((y.shape[0],), s, dtype=torch.long, device=y.device)
        x0_hat = net(x, t)
        a_s, b_s = float(a[s]), float(b[s])
        n_hat = (x - (a_s + b_s) * x0_hat) / b_s
        current = a_s * x0_hat + b_s * n_hat
        previous = float(a[s - 1]) * x0_hat + float(b[s - 1]) * n_hat if s > 0 else x0_hat
        x = x - current + previous
    return x
