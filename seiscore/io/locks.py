"""One writer per store: an OS file lock on a hidden sibling ``.NAME.seiscore-lock`` of the store.

Ingest holds it while it checks and (re)writes an input store, so two runs that share one input store do
not write it at the same time: the second waits for the first, then finds the store complete and reuses
it. The lock is the operating system's (``flock``): it is released when its process dies, whatever the
way. Re-entrant within a thread (the pipeline holds it around :func:`seiscore.io.ingest`, which takes it
too); other threads and processes wait.

On object storage there is no file lock: a store at a URL is locked by a *lease object*
(:func:`object_lease`), the same sibling name ``.NAME.seiscore-lock``, created with a conditional PUT
(``If-None-Match: *``: S3 and S3-compatible servers create it only when absent, atomically). It records the
holder (host, pid, owner) and an expiry; the holder renews it every ``ttl/3`` seconds from a background
thread and deletes it on exit. A holder that dies stops renewing: once the expiry has passed (or at once
when the holder is a dead process on this host) another run deletes it and takes it. Guaranteed: two live
holders never hold one lease at once as long as renewals are not delayed by more than ``ttl`` (a process
frozen longer than that loses the lease without knowing); a takeover of an expired lease is delete-then-
create-if-absent, so of two racing runs one wins. Where the server ignores ``If-None-Match`` (some old
S3-compatible servers), the lease is advisory only; see ``docs/object-storage.md``.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

LOCK_SUFFIX = ".seiscore-lock"


class StoreLocked(RuntimeError):
    """Another process (or thread) is writing the store and waiting was not allowed or ran out."""


def lock_path(store: str | os.PathLike) -> Path:
    """The lock file of ``store``: ``.NAME.seiscore-lock`` beside it (a URL for a store at a URL)."""
    from . import location

    if location.is_remote(store):
        return location.with_name(store, f".{location.name(store)}{LOCK_SUFFIX}")  # type: ignore[return-value]
    store = Path(store)
    return store.with_name(f".{store.name}{LOCK_SUFFIX}")


@contextmanager
def store_lock(store: str | os.PathLike, *, wait_s: float | None = None, what: str = "store") -> Iterator[Path]:
    """Hold the lock of ``store``; wait up to ``wait_s`` seconds (None: as long as it takes), then raise
    :class:`StoreLocked` naming the store."""
    from . import location

    if location.is_remote(store):
        with object_lease(lock_path(store), wait_s=wait_s, what=f"{what} {store}") as held:
            yield held
        return
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


LEASE_TTL_S = 60.0
_held = threading.local()


def read_lease(url: str) -> dict | None:
    """The record of the lease object ``url`` (None: absent or unreadable)."""
    from . import location

    try:
        doc = json.loads(location.read_bytes(url))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _lease_dead(doc: dict | None) -> bool:
    """True when the lease ``doc`` may be taken over: expired, or held by a dead process on this host."""
    if doc is None:
        return True
    if float(doc.get("expires", 0)) < time.time():
        return True
    if doc.get("host") == socket.gethostname():
        try:
            os.kill(int(doc.get("pid", -1)), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError, OverflowError):
            pass
    return False


@contextmanager
def object_lease(
    url: str, *, wait_s: float | None = None, what: str = "store", owner: str = "", ttl_s: float = LEASE_TTL_S
) -> Iterator[str]:
    """Hold the lease object ``url`` (see the module docstring); wait up to ``wait_s`` seconds (None: as long as
    it takes) while a live holder has it, then raise :class:`StoreLocked`. Re-entrant within a thread."""
    from . import location

    url = location.normalize(url)
    held = getattr(_held, "urls", None)
    if held is None:
        held = _held.urls = {}
    if url in held:  # re-entrant: the outer holder renews and releases
        held[url] += 1
        try:
            yield url
        finally:
            held[url] -= 1
        return
    token = uuid.uuid4().hex

    def record() -> bytes:
        return json.dumps(
            {
                "token": token,
                "owner": owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": time.time(),
                "expires": time.time() + ttl_s,
            }
        ).encode()

    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        try:
            location.write_bytes(url, record(), exclusive=True)
            break
        except FileExistsError:
            doc = read_lease(url)
            if _lease_dead(doc):
                location.remove(url, recursive=False)  # a dead holder's lease; create-if-absent decides any race
                continue
            if deadline is not None and time.monotonic() >= deadline:
                holder = f"{doc.get('owner') or 'pid ' + str(doc.get('pid'))} on {doc.get('host')}" if doc else "?"
                raise StoreLocked(
                    f"{what} is being written by another run ({holder}, lease {url}); wait for it to finish"
                    + (f" (waited {wait_s:g} s)" if wait_s else "")
                ) from None
            time.sleep(min(1.0, ttl_s / 10))
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            doc = read_lease(url)
            if doc is None or doc.get("token") != token:
                return  # taken over (we were frozen past the expiry): nothing more to renew
            location.write_bytes(url, record())

    beat = threading.Thread(target=renew, name="seiscore-lease", daemon=True)
    beat.start()
    held[url] = 0
    try:
        yield url
    finally:
        held.pop(url, None)
        stop.set()
        beat.join(timeout=5)
        doc = read_lease(url)
        if doc is not None and doc.get("token") == token:
            location.remove(url, recursive=False)
