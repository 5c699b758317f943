"""SIREN auto-decoder as a method of the contract: run mode ``fit`` on a velocity-model collection.

``seis fit siren --out RUN --param source=MODELS.zarr [--param epochs=...]`` (or the ``fit-method`` flow) fits
decoder and latents on the models of ``source`` (a velocity store, an OpenFWI / NumPy ``.npy`` file or a survey
store of velocity sections: :func:`seiscore.data.velocity.load_models`) and writes ``RUN/artifacts/decoder``.
Tasks need a ``GPU=1`` worker; ``allow_cpu=true`` runs small configurations on the CPU. Importing this module
imports neither torch nor zarr: :meth:`SirenMethod.fit` does.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from seiscore.methods.base import Method, MethodSpec
from seiscore.methods.siren.config import AutoDecoderConfig


class SirenParams(AutoDecoderConfig):
    """The auto-decoder's configuration plus the collection to fit on and the CPU opt-in."""

    source: str = Field(description="velocity store, .npy file or survey store of the models to fit on")
    allow_cpu: bool = False
    device: str | None = Field(None, description="torch device; None: a GPU when present (CPU with allow_cpu)")

    def autodecoder(self, device: str) -> AutoDecoderConfig:
        """The :class:`AutoDecoderConfig` of these parameters on ``device``."""
        data = self.model_dump(exclude={"source", "allow_cpu", "device"})
        return AutoDecoderConfig(**data, device=device)


class SirenSpec(MethodSpec):
    """A SIREN auto-decoder fit: the auto-decoder's parameters and the collection to fit on."""

    label: ClassVar[str] = "SIREN"
    path_fields: ClassVar[tuple[str, ...]] = ()

    name: Literal["siren"] = "siren"
    params: SirenParams

    @model_validator(mode="before")
    @classmethod
    def _needs_a_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and not (data.get("params") or {}).get("source"):
            raise ValueError(
                "SIREN needs the models to fit on: pass --param source=PATH (a velocity store, an OpenFWI .npy "
                "file or a survey store of velocity sections)"
            )
        return data


class SirenMethod(Method):
    """Joint fit of a shared SIREN decoder and one latent per velocity model (auto-decoder); GPU workers."""

    name = "siren"
    description = "SIREN auto-decoder of 2-D velocity models (decoder + latents fit; archive compression), GPU"
    spec_model = SirenSpec
    data_kinds = ("velocity2d",)
    mode = "fit"
    requires = ("torch", "safetensors", "zarr")
    extra = "siren"

    def resources(self, spec: SirenSpec) -> dict[str, float]:
        """One GPU per task (CPU workers only with ``allow_cpu=true``, see
        :func:`seiscore.execution.resources.placement`)."""
        return {"GPU": 1}

    def fit(self, spec: SirenSpec, run) -> dict[str, Any]:
        """Load the models of ``params.source`` and fit the auto-decoder on them in ``run``."""
        from seiscore.data.velocity import load_models
        from seiscore.execution.resources import require_gpu
        from seiscore.methods.siren.train import fit_autodecoder

        params = spec.params
        device = require_gpu(params.allow_cpu, "SIREN fit", requested=params.device)
        models, names, grid, _ = load_models(params.source)
        return fit_autodecoder(models, names, params.autodecoder(device), run, grid=grid)
