"""A complete synthetic FWI data set in one call: Marmousi-like true model, both starting models, observed shots.

:func:`make_fwi_dataset` writes four stores into one folder:

- ``true_model.zarr``: the Marmousi-like model (:func:`seiscore.data.marmousi.marmousi_like`), a velocity store
  with the model's description (JSON) in its attributes, so it can be re-rendered at another spacing;
- ``initial_smooth.zarr`` and ``initial_linear.zarr``: the starting models of the DRFWI spec (slowness-smoothed
  and linear in depth, :func:`seiscore.data.marmousi.initial_model`), velocity stores;
- ``observed.zarr``: the shot store of the data recorded over the true model by the FWI engine
  (:func:`seiscore.methods.drfwi.engine.observe`, a finer stencil, ``accuracy=8``, than the inversion's, so no
  inverse crime; optional Gaussian noise), with lineage: the true model's SHA-256, stencil, noise and seed.

Acquisition (spec section 5): sources evenly spread along the top one cell deep (default one every ~150 m),
a receiver in every cell one cell deep, Ricker wavelet (default 5 Hz), 2 ms sampling, 4 s records.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict

from seiscore.data.marmousi import describe, initial_model, render
from seiscore.data.shots import Geometry, write_shot_store
from seiscore.data.velocity import write_velocity_store

TRUE_MODEL = "true_model.zarr"
INITIAL = {"smooth": "initial_smooth.zarr", "linear": "initial_linear.zarr"}
OBSERVED = "observed.zarr"


class FwiDataset(BaseModel):
    """Where :func:`make_fwi_dataset` wrote the data set, and its acquisition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: Path
    true_model: Path
    initial_smooth: Path
    initial_linear: Path
    observed: Path
    geometry: Geometry

    def initial(self, kind: str) -> Path:
        """The store of the ``smooth`` or ``linear`` starting model."""
        if kind not in INITIAL:
            raise ValueError(f"initial model kind must be 'smooth' or 'linear', got {kind!r}")
        return self.initial_smooth if kind == "smooth" else self.initial_linear


def model_hash(v: np.ndarray) -> str:
    """SHA-256 of a model's float32 C-order bytes and shape (the observed data's lineage)."""
    arr = np.ascontiguousarray(v, dtype=np.float32)
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def make_fwi_dataset(
    out: str | os.PathLike,
    spacing: float = 40.0,
    n_shots: int | None = None,
    seed: int = 0,
    *,
    size: tuple[float, float] = (3000.0, 9200.0),
    water: bool = True,
    peak_frequency: float = 5.0,
    dt: float = 0.002,
    record_s: float = 4.0,
    receiver_step: int = 1,
    noise_db: float | None = None,
    accuracy: int = 8,
    sigma_m: float = 250.0,
    overwrite: bool = False,
    roots: Iterable[str | os.PathLike] | None = None,
) -> FwiDataset:
    """Generate a Marmousi-like FWI data set at ``spacing`` metres into the folder ``out`` (see the module
    docstring); ``n_shots`` defaults to one source every ~150 m. The observed data need the ``drfwi`` extra
    (torch, deepwave). Stores are written atomically; existing ones are replaced only with ``overwrite`` (and
    only when the product wrote them); ``roots``: the data roots the stores must lie in."""
    if not (np.isfinite(record_s) and record_s > 0 and np.isfinite(dt) and dt > 0):
        raise ValueError(f"record length and dt must be positive seconds, got record_s={record_s}, dt={dt}")
    try:
        from seiscore.methods.drfwi.engine import observe
    except ImportError as exc:
        raise ImportError(
            f"the observed shots need the FWI engine (seiscore.methods.drfwi.engine, extra 'drfwi'): {exc}"
        ) from None
    folder = Path(out)
    desc = describe(seed=seed, size=size, water=water)
    v, grid = render(desc, spacing)
    nz, nx = v.shape
    if n_shots is None:
        n_shots = max(1, int(round(desc.width / 150.0)) + 1)
    geometry = Geometry.surface(
        nz,
        nx,
        float(spacing),
        n_shots=int(n_shots),
        dt=float(dt),
        nt=int(round(record_s / dt)),
        peak_frequency=float(peak_frequency),
        receiver_step=int(receiver_step),
    )
    common = {"generator": "seiscore.data.fwi_synth", "seed": seed, "spacing": float(spacing)}
    true_attrs = {**common, "marmousi_description": desc.model_dump_json(), "source": "marmousi_like"}
    write = {"grid": grid, "overwrite": overwrite, "roots": roots}
    paths = {
        "true_model": write_velocity_store(
            folder / TRUE_MODEL, v, names=["true"], family=["marmousi_like"], attrs=true_attrs, **write
        )
    }
    for kind, name in INITIAL.items():
        m = initial_model(v, kind, dx=grid.dx, sigma_m=sigma_m)
        attrs = {**common, "initial_kind": kind, "true_model_sha256": model_hash(v)}
        if kind == "smooth":
            attrs["sigma_m"] = float(sigma_m)
        paths[f"initial_{kind}"] = write_velocity_store(
            folder / name, m, names=[f"initial_{kind}"], family=[f"initial_{kind}"], attrs=attrs, **write
        )
    data = observe(v, geometry, accuracy=accuracy, noise_db=noise_db, seed=seed)
    obs_attrs = {
        **common,
        "true_model_sha256": model_hash(v),
        "true_model": str(paths["true_model"]),
        "accuracy": int(accuracy),
        "noise_db": noise_db,
    }
    paths["observed"] = write_shot_store(
        folder / OBSERVED, np.asarray(data), geometry, attrs=obs_attrs, overwrite=overwrite, roots=roots
    )
    return FwiDataset(folder=folder.resolve(), geometry=geometry, **paths)
