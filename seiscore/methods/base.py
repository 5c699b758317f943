"""The method contract: what every processing method declares and provides.

A method is a subclass of :class:`Method` registered under its ``name``
(:mod:`seiscore.methods.registry`: built-in, or a third-party package's ``seiscore.methods``
entry point). It declares

- ``spec_model``: a strict pydantic model (subclass of :class:`MethodSpec`) whose ``name`` field is
  the discriminator; the union of every method's spec is the one model the catalog, the flows and
  the jobs use (:func:`seiscore.methods.registry.parse_spec`);
- ``data_kinds``: the data kinds (:mod:`seiscore.data.kinds`) it accepts;
- ``mode``: its run mode, ``"blockwise"`` (tiles with halos and blending, per-tile completion),
  ``"per_item"`` (independent items in batches, per-batch completion) or ``"fit"`` (a training or
  inversion run with checkpoints and an artifact folder);
- ``requires`` / ``extra``: optional modules it needs and the pip extra that installs them (a method
  whose modules are missing is listed as unavailable, with the extra);

and provides the resources a task needs (e.g. ``{"GPU": 1}``), its default tiling for a data
shape, the pre-flight checks, the peak-memory models of one task (host memory, and device memory when it runs on
a GPU), and the callable (or the fit).
The flows, the tiling and the CLI only talk to this contract, so a new method edits none of them.
"""

from __future__ import annotations

import difflib
from abc import ABC
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seiscore.execution.blockwise.tiling import TileConfig

if TYPE_CHECKING:  # pragma: no cover
    from seiscore.data.kinds import DataKind

RunMode = Literal["blockwise", "per_item", "fit"]
RUN_MODES: tuple[str, ...] = ("blockwise", "per_item", "fit")


class MethodConfigError(ValueError):
    """A method specification or parameter that cannot run; the message is one line naming the problem.

    ``field`` is the dotted location in the spec (e.g. ``params.tau``) and ``detail`` the problem alone, so a
    caller (the catalog) can name the field its own way.
    """

    def __init__(self, message: str, *, field: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.field = field
        self.detail = detail if detail is not None else message


def did_you_mean(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for close matches of ``word`` among ``choices`` (empty when none)."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class NoParams(BaseModel):
    """Parameters of a method that has none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MethodSpec(BaseModel):
    """Base of every method's spec. Subclasses narrow ``name`` to ``Literal["<name>"]`` (the discriminator)
    and set ``params`` to their own strict parameter model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # How messages name the method (e.g. "TLSM"); None: its name.
    label: ClassVar[str | None] = None
    # Fields holding a path (e.g. a model artifact folder): the catalog resolves them against its folder.
    path_fields: ClassVar[tuple[str, ...]] = ()

    name: str
    params: BaseModel = Field(default_factory=NoParams)

    @classmethod
    def merge_overrides(cls, data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
        """``data`` (a spec as a mapping) with a run's overrides, not yet validated: a key naming a field of the
        spec sets that field, every other key a method parameter. Raises :class:`MethodConfigError` (one line,
        with close names) on an unknown key."""
        data = dict(data)
        if not overrides:
            return data
        fields, param_names = cls.override_names()
        params = dict(data.pop("params", None) or {})
        for key, value in overrides.items():
            if key in fields:
                data[key] = value
            elif key in param_names:
                params[key] = value
            else:
                raise cls.unknown_name(key, data.get("name"))
        return {**data, "params": params}

    @classmethod
    def override_names(cls) -> tuple[set[str], set[str]]:
        """(fields of the spec a run may set, names of the method's parameters)."""
        params_model = cls.model_fields["params"].annotation
        return set(cls.model_fields) - {"name", "params"}, set(getattr(params_model, "model_fields", {}))

    @classmethod
    def unknown_name(cls, key: str, name: str | None = None, field: str | None = None) -> MethodConfigError:
        """The one-line error for a parameter ``key`` the spec does not have, with the closest valid names."""
        valid = sorted(set.union(*cls.override_names()))
        hint = did_you_mean(key, valid) or f"; valid names: {', '.join(valid)}"
        label = cls.label or name or cls.model_fields["name"].default
        detail = f"unknown {label} parameter {key!r}{hint}"
        return MethodConfigError(detail, field=field or key, detail=detail)

    def with_overrides(self, overrides: dict[str, Any] | None) -> MethodSpec:
        """This spec with a run's overrides (see :meth:`merge_overrides`), validated: raises
        :class:`MethodConfigError` on an unknown key or an invalid value."""
        if not overrides:
            return self
        data = self.model_dump(exclude_unset=True) | {"name": self.name}
        return validate_spec(type(self), type(self).merge_overrides(data, overrides))

    def allows_cpu(self) -> bool:
        """True when the user explicitly allowed a GPU method to run on CPU workers (``allow_cpu=true``)."""
        return bool(getattr(self.params, "allow_cpu", False))


class BlockwiseSpec(MethodSpec):
    """Base of the specs of ``blockwise`` methods: the survey scaling, the tiles and the threads of one tile task."""

    scale: Literal["minmax", "none"] = Field(
        "minmax", description="'minmax': every block mapped with the survey's mid-range and half-range; 'none': raw"
    )
    tiles: TileConfig | None = Field(None, description="tile cores and halos; None = the method's default tiling")
    threads_per_task: int = Field(
        1,
        ge=1,
        description="threads one tile task uses; the cluster already runs one tile per worker thread, "
        "so 1 keeps every core busy without oversubscribing them",
    )


def validate_spec(model: type[MethodSpec], data: dict[str, Any]) -> MethodSpec:
    """``model.model_validate(data)`` with a one-line :class:`MethodConfigError` naming the field (a method
    parameter by its own name, ``tau`` rather than ``params.tau``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        shown = loc[1:] if loc[:1] == ["params"] and len(loc) > 1 else loc
        if err.get("type") == "extra_forbidden" and len(shown) == 1:
            raise model.unknown_name(shown[0], data.get("name"), ".".join(loc)) from None
        if err.get("type") == "value_error" and "error" in err.get("ctx", {}):
            detail = str(err["ctx"]["error"])  # our validators' own one-line messages
        else:
            got = err.get("input")
            shown_got = f" (got {got!r})" if err.get("type") != "missing" and not isinstance(got, dict) else ""
            detail = f"{err['msg']}{shown_got}"
        name = model.label or data.get("name") or model.model_fields["name"].default
        message = f"{name} parameter {'.'.join(shown)!r}: {detail}" if shown else detail
        raise MethodConfigError(message, field=".".join(loc) or None, detail=detail) from None


class Method(ABC):
    """One processing method (see the module docstring). Instances are stateless; one per registry entry."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    spec_model: ClassVar[type[MethodSpec]]
    data_kinds: ClassVar[tuple[str, ...]]
    mode: ClassVar[RunMode]
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    # -- declared properties -------------------------------------------------------------------
    def resources(self, spec: MethodSpec) -> dict[str, float]:
        """Dask resources one task of ``spec`` needs (``{"GPU": 1}`` for a GPU method); none by default."""
        return {}

    def cpu_hint(self, spec: MethodSpec) -> str:
        """How a user lets tasks of ``spec`` that ask for a GPU run on CPU workers (ends the placement's error)."""
        return (
            "pass the parameter allow_cpu=true (seis run SURVEY --param allow_cpu=true) to run them on the CPU workers"
        )

    def parameters(self, spec: MethodSpec) -> dict[str, Any]:
        """Every parameter a run of ``spec`` uses, defaults and presets applied (shown by the pre-flight)."""
        return spec.params.model_dump()

    def check(self, spec: MethodSpec, kind: DataKind, shape: tuple[int, ...]) -> list[str]:
        """Pre-flight checks that need no compute (artifacts, dims, shapes). Raise :class:`MethodConfigError`
        for a problem; return notes worth showing."""
        return []

    def peak_memory(self, spec: MethodSpec, block_shape: tuple[int, ...], itemsize: int = 4) -> int:
        """Bytes one task needs at its peak for a block of ``block_shape`` (default: 4 copies of the block)."""
        return int(4 * itemsize * np.prod(block_shape, dtype=np.int64))

    def gpu_memory(self, spec: MethodSpec, block_shape: tuple[int, ...], itemsize: int = 4) -> int | None:
        """Bytes of *device* memory one task needs at its peak when it runs on a GPU, for a block of
        ``block_shape``; None (the default) when tasks of ``spec`` never use a GPU. Tiles are planned so that it
        fits the GPU budget too (:func:`seiscore.core.settings.gpu_task_memory_budget`) when one is known, and the
        pre-flight reports it. One GPU runs one such task at a time, so it has no threads factor."""
        return None

    # -- blockwise / per_item ------------------------------------------------------------------
    def default_tiling(self, spec: MethodSpec, kind: DataKind, shape: tuple[int, ...]) -> TileConfig:
        """Tiles of a blockwise run over data of ``shape`` (store dim order) when the spec sets none."""
        from seiscore.execution.blockwise.tiling import TileConfig

        return TileConfig(tile=tuple(None for _ in shape), halo=tuple(0 for _ in shape))

    def build(self, spec: MethodSpec, kind: DataKind) -> Callable[[np.ndarray], np.ndarray]:
        """The callable a worker applies: a block (blockwise) or a batch of items (per_item), in the kind's
        dim order, to an array of the same shape."""
        raise NotImplementedError(f"method {self.name!r} ({self.mode}) has no block or item callable")

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, spec: MethodSpec, run: Any) -> dict[str, Any]:
        """Run (or resume) a fit in ``run`` (:class:`seiscore.execution.fit.FitRun`); returns its summary."""
        raise NotImplementedError(f"method {self.name!r} ({self.mode}) has no fit")
