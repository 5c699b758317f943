"""Errors raised by the survey store; each names the file or store and the problem.

They subclass the built-in types the ``seis`` CLI turns into a one-line reason
(``ValueError``, ``NotImplementedError``, ``FileExistsError``).
"""

from __future__ import annotations


class SegyError(ValueError):
    """A file that is not a readable SEG-Y: too short, garbage headers, truncated traces."""


class GeometryError(ValueError):
    """Trace headers that do not describe a post-stack (inline, crossline) grid."""


class DuplicateTraceError(GeometryError):
    """Two or more traces share one (inline, crossline) pair."""


class PreStackNotSupportedError(NotImplementedError):
    """A pre-stack file (several offsets per bin); only post-stack cubes are supported yet."""


class StoreError(ValueError):
    """A Zarr path that is not a (complete) survey store."""


class IncompleteStoreError(StoreError):
    """A survey store whose ``seiscore_complete`` flag is not set."""
