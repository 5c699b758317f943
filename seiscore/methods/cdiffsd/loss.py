"""The two-pass ("unfolded") cold-diffusion training loss (spec §2.3).

Per batch: ``t ~ U{0..T-1}``, ``x_t = D(x0, y, t)``, ``x0_hat = R(x_t, t)``; a second step ``t' ~ U{0..T-1}``
re-degrades the *prediction* and the network is asked to recover ``x0`` from it too:

.. math:: L = \\lVert x_0 - \\hat x_0 \\rVert_1 + \\lambda \\lVert x_0 - R(x'_{t'}, t') \\rVert_1,\\quad \\lambda = 3

- corrected (default, our reading of Yen et al. 2023): ``x'_{t'} = D(x0_hat, y, t') = a_{t'} x0_hat + b_{t'} y``,
  the predicted clean trace degraded towards the *observed* ``y``, as the sampler does at inference;
- released code (``legacy_unfold=True``): ``y_hat = (x_t - a_t x0_hat) / b_t + x0_hat`` and
  ``x'_{t'} = a_{t'} x0_hat + b_{t'} y_hat``; as ``(x_t - a_t x0_hat)/b_t`` already estimates ``y``, this target
  carries the signal twice (``y_hat ~ x0 + y``).

The second step ``t'`` is drawn independently of ``t`` (``unfold_step="random"``, as released) or is the
sampler's next step (``"previous"``, design): ``t' = t - 1`` (``t' = 0`` when ``t = 0``), so the second pass is
exactly one transition of the anchored sampler, ``a_{t-1} x0_hat + b_{t-1} y`` with ``x0_hat`` from step ``t``.

Gradients flow through both passes (nothing is detached), as released. The norm is L1 by default (L2, Huber:
options). Means are over all samples of the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seiscore.methods.cdiffsd.schedule import ColdSchedule


def distance(kind: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean L1, L2 (squared error) or Huber distance between ``a`` and ``b``."""
    if kind == "l1":
        return F.l1_loss(a, b)
    if kind == "l2":
        return F.mse_loss(a, b)
    if kind == "huber":
        return F.smooth_l1_loss(a, b)
    raise ValueError(f"unknown CDiffSD loss {kind!r}: 'l1', 'l2' or 'huber'")


def unfolded_loss(
    net,
    schedule: ColdSchedule,
    x0: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    penalty: float = 3.0,
    kind: str = "l1",
    legacy_unfold: bool = False,
    unfold_step: str = "random",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The two-pass loss of ``net`` (``R(x, t)``) on clean ``x0`` and noisy ``y`` [B, C, L]; steps drawn from
    ``generator``. Returns the loss and its two terms as floats."""
    n = x0.shape[0]
    t = torch.randint(0, schedule.T, (n,), generator=generator).to(x0.device)
    t2 = torch.randint(0, schedule.T, (n,), generator=generator).to(x0.device)
    if unfold_step == "previous":
        t2 = (t - 1).clamp(min=0)
    elif unfold_step != "random":
        raise ValueError(f"unknown CDiffSD unfold_step {unfold_step!r}: 'random' or 'previous'")
    a, b = schedule.torch_coeffs(t, x0)
    xt = a * x0 + b * y
    x0_hat = net(xt, t)
    a2, b2 = schedule.torch_coeffs(t2, x0)
    if legacy_unfold:
        y_hat = (xt - a * x0_hat) / b + x0_hat
        x2 = a2 * x0_hat + b2 * y_hat
    else:
        x2 = a2 * x0_hat + b2 * y
    x0_hat2 = net(x2, t2)
    first = distance(kind, x0_hat, x0)
    second = distance(kind, x0_hat2, x0)
    loss = first + penalty * second
    return loss, {"loss_first": float(first.detach()), "loss_second": float(second.detach())}
