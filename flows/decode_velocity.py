"""Flow ``decode-velocity``: models of a SIREN velocity archive -> a velocity store, a NumPy file or SEG-Y.

The pre-flight (:func:`seiscore.execution.velocity.plan_decode`) opens the archive, resolves the model subset
and the grid (native, ``shape`` = (nz, nx), or ``factor``: super-resolution over the same extent), and checks
the output path (inside the data roots when ``SEIS_DATA_ROOTS`` is set). The models are decoded in batches on
Dask workers (each dispatching on the model's codec: the latent through the decoder, latent + residual, or the
classical codec's payload), then written atomically (:func:`seiscore.execution.velocity.write_decoded`): zarr =
a velocity store, npy = one (model, z, x) float32 array, segy = ONE file with one inline per model.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from prefect import flow, get_run_logger

from flows._runtime import make_task_runner
from seiscore.core import progress
from seiscore.execution.velocity import plan_decode, write_decoded
from tasks.velocity import decode_batch_task


@flow(name="decode-velocity", task_runner=make_task_runner(), log_prints=True)
def decode_velocity(
    archive: str,
    output: str,
    models: list[str] | None = None,
    shape: list[int] | None = None,
    factor: float | None = None,
    format: Literal["zarr", "npy", "segy"] | None = None,
    batch: int = 64,
) -> dict[str, Any]:
    """Decode models of a velocity archive at any resolution.

    Args:
        archive: The archive (written by compress-velocity-archive).
        output: The file or store to write.
        models: Names of the models to decode (default: all, in archive order).
        shape: Output grid [nz, nx] (default: the native grid).
        factor: Resolution factor instead of a shape (2: twice as many samples per axis).
        format: zarr (velocity store), npy or segy (one file, inline = model); default from the output's suffix.
        batch: Models per decoding task.
    """
    logger = get_run_logger()
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    plan = plan_decode(archive, output, models=models, shape=shape, factor=factor, format=format)
    n = len(plan.indices)
    logger.info(f"decoding {n} models at {plan.shape[0]} x {plan.shape[1]} -> {plan.output} ({plan.format})")
    groups = [plan.indices[i : i + batch] for i in range(0, n, batch)]
    futures = [decode_batch_task.submit(plan.archive, g, b, tuple(plan.shape)) for b, g in enumerate(groups)]
    label = plan.output.rsplit("/", 1)[-1]
    parts = []
    for b, fut in enumerate(futures):
        parts.append(fut.result())
        progress.report("batches", label, b + 1, len(futures))
    decoded = np.concatenate(parts, axis=0)
    path = write_decoded(plan, decoded)
    logger.info(f"wrote {n} decoded models to {path}")
    return {
        "archive": plan.archive,
        "output": str(path),
        "format": plan.format,
        "models": n,
        "shape": list(plan.shape),
        "grid": plan.grid,
        "value_range": [float(decoded.min()), float(decoded.max())],
    }
