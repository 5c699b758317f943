"""Per-tile progress inside an output store, and the one-run-per-survey lock.

Layout inside the output Zarr store (a sub-group, so ``xarray.open_zarr`` ignores it)::

    STORE/tile_state            group; attrs: run_key, plan (JSON), started
    STORE/tile_state/done       uint8 over the tile grid, one chunk per tile: 1 = core written
    STORE/tile_state/ready      uint8 over the tile grid, one chunk per tile: 1 = block saved
    STORE/tile_state/blocks     float32 (grid..., support...), one chunk per tile: the tile's
                                weighted denoised support block (scratch for blending)

The grid has as many axes as the plan (any number of dims): the flags are ``ndim``-D arrays
chunked ``(1,) * ndim`` and the blocks ``2 * ndim``-D, chunked ``(1,) * ndim + largest support``.

One chunk per tile means concurrent workers never write the same object, and a flag is
set only after the data it vouches for. A run is identified by its *run key* (hash of
input content, denoiser, parameters, code version and tile plan): re-running with the
same key resumes (only tiles not ``done`` are written, only blocks not ``ready`` are
recomputed); a different key starts over.

On object storage (a store at ``s3://...``) the layout is the same objects: each flag is its own chunk
object, PUT after the block it vouches for, so a run killed at any moment resumes from what exists; the
survey lock is a lease object (:func:`seiscore.io.locks.object_lease`) named ``NAME.lock`` beside the store.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from filelock import FileLock, Timeout

from seiscore.execution.blockwise.tiling import Tile, TilePlan
from seiscore.execution.run_state import RunRecord

STATE_GROUP = "tile_state"


def _support_shape(plan: TilePlan) -> tuple[int, ...]:
    """The largest support of any tile per axis (the scratch block shape)."""
    return tuple(min(int(np.diff(e).max()) + 2 * b, n) for e, b, n in zip(plan.edges, plan.blend, plan.shape))


class TileState:
    """Completion flags and scratch blocks of one output store."""

    def __init__(self, store: str | os.PathLike):
        self.store = str(store)
        self.record = RunRecord(store, STATE_GROUP)

    def _group(self, mode: str = "r"):
        return self.record.group(mode)

    def _flags(self, name: str, mode: str = "r"):
        return self._group(mode)[name]

    # -- run identity -------------------------------------------------------------------
    def run_key(self) -> str | None:
        """The run key recorded in the store (None: no record)."""
        return self.record.run_key()

    def begin(self, run_key: str, plan: TilePlan) -> int:
        """Start or resume a run; returns the number of tiles already done for this key.

        A different key (new input, parameters, code or plan) discards earlier records.
        """

        def create(g) -> None:
            for name in ("done", "ready"):
                g.create_array(name, shape=plan.grid, chunks=(1,) * plan.ndim, dtype="uint8", fill_value=0)
            self._create_blocks(g, plan)

        self.record.begin(run_key, {"plan": plan.model_dump_json()}, create)
        return len(self.done())

    @staticmethod
    def _create_blocks(g, plan: TilePlan):
        sup = _support_shape(plan)
        return g.create_array(
            "blocks",
            shape=plan.grid + sup,
            chunks=(1,) * plan.ndim + sup,
            dtype="float32",
            fill_value=0.0,
            compressors=None,
        )

    # -- tiles --------------------------------------------------------------------------
    @staticmethod
    def _keys(flags: np.ndarray) -> set[str]:
        return {"-".join(map(str, ix)) for ix in np.argwhere(flags > 0)}

    def done(self) -> set[str]:
        """Keys of the tiles whose core is written."""
        try:
            return self._keys(self._flags("done")[...])
        except (FileNotFoundError, KeyError):
            return set()

    def ready(self) -> set[str]:
        """Keys of the tiles whose scratch block is saved."""
        try:
            return self._keys(self._flags("ready")[...])
        except (FileNotFoundError, KeyError):
            return set()

    def mark_done(self, tile: Tile) -> None:
        """Record ``tile``'s core as written."""
        self._flags("done", "r+")[tile.index] = 1

    def has_block(self, tile: Tile) -> bool:
        """True when ``tile``'s scratch block is saved."""
        return bool(self._flags("ready")[tile.index])

    def save_block(self, tile: Tile, block: np.ndarray) -> None:
        """Save ``tile``'s weighted support block, then flag it ready."""
        g = self._group("r+")
        g["blocks"][tile.index + tuple(slice(0, n) for n in block.shape)] = block
        g["ready"][tile.index] = 1

    def load_block(self, tile: Tile) -> np.ndarray:
        """``tile``'s saved weighted support block; ``FileNotFoundError`` when it is not saved."""
        if not self.has_block(tile):
            raise FileNotFoundError(
                f"scratch block of tile {tile.key} is missing in {self.store}/{STATE_GROUP}; re-run to recompute it"
            )
        shape = tuple(b - a for a, b in tile.support)
        return self._flags("blocks")[tile.index + tuple(slice(0, n) for n in shape)]

    def clear_blocks(self) -> None:
        """Drop the scratch blocks (after the run): the flags stay, ``ready`` is reset."""
        g = self._group("r+")
        plan = TilePlan.model_validate_json(g.attrs["plan"])
        del g["blocks"]
        g["ready"][...] = 0
        self._create_blocks(g, plan)


class SurveyLocked(RuntimeError):
    """Another run holds the survey's output store."""


@contextmanager
def survey_lock(store: str | os.PathLike, *, wait_s: float = 0.0, owner: str = "") -> Iterator[Path]:
    """Hold an exclusive lock on ``STORE.lock`` for one run (OS lock: released if the process dies).

    A second run waits up to ``wait_s`` seconds, then raises :class:`SurveyLocked` naming the holder.
    For a store at a URL the lock is a lease object (:func:`seiscore.io.locks.object_lease`).
    """
    from seiscore.io import location
    from seiscore.io.locks import StoreLocked, object_lease

    if location.is_remote(store):
        lease = location.with_name(store, location.name(store) + ".lock")
        try:
            with object_lease(lease, wait_s=wait_s, what=f"output store {store}", owner=owner) as held:
                yield held
        except StoreLocked as exc:
            raise SurveyLocked(f"{exc}; or set SEIS_LOCK_WAIT_S to wait") from None
        return
    store = Path(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    lock_path = store.with_name(store.name + ".lock")
    info_path = _info_path(store)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        holder = info_path.read_text() if info_path.exists() else "unknown"
        raise SurveyLocked(
            f"output store {store} is being written by another run ({holder}); "
            f"wait for it to finish or set SEIS_LOCK_WAIT_S to wait"
        ) from None
    try:
        info_path.write_text(
            json.dumps(
                {
                    "owner": owner,
                    "pid": os.getpid(),
                    "pid_started": process_start(os.getpid()),
                    "host": socket.gethostname(),
                    "since": time.time(),
                }
            )
        )
        yield lock_path
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()


def _info_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock.json")


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state first), or None (no such process, no /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None where unknown:
    tells a live owner from a later process that reused its pid."""
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def lock_owner(store: str | os.PathLike) -> dict | None:
    """Who holds (or held, if it died) the survey lock of ``store``: the recorded owner, pid, host and
    start time, with ``alive`` True / False for a process on this host and None on another host.

    The record is removed when a run ends normally; one left behind by a killed run names a dead pid.
    For a store at a URL: the lease object's record, ``alive`` False once it expired.
    """
    from seiscore.io import location

    if location.is_remote(store):
        from seiscore.io.locks import _lease_dead, read_lease

        info = read_lease(location.with_name(store, location.name(store) + ".lock"))
        if info is None:
            return None
        return {**info, "alive": not _lease_dead(info)}  # a lease is renewed while its holder lives
    path = _info_path(Path(store))
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if info.get("host") != socket.gethostname():
        return {**info, "alive": None}
    return {**info, "alive": _alive(int(info.get("pid", -1)), info.get("pid_started"))}


def _alive(pid: int, started: int | None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    fields = _proc_stat(pid)
    if fields is None:  # no /proc: the pid exists, that is all we can tell
        return True
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return False
    return started is None or process_start(pid) == started
