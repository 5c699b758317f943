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
# the model's weights (the size of model.safetensors) - a rough bound, GPU memory is not counted.
SSB_PEAK_FACTOR = 6.0


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
        """The artifact's model card, checked (format, version, configuration, tensors file): ``patch`` and
        ``weights_bytes``. A folder without a card raises the artifact reader's ``FileNotFoundError``."""
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
        return {"patch": cfg.patch, "weights_bytes": (folder / TENSORS).stat().st_size}

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
