"""TLSM as a method of the contract: its spec (preset, parameter overrides, axis roles), tiling and memory model.

TLSM denoises a 3-D post-stack cube in its canonical orientation (axis 0 smooth, axis 1 footprint,
axis 2 tube): :class:`TLSMAxes` says which store dim plays each role, and the block callable
transposes every block into that orientation and back. Importing this module imports neither numba
nor the solver (nor torch); :meth:`TLSMMethod.build`'s callable does, on the worker.

Backend and device (``TLSMSpec.backend`` / ``device``): the numba solver on CPU, or the same iterations on
PyTorch (:mod:`seiscore.methods.tlsm.torch_backend`) on CPU or CUDA. Only ``device="cuda"`` asks the cluster for
a GPU (``resources() == {"GPU": 1}``); with ``"auto"`` each tile task picks on its worker, at call time: torch on
CUDA when the process sees a CUDA device and its Dask worker advertises a ``GPU`` resource (outside a worker: the
CUDA device alone decides), else numba on the CPU.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Callable, ClassVar, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_serializer, model_validator

from seiscore.data.kinds import POSTSTACK3D, DataKind
from seiscore.execution.blockwise.tiling import TileConfig
from seiscore.methods.base import BlockwiseSpec, Method, MethodConfigError, did_you_mean
from seiscore.methods.tlsm.params import PRESETS, TLSMParams, resolve_params

# Tube axis (by measurement on the paper's 100 x 200 x 400 cube, benchmarks/results/tiling.md): there,
# cutting its small cross-section (64 x 64 cores) cost 1-4 dB, since the singular-value and TV shrinkage
# depend on the frontal-slice size; on a realistic cross-section cores of >= 256 cost ~0.01 dB (below).
# Along the tube the result still moves with the tile length
# (-1.6 to +0.5 dB on the paper's cube: two halves lose 1-1.6 dB, 28 + 4 gains 0.43 dB); 44 + halo 2
# stays within 0.07 dB of the whole cube at 1.09x samples, with no seam against the clean cube
# (halo 4: -0.05 dB at 1.18x). TLSM couples the tube axis only through the t-SVD's FFT, so a small
# halo suffices.
TLSM_TUBE_TILE, TLSM_TUBE_HALO = 44, 2

# Cuts when a tile does not fit the task memory budget (settings.task_memory_budget; for a spec that may run on
# CUDA also the GPU budget, settings.gpu_task_memory_budget), in this order, by role:
# (role, halo, smallest core). Measured on the realistic-shape survey (inlines 0-24 of 128 x 512 x 500,
# benchmarks/results/tiling_realistic.md; whole cube 43.69 dB): crossline (smooth) cores of 256 + halo 16
# cost 0.01 dB (halo 32: 0.04) with no seam; sample (footprint) cores of 250 + halo 32 cost 0.07 dB, no
# seam; crossline cores of 128 cost 0.08 dB and leave a seam (error 1.43x higher at core borders). Hence:
# crossline down to 256, then samples down to 256, then crossline down to 128, samples to 128, then the tube.
TLSM_BUDGET_CUTS = (
    ("smooth", 16, 256),
    ("footprint", 32, 256),
    ("smooth", 16, 128),
    ("footprint", 32, 128),
    ("tube", 2, 16),
)
# Cross-section cap for speed: the t-SVD's cost per sample grows with min(crossline, sample) core, so the smooth
# axis is cut into cores of >= TLSM_SMOOTH_CORE (halo 16) whenever it holds two of them, memory permitting or not:
# 2 x 256 instead of 512 crosslines ran in 0.49x the time for -0.01 dB (tiling_realistic.md).
TLSM_SMOOTH_CORE, TLSM_SMOOTH_HALO = 256, 16

ROLES = ("smooth", "footprint", "tube")


class TLSMAxes(BaseModel):
    """Which store dim plays each TLSM role: a permutation of the data kind's dims (TLSM runs on
    ``poststack3d``: inline, crossline, sample)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    smooth: str = "crossline"
    footprint: str = "sample"
    tube: str = "inline"

    @model_validator(mode="after")
    def _permutation(self) -> TLSMAxes:
        self.check(POSTSTACK3D)
        return self

    def check(self, kind: DataKind) -> None:
        """Raise a one-line ``ValueError`` unless the roles are a permutation of ``kind``'s dims."""
        roles = self.as_kwargs()
        if sorted(roles.values()) != sorted(kind.dims):
            raise ValueError(
                f"TLSM axes {roles}: smooth/footprint/tube must map onto a permutation of {', '.join(kind.dims)}"
            )

    def as_kwargs(self) -> dict[str, str]:
        """``{"smooth": ..., "footprint": ..., "tube": ...}`` for ``seiscore.methods.tlsm.denoise_dataarray``."""
        return {"smooth": self.smooth, "footprint": self.footprint, "tube": self.tube}

    def permutation(self, kind: DataKind) -> list[int]:
        """Store axes in TLSM's canonical order: ``block.transpose(perm)`` is (smooth, footprint, tube)."""
        self.check(kind)
        return [kind.axis(getattr(self, role)) for role in ROLES]


class _Overrides(BaseModel):
    """Overrides of TLSM parameters on top of a preset: every field optional, unset ones left out of dumps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="wrap")
    def _set_only(self, handler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


def _optional(field) -> Any:
    annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return (Optional[annotation], Field(None, description=field.description))


# Every TLSMParams field, optional (None = the preset's value), with the same constraints: one source of truth.
TLSMOverrides = create_model(
    "TLSMOverrides",
    __base__=_Overrides,
    __module__=__name__,
    **{name: _optional(field) for name, field in TLSMParams.model_fields.items()},
)


class TLSMSpec(BlockwiseSpec):
    """A TLSM run: preset (default ``synthetic``), parameter overrides, axis roles, and the blockwise fields."""

    label: ClassVar[str] = "TLSM"

    name: Literal["tlsm"] = "tlsm"
    preset: str | None = Field(None, description=f"parameter preset ({', '.join(PRESETS)}); None = synthetic")
    params: TLSMOverrides = Field(default_factory=TLSMOverrides)  # type: ignore[valid-type]
    axes: TLSMAxes = Field(default_factory=TLSMAxes, description="store dim of each TLSM role")
    backend: Literal["auto", "numba", "torch"] = Field(
        "auto",
        description="solver: 'numba' (CPU), 'torch' (PyTorch, CPU or CUDA) or 'auto' (torch on a GPU worker, "
        "else numba)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="'cuda': tasks need a GPU worker (resources GPU=1) and run torch there; 'cpu': never a GPU; "
        "'auto': each task uses the GPU when its worker has one",
    )

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in PRESETS:
            raise ValueError(
                f"unknown TLSM preset {value!r}{did_you_mean(value, PRESETS)} (choose one of {', '.join(PRESETS)})"
            )
        return value

    @model_validator(mode="after")
    def _backend_runs_on_device(self) -> TLSMSpec:
        if self.backend == "numba" and self.device == "cuda":
            raise ValueError("backend 'numba' runs on the CPU only; use backend 'torch' (or 'auto') for device 'cuda'")
        return self


@functools.cache
def _cuda_visible() -> bool:
    """Whether this process sees a CUDA device (:func:`seiscore.execution.resources.gpu_available`, asked once;
    without an NVIDIA driver it answers without importing torch, which a numba tile would pay in its memory)."""
    from seiscore.execution.resources import gpu_available

    return gpu_available()


def _worker_has_gpu() -> bool:
    """Whether the Dask worker running this task advertises a ``GPU`` resource; True outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # no distributed, or not running in a worker
        return True
    state = getattr(worker, "state", worker)
    return bool(getattr(state, "total_resources", {}).get("GPU"))


def choose_backend(spec: TLSMSpec) -> tuple[str, str]:
    """``(backend, device)`` a tile task of ``spec`` runs with, decided where it runs (see the module docstring):
    an explicit device is kept (numba only on CPU); on ``"auto"`` the GPU is used when this process sees CUDA
    and its worker advertises ``GPU``; ``backend="auto"`` is torch on CUDA and numba on CPU."""
    if spec.device == "auto":
        device = "cuda" if spec.backend != "numba" and _worker_has_gpu() and _cuda_visible() else "cpu"
    else:
        device = spec.device
    if spec.backend == "auto":
        return ("torch" if device == "cuda" else "numba"), device
    return spec.backend, device


class TLSMMethod(Method):
    """Triply Laplacian scale mixture denoising of 3-D post-stack cubes, tile by tile (numba on CPU, or torch)."""

    name = "tlsm"
    description = "TLSM denoising (t-SVD low rank + footprint and signal smoothness), CPU (numba) or GPU (torch)"
    spec_model = TLSMSpec
    data_kinds = ("poststack3d",)
    mode = "blockwise"

    def resources(self, spec: TLSMSpec) -> dict[str, float]:
        """``{"GPU": 1}`` when the spec asks for ``device="cuda"``; nothing otherwise (``"auto"`` uses a GPU only
        where the task happens to land on a GPU worker)."""
        return {"GPU": 1} if spec.device == "cuda" else {}

    def cpu_hint(self, spec: TLSMSpec) -> str:
        """TLSM has no ``allow_cpu``: its device setting says where it runs."""
        return "set the method's device to auto (a GPU where a task lands on one, else the CPU) or cpu"

    def parameters(self, spec: TLSMSpec) -> dict[str, Any]:
        """The preset's parameters with the spec's overrides applied."""
        return resolve_params(spec.params.model_dump(), spec.preset).model_dump()

    def check(self, spec: TLSMSpec, kind: DataKind, shape: tuple[int, ...]) -> list[str]:
        """The axis roles must be a permutation of the kind's dims."""
        try:
            spec.axes.check(kind)
        except ValueError as exc:
            raise MethodConfigError(str(exc), field="axes") from None
        return []

    def default_tiling(
        self,
        spec: TLSMSpec,
        kind: DataKind,
        shape: tuple[int, ...],
        budget: int | None = None,
        gpu_budget: int | None = None,
    ) -> TileConfig:
        """TLSM's tiles for a survey of ``shape``, planned to fit the task memory ``budget`` (and, when the spec
        may run on a GPU, the GPU memory ``gpu_budget``).

        Start: ``TLSM_TUBE_TILE`` + halo ``TLSM_TUBE_HALO`` along the tube axis, the smooth axis in cores of at
        least ``TLSM_SMOOTH_CORE`` when it holds two (speed), the rest whole. If that block's modelled peak
        (:mod:`seiscore.methods.tlsm.memory`) is over ``budget`` (default
        :func:`seiscore.core.settings.task_memory_budget`), the axes of ``TLSM_BUDGET_CUTS`` are cut in turn,
        with halos and blending, until it fits; if none does, the smallest tiles allowed (the pre-flight
        refuses them when they pass the worker's memory limit).

        A spec that may run torch on CUDA (:meth:`gpu_memory` is not None) is planned so that the block's device
        memory fits ``gpu_budget`` too (default :func:`seiscore.core.settings.gpu_task_memory_budget`; when it is
        unknown, None, the plan is the host memory's alone, as for a CPU-only spec)."""
        from seiscore.core.settings import gpu_task_memory_budget, task_memory_budget
        from seiscore.execution.blockwise.tiling import BudgetCut, plan_for_budget

        axis, smooth = kind.axis(spec.axes.tube), kind.axis(spec.axes.smooth)
        tile, halo = [None] * kind.ndim, [0] * kind.ndim
        tile[axis], halo[axis] = TLSM_TUBE_TILE, TLSM_TUBE_HALO
        pieces = int(shape[smooth]) // TLSM_SMOOTH_CORE
        if pieces >= 2:
            tile[smooth], halo[smooth] = -(-int(shape[smooth]) // pieces), TLSM_SMOOTH_HALO
        base = TileConfig(tile=tuple(tile), halo=tuple(halo))
        cuts = [
            BudgetCut(axis=kind.axis(getattr(spec.axes, role)), halo=halo, min_core=core)
            for role, halo, core in TLSM_BUDGET_CUTS
        ]
        budget = task_memory_budget() if budget is None else budget
        host = lambda block: self.peak_memory(spec, block)  # noqa: E731
        on_gpu = self.gpu_memory(spec, tuple(shape)) is not None  # the spec may run torch on CUDA
        if on_gpu and gpu_budget is None:
            gpu_budget = gpu_task_memory_budget()
        if not on_gpu or gpu_budget is None:  # host memory only
            return plan_for_budget(shape, host, budget, base, cuts, strict=False)
        gpu = lambda block: self.gpu_memory(spec, block)  # noqa: E731
        return plan_for_budget(shape, host, budget, base, cuts, strict=False, gpu_peak=gpu, gpu_budget=gpu_budget)

    def peak_memory(self, spec: TLSMSpec, block_shape: tuple[int, ...], itemsize: int = 4) -> int:
        """Peak bytes of one tile task on a block of ``block_shape`` (store order): the measured memory model
        :func:`seiscore.methods.tlsm.memory.tlsm_peak_bytes` with the spec's threads per task (the torch backend's
        own factor when torch may run on the CPU; on CUDA the host holds less than the numba model)."""
        from seiscore.data.kinds import POSTSTACK3D
        from seiscore.methods.tlsm.memory import canonical_shape, tlsm_peak_bytes

        perm = spec.axes.permutation(POSTSTACK3D)
        backend = "torch" if spec.backend == "torch" and spec.device != "cuda" else "numba"
        return tlsm_peak_bytes(canonical_shape(block_shape, perm), itemsize, spec.threads_per_task, backend)

    def gpu_memory(self, spec: TLSMSpec, block_shape: tuple[int, ...], itemsize: int = 4) -> int | None:
        """Device memory of one tile task when the torch backend runs it on CUDA: the model
        :func:`seiscore.methods.tlsm.memory.tlsm_gpu_bytes` (the torch plan with one thread - a GPU runs one task,
        each step one batched call - and the t-SVD's eigenvector stacks counted whole; unmeasured on a GPU, a
        deliberate upper bound). None when the spec never runs on CUDA: ``backend="numba"`` or ``device="cpu"``."""
        if spec.backend == "numba" or spec.device == "cpu":
            return None
        from seiscore.data.kinds import POSTSTACK3D
        from seiscore.methods.tlsm.memory import canonical_shape, tlsm_gpu_bytes

        return tlsm_gpu_bytes(canonical_shape(block_shape, spec.axes.permutation(POSTSTACK3D)), itemsize)

    def build(self, spec: TLSMSpec, kind: DataKind) -> Callable[[np.ndarray], np.ndarray]:
        """A block (store dim order) -> TLSM in the canonical orientation -> back to the store order.

        The backend and device are chosen at the first call, where the callable runs (:func:`choose_backend`),
        and kept as the callable's ``placement`` (``{"backend": ..., "device": ...}``; None before a call)."""
        from seiscore.methods.tlsm import denoise

        perm = spec.axes.permutation(kind)
        inv = np.argsort(perm)
        params = spec.params.model_dump() or None

        def run(block: np.ndarray) -> np.ndarray:
            if run.placement is None:
                backend, device = choose_backend(spec)
                run.placement = {"backend": backend, "device": device}
            out = denoise(
                np.ascontiguousarray(np.transpose(block, perm)),
                params,
                preset=spec.preset,
                workers=spec.threads_per_task,
                **run.placement,
            )
            return np.transpose(out, inv)

        run.placement = None
        return run
