"""DRFWI as a ``fit``-mode method: ``seis fit drfwi --out FOLDER --param observed=SHOTS --param initial=MODELS``.

The spec's parameters are :class:`~seiscore.methods.drfwi.config.InversionConfig`'s plus the inputs: ``observed``
(a shot-gather store, :func:`seiscore.data.shots.read_shot_store`), ``initial`` (a velocity store) and
``initial_model`` (the model's name in it; default its first), optional ``true_model`` / ``true_model_name`` (a
velocity store: model metrics in the history), and ``allow_cpu``. The fit reads the stores, runs
:func:`seiscore.methods.drfwi.invert.invert` in the run folder (checkpoints, resume, events) and writes the
artifact ``FOLDER/artifacts/drfwi`` (format ``seiscore-drfwi`` version 1): tensors ``velocity`` (the inverted
model), ``initial`` and the parameterisation's own (``param.*``: network weights, grid, background), and a card
with the inputs (paths, model name, SHA-256 of the observed data), the geometry, the summary and the history.

Resources: one GPU (``{"GPU": 1}``); :func:`seiscore.execution.resources.placement` runs the task on the CPU
workers of a local cluster without a GPU only with ``allow_cpu=true``, and the fit itself then refuses grids
above ``CPU_MAX_CELLS`` cells (a 151 x 461 Marmousi-like grid costs ~17 s per iteration on two cores).
Importing this module imports neither torch nor deepwave.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from seiscore.methods.base import Method, MethodConfigError, MethodSpec
from seiscore.methods.drfwi.config import InversionConfig

FORMAT, FORMAT_VERSION, ARTIFACT = "seiscore-drfwi", 1, "drfwi"
# Largest grid (cells) a CPU inversion may take: 94 x 288 (27k cells) costs ~2 s per iteration with 5 shots.
CPU_MAX_CELLS = 40_000


class DRFWIParams(InversionConfig):
    """The inversion's settings (:class:`InversionConfig`) plus its inputs."""

    observed: str | None = Field(None, description="shot-gather store of the observed data")
    initial: str | None = Field(None, description="velocity store holding the initial model")
    initial_model: str | None = Field(None, description="name of the initial model in that store (default: first)")
    true_model: str | None = Field(None, description="velocity store of the true model (metrics; optional)")
    true_model_name: str | None = Field(None, description="name of the true model in that store (default: first)")
    allow_cpu: bool = False
    device: str | None = Field(None, description="None: CUDA when available, else CPU when allow_cpu")

    def inversion_config(self, device: str) -> InversionConfig:
        """The :class:`InversionConfig` of these parameters on ``device``."""
        fields = {k: getattr(self, k) for k in InversionConfig.model_fields}
        return InversionConfig(**{**fields, "device": device})


class DRFWISpec(MethodSpec):
    """A DRFWI inversion run."""

    label: ClassVar[str] = "DRFWI"

    name: Literal["drfwi"] = "drfwi"
    params: DRFWIParams = Field(default_factory=DRFWIParams)

    @model_validator(mode="after")
    def _needs_inputs(self) -> DRFWISpec:
        missing = [k for k in ("observed", "initial") if getattr(self.params, k) is None]
        if missing:
            raise ValueError(
                f"DRFWI needs {' and '.join(missing)}: --param observed=SHOT_STORE --param initial=VELOCITY_STORE"
            )
        return self


def _pick(path: str, name: str | None, what: str) -> tuple[np.ndarray, str, Any]:
    """``(model, name, grid)`` of the model ``name`` (default: the first) of the velocity store ``path``."""
    from seiscore.data.velocity import read_velocity_store

    if not Path(path).exists():
        raise MethodConfigError(f"DRFWI {what} store {path} does not exist", field=f"params.{what}")
    models, names, grid, _ = read_velocity_store(path)
    if name is None:
        return models[0], names[0], grid
    if name not in names:
        raise MethodConfigError(
            f"DRFWI {what} store {path} has no model {name!r}; it holds {', '.join(names[:10])}",
            field=f"params.{what}",
        )
    return models[names.index(name)], name, grid


def data_hash(data: np.ndarray) -> str:
    """SHA-256 of an array's float32 C-order bytes and its shape."""
    arr = np.ascontiguousarray(data, dtype=np.float32)
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


class DRFWIMethod(Method):
    """Neural-reparameterised FWI (grid / mean-denorm / pretrain / s-denorm / a-denorm) on shot gathers."""

    name = "drfwi"
    description = "Denorm-DRFWI: FWI of shot gathers with a SIREN-parameterised velocity model (deepwave), GPU"
    spec_model = DRFWISpec
    data_kinds = ("shotgather",)
    mode = "fit"
    requires = ("torch", "deepwave")
    extra = "drfwi"

    def resources(self, spec: DRFWISpec) -> dict[str, float]:
        """One GPU; a local cluster without one runs it on CPU only with ``allow_cpu`` (see the module doc)."""
        return {"GPU": 1}

    def fit(self, spec: DRFWISpec, run: Any) -> dict[str, Any]:
        """Read the stores, invert (resuming from the run's checkpoint), write the artifact; the summary."""
        import torch

        from seiscore.data.shots import read_shot_store
        from seiscore.execution.resources import require_gpu
        from seiscore.methods.drfwi.invert import invert

        p = spec.params
        if not Path(p.observed).exists():
            raise MethodConfigError(f"DRFWI observed shot store {p.observed} does not exist", field="params.observed")
        data, geometry, obs_attrs = read_shot_store(p.observed)
        m_init, init_name, grid = _pick(p.initial, p.initial_model, "initial")
        if m_init.shape != (geometry.nz, geometry.nx) or not np.isclose(grid.dx, geometry.dx):
            raise MethodConfigError(
                f"DRFWI initial model {init_name!r} is {m_init.shape[0]} x {m_init.shape[1]} at {grid.dx:g} m but the "
                f"shots were recorded on {geometry.nz} x {geometry.nx} at {geometry.dx:g} m",
                field="params.initial",
            )
        v_true, true_name = None, None
        if p.true_model is not None:
            v_true, true_name, _ = _pick(p.true_model, p.true_model_name, "true_model")
        device = require_gpu(p.allow_cpu, "DRFWI", requested=p.device)
        cells = geometry.nz * geometry.nx
        if str(device).startswith("cpu") and cells > CPU_MAX_CELLS:
            raise MethodConfigError(
                f"DRFWI on CPU is limited to grids of {CPU_MAX_CELLS} cells; {geometry.nz} x {geometry.nx} = {cells} "
                "needs a GPU worker",
                field="params.device",
            )
        config = p.inversion_config(str(device))
        result = invert(data, geometry, m_init, config, run=run, v_true=v_true)
        tensors = {
            "velocity": torch.from_numpy(result.model),
            "initial": torch.from_numpy(np.ascontiguousarray(m_init, dtype=np.float32)),
            **{f"param.{k}": v for k, v in result.state.items()},
        }
        card = {
            "mode": config.mode,
            "shape": [geometry.nz, geometry.nx],
            "dx": geometry.dx,
            "geometry": geometry.model_dump(mode="json"),
            "observed": str(p.observed),
            "observed_attrs": {k: v for k, v in obs_attrs.items() if isinstance(v, (str, int, float, bool))},
            "initial": str(p.initial),
            "initial_model": init_name,
            "true_model": p.true_model,
            "true_model_name": true_name,
            "summary": result.summary,
            "history": result.history,
        }
        metrics = {k: v for k, v in result.summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        path = run.write_artifact(
            ARTIFACT,
            tensors,
            card,
            format=FORMAT,
            format_version=FORMAT_VERSION,
            data_hash=data_hash(data),
            metrics=metrics,
        )
        summary = {**result.summary, "artifact": str(path), "initial_model": init_name}
        run.done(artifacts={ARTIFACT: path}, summary=metrics)
        return summary


def load_result(folder: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """``(inverted model (nz, nx) float32, card)`` of a DRFWI run folder or of its artifact folder."""
    from seiscore.execution.fit import read_artifact

    folder = Path(folder)
    if not (folder / "model_card.json").is_file() and (folder / "artifacts" / ARTIFACT).is_dir():
        folder = folder / "artifacts" / ARTIFACT
    card, tensors = read_artifact(folder, format=FORMAT, format_version=FORMAT_VERSION)
    return tensors["velocity"].numpy().astype(np.float32), card
