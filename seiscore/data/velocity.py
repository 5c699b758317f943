"""Velocity-model collections (data kind ``velocity2d``): validation, the Zarr store, and loaders.

Store layout (a Zarr v3 group that plain ``xarray.open_zarr`` reads)::

    velocity   float32 (model, z, x)   m/s
    model      str     (model,)        model names (unique)
    z, x       float64 (z,), (x,)      depth and distance in metres (origin + index * spacing)
    family     str     (model,)        optional: generator family or source label

Group attributes: ``kind`` (``velocity2d``), ``units`` (``m/s``), ``dz``/``dx`` (m), ``value_min``/
``value_max`` (m/s), ``source`` (what the collection was loaded from), ``seiscore_complete``. A store is built
under a temporary sibling name and renamed into place when whole, following :mod:`seiscore.core.safety`
(never replacing a path the product did not write).

Loaders: OpenFWI ``.npy`` files (``(N, 1, nz, nx)``), plain NumPy arrays or files (``(N, nz, nx)`` or one
``(nz, nx)`` model), another velocity store, or a post-stack survey store whose inlines are velocity
sections (``(inline, crossline, sample)`` -> models ``(inline, sample, crossline)``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from seiscore.data.kinds import VELOCITY2D

KIND = VELOCITY2D
COMPLETE_ATTR = "seiscore_complete"
# Velocities a 2-D model may hold: strictly positive and at most this (m/s); above it a value is
# almost certainly in the wrong unit (ft/s, km/s * 1e3 twice) or corrupt.
MAX_VELOCITY = 10_000.0


class VelocityModelError(ValueError):
    """A velocity model or collection that cannot be used; the message names the model and the problem."""


class VelocityGrid(BaseModel):
    """Regular grid of a collection: spacing and origin in metres."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dz: float = Field(10.0, gt=0, description="depth spacing (m)")
    dx: float = Field(10.0, gt=0, description="lateral spacing (m)")
    z0: float = 0.0
    x0: float = 0.0

    def axes(self, nz: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
        """Depth and distance coordinates (m) of an ``nz x nx`` model."""
        return self.z0 + self.dz * np.arange(nz, dtype=np.float64), self.x0 + self.dx * np.arange(nx, dtype=np.float64)


def _name(names: Sequence[str] | None, i: int) -> str:
    return f"model {names[i]!r}" if names is not None else f"model {i}"


def validate_models(
    models: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    max_velocity: float = MAX_VELOCITY,
    what: str = "velocity models",
) -> np.ndarray:
    """``models`` as a C-contiguous float32 ``(N, nz, nx)`` array (a copy when converted; a single ``(nz, nx)``
    model becomes ``N = 1``), after checking every value is finite, positive and at most ``max_velocity``.

    Raises :class:`VelocityModelError` naming the first bad model, its problem and where (vectorised: one pass
    per check over the whole collection)."""
    arr = np.asarray(models)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise VelocityModelError(f"{what} must be (model, z, x) or one (z, x) model, got shape {arr.shape}")
    if min(arr.shape) < 1:
        raise VelocityModelError(f"{what} are empty: shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise VelocityModelError(f"{what} must be real numbers, got dtype {arr.dtype}")
    if names is not None and len(names) != arr.shape[0]:
        raise VelocityModelError(f"{what}: {len(names)} names for {arr.shape[0]} models")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    flat = arr.reshape(arr.shape[0], -1)
    checks = (
        (~np.isfinite(flat), "holds NaN or infinite velocities"),
        (flat <= 0, "holds non-positive velocities"),
        (flat > max_velocity, f"holds velocities above {max_velocity:g} m/s (wrong unit?)"),
    )
    for bad, problem in checks:
        rows = np.flatnonzero(bad.any(axis=1))
        if rows.size:
            i = int(rows[0])
            n_bad = int(bad[i].sum())
            example = float(flat[i][bad[i]][0])
            more = f"; {rows.size - 1} more model(s) too" if rows.size > 1 else ""
            raise VelocityModelError(
                f"{_name(names, i)} {problem} ({n_bad} of {flat.shape[1]} samples, e.g. {example:g}){more}"
            )
    return arr


def check_same_grid(shapes: Iterable[tuple[int, ...]], names: Sequence[str]) -> tuple[int, int]:
    """The common ``(nz, nx)`` of models of ``shapes``; a one-line error naming the first model that differs."""
    shapes = [tuple(s) for s in shapes]
    if not shapes:
        raise VelocityModelError("no velocity models given")
    first = shapes[0]
    for name, shape in zip(names, shapes):
        if shape != first:
            raise VelocityModelError(
                f"model {name!r} has grid {shape}, but {names[0]!r} has {first}: one collection holds one grid size"
            )
    return first  # type: ignore[return-value]


def default_names(n: int, prefix: str = "m") -> list[str]:
    """``m000000, m000001, ...``."""
    return [f"{prefix}{i:06d}" for i in range(n)]


# -- the store ----------------------------------------------------------------------------------------------
def write_velocity_store(
    store: str | os.PathLike,
    models: np.ndarray,
    *,
    grid: VelocityGrid | None = None,
    names: Sequence[str] | None = None,
    family: Sequence[str] | None = None,
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
    roots: Iterable[str | os.PathLike] | None = None,
    chunk_models: int | None = None,
) -> Path:
    """Validate ``models`` (:func:`validate_models`) and write them as a complete velocity store at ``store``.

    The store is written under a temporary sibling and renamed into place; an existing store is replaced only
    with ``overwrite`` and only when the product wrote it; ``roots`` (data roots) as in
    :func:`seiscore.core.safety.check_write_target`. ``models`` is never modified. Returns the resolved path."""
    import xarray as xr

    from seiscore.core.safety import STORE_MARK_ATTR
    from seiscore.io.store import consolidate, prepare_target, publish

    if roots is not None:
        from seiscore.core.safety import check_write_target

        check_write_target(store, what="velocity store", roots=roots, replace=True)
    arr = validate_models(models, names)
    n, nz, nx = arr.shape
    names = list(names) if names is not None else default_names(n)
    if len(set(names)) != n:
        raise VelocityModelError("model names must be unique")
    grid = grid or VelocityGrid()
    z, x = grid.axes(nz, nx)
    final, tmp = prepare_target(store, overwrite, what="velocity store")
    coords: dict[str, Any] = {"model": np.asarray(names, dtype=object), "z": z, "x": x}
    if family is not None:
        if len(family) != n:
            raise VelocityModelError(f"{len(family)} family labels for {n} models")
        coords["family"] = ("model", np.asarray(family, dtype=object))
    ds = xr.Dataset({KIND.variable: (KIND.dims, arr)}, coords=coords)
    ds[KIND.variable].attrs["units"] = "m/s"
    ds["z"].attrs["units"] = ds["x"].attrs["units"] = "m"
    ds.attrs = {
        "kind": KIND.name,
        "units": "m/s",
        "dz": grid.dz,
        "dx": grid.dx,
        "value_min": float(arr.min()),
        "value_max": float(arr.max()),
        **(attrs or {}),
        STORE_MARK_ATTR: 1,
        COMPLETE_ATTR: False,
    }
    per_chunk = chunk_models or max(1, min(n, (8 << 20) // max(1, nz * nx * 4)))  # ~8 MB chunks
    encoding = {KIND.variable: {"chunks": (per_chunk, nz, nx)}}
    ds.to_zarr(str(tmp), mode="w", encoding=encoding, consolidated=False, zarr_format=3)
    publish(tmp, final, attrs={COMPLETE_ATTR: True})
    consolidate(final)
    return final


def is_velocity_store(store: str | os.PathLike) -> bool:
    """True when ``store`` is a complete velocity store."""
    import zarr

    path = Path(store)
    if not (path / "zarr.json").is_file():
        return False
    try:
        a = zarr.open_group(str(path), mode="r").attrs
    except Exception:  # noqa: BLE001 - unreadable: not a store
        return False
    return a.get("kind") == KIND.name and bool(a.get(COMPLETE_ATTR))


def open_velocity_store(store: str | os.PathLike):
    """The velocity store at ``store`` as an ``xarray.Dataset`` (lazy); one-line errors when it is missing,
    incomplete or not a velocity store."""
    import xarray as xr
    import zarr

    path = Path(store)
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"velocity store {path} does not exist")
    a = zarr.open_group(str(path), mode="r").attrs
    if a.get("kind") != KIND.name:
        raise VelocityModelError(f"{path} is not a velocity store (kind {a.get('kind')!r})")
    if not a.get(COMPLETE_ATTR):
        raise VelocityModelError(f"velocity store {path} is incomplete (an interrupted write); rebuild it")
    return xr.open_zarr(str(path), consolidated=True)


def read_velocity_store(store: str | os.PathLike) -> tuple[np.ndarray, list[str], VelocityGrid, dict[str, Any]]:
    """``(models (N, nz, nx) float32, names, grid, attrs)`` of a velocity store."""
    ds = open_velocity_store(store)
    models = np.ascontiguousarray(ds[KIND.variable].values, dtype=np.float32)
    names = [str(v) for v in ds["model"].values]
    grid = VelocityGrid(
        dz=float(ds.attrs["dz"]), dx=float(ds.attrs["dx"]), z0=float(ds["z"].values[0]), x0=float(ds["x"].values[0])
    )
    attrs = dict(ds.attrs)
    if "family" in ds.coords:
        attrs["family"] = [str(v) for v in ds["family"].values]
    return models, names, grid, attrs


# -- loaders ------------------------------------------------------------------------------------------------
def load_openfwi_npy(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[np.ndarray, list[str]]:
    """Models and names from OpenFWI velocity files (``(N, 1, nz, nx)``; ``(N, nz, nx)`` accepted), in the given
    order; names ``<file stem>_<index>``. Every file must hold the same grid."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    arrays, names = [], []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"velocity file {path} does not exist")
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise VelocityModelError(f"{path} is not a NumPy .npy file: {exc}") from None
        if arr.ndim == 4 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise VelocityModelError(f"{path}: expected (N, 1, nz, nx) or (N, nz, nx) velocities, got {arr.shape}")
        arrays.append(arr)
        names += [f"{path.stem}_{i:04d}" for i in range(arr.shape[0])]
    check_same_grid([a.shape[1:] for a in arrays], [str(p) for p in paths])
    return validate_models(np.concatenate(arrays, axis=0), names), names


def from_survey_store(store: str | os.PathLike) -> tuple[np.ndarray, list[str], VelocityGrid]:
    """Velocity sections of a post-stack survey store (sample axis in metres or ms read as depth): one model per
    inline, ``(sample, crossline)``."""
    from seiscore.io.store import open_survey

    ds = open_survey(store)
    amp = np.asarray(ds["amplitude"].values, dtype=np.float32)  # (inline, crossline, sample)
    models = np.ascontiguousarray(amp.transpose(0, 2, 1))
    names = [f"inline_{int(il)}" for il in ds["inline"].values]
    sample = np.asarray(ds["sample"].values, dtype=np.float64)
    dz = float(sample[1] - sample[0]) if sample.size > 1 else 1.0
    return validate_models(models, names), names, VelocityGrid(dz=dz, dx=1.0, z0=float(sample[0]))


def load_models(source: str | os.PathLike) -> tuple[np.ndarray, list[str], VelocityGrid | None, dict[str, Any]]:
    """``(models, names, grid or None, attrs)`` from a velocity store, a survey store, or a ``.npy`` file (OpenFWI
    layout or plain), by what ``source`` is."""
    path = Path(source)
    if path.suffix == ".npy":
        models, names = load_openfwi_npy(path)
        return models, names, None, {"source": str(path)}
    if is_velocity_store(path):
        models, names, grid, attrs = read_velocity_store(path)
        return models, names, grid, attrs
    if (path / "zarr.json").is_file():
        models, names, grid = from_survey_store(path)
        return models, names, grid, {"source": str(path)}
    if not path.exists():
        raise FileNotFoundError(f"velocity source {path} does not exist")
    raise VelocityModelError(f"{path}: not a .npy file, a velocity store or a survey store")
