"""Task: denoise one tile with an SSB model artifact (needs a ``GPU=1`` Dask worker).

Submit it under ``dask.annotate(resources=SSB_RESOURCES)`` (or with :func:`submit_denoise_tile_ssb`)
so that Dask places it only on workers advertising ``GPU=1``. On a worker without CUDA the task
refuses to run unless ``allow_cpu=True`` is passed explicitly: a nightly run never silently
spends hours on CPU workers.
"""

from __future__ import annotations

from functools import lru_cache

import dask
import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from seiscore.methods.ssb import denoise, load_model
from seiscore.methods.ssb.inference import pick_device

SSB_RESOURCES = {"GPU": 1}


@lru_cache(maxsize=2)
def _model(path: str, device: str):
    return load_model(path, device=device)


@task(name="denoise-tile-ssb", cache_policy=NO_CACHE, tags=["ssb", "gpu"])
def denoise_tile_ssb(
    tile: np.ndarray, model: str, axis: int = 0, batch_size: int = 32, allow_cpu: bool = False
) -> np.ndarray:
    """SSB-denoise a 3-D ``tile`` on 2-D sections along ``axis`` with the artifact folder ``model``."""
    device = pick_device(None, allow_cpu=allow_cpu)
    return denoise(
        tile, _model(str(model), str(device)), axis=axis, batch_size=batch_size, device=device, allow_cpu=allow_cpu
    )


def submit_denoise_tile_ssb(tile, model: str, **kwargs):
    """Submit :func:`denoise_tile_ssb` to the flow's task runner with the ``GPU=1`` resource requirement."""
    with dask.annotate(resources=SSB_RESOURCES):
        return denoise_tile_ssb.submit(tile, model, **kwargs)
