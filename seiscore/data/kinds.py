"""Data kinds: the registered store layouts, the one source of dims for tiling, QC and methods.

A :class:`DataKind` describes how one kind of data lies in a Zarr store: the main variable and its
named dims (in store order), an optional mask over a prefix of those dims (dead traces), the
coordinates, the default chunking, which dims QC draws sections across (and what it calls them),
which dim QC draws downwards, and which dims tiles may cut. Methods declare the kinds they accept
(:mod:`seiscore.methods.base`); the tiling and the QC take their dims from the kind, so a kind with
any number of dims works without editing them. :func:`store_dims` gives a kind's dims (default:
the post-stack survey's), the one definition the store, the jobs and the catalog use.

Built-in: ``poststack3d`` (inline, crossline, sample), ``velocity2d`` (model, z, x: collections of 2-D
velocity models, :mod:`seiscore.data.velocity`) and ``shotgather`` (shot, receiver, time: pre-stack shot
gathers with geometry), ``traces3c`` (trace, component, time: fixed-length windows of three-component
station records, Z/N/E, :mod:`seiscore.data.traces`). Other packages add kinds through the
``seiscore.data_kinds`` entry-point group (each entry point loads a :class:`DataKind`).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from pydantic import BaseModel, ConfigDict, Field, model_validator

ENTRY_POINT_GROUP = "seiscore.data_kinds"


class UnknownDataKindError(ValueError):
    """A data kind name that no registered kind has; the message lists the known ones."""


class DataKind(BaseModel):
    """How one kind of data is laid out in a store (JSON-serialisable, immutable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="registry name, e.g. 'poststack3d'")
    description: str = ""
    dims: tuple[str, ...] = Field(description="dims of the main variable, in store order")
    variable: str = Field("amplitude", description="name of the main variable")
    mask: str | None = Field(None, description="boolean variable marking live entries (None: all live)")
    mask_dims: tuple[str, ...] = Field((), description="dims of the mask: a prefix of dims")
    coords: tuple[str, ...] = Field((), description="coordinate variables besides the dims")
    chunks: tuple[int | None, ...] = Field(description="default chunk per dim (None = whole dim)")
    qc_sections: tuple[str, ...] = Field(
        (), description="dims across which QC draws sections (none: a 2-D kind is drawn whole)"
    )
    section_names: tuple[tuple[str, str], ...] = Field(
        (), description="(dim, name) pairs naming the QC section across a dim (default: the dim's name)"
    )
    vertical: str | None = Field(None, description="dim QC draws downwards (rows) when a section contains it")
    tileable: tuple[str, ...] = Field((), description="dims tiles may cut (the others stay whole)")

    @model_validator(mode="after")
    def _consistent(self) -> DataKind:
        if len(set(self.dims)) != len(self.dims) or not self.dims:
            raise ValueError(f"data kind {self.name!r}: dims must be distinct and non-empty, got {self.dims}")
        if len(self.chunks) != len(self.dims):
            raise ValueError(f"data kind {self.name!r}: {len(self.chunks)} chunks for {len(self.dims)} dims")
        if self.mask_dims != self.dims[: len(self.mask_dims)]:
            raise ValueError(f"data kind {self.name!r}: mask dims {self.mask_dims} must be a prefix of {self.dims}")
        named = {
            "qc_sections": self.qc_sections,
            "tileable": self.tileable,
            "section_names": tuple(d for d, _ in self.section_names),
            "vertical": (self.vertical,) if self.vertical else (),
        }
        for field, dims in named.items():
            unknown = set(dims) - set(self.dims)
            if unknown:
                raise ValueError(f"data kind {self.name!r}: {field} names unknown dims {sorted(unknown)}")
        if self.mask is None and self.mask_dims:
            raise ValueError(f"data kind {self.name!r}: mask dims {self.mask_dims} given without a mask variable")
        return self

    @property
    def ndim(self) -> int:
        """Number of dims of the main variable."""
        return len(self.dims)

    def axis(self, dim: str) -> int:
        """Position of ``dim`` in the store order; a one-line error naming the kind's dims otherwise."""
        try:
            return self.dims.index(dim)
        except ValueError:
            raise ValueError(f"{dim!r} is not a dim of {self.name} data (dims: {', '.join(self.dims)})") from None

    def axes(self, dims) -> tuple[int, ...]:
        """Positions of ``dims`` in the store order (see :meth:`axis`)."""
        return tuple(self.axis(d) for d in dims)

    def section_name(self, dim: str) -> str:
        """Name of the QC section across ``dim`` (e.g. ``"time"`` for a post-stack ``sample`` slice)."""
        return dict(self.section_names).get(dim, dim)

    def check_dims(self, dims, what: str = "data") -> None:
        """Raise a one-line ``ValueError`` unless ``dims`` holds every dim of this kind (any order)."""
        missing = [d for d in self.dims if d not in tuple(dims)]
        if missing:
            raise ValueError(
                f"{what} must have the {self.name} dims ({', '.join(self.dims)}); "
                f"missing {', '.join(missing)} in {tuple(dims)}"
            )


POSTSTACK3D = DataKind(
    name="poststack3d",
    description="3-D post-stack survey: amplitude over (inline, crossline, sample), live-trace mask, CDP x/y",
    dims=("inline", "crossline", "sample"),
    variable="amplitude",
    mask="live_mask",
    mask_dims=("inline", "crossline"),
    coords=("cdp_x", "cdp_y"),
    chunks=(64, 64, None),
    qc_sections=("inline", "crossline", "sample"),
    section_names=(("sample", "time"),),
    vertical="sample",
    tileable=("inline", "crossline", "sample"),
)

VELOCITY2D = DataKind(
    name="velocity2d",
    description="collection of 2-D velocity models: velocity (m/s) over (model, z, x), grid spacing in metres",
    dims=("model", "z", "x"),
    variable="velocity",
    coords=("family",),
    chunks=(16, None, None),
    qc_sections=("model",),
    section_names=(("model", "model"),),
    vertical="z",
    tileable=("model",),
)

SHOTGATHER = DataKind(
    name="shotgather",
    description="pre-stack shot gathers: amplitude over (shot, receiver, time), source/receiver positions in metres",
    dims=("shot", "receiver", "time"),
    variable="amplitude",
    coords=("source_x", "source_z", "receiver_x", "receiver_z"),
    chunks=(1, None, None),
    qc_sections=("shot",),
    section_names=(("shot", "shot gather"),),
    vertical="time",
    tileable=("shot",),
)

TRACES3C = DataKind(
    name="traces3c",
    description=(
        "three-component station records cut into fixed-length windows: amplitude over (trace, component, time), "
        "components Z/N/E, one item = one 3-C window; per-window record index, offset, station id, start time and "
        "P/S picks, per-record metadata on a 'record' dim"
    ),
    dims=("trace", "component", "time"),
    variable="amplitude",
    coords=("record_index", "offset", "station", "start", "p_sample", "s_sample"),
    chunks=(256, 3, None),
    qc_sections=("trace",),
    section_names=(("trace", "window"),),
    vertical=None,
    tileable=("trace",),
)

_BUILTIN: dict[str, DataKind] = {k.name: k for k in (POSTSTACK3D, VELOCITY2D, SHOTGATHER, TRACES3C)}
_registered: dict[str, DataKind] = {}


def register_kind(kind: DataKind) -> DataKind:
    """Add ``kind`` to the registry (a later registration of the same name replaces it)."""
    _registered[kind.name] = kind
    return kind


def _from_entry_points() -> dict[str, DataKind]:
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        kind = ep.load()
        if isinstance(kind, DataKind):
            found[kind.name] = kind
    return found


def kinds() -> dict[str, DataKind]:
    """Every known data kind by name: built-in, from entry points, then registered at run time."""
    return {**_BUILTIN, **_from_entry_points(), **_registered}


def get_kind(name: str) -> DataKind:
    """The data kind ``name``; :class:`UnknownDataKindError` naming the known kinds otherwise."""
    known = kinds()
    try:
        return known[name]
    except KeyError:
        raise UnknownDataKindError(f"unknown data kind {name!r}; known: {', '.join(sorted(known))}") from None


def as_kind(kind: str | DataKind) -> DataKind:
    """``kind`` itself when it is a :class:`DataKind`, else the registered kind of that name."""
    return kind if isinstance(kind, DataKind) else get_kind(kind)


def store_dims(kind: str | DataKind = "poststack3d") -> tuple[str, ...]:
    """Dims of ``kind``'s main variable in store order (default: the post-stack survey's)."""
    return as_kind(kind).dims
