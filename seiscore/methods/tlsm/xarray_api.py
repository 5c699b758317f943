"""TLSM on an ``xarray.DataArray`` with named dims mapped to the method's axis roles."""

from __future__ import annotations

import numpy as np
import xarray as xr

from seiscore.methods.tlsm.admm import Callback, denoise
from seiscore.methods.tlsm.params import TLSMParams


def denoise_dataarray(
    da: xr.DataArray,
    *,
    smooth: str,
    footprint: str,
    tube: str,
    params: TLSMParams | dict | None = None,
    preset: str | None = None,
    callback: Callback | None = None,
    **kwargs,
) -> xr.DataArray:
    """Denoise ``da`` with TLSM, naming which dim plays which role.

    ``smooth``: dim across which the signal is smooth (stripes alternate along it);
    ``footprint``: dim along which the footprint is smooth; ``tube``: dim of the t-SVD FFT.
    E.g. the paper's synthetic cube: ``smooth="crossline", footprint="time", tube="inline"``;
    Penobscot: ``smooth="crossline", footprint="inline", tube="time"``.
    Returns a DataArray with ``da``'s dims (in ``da``'s order), coords and attrs.
    """
    if not isinstance(da, xr.DataArray):
        raise ValueError(f"denoise_dataarray takes an xarray.DataArray, got {type(da).__name__}")
    roles = {"smooth": smooth, "footprint": footprint, "tube": tube}
    if len(set(roles.values())) != 3:
        raise ValueError(f"the three TLSM roles need three different dims, got {roles}")
    missing = {r: d for r, d in roles.items() if d not in da.dims}
    if missing:
        raise ValueError(f"dims {missing} not in the DataArray's dims {tuple(da.dims)}")
    if da.ndim != 3:
        raise ValueError(f"TLSM needs a 3-D DataArray, got dims {tuple(da.dims)}")
    canonical = da.transpose(smooth, footprint, tube)
    out = denoise(np.asarray(canonical.values), params, preset=preset, callback=callback, **kwargs)
    result = canonical.copy(data=out).transpose(*da.dims)
    result.attrs = dict(da.attrs)
    return result
