"""CDiffSD as methods of the contract: ``cdiffsd`` (per_item denoising of traces3c windows) and ``cdiffsd-train``
(fit mode: training on synthetic earthquake/noise pairs).

``cdiffsd``: each batch of 3-C windows (``[trace, component, time]``) goes through
:meth:`CDiffSDModel.denoise` of the model artifact ``model`` (loaded once per worker process). Resources
(design): ``mode="direct"`` (the default) needs no GPU (one network evaluation, >= 20 windows/s on 2 CPU cores);
``mode="sampling"`` (``T`` evaluations, ~300x the cost) asks for a ``GPU=1`` worker and runs on CPU workers only
with ``allow_cpu=true``, as SSB does. The spec's ``scale`` defaults to ``"none"``: the model normalises every
window by its own maximum absolute value. CPU cost (2 cores, 2 torch threads, quiet machine): the published
per-component model (``channels=1``: three U-Net passes per window) runs ~33 windows/s with the spec's network and
~73 with the benchmark's small one; the 3-channel ablation (``channels=3``) is ~3x cheaper
(:func:`seiscore.methods.cdiffsd.model.throughput`).

``cdiffsd-train``: ``seis fit cdiffsd-train --out RUN [--param n_train=...]`` trains the configuration in the
parameters (:class:`CDiffSDTrainParams`, a :class:`CDiffSDConfig` plus the data) and writes ``RUN/artifacts/model``.
A GPU worker is asked for; ``allow_cpu=true`` trains small configurations on the CPU.

Importing this module imports neither torch nor the model: :meth:`CDiffSDMethod.build` and the fit do.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from seiscore.data.kinds import DataKind
from seiscore.execution.per_item import PerItemSpec
from seiscore.methods.base import Method, MethodConfigError, MethodSpec
from seiscore.methods.cdiffsd.config import CDiffSDConfig

# Bytes one window in flight needs at the peak of a forward pass (the first level's attention projections and
# activations, measured order of magnitude for dim=8 on 3000 samples) - a rough bound for the pre-flight.
WINDOW_PEAK_BYTES = 16 * 2**20


class CDiffSDParams(BaseModel):
    """Inference parameters of a ``cdiffsd`` run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["direct", "sampling"] = Field("direct", description="one evaluation, or the cold sampling chain")
    infer_batch: int = Field(32, ge=1, description="windows per network call")
    threads: int | None = Field(None, ge=1, description="torch threads per task (None: torch's default)")
    device: str | None = Field(None, description="torch device; None: a GPU for sampling when present, else CPU")
    allow_cpu: bool = Field(False, description="let mode=sampling run on CPU workers (slow)")


class CDiffSDSpec(PerItemSpec):
    """A ``cdiffsd`` run: the model artifact folder, windows along ``trace`` in batches, inference parameters."""

    label: ClassVar[str] = "CDiffSD"
    path_fields: ClassVar[tuple[str, ...]] = ("model",)

    name: Literal["cdiffsd"] = "cdiffsd"
    model: str = Field(description="model artifact folder (written by seis fit cdiffsd-train)")
    item_dim: str = "trace"
    batch_size: int = Field(256, ge=1, description="windows per task (one chunk of a trace store)")
    scale: Literal["minmax", "none"] = "none"
    params: CDiffSDParams = Field(default_factory=CDiffSDParams)

    @model_validator(mode="before")
    @classmethod
    def _needs_a_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model"):
            raise ValueError(
                "CDiffSD needs a model artifact folder: set method.model in the catalog or pass --param model=PATH "
                "(a folder written by seis fit cdiffsd-train)"
            )
        return data


@lru_cache(maxsize=2)
def _model(path: str, device: str):
    """The model of an artifact folder, loaded once per worker process."""
    from seiscore.methods.cdiffsd.model import CDiffSDModel

    return CDiffSDModel.load(path, device=device)


def inference_device(params: CDiffSDParams) -> str:
    """The torch device of a run: ``params.device``, else CUDA for sampling when present (CPU only with
    ``allow_cpu``), else CPU."""
    if params.device is not None:
        return params.device
    if params.mode == "sampling":
        from seiscore.execution.resources import require_gpu

        return require_gpu(params.allow_cpu, "CDiffSD sampling")
    return "cpu"


class CDiffSDMethod(Method):
    """Cold-diffusion denoising of 3-component earthquake windows (``direct`` on CPU, ``sampling`` on GPU)."""

    name = "cdiffsd"
    description = "CDiffSD cold-diffusion denoising of 3-C trace windows (direct: CPU; sampling: GPU)"
    spec_model = CDiffSDSpec
    data_kinds = ("traces3c",)
    mode = "per_item"
    requires = ("torch", "safetensors")
    extra = "traces"

    def resources(self, spec: CDiffSDSpec) -> dict[str, float]:
        """``{"GPU": 1}`` for ``mode="sampling"`` (CPU workers only with ``allow_cpu=true``), none for direct."""
        params = getattr(spec, "params", None)
        return {"GPU": 1} if getattr(params, "mode", "direct") == "sampling" else {}

    def card(self, spec: CDiffSDSpec) -> dict[str, Any]:
        """The artifact's model card, checked (format, version, configuration)."""
        from seiscore.execution.fit import TENSORS, read_card
        from seiscore.methods.cdiffsd.model import FORMAT, FORMAT_VERSION

        folder = Path(spec.model)
        if not folder.is_dir():
            raise MethodConfigError(f"CDiffSD model folder {folder} does not exist or is not a folder", field="model")
        card = read_card(folder, format=FORMAT, format_version=FORMAT_VERSION)
        if not (folder / TENSORS).is_file():
            raise MethodConfigError(f"CDiffSD artifact {folder} has a model card but no {TENSORS}", field="model")
        return card

    def check(self, spec: CDiffSDSpec, kind: DataKind, shape: tuple[int, ...]) -> list[str]:
        """The artifact, 3 components, and a window length the U-Net accepts."""
        card = self.card(spec)
        cfg = CDiffSDConfig.model_validate(card.get("model_config"))
        comp = shape[kind.axis("component")] if "component" in kind.dims else None
        if comp is not None and comp != 3:
            raise MethodConfigError(f"CDiffSD needs 3 components (Z, N, E) per window, the data have {comp}")
        width = shape[-1]
        if width % cfg.downsampling:
            raise MethodConfigError(
                f"CDiffSD windows of {width} samples: the length must be a multiple of {cfg.downsampling}"
            )
        notes = []
        if width != cfg.length:
            notes.append(f"windows of {width} samples; the model was trained on {cfg.length}")
        return notes

    def peak_memory(self, spec: CDiffSDSpec, block_shape: tuple[int, ...], itemsize: int = 4) -> int:
        """Three copies of the batch plus :data:`WINDOW_PEAK_BYTES` per window in one network call."""
        width = block_shape[-1] if block_shape else 3000
        per_call = min(spec.params.infer_batch, block_shape[0] if block_shape else 1)
        return int(3 * itemsize * np.prod(block_shape, dtype=np.int64)) + int(
            per_call * WINDOW_PEAK_BYTES * width / 3000
        )

    def build(self, spec: CDiffSDSpec, kind: DataKind) -> Callable[[np.ndarray], np.ndarray]:
        """A batch of windows ``[B, 3, W]`` -> :meth:`CDiffSDModel.denoise` of it."""
        params = spec.params
        model = _model(str(spec.model), inference_device(params))
        return lambda batch: model.denoise(batch, params.mode, batch_size=params.infer_batch, threads=params.threads)


class CDiffSDTrainParams(CDiffSDConfig):
    """A CDiffSD training run: the model configuration plus its data and where it runs.

    Data: ``n_train`` / ``n_val`` synthetic events and as many noise windows
    (:mod:`seiscore.data.quake_synth`), events and noise paired at random each step with a peak noise ratio
    ``r ~ U{rnf}/100``; or, when ``clean_store`` and ``noise_store`` are trace stores, their windows.
    """

    n_train: int = Field(2000, ge=1, description="training events (and noise windows)")
    n_val: int = Field(200, ge=1, description="validation events (fixed pairs)")
    rnf: tuple[int, int] = Field((40, 65), description="peak noise/signal ratio range in percent (paper: 40..65)")
    clean_store: str | None = Field(None, description="trace store of clean event windows (instead of synthetics)")
    noise_store: str | None = Field(None, description="trace store of noise windows (instead of synthetics)")
    steps_per_epoch: int | None = Field(None, ge=1, description="optimisation steps per epoch (None: n_train/batch)")
    val_sampling: bool = Field(False, description="also score the sampling mode on the validation set each epoch")
    device: str | None = None
    threads: int | None = Field(None, ge=1)
    allow_cpu: bool = False

    @model_validator(mode="after")
    def _data(self) -> CDiffSDTrainParams:
        lo, hi = self.rnf
        if not 0 <= lo <= hi:
            raise ValueError(f"CDiffSD rnf {self.rnf!r} must be two percentages lo <= hi")
        if (self.clean_store is None) != (self.noise_store is None):
            raise ValueError("CDiffSD training from trace stores needs both clean_store and noise_store")
        return self

    def model_config_only(self) -> CDiffSDConfig:
        """The :class:`CDiffSDConfig` part of these parameters."""
        return CDiffSDConfig(**{k: getattr(self, k) for k in CDiffSDConfig.model_fields})


class CDiffSDTrainSpec(MethodSpec):
    """A CDiffSD training run (fit mode)."""

    label: ClassVar[str] = "CDiffSD"

    name: Literal["cdiffsd-train"] = "cdiffsd-train"
    params: CDiffSDTrainParams = Field(default_factory=CDiffSDTrainParams)


class CDiffSDTrainMethod(Method):
    """Seeded, resumable CDiffSD training through the fit mode; GPU workers (CPU with ``allow_cpu=true``)."""

    name = "cdiffsd-train"
    description = "CDiffSD training (1-D U-Net, two-pass cold-diffusion loss) on synthetic 3-C events, GPU"
    spec_model = CDiffSDTrainSpec
    data_kinds = ("traces3c",)
    mode = "fit"
    requires = ("torch", "safetensors", "obspy")
    extra = "traces"

    def resources(self, spec: CDiffSDTrainSpec) -> dict[str, float]:
        """One GPU per task (CPU workers only with ``allow_cpu=true``)."""
        return {"GPU": 1}

    def fit(self, spec: CDiffSDTrainSpec, run) -> dict[str, Any]:
        """Train (or resume) in ``run``; returns the summary."""
        from seiscore.methods.cdiffsd.train import train

        return train(spec.params, run)
