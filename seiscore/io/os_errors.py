"""What the operating system refused, as one line naming the path: the one place OS errors become messages.

- :func:`check_regular_file` - a source must be a regular file: a directory, a FIFO (opening it would block
  until a writer comes), a socket or a device is refused before it is opened;
- :func:`writing` - an ``OSError`` raised while writing a path (``write`` and ``pwrite`` do not name it) gets
  the path, so the message can say where the disk was full;
- :func:`removed_on_failure` - a temporary file or store is removed when its writer fails or is interrupted;
- :func:`os_error_message` - the one-line message the ``seis`` CLI prints for an ``OSError`` (None: not one a
  user can act on, let it propagate).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class NotAFileError(ValueError):
    """A source path that exists but is not a regular file (a directory, FIFO, socket or device)."""


def check_regular_file(path: str | os.PathLike, what: str = "SEG-Y file") -> Path:
    """``path`` if it is a regular file (symlinks followed); else a one-line error saying what it is."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except PermissionError:
        raise PermissionError(errno.EACCES, "permission denied", str(path)) from None
    if stat.S_ISDIR(mode):
        raise NotAFileError(f"{path} is a directory, not a {what}")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise NotAFileError(f"{path} is not a regular file ({kind}); give a {what}")
    return path


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Name ``path`` in a disk-full ``OSError`` raised within the block that names no file."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno in DISK_FULL:
            exc.filename = str(path)
        raise


@contextmanager
def removed_on_failure(path: str | os.PathLike) -> Iterator[None]:
    """Remove the temporary ``path`` (file or folder) if the block raises anything, interrupts included."""
    try:
        yield
    except BaseException:
        remove(Path(path))
        raise


def remove(path: Path, attempts: int = 5) -> None:
    """Delete a file or folder if present (never follows a symlink to a folder). A folder is removed again (up to
    ``attempts`` times, 50 ms apart) while it still exists: ``rmtree`` ignoring errors can leave it behind when an
    entry appears or resists while it walks (seen once, on a loaded machine, after a disk-full ingest)."""
    if path.is_dir() and not path.is_symlink():
        for attempt in range(attempts):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                return
            time.sleep(0.05 * (attempt + 1))
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def os_error_message(exc: OSError) -> str | None:
    """One line for an OS refusal a user can act on (disk full, permission, not a file); None for others."""
    where = exc.filename if exc.filename is not None else "?"
    if exc.errno in DISK_FULL:
        limit = " (file size limit)" if exc.errno == errno.EFBIG else ""
        return f"disk full writing {where}{limit}; free some space and rerun"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {where}"
    if exc.errno == errno.EISDIR:
        return f"{where} is a directory, not a file"
    if exc.errno == errno.EROFS:
        return f"read-only file system: {where}"
    if exc.errno == errno.ENOENT:
        return f"not found: {where}"
    return None
