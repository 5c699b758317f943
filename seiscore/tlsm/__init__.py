"""TLSM: triply Laplacian scale mixture denoising of 3-D seismic cubes (Pan et al.).

Public API:

- :func:`denoise` on a NumPy cube in canonical orientation (axis 0 smooth, axis 1
  footprint, axis 2 tube);
- :func:`denoise_dataarray` on an ``xarray.DataArray`` whose named dims are mapped to those roles;
- :class:`TLSMParams` and the presets ``synthetic``, ``penobscot``, ``kerry``.
"""

from seiscore.tlsm.admm import denoise
from seiscore.tlsm.lsm import lsm_reference, lsm_shrink
from seiscore.tlsm.params import PRESETS, TLSMParams, resolve_params
from seiscore.tlsm.xarray_api import denoise_dataarray

__all__ = ["denoise", "denoise_dataarray", "TLSMParams", "PRESETS", "resolve_params", "lsm_shrink", "lsm_reference"]
