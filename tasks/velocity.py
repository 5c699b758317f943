"""Tasks of the velocity-archive flows: encode one batch, write the archive, QC, decode one batch.

Thin wrappers: the work is in :mod:`seiscore.execution.velocity` and :mod:`seiscore.qc.velocity`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from seiscore.execution.velocity import CompressJob, CompressPlan, encode_batch, write_compressed_archive
from tasks.tiles import _worker_name


def _device() -> str | None:
    """``"cuda"`` on a worker with a CUDA device (a GPU worker), else None (the configuration's device)."""
    import torch

    return "cuda" if torch.cuda.is_available() else None


@task(name="encode-velocity-batch", cache_policy=NO_CACHE, task_run_name="encode-velocity-batch-{b}")
def encode_batch_task(job: CompressJob, b: int) -> dict[str, Any]:
    """Encode batch ``b`` (latents + per-model codec payloads) into its file; skipped when already done."""
    return {**encode_batch(job, b, device=_device()), "worker": _worker_name()}


@task(name="write-velocity-archive", cache_policy=NO_CACHE)
def write_archive_task(plan: CompressPlan, job: CompressJob, flow_run_id: str | None = None) -> dict[str, Any]:
    """Gather the batches and write the archive (atomically) with its card and lineage."""
    return write_compressed_archive(plan, job, flow_run_id=flow_run_id)


@task(name="velocity-qc", cache_policy=NO_CACHE)
def velocity_qc_task(archive: str, source: str, folder: str, title: str) -> dict[str, Any]:
    """The archive's QC report (per-family table, worst models, interpolation, super-resolution)."""
    from seiscore.qc.velocity import write_velocity_qc

    return write_velocity_qc(archive, source, folder, title=title)


@task(name="decode-velocity-batch", cache_policy=NO_CACHE, task_run_name="decode-velocity-batch-{b}")
def decode_batch_task(
    archive: str, indices: list[int], b: int, shape: tuple[int, int] | None = None, factor: float | None = None
) -> np.ndarray:
    """Decode the models ``indices`` of ``archive`` (native grid, ``shape`` or ``factor``) as float32 m/s."""
    from seiscore.methods.siren.archive import open_archive

    arc = open_archive(archive)
    kw: dict[str, Any] = {"shape": tuple(shape)} if shape is not None else {"factor": factor} if factor else {}
    return np.asarray(arc.decode(list(indices), **kw), dtype=np.float32)
