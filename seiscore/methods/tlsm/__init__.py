"""TLSM: triply Laplacian scale mixture denoising of 3-D seismic cubes (Pan et al.).

Public API:

- :func:`denoise` on a NumPy cube in canonical orientation (axis 0 smooth, axis 1
  footprint, axis 2 tube);
- :func:`denoise_dataarray` on an ``xarray.DataArray`` whose named dims are mapped to those roles;
- :class:`TLSMParams` and the presets ``synthetic``, ``penobscot``, ``kerry``.

The solver modules (numba, pyfftw, dask.array: about 2.5 s) are imported on first use, so
validating parameters (``seiscore.methods.tlsm.params``, e.g. ``seis run --check``) stays fast.
"""

from importlib import import_module

from seiscore.methods.tlsm.params import PRESETS, TLSMParams, resolve_params

_LAZY = {"denoise": "admm", "lsm_reference": "lsm", "lsm_shrink": "lsm", "denoise_dataarray": "xarray_api"}

__all__ = ["denoise", "denoise_dataarray", "TLSMParams", "PRESETS", "resolve_params", "lsm_shrink", "lsm_reference"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
