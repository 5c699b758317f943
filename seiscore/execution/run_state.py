"""The record of one run inside its output store: a sub-group keyed by the run's *run key*.

Both data run modes keep their progress beside the data they write (``blockwise``:
:class:`~seiscore.execution.blockwise.state.TileState`, ``per_item``:
:class:`~seiscore.execution.per_item.ItemState`). A run is identified by its run key (a hash of
the input content, the method, its parameters, the code version and the layout of the work):
beginning a run with the key already recorded resumes it (its completion flags stand); any other
key discards the earlier record and starts a fresh one. Sub-groups are ignored by
``xarray.open_zarr``, so the record never shows up as data.

The store may be at a URL (:mod:`seiscore.io.location`): every completion flag is a chunk of its own, i.e.
one object, written after the data it vouches for, so a run killed at any point resumes from the objects
that exist.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import zarr


class RunRecord:
    """The sub-group ``name`` of the Zarr store ``store`` that records one run."""

    def __init__(self, store: str | os.PathLike, name: str):
        self.store, self.name = str(store), name

    def group(self, mode: str = "r"):
        """The record's Zarr group (``KeyError`` / ``FileNotFoundError`` when there is none)."""
        return zarr.open_group(self._zstore(mode), mode=mode, use_consolidated=False)[self.name]

    def _zstore(self, mode: str):
        from seiscore.io import location  # lazily: the tile state is imported where numba must not be

        return location.zarr_store(self.store, read_only=mode == "r")

    def run_key(self) -> str | None:
        """The run key recorded in the store, or None (no store, no record)."""
        try:
            return self.group().attrs.get("run_key")
        except (FileNotFoundError, KeyError):
            return None

    def begin(self, run_key: str, attrs: dict[str, Any], create: Callable[[Any], None]) -> bool:
        """Keep the record of ``run_key`` (resume; returns False), or discard any other record and start a
        fresh one with ``attrs`` whose arrays ``create(group)`` makes (returns True)."""
        if self.run_key() == run_key:
            return False
        root = zarr.open_group(self._zstore("a"), mode="a", use_consolidated=False)
        if self.name in root:
            del root[self.name]
        group = root.create_group(self.name, attributes={"run_key": run_key, **attrs, "started": time.time()})
        create(group)
        return True
