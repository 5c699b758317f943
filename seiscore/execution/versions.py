"""Versions of an output store: a run writes a staging version, published atomically when complete.

Layout beside the published output ``DIR/NAME`` (all on the same filesystem, so renames are atomic)::

    DIR/NAME                              the published version: always complete (or absent)
    DIR/.NAME.seiscore-staging/NAME       the version a run is writing (tiles, QC, lineage); resumed by
                                          a rerun with the same run key, replaced by any other run
    DIR/.NAME.seiscore-old                the replaced version, between the swap and its removal
    DIR/.NAME.seiscore-publish.json       journal of a swap in progress: the new version's id

The staging store keeps the output's own name (inside a hidden folder) so QC reports and exports
made from it name the survey's output. :func:`publish_staging` swaps the complete staging version in
with one ``renameat2(RENAME_EXCHANGE)`` (Linux), so readers of ``DIR/NAME`` see either the old or the
new version, never none and never a partial one; where the filesystem cannot exchange, the old
version is renamed aside and the new one renamed in (a crash between the two is repaired by
:func:`recover`). The old version is removed only after the new one is in place.

Callers hold the survey lock (:func:`seiscore.execution.blockwise.state.survey_lock`) around :func:`recover` and
:func:`publish_staging`; :func:`survey_state` only reads.

Object storage (``output`` at ``s3://...``, see ``docs/object-storage.md``): the same names, as key prefixes.
There is no rename, so publishing is a server-side copy (``CopyObject``: no sample goes through this
process) under a journal object:

1. write the journal ``.NAME.seiscore-publish.json`` (the new version's id);
2. rewrite the published root ``zarr.json`` flagged incomplete (from here readers refuse ``NAME``, never see
   a mixed version; it stays marked as the product's, so a crash leaves something the next run may replace);
3. delete the published version's other objects, then its root ``zarr.json``;
4. copy every object of the staging version to ``NAME``, its root ``zarr.json`` (complete flag, version id)
   last;
5. delete the staging version, then the journal.

A crash anywhere leaves the journal: :func:`recover` redoes steps 2-5 while the staging version is
complete and whole (nothing is deleted from it before step 5), or only removes the journal once ``NAME``
holds the journal's version. Readers of ``NAME`` therefore see the old version, no (complete) store, or the new
version - never a partial store flagged complete - but, unlike the local swap, there is a window (the
copy) with no published version.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import zarr

from seiscore import io
from seiscore.core.lineage import read_lineage
from seiscore.core.safety import check_replaceable, is_owned, remove_replaceable
from seiscore.execution.blockwise.state import STATE_GROUP, TileState, lock_owner
from seiscore.execution.blockwise.tiling import TilePlan
from seiscore.io import location
from seiscore.io.errors import IncompleteStoreError

VERSION_ATTR = "seiscore_version"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def staging_path(output: str | os.PathLike) -> Path:
    """Where runs write the next version of ``output``."""
    if location.is_remote(output):
        return location.join(
            location.with_name(output, f".{location.name(output)}.seiscore-staging"), location.name(output)
        )
    output = Path(output)
    return output.with_name(f".{output.name}.seiscore-staging") / output.name


def retired_path(output: str | os.PathLike) -> Path:
    """Where the replaced version of ``output`` waits for its removal."""
    if location.is_remote(output):
        return location.with_name(output, f".{location.name(output)}.seiscore-old")
    output = Path(output)
    return output.with_name(f".{output.name}.seiscore-old")


def journal_path(output: str | os.PathLike) -> Path:
    """The journal of a swap in progress."""
    if location.is_remote(output):
        return location.with_name(output, f".{location.name(output)}.seiscore-publish.json")
    output = Path(output)
    return output.with_name(f".{output.name}.seiscore-publish.json")


def publish_staging(staging: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Make the complete ``staging`` version the published ``output`` atomically, then remove the old one.

    The one place that replaces a published output (checks on what may be replaced belong here).
    Raises :class:`~seiscore.io.errors.IncompleteStoreError` if ``staging`` is not flagged complete.
    """
    if location.is_remote(output):
        return _publish_remote(location.normalize(staging), location.normalize(output))
    staging, output = Path(staging), Path(output)
    if not io.is_complete(staging):
        raise IncompleteStoreError(f"staging version {staging} is not complete; not publishing it over {output}")
    check_replaceable(output, "output store")  # never swap out something the product did not write
    version = uuid.uuid4().hex
    io.set_attrs(staging, {VERSION_ATTR: version})
    if not os.path.lexists(output):
        os.rename(staging, output)
    else:
        journal = journal_path(output)
        _remove(retired_path(output))  # a replaced version whose removal was cut short
        journal.write_text(json.dumps({"version": version}))
        _fsync_dir(output.parent)
        if _exchange(staging, output):
            os.rename(staging, retired_path(output))  # the old version, now at the staging name
        else:
            os.rename(output, retired_path(output))
            os.rename(staging, output)
        _fsync_dir(output.parent)
        _remove(retired_path(output))
        journal.unlink()
    _fsync_dir(output.parent)
    _remove_if_empty(staging.parent)
    return output


def recover(output: str | os.PathLike) -> list[str]:
    """Repair what a crash left around ``output``; returns one line per action (for the run's log).

    - a swap interrupted between its two renames: the new version (complete) goes in, else the old back;
    - a swap interrupted after the exchange: the old version, at the staging name, is removed;
    - the replaced version left behind: removed (the published one is in place);
    - an incomplete store at the published path (outputs were filled in place before versions):
      moved to the staging name, so readers no longer open it and the next run resumes it.

    At a URL: a publish cut short (its journal left) is finished from the complete staging version, or its
    journal removed when the output already holds the journal's version.
    """
    if location.is_remote(output):
        return _recover_remote(location.normalize(output))
    output = Path(output)
    staging, retired, journal = staging_path(output), retired_path(output), journal_path(output)
    done: list[str] = []
    if os.path.lexists(retired):
        if not os.path.lexists(output):
            back = staging if io.is_complete(staging) else retired
            os.rename(back, output)
            done.append(f"finished an interrupted publish: {'new' if back == staging else 'old'} version put in place")
        _remove(retired)
        done.append(f"removed the replaced version {retired}")
    if journal.exists():
        if staging.exists() and _version(output) == _read_journal(journal):
            _remove(staging)  # the exchange happened: the staging name holds the old version
            done.append(f"removed the replaced version left at {staging}")
        journal.unlink()
    if _is_partial_store(output) and is_owned(output) and not os.path.lexists(staging):
        staging.parent.mkdir(parents=True, exist_ok=True)
        os.rename(output, staging)
        done.append(f"moved the incomplete store at {output} to {staging} (resumed by the next run)")
    if done:
        _fsync_dir(output.parent)
    _remove_if_empty(staging.parent)
    return done


def survey_state(output: str | os.PathLike) -> dict:
    """What is at ``output`` and who works on it: ``state`` is one of

    - ``in-progress``: a run holds the survey lock and its process is alive on this host;
    - ``unknown-owner``: the lock's recorded owner runs on another host (its liveness is unknown here);
    - ``interrupted``: a staging version (or a half-done publish) exists and no live run owns it;
    - ``published``: a complete published version and nothing else;
    - ``missing``: nothing yet.

    With ``published`` / ``staging`` (each None or {path, complete, tiles, run}) and ``owner``.
    """
    output = location.normalize(output)
    staging = staging_path(output)
    owner = lock_owner(output)
    alive = owner.get("alive") if owner else False
    leftovers = [str(p) for p in (retired_path(output), journal_path(output)) if location.exists(p)]
    st = {
        "published": _describe(output) if location.exists(output) else None,
        "staging": _describe(staging) if location.exists(staging) else None,
        "owner": owner,
        "leftovers": leftovers,
    }
    if alive:
        state = "in-progress"
    elif alive is None:
        state = "unknown-owner"
    elif st["staging"] is not None or leftovers or (st["published"] and not st["published"]["complete"]):
        state = "interrupted"
        for version in (st["staging"], st["published"]):
            run = (version or {}).get("run")
            if run and run.get("status") == "running":  # its process died before it could record an end
                run["status"] = "interrupted"
    else:
        state = "published" if st["published"] else "missing"
    return {"state": state, **st}


def _describe(store) -> dict:
    out: dict = {"path": str(store), "complete": io.is_complete(store), "version": _version(store), "tiles": None}
    try:
        group = zarr.open_group(location.zarr_store(store, read_only=True), mode="r", use_consolidated=False)[
            STATE_GROUP
        ]
        plan = TilePlan.model_validate_json(group.attrs["plan"])
        out["tiles"] = {"done": len(TileState(store).done()), "total": plan.n_tiles, "grid": list(plan.grid)}
    except (KeyError, FileNotFoundError, ValueError):
        pass
    try:
        rec = read_lineage(store)
    except (OSError, ValueError):
        rec = None
    out["run"] = (
        None
        if rec is None
        else {
            "run_id": rec.run_id,
            "status": rec.status,
            "started": rec.started,
            "ended": rec.ended,
            "error": rec.error,
            "denoiser": rec.denoiser.get("name"),
            "preset": rec.denoiser.get("preset"),
            "params": rec.denoiser.get("params"),
            "input": rec.input.uri,
            "input_hash": rec.input.content_hash,
            "code": rec.code,
            "dask": {"scheduler": rec.dask_cluster.get("scheduler"), "workers": rec.dask_cluster.get("n_workers")},
            "metrics": rec.metrics,
        }
    )
    return out


def _version(store) -> str | None:
    try:
        return zarr.open_group(location.zarr_store(store, read_only=True), mode="r", use_consolidated=False).attrs.get(
            VERSION_ATTR
        )
    except Exception:  # noqa: BLE001 - missing or unreadable: no version
        return None


def _read_journal(journal: Path) -> str | None:
    try:
        return json.loads(journal.read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None


def _is_partial_store(path: Path) -> bool:
    """An output store filled in place and never completed (it has tile records, no complete flag)."""
    return (path / "zarr.json").is_file() and (path / STATE_GROUP).is_dir() and not io.is_complete(path)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the two paths atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where unsupported."""
    fn = getattr(_libc(), "renameat2", None) if sys.platform.startswith("linux") else None
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # absent or not empty
        pass


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- object storage


def _publish_remote(staging: str, output: str) -> str:
    """:func:`publish_staging` at a URL (module docstring: journal, delete the old, copy server-side, marker last)."""
    if not io.is_complete(staging):
        raise IncompleteStoreError(f"staging version {staging} is not complete; not publishing it over {output}")
    check_replaceable(output, "output store")
    version = uuid.uuid4().hex
    io.set_attrs(staging, {VERSION_ATTR: version})
    location.write_bytes(journal_path(output), json.dumps({"version": version, "staging": staging}).encode())
    _copy_version(staging, output)
    location.remove(journal_path(output), recursive=False)
    return output


def _copy_version(staging: str, output: str) -> None:
    """Steps 2-5 of the remote publish: old root marker, old objects, new objects (root marker last), staging."""
    fs, src = location.fs_for(staging)
    _, dst = location.fs_for(output)
    remove_replaceable(output, "output store")  # flagged incomplete first, its root zarr.json removed last
    keys = sorted(fs.find(src))
    root = f"{src}/zarr.json"
    body = [k for k in keys if k != root]
    if body:
        fs.copy(body, [dst + k[len(src) :] for k in body])
    fs.copy(root, f"{dst}/zarr.json")
    location.remove(location.parent(staging))


def _recover_remote(output: str) -> list[str]:
    """:func:`recover` at a URL."""
    journal, staging = journal_path(output), staging_path(output)
    done: list[str] = []
    try:
        wanted = json.loads(location.read_bytes(journal)).get("version")
    except (OSError, ValueError, AttributeError):
        return done
    if _version(output) == wanted and io.is_complete(output):
        if location.exists(staging):
            location.remove(location.parent(staging))
        done.append(f"finished an interrupted publish of {output} (staging version removed)")
    elif io.is_complete(staging) and _version(staging) == wanted:
        _copy_version(staging, output)
        done.append(f"finished an interrupted publish: new version copied to {output}")
    else:
        done.append(f"dropped the journal of a publish of {output} whose staging version is gone")
    location.remove(journal, recursive=False)
    return done
