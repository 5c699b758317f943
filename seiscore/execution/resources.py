"""Where a method's tasks may run: THE rule "a GPU worker, or CPU only when explicitly allowed".

A method declares the Dask resources one task needs (:meth:`seiscore.methods.base.Method.resources`,
e.g. ``{"GPU": 1}`` for SSB). :func:`placement` decides, for a run on a cluster, the resources the
tasks are submitted with: a GPU method needs a worker advertising ``GPU=1``; without one, an external
cluster is an error, and a local cluster runs the tasks on its CPU workers only when the user set
``allow_cpu=true`` (so a nightly run never silently spends hours on CPU). :func:`require_gpu` is the
same rule on the worker, where the device is picked. Both raise :class:`GPURequiredError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    from seiscore.methods.base import Method, MethodSpec


class GPURequiredError(RuntimeError):
    """A GPU method has no GPU to run on and CPU was not explicitly allowed; the message is one line."""


# Traces of an NVIDIA driver (Linux, WSL2): without any of them no CUDA device can be seen.
NVIDIA_DRIVER_NODES = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")


def gpu_available() -> bool:
    """True when torch is installed and sees a CUDA device. Imports torch (about 3 s, 300 MB) unless it is not
    imported yet and no NVIDIA driver is present: then the answer is no without it."""
    import os
    import sys

    if "torch" not in sys.modules and not any(os.path.exists(node) for node in NVIDIA_DRIVER_NODES):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def gpu_memory_total() -> int | None:
    """Bytes of memory of this machine's CUDA device (the smallest, with several), or None without one
    (:func:`gpu_available` first: no torch import without an NVIDIA driver)."""
    if not gpu_available():
        return None
    import torch

    count = torch.cuda.device_count()
    return min(int(torch.cuda.get_device_properties(i).total_memory) for i in range(count)) if count else None


def placement(
    method: Method, spec: MethodSpec, cluster: dict, *, has_gpu: bool
) -> tuple[dict[str, float] | None, str | None]:
    """The resources the tasks of ``spec`` are submitted with on ``cluster``, and a warning to log (or None).

    ``cluster`` describes the cluster (``type``: ``"external"`` or a local one, ``n_workers``, ``scheduler``);
    ``has_gpu``: whether one of its workers advertises ``GPU=1``. A method needing no GPU gets its own
    resources (None when it needs none). A GPU method gets them when ``has_gpu``; otherwise an external
    cluster raises :class:`GPURequiredError`, and a local one runs the tasks on its CPU workers (without the
    GPU requirement, with a warning) only when ``spec.allows_cpu()``, else raises saying how to allow it.
    """
    needed = dict(method.resources(spec))
    if not needed.get("GPU"):
        return needed or None, None
    if has_gpu:
        return needed, None
    if cluster.get("type") == "external":
        raise GPURequiredError(
            f"{method.name} tasks need a worker with resources GPU=1; none of the "
            f"{cluster.get('n_workers')} workers at {cluster.get('scheduler')} advertises one"
        )
    if spec.allows_cpu():
        rest = {k: v for k, v in needed.items() if k != "GPU"}
        return rest or None, (
            f"no GPU worker in the local cluster: {method.name} tasks run on the CPU workers (allow_cpu=true)"
        )
    raise GPURequiredError(
        f"{method.name} tasks need a GPU worker and the local cluster has none; {method.cpu_hint(spec)}"
    )


def require_gpu(allow_cpu: bool, what: str, *, requested: str | None = None) -> Literal["cuda", "cpu"] | str:
    """The device a GPU task runs on: ``requested`` when it names a GPU, else CUDA when available; CPU only
    when ``allow_cpu`` (a requested ``"cpu"`` too), else :class:`GPURequiredError`."""
    if requested is not None and not str(requested).startswith("cpu"):
        return str(requested)
    if requested is None and gpu_available():
        return "cuda"
    if allow_cpu:
        return "cpu"
    raise GPURequiredError(
        f"{what} needs a GPU and none is available; pass allow_cpu=True to run it (slowly) on the CPU"
    )


def gpu_cluster_possible() -> bool:
    """True when this machine can start a local cluster of GPU workers (dask-cuda's ``LocalCUDACluster``): a CUDA
    device (:func:`gpu_available`) and dask-cuda installed."""
    import importlib.util

    return importlib.util.find_spec("dask_cuda") is not None and gpu_available()
