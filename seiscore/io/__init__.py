"""Survey store: SEG-Y <-> chunked Zarr v3 (xarray-readable) with every header, real geometry,
bounded memory and byte-exact round trips. See ``docs/store.md``."""

from .errors import (
    DuplicateTraceError,
    GeometryError,
    IncompleteStoreError,
    PreStackNotSupportedError,
    SegyError,
    StoreError,
)
from .export import export
from .geometry import Geometry, SegyLayout, probe, scan
from .ingest import ingest
from .plan import DEFAULT_CHUNKS
from .store import create_output_store, is_complete, mark_complete, open_survey, set_attrs

__all__ = [
    "ingest",
    "export",
    "open_survey",
    "create_output_store",
    "mark_complete",
    "set_attrs",
    "is_complete",
    "probe",
    "scan",
    "Geometry",
    "SegyLayout",
    "DEFAULT_CHUNKS",
    "SegyError",
    "GeometryError",
    "DuplicateTraceError",
    "PreStackNotSupportedError",
    "StoreError",
    "IncompleteStoreError",
]
