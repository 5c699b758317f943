"""SSB as a method of the contract: its spec (model artifact, section dim, inference parameters), checks and tiling.

SSB denoises 2-D sections cut across ``section_dim`` (with its own patch blending), so its tiles
are stacks of whole sections, needing no halo. Its tasks need a ``GPU=1`` worker
(:func:`seiscore.execution.resources.placement` decides, CPU only with ``allow_cpu=true``).
Importing this module imports neither torch nor the model; :meth:`SSBMethod.build` and
:meth:`SSBMethod.check` do.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seiscore.data.kinds import DataKind
from seiscore.execution.blockwise.tiling import TileConfig
from seiscore.methods.base import BlockwiseSpec, Method, MethodConfigError, did_you_mean

# SSB works on 2-D sections (with its own patch blending): tiles are stacks of this many whole sections.
SSB_TILE = 32
# SSB: 6x measured on the NumPy side (tracemalloc, 32x100x100 block, patch-16 model on CPU) plus
# the model's weights (the size of model.safetensors) - a rough bound of host memory (the GPU's: below).
SSB_PEAK_FACTOR = 6.0
# SSB on a GPU (SSBMethod.gpu_memory; a rough bound, unmeasured on a GPU): the model's weights on the device,
# float32 (every parameter the card counts: pretrained backbones too, which the tensors file leaves out), times
# SSB_GPU_WEIGHT_COPIES for the float16 copies autocast makes of them during a forward; plus the patches of the
# chunk of sections denoise_sections moves at once (max(1, 4 batch_size // patches per section) sections, padded,
# every patch p x p), times SSB_GPU_PATCH_FACTOR float32 copies: the chunk's arrays (unfolded columns, the patch
# stack, predictions, their concatenation, the windowed columns, the folds) and the experts' and router's
# activations of one batch. Torch's own allocations on the CPU (float32, no autocast; profiler memory timeline)
# peaked at 28-31 such copies for the models of configs/ssb_small.yaml and SSBModelConfig() (patch 32; blocks
# 8 x 96 x 128 to 32 x 200 x 400, batch 32) and 50 for the patch-16 test model at batch 8: 64 leaves room, and
# float16 activations on CUDA are half of those. Wider backbones (the poster's ViT-S / Swin-T) hold more per patch.
SSB_GPU_WEIGHT_COPIES = 1.5
SSB_GPU_PATCH_FACTOR = 64.0


class SSBParams(BaseModel):
    """Parameters a run passes to :func:`seiscore.methods.ssb.denoise` (keyword arguments; checked in tests)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(32, ge=1)
    device: str | None = None
    allow_cpu: bool = False
    mode: Literal["blend", "swin", "dino"] = "blend"
    overlap: int | None = Field(None, ge=0)


class SSBSpec(BlockwiseSpec):
    """An SSB run: the model artifact folder, the dim sections are cut across, and the inference parameters."""

    label: ClassVar[str] = "SSB"
    path_fields: ClassVar[tuple[str, ...]] = ("model",)

    name: Literal["ssb"] = "ssb"
    model: str = Field(description="model artifact folder (written by seis train-ssb)")
    section_dim: str = Field("inline", description="sections are cut across this dim")
    params: SSBParams = Field(default_factory=SSBParams)

    @model_validator(mode="before")
    @classmethod
    def _needs_a_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model"):
            raise ValueError(
                "SSB needs a model artifact folder: set method.model in the catalog or pass "
                "--param model=PATH (a folder written by seis train-ssb)"
            )
        return data


@lru_cache(maxsize=2)
def _model(path: str):
    """The model of an artifact folder, loaded once per worker process (on the CPU; ``denoise`` moves it)."""
    from seiscore.methods.ssb.artifacts import load_model

    return load_model(path)


class SSBMethod(Method):
    """Soft spatial blending of a DINOv3 and a Swin V2 expert over 2-D sections; GPU workers."""

    name = "ssb"
    description = "SSB denoising (LoRA DINOv3 + Swin V2 experts, soft spatial blending) of 2-D sections, GPU"
    spec_model = SSBSpec
    data_kinds = ("poststack3d",)
    mode = "blockwise"
    requires = ("torch", "transformers", "peft", "safetensors")
    extra = "ssb"

    def resources(self, spec: SSBSpec) -> dict[str, float]:
        """One GPU per task (see :func:`seiscore.execution.resources.placement` for the CPU opt-in)."""
        return {"GPU": 1}

    def _section_axis(self, spec: SSBSpec, kind: DataKind) -> int:
        if spec.section_dim not in kind.dims:
            raise MethodConfigError(
                f"SSB section_dim {spec.section_dim!r} is not a dim of {kind.name} data"
                f"{did_you_mean(spec.section_dim, kind.dims)} (one of {', '.join(kind.dims)})",
                field="section_dim",
            )
        return kind.axis(spec.section_dim)

    def card(self, spec: SSBSpec) -> dict[str, Any]:
        """The artifact's model card, checked (format, version, configuration, tensors file): ``patch``,
        ``weights_bytes`` (the tensors file's size) and ``parameters`` (the card's total count; None without one).
        A folder without a card raises the artifact reader's ``FileNotFoundError``."""
        from seiscore.methods.ssb.artifacts import TENSORS, read_card
        from seiscore.methods.ssb.config import SSBModelConfig

        folder = Path(spec.model)
        if not folder.exists():
            raise MethodConfigError(f"SSB model folder {folder} does not exist", field="model")
        if not folder.is_dir():
            raise MethodConfigError(
                f"SSB model {folder} is not a folder (an artifact is a folder with model_card.json and {TENSORS})",
                field="model",
            )
        card = read_card(folder)
        if not (folder / TENSORS).is_file():
            raise MethodConfigError(f"SSB artifact {folder} has a model card but no {TENSORS}", field="model")
        try:
            cfg = SSBModelConfig.model_validate(card.get("model_config"))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise MethodConfigError(
                f"SSB artifact {folder}: model_config.{where}: {err['msg']}", field="model"
            ) from None
        total = (card.get("parameters") or {}).get("total")
        return {
            "patch": cfg.patch,
            "weights_bytes": (folder / TENSORS).stat().st_size,
            "parameters": int(total) if isinstance(total, int) else None,
        }

    def check(self, spec: SSBSpec, kind: DataKind, shape: tuple[int, ...]) -> list[str]:
        """The section dim, the artifact (card, tensors) and sections at least one model patch wide."""
        axis = self._section_axis(spec, kind)
        patch = self.card(spec)["patch"]
        section = [n for a, n in enumerate(shape) if a != axis]
        if min(section) < patch:
            raise MethodConfigError(
                f"SSB sections across {spec.section_dim} are {' x '.join(map(str, section))} samples, smaller "
                f"than the model's {patch} x {patch} patch; use another section_dim",
                field="section_dim",
            )
        return []

    def peak_memory(self, spec: SSBSpec, block_shape: tuple[int, ...], itemsize: int = 4) -> int:
        """``SSB_PEAK_FACTOR`` times the block's bytes plus the model's weights (the tensors file's size)."""
        from seiscore.methods.ssb.artifacts import TENSORS

        weights = Path(spec.model) / TENSORS
        extra = weights.stat().st_size if weights.is_file() else 0
        return int(SSB_PEAK_FACTOR * itemsize * np.prod(block_shape, dtype=np.int64)) + extra

    def gpu_memory(self, spec: SSBSpec, block_shape: tuple[int, ...], itemsize: int = 4) -> int | None:
        """Device memory of one task on a GPU: the weights (``SSB_GPU_WEIGHT_COPIES`` x 4 bytes per parameter of
        the card, else the tensors file's size) and ``SSB_GPU_PATCH_FACTOR`` float32 copies of the patches of one
        chunk of sections (see the constants; a rough, unmeasured bound). Only the chunk is on the device, so the
        bound grows with the sections' size and, up to a chunk, their number. None with ``device="cpu"``.
        Without a readable artifact: the default patch and no weights (the pre-flight checks the artifact first)."""
        if spec.params.device is not None and str(spec.params.device).startswith("cpu"):
            return None
        from seiscore.data.kinds import POSTSTACK3D
        from seiscore.methods.ssb.config import SSBModelConfig

        try:
            card = self.card(spec)
        except (MethodConfigError, OSError, ValueError):
            card = {"patch": SSBModelConfig.model_fields["patch"].default, "weights_bytes": 0, "parameters": None}
        weights = 4 * card["parameters"] if card.get("parameters") else card["weights_bytes"]
        axis = POSTSTACK3D.axis(spec.section_dim) if spec.section_dim in POSTSTACK3D.dims else 0
        n = int(block_shape[axis])
        h, w = (max(int(m), 1) for a, m in enumerate(block_shape) if a != axis)
        p = int(card["patch"])
        overlap = p // 4 if spec.params.overlap is None else min(int(spec.params.overlap), p - 1)
        step = p - overlap
        padded = lambda m: p + max(-(-(m - p) // step), 0) * step  # noqa: E731 - as denoise_sections pads
        per_section = ((padded(h) - p) // step + 1) * ((padded(w) - p) // step + 1)
        chunk = min(max(n, 1), max(1, 4 * spec.params.batch_size // per_section))
        patches = chunk * per_section * p * p * 4  # float32
        return int(SSB_GPU_WEIGHT_COPIES * weights + SSB_GPU_PATCH_FACTOR * patches)

    def default_tiling(self, spec: SSBSpec, kind: DataKind, shape: tuple[int, ...]) -> TileConfig:
        """Stacks of ``SSB_TILE`` whole sections across ``section_dim``, no halo."""
        axis = self._section_axis(spec, kind)
        return TileConfig(
            tile=tuple(SSB_TILE if a == axis else None for a in range(kind.ndim)),
            halo=tuple(0 for _ in range(kind.ndim)),
        )

    def build(self, spec: SSBSpec, kind: DataKind) -> Callable[[np.ndarray], np.ndarray]:
        """A block -> SSB on its sections across ``section_dim`` (the model loaded once per process)."""
        from seiscore.methods.ssb.inference import denoise

        axis = self._section_axis(spec, kind)
        model = _model(str(spec.model))
        params = spec.params.model_dump()
        return lambda block: denoise(block, model, axis=axis, **params)
