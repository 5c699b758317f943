"""Denorm-DRFWI: full-waveform inversion with the velocity model produced by a coordinate network (SIREN).

- :mod:`.engine`: deepwave's 2-D scalar propagator for a :class:`~seiscore.data.shots.Geometry` (Ricker source,
  CFL check, loss scaling, flushing of denormals, storage options, observed data with a finer stencil);
- :mod:`.parameterisation`: the five ways of producing ``v (nz, nx)``: ``grid``, ``mean-denorm``,
  ``pretrain``, ``s-denorm``, ``a-denorm``;
- :mod:`.config` / :mod:`.invert`: :class:`InversionConfig` and :func:`invert` (multiscale, mini-batches,
  checkpoints and exact resume through the fit mode);
- :mod:`.metrics`: model MSE in (km/s)^2, relative error, SSIM, high-wavenumber recovery, plasticity;
- :mod:`.method`: the ``drfwi`` fit-mode method of the registry.

Importing this package imports neither torch nor deepwave (:mod:`.engine`, :mod:`.parameterisation` and
:mod:`.invert` do).
"""

from seiscore.methods.drfwi.config import MODES, InversionConfig

__all__ = ["MODES", "InversionConfig"]
