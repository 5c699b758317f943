"""One writer per store: an OS file lock on a hidden sibling ``.NAME.seiscore-lock`` of the store.

Ingest holds it while it checks and (re)writes an input store, so two runs that share one input store do
not write it at the same time: the second waits for the first, then finds the store complete and reuses
it. The lock is the operating system's (``flock``): it is released when its process dies, whatever the
way. Re-entrant within a thread (the pipeline holds it around :func:`seiscore.io.ingest`, which takes it
too); other threads and processes wait.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

LOCK_SUFFIX = ".seiscore-lock"


class StoreLocked(RuntimeError):
    """Another process (or thread) is writing the store and waiting was not allowed or ran out."""


def lock_path(store: str | os.PathLike) -> Path:
    """The lock file of ``store``: ``.NAME.seiscore-lock`` beside it."""
    store = Path(store)
    return store.with_name(f".{store.name}{LOCK_SUFFIX}")


@contextmanager
def store_lock(store: str | os.PathLike, *, wait_s: float | None = None, what: str = "store") -> Iterator[Path]:
    """Hold the lock of ``store``; wait up to ``wait_s`` seconds (None: as long as it takes), then raise
    :class:`StoreLocked` naming the store."""
    path = lock_path(store)
    lock = FileLock(str(path), is_singleton=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=-1 if wait_s is None else wait_s)
    except PermissionError:  # the folder the store goes in cannot be written: name it, not the lock file
        raise PermissionError(errno.EACCES, "permission denied", str(path.parent)) from None
    except Timeout:
        raise StoreLocked(
            f"{what} {store} is being written by another run (lock {path}); wait for it to finish"
            + (f" (waited {wait_s:g} s)" if wait_s else "")
        ) from None
    try:
        yield path
    finally:
        lock.release()
