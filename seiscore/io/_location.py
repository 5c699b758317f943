"""Local stand-in for :mod:`seiscore.io.location` (part sc-store) until it lands: local path or fsspec URL.

Only what the SEG-Y reader and exporter need: :func:`is_remote`, :func:`fs_for` and :func:`name`, with the
same names and meaning, so switching is an import change. Credentials and endpoints come from the standard
environment and config files of each protocol (for S3: ``AWS_*`` variables, ``~/.aws``, ``AWS_ENDPOINT_URL``),
never from the catalog.
"""

from __future__ import annotations

import os
import re
from typing import Any

_PROTO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://")
LOCAL_PROTOCOLS = ("file", "local")


def is_remote(loc) -> bool:
    """True when ``loc`` is an fsspec URL of a non-local filesystem (``s3://``, ``memory://``, ...)."""
    if not isinstance(loc, str):
        return False
    m = _PROTO.match(loc)
    return bool(m) and m.group(1).lower() not in LOCAL_PROTOCOLS


def fs_for(loc) -> tuple[Any, str]:
    """``(filesystem, path)`` of ``loc`` (fsspec; S3 listings uncached since other processes write them)."""
    import fsspec

    proto = _PROTO.match(loc).group(1).lower() if is_remote(loc) else "file"
    options = {"use_listings_cache": False} if proto in ("s3", "s3a") else {}
    fs, path = fsspec.core.url_to_fs(os.fspath(loc), **options)
    return fs, path


def name(loc) -> str:
    """The last segment of ``loc``."""
    return str(loc).rstrip("/").rsplit("/", 1)[-1] if is_remote(loc) else os.path.basename(os.fspath(loc))
