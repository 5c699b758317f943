"""Run mode ``per_item``: independent items along one dim of a data kind, processed in batches.

An *item* is one index along the spec's ``item_dim`` (an inline section, a trace record, a velocity
map): the method's callable sees a batch of items as **one array**, item dim first and the other
dims in the kind's order, and returns an array of the same shape. Batch ``b`` covers items
``[b * batch, min(n, (b + 1) * batch))``.

Completion and resume: the output store (created, or kept for the same run key, by
:func:`seiscore.execution.pipeline.prepare_output`, as for blockwise runs) holds the run's record
(:class:`ItemState`, a sub-group keyed by the run key, see :mod:`seiscore.execution.run_state`) with one
completion flag per batch, each in its own chunk; the output variable is chunked so that a batch covers
whole chunks along the item dim. So concurrent workers never write the same object, a batch's flag is set only after its
data is written, and a re-run with the same run key processes only the batches not flagged.

Scaling and dead traces as in the blockwise jobs (:mod:`seiscore.execution.blockwise.jobs`): with
``scale="minmax"`` a batch is mapped by the *survey's* range, ``x' = (x - c) / r``; entries outside
the kind's mask (and non-finite samples) enter the method as 0 and are written as the output's fill
value.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, Field, SerializeAsAny, field_validator

from seiscore.data.kinds import DataKind, get_kind
from seiscore.methods.base import MethodConfigError, MethodSpec
from seiscore.methods.registry import get_method, parse_spec

ITEM_STATE_GROUP = "item_state"


class PerItemSpec(MethodSpec):
    """Base of the specs of ``per_item`` methods: which dim the items run along, how many per batch, and the
    amplitude scaling. A method narrows ``name`` and sets ``params`` (and usually the defaults)."""

    item_dim: str = Field(description="dim of the data kind whose indices are the items")
    batch_size: int = Field(1, ge=1, description="items per batch: one task, one call of the method")
    scale: Literal["minmax", "none"] = "minmax"


class ItemJob(BaseModel):
    """Everything a worker needs to process batches of one ``per_item`` run (JSON-serialisable)."""

    input_store: str
    output_store: str
    spec: SerializeAsAny[MethodSpec]
    kind: str = "poststack3d"
    item_dim: str
    batch: int = Field(ge=1)
    n_items: int = Field(ge=0)
    scale: tuple[float, float] = (0.0, 1.0)  # (centre, half-range) applied before the method
    chunks: tuple[int, ...] = Field(description="output chunks (store dim order); whole chunks per batch")

    @field_validator("spec", mode="before")
    @classmethod
    def _parse_spec(cls, value: Any) -> MethodSpec:
        return parse_spec(value)

    @property
    def n_batches(self) -> int:
        """Number of batches, ``ceil(n_items / batch)``."""
        return -(-self.n_items // self.batch)

    def items(self, b: int) -> tuple[int, int]:
        """Half-open item range ``[lo, hi)`` of batch ``b``."""
        if not 0 <= b < self.n_batches:
            raise IndexError(f"batch {b} out of range: the run has {self.n_batches} batches")
        return b * self.batch, min(self.n_items, (b + 1) * self.batch)

    def layout(self) -> dict[str, Any]:
        """What fixes the work units (part of the run key): kind, item dim, batch size, items, chunks."""
        return {
            "mode": "per_item",
            "kind": self.kind,
            "item_dim": self.item_dim,
            "batch": self.batch,
            "n_items": self.n_items,
            "chunks": list(self.chunks),
        }

    def state(self) -> ItemState:
        """The run record in the output store."""
        return ItemState(self.output_store)


class ItemState:
    """Per-batch completion flags of a ``per_item`` run in its output store (``STORE/item_state/done``:
    uint8 over the batches, one chunk per batch)."""

    def __init__(self, store):
        from seiscore.execution.run_state import RunRecord

        self.store = str(store)
        self.record = RunRecord(store, ITEM_STATE_GROUP)

    def run_key(self) -> str | None:
        """The run key recorded in the store (None: no record)."""
        return self.record.run_key()

    def begin(self, run_key: str, job: ItemJob) -> int:
        """Start or resume the run ``run_key``; returns the number of batches already done for it."""

        def create(group) -> None:
            group.create_array("done", shape=(job.n_batches,), chunks=(1,), dtype="uint8", fill_value=0)

        self.record.begin(run_key, {"layout": job.layout()}, create)
        return len(self.done())

    def done(self) -> set[int]:
        """Indices of the batches recorded done."""
        try:
            return set(np.flatnonzero(self.record.group()["done"][...]).tolist())
        except (FileNotFoundError, KeyError):
            return set()

    def mark_done(self, b: int) -> None:
        """Record batch ``b`` done (only after its data is written)."""
        self.record.group("r+")["done"][b] = 1


def _kind(kind: str | DataKind) -> DataKind:
    return kind if isinstance(kind, DataKind) else get_kind(kind)


def _largest_divisor(n: int, at_most: int) -> int:
    """The largest divisor of ``n`` not above ``at_most`` (>= 1)."""
    return max(d for d in range(1, max(1, min(n, at_most)) + 1) if n % d == 0)


def plan_items(input_store, output_store, spec: MethodSpec | dict, kind: str | DataKind = "poststack3d") -> ItemJob:
    """The :class:`ItemJob` of running ``spec`` (a ``per_item`` method) over ``input_store``.

    Item dim, batch size and scaling come from the spec; the survey's amplitude range is measured
    (or read from the input's attributes) for ``scale="minmax"``. Output chunks: the input's, except
    along the item dim, where the chunk is the largest divisor of the batch size not above the input's
    chunk, so each batch writes whole chunks. Raises :class:`MethodConfigError` (one line) for a method
    that is not ``per_item``, a kind it does not accept, or an item dim the kind lacks.
    """
    import xarray as xr
    import zarr

    from seiscore.execution.pipeline import amplitude_range

    spec = parse_spec(spec)
    kind = _kind(kind)
    method = get_method(spec.name)
    if method.mode != "per_item":
        raise MethodConfigError(f"method {spec.name!r} runs in mode {method.mode!r}, not per_item")
    if kind.name not in method.data_kinds:
        raise MethodConfigError(
            f"method {spec.name!r} does not accept {kind.name} data (it accepts: {', '.join(method.data_kinds)})"
        )
    item_dim = getattr(spec, "item_dim", None)
    batch = getattr(spec, "batch_size", None)
    if item_dim is None or batch is None:
        raise MethodConfigError(f"{spec.name} spec has no item_dim / batch_size: per_item specs derive PerItemSpec")
    if not isinstance(batch, int) or batch < 1:
        raise MethodConfigError(f"{spec.name} batch_size must be an integer >= 1, got {batch!r}")
    if item_dim not in kind.dims:
        raise MethodConfigError(f"{spec.name} item_dim {item_dim!r} is not a dim of {kind.name} ({kind.dims})")
    axis = kind.axis(item_dim)
    array = zarr.open_group(str(input_store), mode="r", use_consolidated=False)[kind.variable]
    in_chunks = tuple(int(c) for c in array.chunks)
    chunks = tuple(_largest_divisor(batch, c) if a == axis else c for a, c in enumerate(in_chunks))
    scale = (0.0, 1.0)
    if getattr(spec, "scale", "none") == "minmax":
        ds = xr.open_zarr(str(input_store), consolidated=False)
        live = ds[kind.mask] if kind.mask else None
        scale = amplitude_range(input_store, ds[kind.variable], live)
    return ItemJob(
        input_store=str(input_store),
        output_store=str(output_store),
        spec=spec,
        kind=kind.name,
        item_dim=item_dim,
        batch=batch,
        n_items=int(array.shape[axis]),
        scale=scale,
        chunks=chunks,
    )


def pending_batches(job: ItemJob) -> list[int]:
    """Batches of ``job`` without a completion flag, in order."""
    done = job.state().done()
    return [b for b in range(job.n_batches) if b not in done]


def _open(store: str, name: str, mode: str = "r"):
    import zarr

    return zarr.open_group(store, mode=mode, use_consolidated=False)[name]


def _selection(kind: DataKind, axis: int, lo: int, hi: int) -> tuple[slice, ...]:
    return tuple(slice(lo, hi) if a == axis else slice(None) for a in range(kind.ndim))


def _live(job: ItemJob, kind: DataKind, sel: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Live entries of the selection, broadcast to ``shape`` (store dim order); all live without a mask."""
    if not kind.mask:
        return np.ones(shape, dtype=bool)
    m = np.asarray(_open(job.input_store, kind.mask)[sel[: len(kind.mask_dims)]], dtype=bool)
    return np.broadcast_to(m.reshape(m.shape + (1,) * (len(shape) - m.ndim)), shape)


def read_batch(job: ItemJob, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch ``b`` as the method sees it (item dim first, scaled, dead and non-finite entries 0) and its live
    mask (same layout)."""
    kind = get_kind(job.kind)
    axis = kind.axis(job.item_dim)
    lo, hi = job.items(b)
    sel = _selection(kind, axis, lo, hi)
    data = np.asarray(_open(job.input_store, kind.variable)[sel], dtype=np.float32)
    live = _live(job, kind, sel, data.shape)
    centre, half = job.scale
    x = (data - np.float32(centre)) / np.float32(half)
    x = np.where(live & np.isfinite(x), x, np.float32(0.0))
    return np.ascontiguousarray(np.moveaxis(x, axis, 0)), np.moveaxis(live, axis, 0)


def write_batch(job: ItemJob, b: int, result: np.ndarray, live: np.ndarray) -> None:
    """Unscale the method's ``result`` for batch ``b`` (item dim first), put the fill value on dead entries,
    write it into the output variable, then flag the batch done."""
    kind = get_kind(job.kind)
    axis = kind.axis(job.item_dim)
    lo, hi = job.items(b)
    out = _open(job.output_store, kind.variable, "r+")
    centre, half = job.scale
    y = result * np.float32(half) + np.float32(centre)
    y = np.where(live, y, np.float32(out.fill_value))
    out[_selection(kind, axis, lo, hi)] = np.moveaxis(y, 0, axis).astype(np.float32, copy=False)
    job.state().mark_done(b)


def process_batch(job: ItemJob, b: int, fn: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, Any]:
    """Read batch ``b``, apply the method (``get_method(name).build(spec, kind)``, or ``fn``) to it as one
    array, write the result and flag the batch done; returns timing info. ``build`` runs once per batch: a
    method with a costly set-up (a model to load) caches it itself."""
    kind = get_kind(job.kind)
    t0 = time.perf_counter()
    x, live = read_batch(job, b)
    t1 = time.perf_counter()
    fn = fn or get_method(job.spec.name).build(job.spec, kind)
    y = np.asarray(fn(x), dtype=np.float32)
    if y.shape != x.shape:
        raise ValueError(f"method {job.spec.name!r} returned shape {y.shape} for a batch of shape {x.shape}")
    t2 = time.perf_counter()
    write_batch(job, b, y, live)
    return {
        "batch": b,
        "items": int(x.shape[0]),
        "read_s": t1 - t0,
        "compute_s": t2 - t1,
        "write_s": time.perf_counter() - t2,
        "samples": int(x.size),
    }
