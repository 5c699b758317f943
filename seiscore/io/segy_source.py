"""Where a SEG-Y file's bytes come from: a local file (``pread``) or an fsspec URL (ranged reads).

Readers ask for byte ranges only: the file header, blocks of trace headers while scanning, and runs of
consecutive traces while converting. A local file answers each range with one ``preadv`` into the
caller's buffer; an object at ``s3://...`` (or any fsspec URL) answers a batch of ranges with
``cat_ranges``: one ranged GET per run of consecutive traces, issued concurrently by the async
filesystem, copied into the caller's buffer. Nothing is downloaded whole.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SegyError
from .location import fs_for, is_remote
from .os_errors import check_regular_file


class ByteSource:
    """Random-access reads of one file; ``path`` (a local :class:`~pathlib.Path` or the URL string), ``size``."""

    path: Path | str
    size: int

    def read_into(self, ranges: list[tuple[int, memoryview]]) -> None:
        """Fill each ``(offset, buffer)`` with the file's bytes at ``offset`` (OSError on a short read)."""
        raise NotImplementedError

    def read(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset`` (fewer at the end of the file)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> "ByteSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _short(self, offset: int, got: int, want: int) -> OSError:
        return OSError(f"{self.path}: short read at byte {offset} ({got} of {want} bytes); file changed?")


class LocalSource(ByteSource):
    """A local regular file read with ``preadv``."""

    def __init__(self, path: str | os.PathLike):
        self.path = check_regular_file(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        self.size = os.fstat(self._fd).st_size

    def read_into(self, ranges):
        """One ``preadv`` per range."""
        for offset, buf in ranges:
            got = os.preadv(self._fd, [buf], offset)
            if got != buf.nbytes:
                raise self._short(offset, got, buf.nbytes)

    def read(self, offset, n):
        """``pread``."""
        return os.pread(self._fd, n, offset)

    def close(self):
        """Close the file descriptor (once)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class FsspecSource(ByteSource):
    """An object or file behind an fsspec URL, read by ranged requests."""

    def __init__(self, url: str, size: int | None = None):
        self.path = url
        self.fs, self._key = fs_for(url)
        if size is not None:  # known from an earlier probe: no metadata request
            self.size = int(size)
            return
        try:
            info = self.fs.info(self._key)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such SEG-Y file: {url}") from None
        if info.get("type") not in (None, "file"):
            raise SegyError(f"{url} is not a file (it is a {info.get('type')})")
        self.size = int(info["size"])

    def read_into(self, ranges):
        """One ranged GET per range, all of them at once (``cat_ranges``), copied into the buffers."""
        if not ranges:
            return
        if len(ranges) == 1:
            ((offset, buf),) = ranges
            parts = [self.fs.cat_file(self._key, start=offset, end=offset + buf.nbytes)]
        else:
            parts = self.fs.cat_ranges(
                [self._key] * len(ranges), [o for o, _ in ranges], [o + b.nbytes for o, b in ranges]
            )
        for (offset, buf), data in zip(ranges, parts):
            if isinstance(data, Exception):
                raise data
            if len(data) != buf.nbytes:
                raise self._short(offset, len(data), buf.nbytes)
            buf[:] = data

    def read(self, offset, n):
        """One ranged GET."""
        end = min(self.size, offset + n)
        return self.fs.cat_file(self._key, start=offset, end=end) if end > offset else b""


def open_source(source: str | os.PathLike | ByteSource, size: int | None = None) -> ByteSource:
    """A :class:`ByteSource` for a local path or an fsspec URL (``file://`` is local; ``size``: a remote
    object's size when already known)."""
    if isinstance(source, ByteSource):
        return source
    if is_remote(source):
        return FsspecSource(str(source), size)
    text = os.fspath(source)
    return LocalSource(text.removeprefix("file://") if isinstance(text, str) else text)
