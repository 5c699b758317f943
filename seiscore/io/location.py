"""Where data lives: a local path or an fsspec URL (``s3://bucket/prefix``, ``gs://``, ``memory://``, ...).

This module is the ONE place that tells local paths from object-store URLs; every other module asks it
(:func:`is_remote`, :func:`fs_for`, :func:`zarr_store`, :func:`join`, ...) instead of testing for ``"://"`` or
passing a URL through :class:`pathlib.Path` (which turns ``s3://b/k`` into ``s3:/b/k``).

Rules:

- A *location* is a ``str`` (or ``os.PathLike`` for local paths). ``file://PATH`` and ``local://PATH`` are local
  paths. Any other ``PROTOCOL://`` is remote and handled by fsspec.
- Credentials and endpoints come only from the standard places of each protocol, never from the catalog or
  from seiscore settings: for S3 the AWS environment (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
  ``AWS_SESSION_TOKEN`` / ``AWS_PROFILE`` / ``AWS_DEFAULT_REGION``), ``~/.aws/credentials`` and ``~/.aws/config``,
  instance roles, and ``AWS_ENDPOINT_URL`` (honoured by botocore >= 1.31, so an S3-compatible server such as
  MinIO, Ceph or moto is reached without any seiscore setting); fsspec's own configuration
  (``FSSPEC_S3_ENDPOINT_URL``, ``~/.config/fsspec/*.json``) applies too.
- Remote paths are normalised (:func:`normalize`): repeated slashes collapse, a trailing slash goes, and the
  segments ``.`` and ``..`` are refused (an object key has no parent directory to climb to: ``..`` would name
  another key, which is how a path escapes a data root).
- Object stores have no rename and no directories: listings may lag writes on some services, so this module
  never relies on a listing to decide what is complete (see ``docs/object-storage.md``). Directory listings
  of the S3 filesystem are not cached (``use_listings_cache=False``): several processes write the same
  prefixes.

``SEIS_DATA_ROOTS`` is ``os.pathsep``-separated; on POSIX that is ``:``, which also appears in ``s3://``.
:func:`split_roots` splits on ``:`` only where it is not followed by ``//``, so
``/data:s3://bucket/seis:/scratch`` is three roots.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

LOCAL_PROTOCOLS = ("file", "local")
_PROTO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://")


class LocationError(ValueError):
    """A location that cannot be used (a ``..`` segment in a URL, an unknown protocol, ...); one line naming it."""


Location = str | os.PathLike


# ---------------------------------------------------------------- what kind of location


def protocol(loc: Location) -> str:
    """The protocol of ``loc``: ``"file"`` for a local path, else the URL's scheme (``"s3"``, ``"gs"``, ...)."""
    m = _PROTO.match(os.fspath(loc)) if isinstance(loc, str) else None
    return m.group(1).lower() if m else "file"


def is_remote(loc: Location | None) -> bool:
    """True when ``loc`` is an fsspec URL of a non-local filesystem (``s3://``, ``gs://``, ``memory://``, ...)."""
    return loc is not None and isinstance(loc, str) and protocol(loc) not in LOCAL_PROTOCOLS


def local_path(loc: Location) -> Path:
    """``loc`` as a local :class:`~pathlib.Path` (``file://`` stripped); :class:`LocationError` for a remote URL."""
    if is_remote(loc):
        raise LocationError(f"{loc} is a remote location, not a local path")
    text = os.fspath(loc)
    m = _PROTO.match(text)
    return Path(text[m.end() :] if m else text)


def normalize(loc: Location) -> str | Path:
    """A remote URL with repeated and trailing slashes removed (``..`` / ``.`` segments refused); a local path
    unchanged (as :class:`~pathlib.Path`; resolving it is :mod:`seiscore.core.safety`'s job)."""
    if not is_remote(loc):
        return local_path(loc)
    proto = protocol(loc)
    rest = os.fspath(loc)[len(proto) + 3 :]
    parts = [p for p in rest.split("/") if p != ""]
    if any(p in (".", "..") for p in parts):
        raise LocationError(f"{loc}: '.' and '..' are not allowed in an object-store URL")
    if not parts:
        raise LocationError(f"{loc}: no bucket or container in the URL")
    return f"{proto}://" + "/".join(parts)


def as_str(loc: Location) -> str:
    """``loc`` as a string (a URL normalised, a local path as given)."""
    return normalize(loc) if is_remote(loc) else os.fspath(loc)


# ---------------------------------------------------------------- path arithmetic that never goes through Path


def join(base: Location, *parts: str) -> str | Path:
    """``base / part / ...``: a URL for a remote base, a :class:`~pathlib.Path` for a local one."""
    if not is_remote(base):
        return local_path(base).joinpath(*parts)
    return normalize("/".join([as_str(base), *[p.strip("/") for p in parts]]))


def parent(loc: Location) -> str | Path:
    """The parent of ``loc`` (for ``s3://bucket/key`` the bucket ``s3://bucket``)."""
    if not is_remote(loc):
        return local_path(loc).parent
    url = normalize(loc)
    proto, rest = url.split("://", 1)
    head = posixpath.dirname(rest)
    return f"{proto}://{head or rest}"


def name(loc: Location) -> str:
    """The last segment of ``loc``."""
    if not is_remote(loc):
        return local_path(loc).name
    return normalize(loc).rsplit("/", 1)[-1]


def with_name(loc: Location, new: str) -> str | Path:
    """``loc`` with its last segment replaced by ``new``."""
    if not is_remote(loc):
        return local_path(loc).with_name(new)
    return join(parent(loc), new)


def is_relative_to(loc: Location, root: Location) -> bool:
    """True when ``loc`` equals ``root`` or lies inside it (whole segments; remote and local never mix)."""
    if is_remote(loc) != is_remote(root):
        return False
    if not is_remote(loc):
        return local_path(loc).is_relative_to(local_path(root))
    a, b = normalize(loc), normalize(root)
    return a == b or a.startswith(b + "/")


# ---------------------------------------------------------------- filesystems


def storage_options(proto: str) -> dict[str, Any]:
    """Options seiscore itself adds for ``proto`` (none concern credentials or endpoints): S3 listings are not
    cached, since other processes write the same prefixes."""
    return {"use_listings_cache": False} if proto in ("s3", "s3a") else {}


def fs_for(loc: Location) -> tuple[Any, str]:
    """``(filesystem, path)`` for ``loc``: fsspec's filesystem of its protocol (credentials and endpoint from the
    standard environment and config files only) and the path to give that filesystem."""
    import fsspec

    if not is_remote(loc):
        return fsspec.filesystem("file"), str(local_path(loc))
    url = normalize(loc)
    proto = protocol(url)
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options(proto))
    except (ImportError, ValueError) as exc:
        raise LocationError(f"{url}: cannot open the {proto}:// filesystem ({exc})") from None
    return fs, path


def zarr_store(loc: Location, *, read_only: bool = False):
    """What to give ``zarr.open_group`` / ``xarray.open_zarr`` for the store at ``loc``: the local path as a string,
    or a zarr 3 :class:`zarr.storage.FsspecStore` for a remote URL."""
    if not is_remote(loc):
        return str(local_path(loc))
    from zarr.storage import FsspecStore

    url = normalize(loc)
    options = storage_options(protocol(url))
    if protocol(url) in ("s3", "s3a"):
        # Zarr reads chunk and metadata objects whole. With download concurrency above 1, s3fs first asks each
        # object's size (a HEAD, and a LIST when it is missing, as zarr's probes for v2 metadata are) to decide
        # whether to split it into ranged GETs; chunks are far below that size, so this only doubles the requests.
        options["max_concurrency"] = 1
    return FsspecStore.from_url(url, storage_options=options, read_only=read_only)


def exists(loc: Location) -> bool:
    """True when a file, folder or object (or any object under the prefix) exists at ``loc``."""
    if not is_remote(loc):
        return os.path.lexists(local_path(loc))
    fs, path = fs_for(loc)
    return bool(fs.exists(path))


def is_file(loc: Location) -> bool:
    """True when ``loc`` is a file (local) or an object (remote)."""
    if not is_remote(loc):
        return local_path(loc).is_file()
    fs, path = fs_for(loc)
    try:
        return fs.isfile(path)
    except FileNotFoundError:
        return False


def read_bytes(loc: Location) -> bytes:
    """The whole content of the file or object ``loc`` (``FileNotFoundError`` when absent)."""
    if not is_remote(loc):
        return local_path(loc).read_bytes()
    fs, path = fs_for(loc)
    return fs.cat_file(path)


def write_bytes(loc: Location, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``loc`` as a whole (an object PUT is atomic: readers see the old or the new content).

    ``exclusive``: fail with ``FileExistsError`` when ``loc`` exists, atomically (``O_EXCL`` locally; a
    conditional PUT ``If-None-Match: *`` on S3)."""
    if not is_remote(loc):
        path = local_path(loc)
        path.parent.mkdir(parents=True, exist_ok=True)
        if exclusive:
            with open(path, "xb") as fh:
                fh.write(data)
        else:
            tmp = path.with_name(f".{path.name}.seiscore-tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return
    fs, path = fs_for(loc)
    if exclusive:
        fs.pipe_file(path, data, mode="create")
    else:
        fs.pipe_file(path, data)


def remove(loc: Location, *, recursive: bool = True) -> None:
    """Remove the file, folder, object or prefix ``loc`` if it exists."""
    if not is_remote(loc):
        import shutil

        path = local_path(loc)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path) if recursive else path.rmdir()
        elif os.path.lexists(path):
            path.unlink()
        return
    fs, path = fs_for(loc)
    try:
        keys = fs.find(path) if recursive else []
        if fs.isfile(path):
            keys.append(path)
        if keys:
            fs.rm(sorted(set(keys)))
    except FileNotFoundError:
        pass


def listdir(loc: Location) -> list[str]:
    """Names directly under the folder or prefix ``loc`` (empty when absent)."""
    if not is_remote(loc):
        path = local_path(loc)
        return sorted(os.listdir(path)) if path.is_dir() else []
    fs, path = fs_for(loc)
    try:
        return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def upload(local: Location, loc: Location, *, last: tuple[str, ...] = ("zarr.json",)) -> None:
    """Copy the local file or folder ``local`` to ``loc`` (remote or local). For a folder the files named ``last``
    at its top (a Zarr store's root ``zarr.json``, which carries the completeness flag) are written after
    everything else, so a reader that sees them sees the whole tree. Files go up several at a time, about
    :data:`UPLOAD_BYTES_IN_FLIGHT` of them at once (:func:`_put_batch`), not the whole folder at once."""
    src = local_path(local)
    if src.is_file():
        write_bytes(loc, src.read_bytes())
        return
    files = sorted(p for p in src.rglob("*") if p.is_file())
    late = [src / n for n in last]
    early = [p for p in files if p not in late]
    if not is_remote(loc):
        import shutil

        dest = local_path(loc)
        for p in early + [p for p in late if p.is_file()]:
            (dest / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest / p.relative_to(src))
        return
    fs, path = fs_for(loc)
    if early:
        targets = [f"{path}/{p.relative_to(src).as_posix()}" for p in early]
        fs.put([str(p) for p in early], targets, **_put_batch(fs, [p.stat().st_size for p in early]))
    for p in late:
        if p.is_file():
            fs.put_file(str(p), f"{path}/{p.relative_to(src).as_posix()}")


# Bytes of files an upload holds at once. s3fs reads each file below 2 x its part size (50 MB) whole into memory
# and fsspec puts RLIMIT_NOFILE / 8 files at once (2500 at a soft limit of 20000): a whole store in memory,
# about 2.3 times over (4 GB survey: ~8 GB). Sized so an upload stays well within ingest's default 1 GB bound.
UPLOAD_BYTES_IN_FLIGHT = 128 * 2**20
UPLOAD_MAX_FILES = 64  # files in flight at most, however small (request concurrency)


def _put_batch(fs, sizes: list[int]) -> dict[str, int]:
    """``batch_size`` for ``fs.put`` of files of ``sizes``: as many of the largest as fit
    :data:`UPLOAD_BYTES_IN_FLIGHT` (at least one, at most :data:`UPLOAD_MAX_FILES`); nothing for a filesystem
    that puts files one at a time (not an fsspec ``AsyncFileSystem``), which takes no ``batch_size``."""
    from fsspec.asyn import AsyncFileSystem

    if not isinstance(fs, AsyncFileSystem):
        return {}
    return {"batch_size": max(1, min(UPLOAD_MAX_FILES, UPLOAD_BYTES_IN_FLIGHT // max(1, *sizes)))}


def download(loc: Location, local: Location) -> Path:
    """Copy the file or prefix ``loc`` to the local path ``local``; returns it."""
    dest = local_path(local)
    fs, path = fs_for(loc)
    if fs.isfile(path):
        dest.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(dest))
    else:
        keys = fs.find(path)
        dest.mkdir(parents=True, exist_ok=True)
        if keys:
            targets = [str(dest / posixpath.relpath(k, path)) for k in keys]
            for t in targets:
                Path(t).parent.mkdir(parents=True, exist_ok=True)
            fs.get(keys, targets)
    return dest


def split_roots(text: str) -> list[str]:
    """Split an ``os.pathsep``-separated list of data roots where URLs may appear: on POSIX ``:`` separates
    except when it begins ``://`` (``/data:s3://bucket/seis`` is two roots). Empty parts are dropped."""
    if os.pathsep == ":":
        parts = re.split(r":(?!//)", text)
        # "s3" then "//bucket": the split above never separates a scheme from its "//", so parts are whole
    else:
        parts = text.split(os.pathsep)
    return [p.strip() for p in parts if p.strip()]
