"""CDiffSD: cold-diffusion denoising of single three-component earthquake traces (issue 14, spec ``docs/CDIFFSD.md``).

- :mod:`~seiscore.methods.cdiffsd.config`: :class:`CDiffSDConfig`, the model, schedule, loss and optimiser settings;
- :mod:`~seiscore.methods.cdiffsd.schedule`: :class:`ColdSchedule`, the one schedule training and inference share;
- :mod:`~seiscore.methods.cdiffsd.unet1d`: the 1-D U-Net ``R(x_t, t) -> x0_hat``;
- :mod:`~seiscore.methods.cdiffsd.loss`: the two-pass ("unfolded") cold-diffusion loss;
- :mod:`~seiscore.methods.cdiffsd.sampler`: the cold sampler and the one-step ``direct`` estimate;
- :mod:`~seiscore.methods.cdiffsd.model`: :class:`CDiffSDModel` (``denoise``, ``save``, ``load``);
- :mod:`~seiscore.methods.cdiffsd.train`: seeded, resumable training through the fit mode;
- :mod:`~seiscore.methods.cdiffsd.method`: the registered methods ``cdiffsd`` (per_item) and ``cdiffsd-train`` (fit).

Importing this package imports neither torch nor safetensors: the submodules that need them do.
"""

from __future__ import annotations

from seiscore.methods.cdiffsd.config import CDiffSDConfig, CDiffSDError

__all__ = ["CDiffSDConfig", "CDiffSDError"]
