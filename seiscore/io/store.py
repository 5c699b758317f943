"""The survey store: a Zarr v3 group that plain ``xarray.open_zarr`` reads.

Schema (dims ``inline, crossline, sample``)::

    amplitude      float32 (inline, crossline, sample)   zarr fill value 0.0 for dead bins
    inline         int64   (inline,)                       header inline numbers
    crossline      int64   (crossline,)                    header crossline numbers
    sample         float64 (sample,)                       attrs units "ms" | "m"
    cdp_x, cdp_y   float64 (inline, crossline)             coordinate scalar applied, NaN where dead
    live_mask      bool    (inline, crossline)
    trace_index    int64   (inline, crossline)             original trace number, -1 where dead
    header_<field> int16/int32 (inline, crossline)         every standard trace-header field

Group attrs: ``textual_header`` (decoded text), ``*_b64`` raw header bytes, ``binary_header``
(decoded dict), ``sample_format``, ``endian``, ``seiscore_complete``. A store is built under a
temporary sibling name and renamed into place only when whole; the ``seiscore_complete``
flag is the other guard (output stores are created in place and flagged when filled). What is
replaced, and where, follows :mod:`seiscore.core.safety`: never a path the product did not write.

Stores on object storage (``s3://bucket/prefix/NAME.zarr`` and other fsspec URLs, see
:mod:`seiscore.io.location` and ``docs/object-storage.md``): there is no rename, so a store that is built
whole (ingest, :func:`create_output_store`) is built in a local temporary folder (:func:`temp_path`, under the
system temporary folder) and uploaded by :func:`publish`: first the published store's root ``zarr.json``
is rewritten flagged incomplete (readers then refuse it; it stays marked as the product's), then its other
objects are deleted, then its root ``zarr.json``; then every object of the new store is PUT, and its root
``zarr.json`` - which carries ``seiscore_complete`` - LAST. A reader that finds ``seiscore_complete`` true
therefore finds every object it vouches for; a crash in between leaves a store without the flag (refused
by :func:`open_survey`, replaced by the next run). Stores filled in place (output stores, by tiles) are
opened through a zarr 3 ``FsspecStore`` and flagged by :func:`mark_complete` once whole.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from seiscore.core.safety import STORE_MARK_ATTR, check_replaceable, check_write_target, remove_replaceable
from seiscore.data.kinds import POSTSTACK3D

from . import location
from .chunk_writer import ChunkWriter
from .errors import IncompleteStoreError, StoreError
from .headers import TRACE_FIELDS
from .plan import parse_bytes, resolve_chunks

COMPLETE_ATTR = "seiscore_complete"
SCHEMA_VERSION = 1
DIMS = POSTSTACK3D.dims  # from the one definition of the post-stack layout (seiscore.data.kinds)
HEADER_CHUNK_XL = 1024  # crosslines per header-variable chunk
HEADER_CHUNK_BANDS = 4  # inline chunk-rows per header-variable chunk (few files: file creation is slow)
FILL_VALUE = 0.0
# Range of the live amplitudes, measured by ingest as it decodes (absent when unknown, e.g. NaN samples).
AMPLITUDE_MIN_ATTR, AMPLITUDE_MAX_ATTR = "amplitude_min", "amplitude_max"


COMPRESSIONS = ("lz4", "zstd", "none")
DEFAULT_COMPRESSION = "lz4"


def compressor(name: str = DEFAULT_COMPRESSION) -> BloscCodec | None:
    """Blosc codec for ``name``, always with bit shuffle (groups the sign/exponent/mantissa bits of the
    float32 samples; better ratios than byte shuffle and faster to compress):

    - "lz4" (default): LZ4 level 5, ~1.7 GB/s per core to compress, 1.17x on the benchmark's noisy
      cube and 1.94x on Penobscot;
    - "zstd": Zstd level 1, ~0.55 GB/s per core, 1.17x / 2.02x (slightly smaller on real data);
    - "none": raw chunks.
    """
    if name not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {name!r}")
    if name == "none":
        return None
    return BloscCodec(cname=name, clevel=1 if name == "zstd" else 5, shuffle="bitshuffle")  # typesize: the dtype's


def temp_path(final: str | os.PathLike) -> Path:
    """Deterministic local path a store is built under (a rerun finds and replaces it): the hidden sibling
    ``.NAME.seiscore-tmp`` of a local store; for a store at a URL, ``seiscore-build/<hash of the URL>/NAME``
    in the system temporary folder (it is uploaded by :func:`publish`)."""
    if location.is_remote(final):
        import hashlib
        import tempfile

        url = location.normalize(final)
        digest = hashlib.blake2b(url.encode(), digest_size=8).hexdigest()
        return Path(tempfile.gettempdir()) / "seiscore-build" / digest / f".{location.name(url)}.seiscore-tmp"
    final = Path(final)
    return final.with_name(f".{final.name}.seiscore-tmp")


def prepare_target(
    store: str | os.PathLike, overwrite: bool, *, what: str = "store", protected=()
) -> tuple[Path, Path]:
    """Check ``store`` may be (re)written; clear any leftover temporary; return (final, temp), resolved.

    Whatever ``overwrite`` says, an existing path is replaced only when the product wrote it, and the store
    never equals, lies inside or contains a ``protected`` path (see :func:`seiscore.core.safety.check_write_target`).
    """
    final = check_write_target(store, what=what, roots=None, protected=protected)
    if is_complete(final) and not overwrite:
        raise FileExistsError(f"store {final} already exists; pass overwrite=True (--overwrite) to replace it")
    tmp = temp_path(final)
    remove_replaceable(tmp, f"temporary {what}")  # an interrupted earlier run: restart cleanly
    if location.is_remote(final):
        tmp.parent.mkdir(parents=True, exist_ok=True)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
    return final, tmp


def consolidate(path) -> None:
    """Write consolidated metadata so ``xarray.open_zarr`` opens the store in one read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(location.zarr_store(path))


def consolidate_known(path: Path, members: dict | None, attrs: dict | None = None) -> None:
    """:func:`consolidate` for a flat group whose arrays' metadata the caller holds (``members``: {name:
    metadata}, e.g. from :func:`create_amplitude` / :func:`create_variables`), updating the group's
    attributes with ``attrs`` in the same write: the same ``zarr.json`` zarr writes, without reading every
    array's metadata back. Falls back to zarr when ``members`` is None or does not name exactly the arrays
    on disk."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.group import ConsolidatedMetadata, GroupMetadata

    on_disk = {e.name for e in os.scandir(path) if e.is_dir() and (Path(e.path) / "zarr.json").is_file()}
    if members is None or on_disk != set(members):
        if attrs:
            zarr.open_group(str(path), mode="r+", use_consolidated=False).attrs.update(attrs)
        consolidate(path)
        return
    doc = json.loads((path / "zarr.json").read_bytes())
    meta = GroupMetadata(
        attributes={**doc.get("attributes", {}), **(attrs or {})},
        zarr_format=3,
        consolidated_metadata=ConsolidatedMetadata(metadata=dict(sorted(members.items()))),
    )
    (path / "zarr.json").write_bytes(meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes())


def publish(tmp: Path, final: Path, members: dict | None = None, attrs: dict | None = None) -> Path:
    """Make the finished temporary store visible under its final name (its attributes updated with
    ``attrs`` and its metadata consolidated first; ``members``: the arrays' metadata when the caller has
    it all, see :func:`consolidate_known`). An existing ``final`` is replaced only when the product wrote it."""
    check_replaceable(final, "store")
    consolidate_known(tmp, members, attrs)
    if location.is_remote(final):
        upload_store(tmp, final)
        import shutil

        shutil.rmtree(tmp)
        return final
    remove_replaceable(final, "store")
    os.replace(tmp, final)
    return final


def upload_store(local: str | os.PathLike, url: str) -> str:
    """Replace the store at ``url`` by the local store ``local`` (see the module docstring: the old root
    ``zarr.json`` flagged incomplete first and removed last, the new one written last)."""
    remove_replaceable(url, "store")  # flagged incomplete first, then the rest, its root zarr.json last
    location.upload(local, url, last=("zarr.json",))
    return location.normalize(url)


def _looks_like_store(path) -> bool:
    return location.is_file(location.join(path, "zarr.json"))


def local_root_attrs(path: Path) -> dict | None:
    """The root attributes of a local Zarr store at ``path``; None when there is none or it cannot be read (the
    shot and trace stores' "is this one of ours" test)."""
    if not (Path(path) / "zarr.json").is_file():
        return None
    try:
        return dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:  # noqa: BLE001 - unreadable: not a store
        return None


def _root_attrs(path) -> dict:
    try:
        return dict(zarr.open_group(location.zarr_store(path, read_only=True), mode="r").attrs)
    except Exception:  # noqa: BLE001 - any unreadable path is "not a store"
        return {}


def _root_doc(path) -> dict | None:
    """The parsed root ``zarr.json`` of the store at ``path`` (None: absent or unreadable); one read."""
    try:
        doc = json.loads(location.read_bytes(location.join(path, "zarr.json")))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_complete(store: str | os.PathLike) -> bool:
    """True when ``store`` is a survey store flagged ``seiscore_complete`` (one read of its root ``zarr.json``)."""
    doc = _root_doc(store)
    attrs = doc.get("attributes") if doc else None
    return isinstance(attrs, dict) and bool(attrs.get(COMPLETE_ATTR, False))


def run_parallel(fn, items) -> list:
    """Apply ``fn`` to ``items`` on I/O threads (Zarr metadata/chunk files are small and latency-bound)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(fn, items))


def _array(group, name, shape, chunks, dtype, dims, fill, attrs=None, compression=DEFAULT_COMPRESSION, shards=None):
    codec = compressor(compression)
    return group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        shards=shards,
        dtype=dtype,
        fill_value=fill,
        dimension_names=dims,
        attributes=attrs or {},
        compressors=[codec] if codec else None,
    )


def _create_like(group: zarr.Group, path: Path, specs, make) -> dict:
    """Create the arrays ``specs`` = [(name, dtype, fill, attrs)] that differ only in name, dtype, fill and attrs;
    return {name: metadata}.

    The first array of each (dtype, fill) goes through zarr (``make(spec)``); the others get that array's
    metadata with their own attributes, serialised by zarr itself and written as their ``zarr.json``: the
    same bytes zarr writes, without zarr's per-array creation machinery (~3 ms each, ~0.3 s for the 95
    header variables of a store, all of it on ingest's serial path).
    """
    from zarr.core.buffer import default_buffer_prototype

    templates, metadata = {}, {}
    for spec in specs:
        name, dtype, fill, attrs = spec
        key = (np.dtype(dtype).str, repr(fill))
        if key not in templates:
            templates[key] = metadata[name] = make(spec).metadata
            continue
        meta = metadata[name] = templates[key].update_attributes(attrs)
        (path / name).mkdir()
        data = meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()
        (path / name / "zarr.json").write_bytes(data)
    return metadata


def create_schema(
    path: Path,
    *,
    inlines,
    crosslines,
    samples,
    sample_unit: str,
    chunks,
    trace_index,
    attrs: dict,
    compression: str = DEFAULT_COMPRESSION,
    header_rows: int | None = None,
    shards=None,
) -> zarr.Group:
    """Create every array of a survey store at ``path`` and write the geometry (not the traces).

    2-D variables are chunked ``(header_rows, 1024)`` (default 4 amplitude chunk-rows of inlines).
    ``shards``: shard shape of ``amplitude`` (a multiple of ``chunks``; None: one file per chunk).
    The two steps, :func:`create_amplitude` and :func:`create_variables`, may also be called apart
    (ingest starts filling ``amplitude`` before the other variables exist).
    """
    chunks = resolve_chunks(chunks, (len(inlines), len(crosslines), len(samples)))
    g = create_amplitude(
        path,
        shape=(len(inlines), len(crosslines), len(samples)),
        chunks=chunks,
        attrs=attrs,
        compression=compression,
        shards=shards,
    )
    create_variables(
        g,
        path,
        inlines=inlines,
        crosslines=crosslines,
        samples=samples,
        sample_unit=sample_unit,
        trace_index=trace_index,
        header_rows=header_rows or chunks[0] * HEADER_CHUNK_BANDS,
    )
    return g


def create_amplitude(
    path: Path, *, shape, chunks, attrs: dict, compression: str = DEFAULT_COMPRESSION, shards=None
) -> zarr.Group:
    """Create the store's group (flagged incomplete) and its empty ``amplitude`` array."""
    g = zarr.create_group(
        str(path),
        overwrite=True,
        zarr_format=3,
        attributes={**attrs, COMPLETE_ATTR: False, STORE_MARK_ATTR: SCHEMA_VERSION, "compression": compression},
    )
    _array(
        g,
        "amplitude",
        tuple(shape),
        chunks,
        "float32",
        DIMS,
        FILL_VALUE,
        {"coordinates": "cdp_x cdp_y", "long_name": "amplitude", "dead_trace_fill": FILL_VALUE},
        compression,
        shards=shards,
    )
    return g


def create_variables(
    g: zarr.Group, path: Path, *, inlines, crosslines, samples, sample_unit: str, trace_index, header_rows: int
) -> dict:
    """Create the coordinates, ``live_mask``, ``trace_index`` (written) and the empty 2-D header variables
    of the group ``g`` at ``path`` (2-D chunks ``(header_rows, 1024)``); return {name: metadata} of these
    variables (for :meth:`~seiscore.io.chunk_writer.ChunkWriter.for_metadata` and :func:`consolidate_known`)."""
    n_il, n_xl = len(inlines), len(crosslines)
    hchunks = (min(n_il, header_rows), min(n_xl, HEADER_CHUNK_XL))
    coords = {}
    for name, values, unit in (
        ("inline", inlines, None),
        ("crossline", crosslines, None),
        ("sample", samples, sample_unit),
    ):
        values = np.asarray(values, dtype=np.float64 if name == "sample" else np.int64)
        a = _array(
            g, name, values.shape, values.shape, values.dtype, (name,), 0, {"units": unit} if unit else {}, "none"
        )
        a[:] = values
        coords[name] = a.metadata
    specs = [(n, "float64", np.nan, {"units": "m", "scalar_applied": True}) for n in ("cdp_x", "cdp_y")]
    specs += [
        ("live_mask", "bool", False, {}),
        ("trace_index", "int64", -1, {"long_name": "original trace number (0-based), -1 where no trace"}),
    ]
    specs += [
        (f.variable, f.dtype, 0, {"segy_byte": f.byte, "segy_bytes": f.size, "segyio_name": f.segyio_name})
        for f in TRACE_FIELDS
    ]
    metadata = _create_like(
        g, path, specs, lambda sp: _array(g, sp[0], (n_il, n_xl), hchunks, sp[1], POSTSTACK3D.mask_dims, sp[2], sp[3])
    )
    for name, values in (("live_mask", trace_index >= 0), ("trace_index", trace_index)):
        ChunkWriter.for_metadata(metadata[name], path / name).write_region((0, 0), values)
    return {**coords, **metadata}


def open_survey(store: str | os.PathLike, *, require_complete: bool = True) -> xr.Dataset:
    """Open a survey store as a lazy (dask-backed) xarray Dataset.

    Raises StoreError for a path that is not a store and IncompleteStoreError for a store
    whose ``seiscore_complete`` flag is not set (pass ``require_complete=False`` to look at
    an output store being filled).
    """
    path = location.normalize(store)
    if not location.exists(path):
        raise FileNotFoundError(f"survey store not found: {path}")
    zstore = location.zarr_store(path, read_only=True)
    if not _looks_like_store(path) or "amplitude" not in zarr.open_group(zstore, mode="r"):
        raise StoreError(f"{path} is not a survey store (no Zarr group with an 'amplitude' array)")
    if require_complete and not is_complete(path):
        raise IncompleteStoreError(
            f"survey store {path} is incomplete (interrupted ingest, or an output store not yet marked complete)"
        )
    return xr.open_zarr(zstore, consolidated=has_consolidated_metadata(path))


def has_consolidated_metadata(path: str | os.PathLike) -> bool:
    """True when the Zarr v3 group at ``path`` carries consolidated metadata (open it with
    ``consolidated=`` this value: xarray warns when it looks for consolidated metadata in vain)."""
    doc = _root_doc(path)
    return doc is not None and doc.get("consolidated_metadata") is not None


def set_attrs(store: str | os.PathLike, attrs: dict) -> None:
    """Update the group attributes of ``store``, keeping its consolidated metadata (if any) current
    (rewriting the group's ``zarr.json`` drops it, and ``xarray.open_zarr`` then warns and reads slowly)."""
    path = location.normalize(store)
    if location.is_remote(path) and _update_root_attrs(path, attrs):
        return
    consolidated = has_consolidated_metadata(path)
    zarr.open_group(location.zarr_store(path), mode="r+", use_consolidated=False).attrs.update(attrs)
    if consolidated:
        consolidate(path)


def _update_root_attrs(path, attrs: dict) -> bool:
    """Update the attributes of a consolidated store's root ``zarr.json`` in one read and one write (its members'
    metadata, also consolidated there, does not change with the root's attributes); False when the store has no
    consolidated metadata (the caller goes through zarr). Used at URLs, where re-consolidating reads every
    member's metadata object (about a hundred GETs for a survey store)."""
    doc = _root_doc(path)
    if doc is None or doc.get("consolidated_metadata") is None:
        return False
    doc.setdefault("attributes", {}).update(json.loads(json.dumps(attrs)))
    location.write_bytes(location.join(path, "zarr.json"), json.dumps(doc, indent=2).encode())
    return True


def mark_complete(store: str | os.PathLike) -> Path:
    """Flag ``store`` whole (sets ``seiscore_complete``) and refresh its consolidated metadata."""
    path = location.normalize(store)
    if not _looks_like_store(path):
        raise StoreError(f"{path} is not a survey store")
    if location.is_remote(path) and _update_root_attrs(path, {COMPLETE_ATTR: True}):
        return path  # one PUT of the root zarr.json: the completeness marker
    g = zarr.open_group(location.zarr_store(path), mode="r+")
    g.attrs[COMPLETE_ATTR] = True
    consolidate(path)
    return path


def create_output_store(
    input_store: str | os.PathLike,
    output_store: str | os.PathLike,
    *,
    chunks=None,
    attrs: dict | None = None,
    overwrite: bool = True,
    memory_limit: str | int = "1GB",
) -> Path:
    """Create a store with the geometry, coordinates and headers of ``input_store``.

    ``amplitude`` is left at the fill value (no chunk written) and the store is not marked
    complete: the caller writes the amplitudes (e.g. ``ds.to_zarr(path, region=...)`` or
    ``zarr.open_group(path)['amplitude'][...] = ...``) and then calls :func:`mark_complete`.
    ``attrs`` are merged into the group attributes (e.g. ``processing``: a one-line
    description that :func:`~seiscore.io.export.export` writes into the textual header).
    """
    src = location.normalize(input_store)
    if not is_complete(src):
        raise IncompleteStoreError(f"input store {src} is missing or incomplete")
    final, tmp = prepare_target(output_store, overwrite, what="output store", protected=[("input store", src)])
    sg = zarr.open_group(location.zarr_store(src, read_only=True), mode="r")
    n_il, n_xl, ns = sg["amplitude"].shape
    out_chunks = resolve_chunks(chunks if chunks is not None else sg["amplitude"].chunks, (n_il, n_xl, ns))
    # the input's completeness flag and amplitude range say nothing about the output's amplitudes
    src_attrs = {k: v for k, v in sg.attrs.items() if k not in (COMPLETE_ATTR, AMPLITUDE_MIN_ATTR, AMPLITUDE_MAX_ATTR)}
    src_attrs["source_store"] = str(src) if location.is_remote(src) else str(Path(src).resolve())
    dg = create_schema(
        tmp,
        inlines=sg["inline"][:],
        crosslines=sg["crossline"][:],
        samples=sg["sample"][:],
        sample_unit=sg["sample"].attrs.get("units", "ms"),
        chunks=out_chunks,
        trace_index=sg["trace_index"][:],
        attrs={**src_attrs, **(attrs or {})},
        compression=sg.attrs.get("compression", DEFAULT_COMPRESSION),
    )
    limit = parse_bytes(memory_limit)
    band = max(1, min(n_il, limit // max(1, 8 * n_xl * 16)))
    band = max(out_chunks[0], band - band % out_chunks[0])
    names = ["cdp_x", "cdp_y"] + [f.variable for f in TRACE_FIELDS]
    for a in range(0, n_il, band):
        run_parallel(lambda name: dg[name].__setitem__(slice(a, a + band), sg[name][a : a + band]), names)
    return publish(tmp, final)
