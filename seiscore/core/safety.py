"""Where the product may write: data roots, protected paths, and the marks of what it wrote itself.

The rules (docs/pipeline.md, "Where the product writes"):

1. Every path the product writes is resolved (``~``, ``..`` and symlinks) before it is judged and used.
2. A catalog run writes only strictly inside a data root: the catalog file's folder + ``data/`` and the
   folders of ``SEIS_DATA_ROOTS`` (:func:`data_roots`). ``seis ingest SOURCE STORE`` / ``seis export``
   apply the roots of ``SEIS_DATA_ROOTS`` when it is set (the user named the path on the command line).
3. A written path is never equal to, inside, or a parent of a protected path: a source (SEG-Y,
   reference), the input store (for outputs), the catalog file; never inside a ``.git`` folder, never a
   git repository's root or a folder above one (inside a repository is fine: ``data/`` of a checkout).
4. An existing path is replaced only when the product created it (:func:`is_owned`), whatever
   ``force`` / ``overwrite`` say; an empty folder or file holds nothing to lose and may be replaced.

Marks (:func:`mark_owned`): a hidden sibling named ``.NAME.seiscore-*`` (a temporary, staging store or sidecar)
is the product's by its name; a Zarr store carries the ``seiscore_schema`` attribute in its ``zarr.json``
(written when the store is created); a folder that is not a store (the QC report folder) holds a
``.seiscore-owned`` file; a file (a SEG-Y export) has a hidden sidecar ``.NAME.seiscore-owned`` recording
its size, modification time and a hash of its first 3600 bytes, so a file replaced or edited by anyone
else no longer counts as the product's.

Object storage (``s3://bucket/prefix`` and other fsspec URLs, :mod:`seiscore.io.location`): the same rules hold.
A data root may be a bucket or a prefix (``SEIS_DATA_ROOTS=/data:s3://bucket/seis``; ``:`` before ``//`` does
not split). A URL is normalised instead of resolved (repeated slashes collapse; ``.`` and ``..`` are refused:
an object key cannot climb out of a prefix) and judged by whole key segments: ``s3://b/seis-old`` is not
inside the root ``s3://b/seis``. A local path is never inside a remote root and vice versa. Ownership marks
are the same objects (the store's ``zarr.json`` attribute, ``.seiscore-owned`` under a folder prefix, hidden
``.NAME.seiscore-*`` siblings); a product file at a URL is marked by its sidecar recording its size and ETag.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STORE_MARK_ATTR = "seiscore_schema"  # written into every store's group attributes at creation
FOLDER_MARK = ".seiscore-owned"  # file inside a product folder that is not a Zarr store
SIDECAR_SUFFIX = ".seiscore-owned"  # .NAME.seiscore-owned beside a product file
SIBLING_INFIX = ".seiscore-"  # hidden siblings .NAME.seiscore-* (temporary, staging, sidecars) of a target
_HEAD_BYTES = 3600  # textual + binary SEG-Y headers


def _loc():
    from seiscore.io import location

    return location


class UnsafePathError(ValueError):
    """A path the product was asked to write breaks one of the rules; one line naming it, its use and the rule."""


# ---------------------------------------------------------------- paths and roots


def resolve(path: str | os.PathLike, what: str = "path") -> Path:
    """``path`` made absolute with ``~``, ``..`` and symlinks resolved (the parts that exist); a URL of an object
    store normalised instead (a ``str``: see the module docstring)."""
    loc = _loc()
    if loc.is_remote(path):
        try:
            return loc.normalize(path)  # type: ignore[return-value]
        except loc.LocationError as exc:
            raise UnsafePathError(f"{what} {exc}") from None
    path = loc.local_path(path)
    try:
        return Path(os.path.expanduser(os.fspath(path))).resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UnsafePathError(f"{what} {path} cannot be resolved ({exc})") from None


def data_roots(catalog_path: str | os.PathLike | None, settings: Any) -> list[Path]:
    """The folders a run may write under: ``<catalog folder>/data`` (when a catalog is given) and
    ``settings.data_roots`` (``SEIS_DATA_ROOTS``), resolved."""
    roots = [resolve(resolve(catalog_path).parent / "data")] if catalog_path is not None else []
    configured = getattr(settings, "data_roots", None) or []
    if isinstance(configured, str):
        configured = _loc().split_roots(configured)
    for root in configured:
        if resolve(root) not in roots:
            roots.append(resolve(root))
    return roots


def repositories(*starts: str | os.PathLike) -> list[Path]:
    """Root folders of the git repositories holding ``starts`` (a folder with ``.git`` at or above each)."""
    found = []
    for start in starts:
        if _loc().is_remote(start):
            continue
        for folder in (resolve(start), *resolve(start).parents):
            if (folder / ".git").exists():
                if folder not in found:
                    found.append(folder)
                break
    return found


def sibling_paths(target: Path) -> list[Path]:
    """The fixed temporary sibling ``.NAME.seiscore-tmp`` of ``target`` and every existing ``.NAME.seiscore-*``
    (temporary, staging or sidecar paths written beside it)."""
    loc = _loc()
    if loc.is_remote(target):
        fixed = loc.with_name(target, f".{loc.name(target)}{SIBLING_INFIX}tmp")
        prefix = f".{loc.name(target)}{SIBLING_INFIX}"
        found = [loc.join(loc.parent(target), n) for n in loc.listdir(loc.parent(target)) if n.startswith(prefix)]
        return [fixed] + [p for p in found if p != fixed]
    fixed = target.with_name(f".{target.name}{SIBLING_INFIX}tmp")
    pattern = glob.escape(f".{target.name}{SIBLING_INFIX}") + "*"
    found = sorted(target.parent.glob(pattern)) if target.parent.is_dir() else []
    return [fixed] + [p for p in found if p != fixed]


# ---------------------------------------------------------------- marks


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def sidecar(path: str | os.PathLike) -> Path:
    """The sidecar that marks the file ``path`` as written by the product."""
    path = Path(path)
    return path.with_name(f".{path.name}{SIDECAR_SUFFIX}")


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    with open(path, "rb") as fh:
        head = hashlib.blake2b(fh.read(_HEAD_BYTES), digest_size=16).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head": head}


def _write_sidecar(path: Path, prints: list[dict]) -> None:
    car = sidecar(path)
    tmp = car.with_name(car.name + ".tmp")
    tmp.write_text(json.dumps({"seiscore": "file written by seiscore", "files": prints}))
    os.replace(tmp, car)


def is_owned(path: str | os.PathLike) -> bool:
    """True when ``path`` is a store, folder or file the product created (see the module docstring)."""
    if _loc().is_remote(path):
        return _remote_owned(path)
    path = Path(path)
    if path.is_dir() and path.name.startswith(".") and SIBLING_INFIX in path.name:  # a temporary store
        return True
    if path.is_dir():
        doc = _read_json(path / "zarr.json")
        attrs = doc.get("attributes") if isinstance(doc, dict) else None
        return (
            (isinstance(attrs, dict) and STORE_MARK_ATTR in attrs)
            or (path / FOLDER_MARK).is_file()
            or _earlier_qc_folder(path)
        )
    if not path.is_file():
        return False
    if path.name.startswith(".") and SIBLING_INFIX in path.name:  # a temporary or a sidecar: named by the product
        return True
    doc = _read_json(sidecar(path))
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        return False
    try:
        return _fingerprint(path) in doc["files"]
    except OSError:
        return False


def _earlier_qc_folder(path: Path) -> bool:
    """A QC report folder written before folders were marked: ``*_qc.html`` files and image folders
    (``images``, ``*_images``) of PNGs, nothing else."""

    def image_dir(p: Path) -> bool:
        return (
            (p.name == "images" or p.name.endswith("_images"))
            and p.is_dir()
            and all(i.is_file() and i.suffix == ".png" for i in p.iterdir())
        )

    entries = list(path.iterdir())
    return any(e.name.endswith("_qc.html") for e in entries) and all(
        (e.is_file() and e.name.endswith("_qc.html")) or image_dir(e) for e in entries
    )


def mark_owned(path: str | os.PathLike) -> Path:
    """Mark the store, folder or file ``path`` as the product's own; return ``path``."""
    if _loc().is_remote(path):
        return _remote_mark(path)
    path = Path(path)
    if path.is_dir():
        doc = _read_json(path / "zarr.json")
        if isinstance(doc, dict):
            attrs = doc.setdefault("attributes", {})
            if STORE_MARK_ATTR not in attrs:
                attrs[STORE_MARK_ATTR] = 1
                (path / "zarr.json").write_text(json.dumps(doc, indent=2))
        else:
            (path / FOLDER_MARK).write_text("created by seiscore: it may replace this folder's contents\n")
    elif path.is_file():
        _write_sidecar(path, [_fingerprint(path)])
    else:
        raise FileNotFoundError(f"cannot mark {path}: it does not exist")
    return path


def _remote_owned(url: str) -> bool:
    """:func:`is_owned` for a URL: a hidden ``.NAME.seiscore-*`` name, a store whose ``zarr.json`` carries the mark,
    a prefix holding ``.seiscore-owned``, or an object whose sidecar records its current size and ETag."""
    loc = _loc()
    if loc.name(url).startswith(".") and SIBLING_INFIX in loc.name(url):
        return True
    try:
        doc = json.loads(loc.read_bytes(loc.join(url, "zarr.json")))
    except (OSError, ValueError):
        doc = None
    attrs = doc.get("attributes") if isinstance(doc, dict) else None
    if isinstance(attrs, dict) and STORE_MARK_ATTR in attrs:
        return True
    if loc.is_file(loc.join(url, FOLDER_MARK)):
        return True
    if loc.is_file(url):
        try:
            car = json.loads(loc.read_bytes(loc.with_name(url, f".{loc.name(url)}{SIDECAR_SUFFIX}")))
        except (OSError, ValueError):
            return False
        return isinstance(car, dict) and _remote_print(url) in car.get("files", [])
    return False


_COMPLETE_ATTR = "seiscore_complete"  # seiscore.io.store.COMPLETE_ATTR (that module imports this one)


def _remove_remote(url: str) -> None:
    """Remove the object or prefix ``url``: a store's root ``zarr.json`` flagged incomplete first, removed last."""
    loc = _loc()
    root = loc.join(url, "zarr.json")
    try:
        doc = json.loads(loc.read_bytes(root))
    except (OSError, ValueError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("attributes"), dict):
        doc["attributes"][_COMPLETE_ATTR] = False
        loc.write_bytes(root, json.dumps(doc, indent=2).encode())
    fs, path = loc.fs_for(url)
    keys = [k for k in fs.find(path) if k != f"{path}/zarr.json"]
    if fs.isfile(path):
        keys.append(path)
    if keys:
        fs.rm(sorted(set(keys)))
    loc.remove(root, recursive=False)


def _remote_print(url: str) -> dict:
    fs, path = _loc().fs_for(url)
    info = fs.info(path)
    return {"size": int(info.get("size", -1)), "etag": str(info.get("ETag") or info.get("etag") or "")}


def _remote_mark(url: str) -> str:
    loc = _loc()
    url = loc.normalize(url)
    store = loc.join(url, "zarr.json")
    if loc.is_file(store):
        doc = json.loads(loc.read_bytes(store))
        attrs = doc.setdefault("attributes", {})
        if STORE_MARK_ATTR not in attrs:
            attrs[STORE_MARK_ATTR] = 1
            loc.write_bytes(store, json.dumps(doc, indent=2).encode())
    elif loc.is_file(url):
        car = loc.with_name(url, f".{loc.name(url)}{SIDECAR_SUFFIX}")
        prints = [_remote_print(url)]
        loc.write_bytes(car, json.dumps({"seiscore": "file written by seiscore", "files": prints}).encode())
    else:  # a folder prefix (a QC report): the mark is an object under it
        loc.write_bytes(loc.join(url, FOLDER_MARK), b"created by seiscore: it may replace this folder's contents\n")
    return url


def replace_file(tmp: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Rename the finished file ``tmp`` to ``dest`` (refused unless :func:`may_replace`), marked as the product's.

    The sidecar names both the old and the new content while the rename happens, so an interruption
    never leaves a product file that is no longer recognised as such."""
    tmp, dest = Path(tmp), Path(dest)
    if not may_replace(dest):
        raise UnsafePathError(_not_owned(dest, "file"))
    prints = [_fingerprint(tmp)] + ([_fingerprint(dest)] if dest.is_file() and dest.stat().st_size else [])
    _write_sidecar(dest, prints)
    os.replace(tmp, dest)
    _write_sidecar(dest, prints[:1])
    return dest


def may_replace(path: str | os.PathLike) -> bool:
    """True when ``path`` may be replaced: absent, an empty folder or file, or the product's own (:func:`is_owned`)."""
    loc = _loc()
    if loc.is_remote(path):
        return not loc.exists(path) or _remote_owned(path)
    path = Path(path)
    if path.is_symlink():
        return False
    if not path.exists():
        return True
    try:
        if path.is_dir():
            return is_owned(path) or not any(path.iterdir())
        if path.is_file():
            return is_owned(path) or path.stat().st_size == 0
    except OSError:  # unreadable: not known to be the product's
        return False
    return False  # FIFO, socket, device


def check_replaceable(path: str | os.PathLike, what: str) -> Path:
    """Raise :class:`UnsafePathError` unless :func:`may_replace` ``path``; return it."""
    if not may_replace(path):
        raise UnsafePathError(_not_owned(path, what))
    return resolve(path) if _loc().is_remote(path) else Path(path)


def remove_replaceable(path: str | os.PathLike, what: str) -> None:
    """Remove ``path`` (folder or file) if it exists, after :func:`check_replaceable`. At a URL a store's root
    ``zarr.json`` is first rewritten flagged incomplete (readers refuse it; it stays the product's), then every
    other object goes, the root ``zarr.json`` last: a removal cut short leaves a store that is incomplete and
    still marked, which the next run may replace."""
    loc = _loc()
    if loc.is_remote(path):
        if loc.exists(path):
            check_replaceable(path, what)
            _remove_remote(loc.normalize(path))
        return
    path = Path(path)
    if path.exists() or path.is_symlink():
        check_replaceable(path, what)
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _not_owned(path, what: str) -> str:
    remote = _loc().is_remote(path)
    link = not remote and Path(path).is_symlink()
    kind = "a symbolic link" if link else "not something seiscore wrote (no product mark)"
    return (
        f"{what} {path} exists and is {kind}; refusing to replace it whatever --force/--overwrite say: "
        f"move it away or choose another path"
    )


# ---------------------------------------------------------------- the rules


def _labelled(items: Iterable) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        label, path = item if isinstance(item, tuple) else ("protected path", item)
        if path is None:
            continue
        out.append((label, resolve(path if _loc().is_remote(path) else str(path).removeprefix("file://"))))
    return out


def check_write_target(
    path: str | os.PathLike,
    *,
    what: str,
    roots: Iterable[str | os.PathLike] | None,
    protected: Iterable = (),
    replace: bool = True,
) -> Path:
    """Resolve ``path`` and check the rules for writing ``what`` there; return the resolved path.

    ``roots``: data roots it must lie strictly inside (None: no root rule). ``protected``: paths (or
    (label, path) pairs) it must not equal, lie inside, or contain; a protected git repository may
    contain it. ``replace``: the target is (re)written as a whole, so it must not contain a protected path
    and an existing one must be the product's (:func:`may_replace`); False for folders only appended to.
    """
    if _loc().is_remote(path):
        return _check_remote_target(path, what=what, roots=roots, protected=protected, replace=replace)
    target = resolve(path, what)
    if ".git" in target.parts:
        raise UnsafePathError(f"{what} {target} is inside a .git folder; refusing to write there")
    if (target / ".git").exists():
        raise UnsafePathError(f"{what} {target} is a git repository; refusing to write there")
    for label, prot in _labelled(protected):
        if _loc().is_remote(prot):
            continue  # a local target is never inside, nor contains, an object-store location
        if target == prot:
            raise UnsafePathError(f"{what} {target} is the {label}; refusing to write there")
        is_repo = (prot / ".git").exists()
        if target.is_relative_to(prot) and not is_repo:
            raise UnsafePathError(f"{what} {target} is inside the {label} {prot}; refusing to write there")
        if replace and prot.is_relative_to(target):
            raise UnsafePathError(f"{what} {target} contains the {label} {prot}; refusing to write there")
    if roots is not None:
        roots = [resolve(r) for r in roots]
        roots = [r for r in roots if not _loc().is_remote(r)] or roots
        if target in roots:
            raise UnsafePathError(f"{what} {target} is the data root itself; name a path inside it")
        if not any(target.is_relative_to(r) for r in roots):
            where = ", ".join(str(r) for r in roots) or "none configured"
            raise UnsafePathError(
                f"{what} {target} is outside the data roots ({where}); move it under one, "
                f"or add a root with SEIS_DATA_ROOTS"
            )
    if replace:
        check_replaceable(target, what)
    return target


def _check_remote_target(path, *, what: str, roots, protected, replace: bool) -> str:
    """:func:`check_write_target` for an object-store URL (the same rules on normalised keys)."""
    loc = _loc()
    target = resolve(path, what)
    if "/.git/" in f"{target}/":
        raise UnsafePathError(f"{what} {target} is inside a .git folder; refusing to write there")
    for label, prot in _labelled(protected):
        if not loc.is_remote(prot):
            continue
        if target == prot:
            raise UnsafePathError(f"{what} {target} is the {label}; refusing to write there")
        if loc.is_relative_to(target, prot):
            raise UnsafePathError(f"{what} {target} is inside the {label} {prot}; refusing to write there")
        if replace and loc.is_relative_to(prot, target):
            raise UnsafePathError(f"{what} {target} contains the {label} {prot}; refusing to write there")
    if roots is not None:
        roots = [resolve(r) for r in roots]
        if target in roots:
            raise UnsafePathError(f"{what} {target} is the data root itself; name a path inside it")
        if not any(loc.is_relative_to(target, r) for r in roots):
            where = ", ".join(str(r) for r in roots) or "none configured"
            raise UnsafePathError(
                f"{what} {target} is outside the data roots ({where}); move it under one, "
                f"or add a root with SEIS_DATA_ROOTS"
            )
    if replace:
        check_replaceable(target, what)
    return target


# ---------------------------------------------------------------- a catalog entry's writes


def default_segy_path(output: str | os.PathLike) -> Path:
    """Where the SEG-Y export goes when the catalog names no ``output_segy``: beside the output store."""
    loc = _loc()
    if loc.is_remote(output):
        base = loc.name(output)
        stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
        return loc.with_name(output, stem + ".sgy")
    return Path(output).with_suffix(".sgy")


def qc_dir(output: str | os.PathLike) -> Path:
    """The QC report folder of an output store: ``<output without .zarr>_qc`` beside it."""
    loc = _loc()
    return loc.with_name(output, loc.name(output).removesuffix(".zarr") + "_qc")


def reference_store_path(entry: Any) -> Path | None:
    """The store a SEG-Y ``reference`` is ingested into (beside the input store); None for a store reference."""
    ref = getattr(entry, "reference", None)
    if not ref or not ref.lower().endswith((".sgy", ".segy")):
        return None
    loc = _loc()
    return loc.with_name(entry.store, loc.name(entry.store).removesuffix(".zarr") + "_reference.zarr")


def check_write_targets(
    entry: Any, settings: Any, catalog_path: str | os.PathLike, *, export_segy: bool = True
) -> dict[str, Path]:
    """Check every path a run of the catalog ``entry`` writes; return {use: resolved path}.

    Keys: ``store``, ``reference_store`` (SEG-Y references only), ``output``, ``output_segy`` (the catalog's
    ``output_segy``, default beside the output; only when ``export_segy``), ``qc``, ``output_lock``,
    ``lineage_dir``, and ``<key>_tmp`` / ``<key>:<name>`` for the temporary, staging and sidecar siblings
    ``.NAME.seiscore-*`` of the stores and the export. Raises :class:`UnsafePathError` prefixed with the survey.
    """
    try:
        return _entry_targets(entry, settings, catalog_path, export_segy)
    except UnsafePathError as exc:
        raise UnsafePathError(f"survey {getattr(entry, 'name', '?')!r}: {exc}") from None


def _entry_targets(entry: Any, settings: Any, catalog_path, export_segy: bool) -> dict[str, Path]:
    roots = data_roots(catalog_path, settings)
    catalog = resolve(catalog_path)
    base: list[tuple[str, Any]] = [
        ("catalog file", catalog),
        ("source SEG-Y", entry.source),
        ("reference", getattr(entry, "reference", None)),
    ]
    base += [("git repository", repo) for repo in repositories(catalog.parent, Path(__file__).parent, Path.cwd())]
    loc = _loc()
    output = loc.normalize(entry.output)
    plan: list[tuple[str, str, Path | None]] = [
        ("store", "input store (catalog field 'store')", loc.normalize(entry.store)),
        ("reference_store", "reference store", reference_store_path(entry)),
        ("output", "output store (catalog field 'output')", output),
        (
            "output_segy",
            "SEG-Y export (catalog field 'output_segy')"
            if entry.output_segy
            else "SEG-Y export (no output_segy in the catalog: beside the output)",
            loc.normalize(entry.output_segy) if entry.output_segy else default_segy_path(output),
        ),
        ("qc", "QC report folder", qc_dir(output)),
    ]
    if not export_segy:
        plan = [p for p in plan if p[0] != "output_segy"]
    targets: dict[str, Path] = {}
    for key, what, path in plan:
        if path is None:
            continue
        protected = base + [(_label(k), p) for k, p in targets.items() if ":" not in k and not k.endswith("_tmp")]
        target = targets[key] = check_write_target(path, what=what, roots=roots, protected=protected)
        if key != "qc":
            for sib in sibling_paths(target):
                sib_name = _loc().name(sib)
                name = f"{key}_tmp" if sib_name.endswith(f"{SIBLING_INFIX}tmp") else f"{key}:{sib_name}"
                targets[name] = check_write_target(sib, what=f"temporary {what}", roots=roots, protected=protected)
    out = targets["output"]
    everything = base + [(_label(k), p) for k, p in targets.items()]
    targets["output_lock"] = check_write_target(
        loc.with_name(out, loc.name(out) + ".lock"),
        what="lock file of the output",
        roots=roots,
        protected=everything,
        replace=False,
    )
    lineage_dir = getattr(settings, "lineage_dir", None)
    if lineage_dir is not None:  # relative to the working folder, appended to: only never onto a source or store
        targets["lineage_dir"] = check_write_target(
            lineage_dir, what="lineage folder (SEIS_LINEAGE_DIR)", roots=None, protected=everything, replace=False
        )
    return targets


def _label(key: str) -> str:
    return {
        "store": "input store",
        "reference_store": "reference store",
        "output": "output store",
        "output_segy": "SEG-Y export",
        "qc": "QC report folder",
    }.get(key, key)
