"""Denoising three-component trace records (the library side of the ``denoise-traces`` flow and ``seis traces``).

The run of a ``per_item`` trace method (``cdiffsd``) over a set of records, in steps the flow orders:

1. :func:`plan_denoise` - the pre-flight: the source (a catalog entry of kind ``traces3c``, waveform files or
   globs that ObsPy reads, a STEAD HDF5 file with its CSV beside it, or a trace store), the method spec, and
   every path the run writes (window store, output store, MiniSEED export, QC folder) checked as safe write
   targets inside the data roots; one-line errors (:class:`TracesPlanError`, a ``ValueError``).
2. :func:`ingest_source` - the records cut into windows of ``length`` samples every ``hop``
   (:func:`seiscore.data.traces.records_to_windows`) in the window store; skipped when the store is complete
   and records the same source content and windowing (:data:`SOURCE_ATTR`).
3. The batches of windows run through the per-item mode (:mod:`seiscore.execution.per_item`): the output
   store is created beside the run's staging version by :func:`prepare_trace_output` (the input store's
   coordinates and metadata, the amplitude left empty, chunked so each batch writes whole chunks), one
   completion flag per batch, so a rerun of the same run key processes only the batches not flagged.
4. :func:`export_mseed` - the windows merged back into records with the cosine cross-fade, one record at a
   time (:func:`seiscore.data.traces.iter_store_records`), and written as MiniSEED (a temporary file renamed
   into place: a MiniSEED file that exists is complete).

Source identity (for the reuse decision and the lineage): the content hash of every file the source names
(sorted paths), or of the trace store.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator

from seiscore.core.lineage import DatasetRef, content_hash, fingerprint, path_size
from seiscore.methods.base import MethodSpec

KIND = "traces3c"
DEFAULT_METHOD = "cdiffsd"
SOURCE_ATTR = "seiscore_traces_source"  # what the window store was ingested from (content hash, windowing)
STEAD_SUFFIXES = (".hdf5", ".h5", ".hdf")
SourceKind = Literal["waveforms", "stead", "store"]


class TracesPlanError(ValueError):
    """A denoise-traces run that cannot start; the message is one line naming the input and the problem."""


class TracesPlan(BaseModel):
    """Everything a ``denoise-traces`` run reads and writes (JSON-serialisable: it travels to Dask tasks)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="catalog entry, or the source's stem")
    source: str = Field(description="waveform files/globs (os.pathsep- or comma-separated), STEAD HDF5, or store")
    source_kind: SourceKind
    stead_csv: str | None = None
    files: list[str] = Field(default_factory=list, description="the files the source names, sorted")
    store: str = Field(description="trace store of the input windows")
    output: str = Field(description="trace store of the denoised windows (published when complete)")
    mseed: str | None = Field(None, description="MiniSEED export of the merged denoised records")
    qc: str = Field(description="QC report folder")
    spec: SerializeAsAny[MethodSpec] | None = Field(None, description="the method's spec (None: ingest only)")
    length: int = Field(3000, ge=16)
    hop: int = Field(1500, ge=1)
    sampling_rate: float = Field(100.0, gt=0)
    roots: list[str] | None = Field(None, description="data roots the writes must lie in (None: no root rule)")

    @field_validator("spec", mode="before")
    @classmethod
    def _parse_spec(cls, value: Any) -> MethodSpec | None:
        from seiscore.methods.registry import parse_spec

        return None if value is None else parse_spec(value)

    def windowing(self) -> dict[str, Any]:
        """What fixes the windows of the input store (part of its identity)."""
        return {"length": self.length, "hop": self.hop, "sampling_rate": self.sampling_rate}


def split_sources(source: str) -> list[str]:
    """The parts of a waveform source: several paths or globs separated by ``,`` or ``os.pathsep``."""
    parts = [p.strip() for chunk in str(source).split(",") for p in chunk.split(os.pathsep)]
    return [p for p in parts if p]


def expand_files(source: str) -> list[str]:
    """Every file the waveform ``source`` names (paths, globs, folders: :func:`seiscore.data.trace_io.expand_paths`),
    resolved, sorted; a one-line ``FileNotFoundError`` naming a part that names nothing."""
    from seiscore.data.trace_io import expand_paths

    return sorted({str(p.resolve()) for p in expand_paths(split_sources(source))})


def source_kind(source: str) -> SourceKind:
    """``store`` for a trace store, ``stead`` for an HDF5 file (STEAD layout), else ``waveforms`` (files, globs,
    folders of waveform files)."""
    from seiscore.data.traces import is_trace_store

    parts = split_sources(source)
    if len(parts) == 1 and Path(parts[0]).is_dir() and (Path(parts[0]) / "zarr.json").is_file():
        if is_trace_store(parts[0]):
            return "store"
        raise TracesPlanError(f"source {parts[0]}: a Zarr store that is not a complete trace store")
    if len(parts) == 1 and Path(parts[0]).suffix.lower() in STEAD_SUFFIXES:
        return "stead"
    return "waveforms"


def stead_csv_for(hdf5: str, csv: str | None = None) -> str:
    """The STEAD metadata CSV of ``hdf5``: ``csv`` when given, else the file of the same name ending ``.csv``."""
    path = Path(csv) if csv else Path(hdf5).with_suffix(".csv")
    if not path.is_file():
        raise TracesPlanError(
            f"STEAD source {hdf5}: metadata CSV {path} not found (put NAME.csv beside NAME.hdf5 or pass it)"
        )
    return str(path.resolve())


def _name_and_base(source: str, first_file: str) -> tuple[str, Path]:
    """The run's name and the folder its defaults go in: for a glob or a folder, the folder's name and its parent
    (``data/demo/*.mseed`` -> ``demo`` in ``data``); for files, the first file's stem beside it."""
    first = Path(os.path.expanduser(split_sources(source)[0]).rstrip("/"))
    folder = first.parent if glob.has_magic(first.name) else first if first.is_dir() else None
    if folder is not None and not glob.has_magic(str(folder)):
        folder = folder.resolve()
        return folder.name.removesuffix(".zarr") or "traces", folder.parent
    path = Path(first_file)
    return path.name.removesuffix(".zarr").split(".")[0] or "traces", path.parent


def plan_denoise(
    source: str,
    *,
    output: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    mseed: str | os.PathLike | None = None,
    method: str | None = None,
    params: dict[str, Any] | None = None,
    stead_csv: str | None = None,
    length: int = 3000,
    hop: int = 1500,
    sampling_rate: float = 100.0,
    export_mseed: bool = True,
    catalog: str | os.PathLike | None = None,
    settings: Any = None,
    method_check: bool = True,
) -> TracesPlan:
    """The pre-flight of a ``denoise-traces`` run (see the module docstring); raises one-line ``ValueError``s.

    ``source``: a catalog entry of kind traces3c (its source, stores and method), or waveform files/globs, a
    STEAD HDF5 file or a trace store. Defaults beside the source: window store ``<stem>_windows.zarr`` (the
    store itself for a trace-store source), output ``<stem>_denoised.zarr``, MiniSEED ``<output stem>.mseed``,
    QC folder ``<output stem>_qc``. ``params`` override the method's spec (e.g. ``{"model": FOLDER, "mode":
    "direct"}``). ``method_check=False``: no method (an ingest only; the plan's ``spec`` is None)."""
    from seiscore.core.safety import check_write_target, data_roots, qc_dir
    from seiscore.core.settings import get_settings
    from seiscore.data.kinds import get_kind
    from seiscore.methods.registry import get_method, resolve_spec

    settings = settings if settings is not None else get_settings()
    if hop > length:
        raise TracesPlanError(f"hop {hop} is longer than the window length {length}: samples would be skipped")
    entry = _catalog_entry(source, catalog)
    if entry is not None:
        name, src = entry.name, entry.source
        store = store or entry.store
        output = output or entry.output
        spec = resolve_spec(entry, method=method, params=params) if method_check else None
        roots = data_roots(catalog, settings) or None
    else:
        name, src = None, str(source)
        spec = resolve_spec(None, method=method or DEFAULT_METHOD, params=params) if method_check else None
        roots = data_roots(None, settings) or None
    if spec is not None:
        chosen = get_method(spec.name)
        if chosen.mode != "per_item" or KIND not in chosen.data_kinds:
            raise TracesPlanError(f"method {spec.name!r} does not denoise {KIND} records per item ({chosen.mode})")
        chosen.check(spec, get_kind(KIND), (1, 3, length))  # e.g. the model artifact: one line when unusable
    kind = source_kind(src)
    files: list[str] = []
    csv = None
    if kind == "store":
        store = str(Path(split_sources(src)[0]).resolve())
        files = [store]
    elif kind == "stead":
        files = [str(Path(split_sources(src)[0]).resolve())]
        if not Path(files[0]).is_file():
            raise TracesPlanError(f"STEAD source {files[0]}: no such file")
        csv = stead_csv_for(files[0], stead_csv)
        files.append(csv)
    else:
        files = expand_files(src)
    default_name, base = _name_and_base(src, files[0])
    name = name or default_name
    output = Path(output) if output else base / f"{name}_denoised.zarr"
    protected = [("source", f) for f in files]
    if kind != "store":
        store = check_write_target(
            store or base / f"{name}_windows.zarr", what="window store", roots=roots, protected=protected
        )
        protected.append(("window store", store))
    out = check_write_target(output, what="output trace store", roots=roots, protected=protected)
    protected.append(("output trace store", out))
    qc = check_write_target(qc_dir(out), what="QC report folder", roots=roots, protected=protected)
    mseed_path = None
    if export_mseed:
        mseed_path = check_write_target(
            mseed or out.with_name(out.name.removesuffix(".zarr") + ".mseed"),
            what="MiniSEED export",
            roots=roots,
            protected=protected,
        )
    return TracesPlan(
        name=name,
        source=src,
        source_kind=kind,
        stead_csv=csv,
        files=files,
        store=str(store),
        output=str(out),
        mseed=str(mseed_path) if mseed_path else None,
        qc=str(qc),
        spec=spec,
        length=length,
        hop=hop,
        sampling_rate=sampling_rate,
        roots=[str(r) for r in roots] if roots else None,
    )


def _catalog_entry(source: str, catalog: str | os.PathLike | None):
    """The catalog entry named ``source`` (None when ``source`` is not an entry name or there is no catalog);
    an entry of another kind is refused in one line."""
    if (
        catalog is None
        or not Path(catalog).is_file()
        or any(c in str(source) for c in "/*?,\\")
        or Path(source).exists()
    ):
        return None
    from seiscore.data.catalog import load_catalog

    cat = load_catalog(catalog)
    if source not in cat.surveys:
        return None
    entry = cat.get(source)
    if entry.kind != KIND:
        raise TracesPlanError(f"catalog entry {source!r} is of kind {entry.kind}, not {KIND}")
    return entry


def source_ref(plan: TracesPlan) -> DatasetRef:
    """URI, size and content hash of what the plan's source names (one hash over every file, in order)."""
    hashes = [content_hash(f) for f in plan.files]
    size = sum(path_size(f) for f in plan.files)
    digest = hashes[0] if len(hashes) == 1 else "fp:" + fingerprint({"files": plan.files, "hashes": hashes})
    return DatasetRef(
        uri=plan.source if plan.source_kind == "waveforms" else plan.files[0], size_bytes=size, content_hash=digest
    )


def read_records(plan: TracesPlan) -> list:
    """The source's records (:class:`seiscore.data.traces.Record`), resampled to the plan's rate
    (:func:`seiscore.data.trace_io.load_records`)."""
    from seiscore.data.trace_io import load_records

    if plan.source_kind == "store":
        raise TracesPlanError(f"source {plan.source} is a trace store: it is used as it is, not read as records")
    if plan.source_kind == "stead":
        return load_records(plan.files[0], csv=plan.stead_csv, sampling_rate=plan.sampling_rate)
    return load_records(plan.files, sampling_rate=plan.sampling_rate)


def ingest_source(plan: TracesPlan) -> dict[str, Any]:
    """Cut the source's records into windows in the plan's window store (see the module docstring).

    Returns ``{"store", "source" (DatasetRef as dict), "ingested" (bool), "records", "windows", "notes"}``."""
    import zarr

    from seiscore import io
    from seiscore.data.traces import records_to_windows, write_trace_store

    ref = source_ref(plan)
    identity = {"content_hash": ref.content_hash, **plan.windowing()}
    if plan.source_kind == "store":
        ws = _read_windows(plan.store)
        return {"store": plan.store, "source": ref.model_dump(), "ingested": False, **_counts(ws)}
    if io.is_complete(plan.store):
        known = zarr.open_group(plan.store, mode="r").attrs.get(SOURCE_ATTR)
        if known == identity:
            ws = _read_windows(plan.store)
            return {"store": plan.store, "source": ref.model_dump(), "ingested": False, **_counts(ws)}
    records = read_records(plan)
    if not records:
        raise TracesPlanError(f"source {plan.source}: no three-component record found")
    ws = records_to_windows(records, length=plan.length, hop=plan.hop)
    write_trace_store(plan.store, ws, attrs={SOURCE_ATTR: identity}, overwrite=True, roots=plan.roots)
    return {"store": plan.store, "source": ref.model_dump(), "ingested": True, **_counts(ws)}


def _read_windows(store: str):
    from seiscore.data.traces import read_trace_store

    return read_trace_store(store)


def _counts(ws) -> dict[str, Any]:
    return {
        "records": len(ws.records),
        "windows": ws.n_windows,
        "notes": [f"{r.id}: {n}" for r in ws.records for n in r.notes],
    }


def run_record(plan: TracesPlan, source: DatasetRef | dict, settings: Any, run_id: str | None = None):
    """The lineage record of a run of ``plan`` on the ingested ``source`` (see
    :func:`seiscore.execution.runs.lineage_record`); its reuse key decides "up to date" and, with the job's
    layout (:func:`seiscore.execution.pipeline.run_key`), which run a staging version belongs to."""
    from seiscore.execution.runs import lineage_record

    return lineage_record(
        survey=plan.name,
        source=source if isinstance(source, DatasetRef) else DatasetRef(**source),
        output=plan.output,
        spec=plan.spec,
        settings=settings,
        run_id=run_id,
    )


def prepare_trace_output(job, key: str, attrs: dict | None = None, *, restart: bool = False) -> int:
    """Create the output trace store of the per-item ``job`` for run ``key`` (or keep it to resume, unless
    ``restart``); returns the batches already done. The trace-kind counterpart of
    :func:`seiscore.execution.pipeline.prepare_output` (whose store creation is the post-stack one): the store
    is :func:`seiscore.data.traces.create_trace_output`, chunked as the job's batches write."""
    from seiscore.data.traces import create_trace_output

    state = job.state()
    out = Path(job.output_store)
    if restart or not (out.exists() and state.run_key() == key):
        create_trace_output(job.input_store, out, chunks=job.chunks, attrs=attrs, overwrite=True)
    return state.begin(key, job)


def export_mseed(records, path: str | os.PathLike) -> str:
    """Write ``records`` (a list or an iterator) as one MiniSEED file at ``path``
    (:func:`seiscore.data.trace_io.write_mseed`: under a temporary name, renamed when whole; an earlier export of
    the product's is replaced)."""
    from seiscore.data.trace_io import write_mseed

    return str(write_mseed(records, path, overwrite=True))


def store_info(store: str | os.PathLike) -> dict[str, Any]:
    """What ``seis traces info`` prints: :func:`seiscore.data.traces.trace_store_info` and, for a denoised
    output, its lineage (``lineage``: None when it has none)."""
    from seiscore.core.lineage import read_lineage
    from seiscore.data.traces import trace_store_info

    info = trace_store_info(store)
    lineage = read_lineage(store)
    return {**info, "lineage": lineage.model_dump(mode="json") if lineage else None}


def make_demo_data(
    folder: str | os.PathLike, *, n_records: int = 4, seconds: float = 90.0, seed: int = 0, format: str = "sac"
) -> dict:  # noqa: A002 - ObsPy's word
    """Synthetic three-component station records for demos and tests, written into ``folder``: per record
    ``STxx.{Z,N,E}.sac`` (SAC, the P/S picks in the headers ``a`` / ``t0``, which ingest reads back) or one
    ``STxx.mseed`` (MiniSEED: no picks), network ``SY``, at 100 Hz; the clean records in ``folder/clean`` and the
    picks in ``folder/picks.csv``. Earthquakes and noise from :mod:`seiscore.data.quake_synth` (seeded), mixed
    by the paper's rule."""
    import obspy

    from seiscore.core.safety import mark_owned
    from seiscore.data import quake_synth
    from seiscore.data.traces import Record

    if format not in ("sac", "mseed"):
        raise ValueError(f"make-data: format must be sac or mseed, got {format!r}")
    fs = 100.0
    length = int(round(seconds * fs))
    if n_records < 1 or length < 3000:
        raise ValueError(f"make-data: need at least 1 record of at least 30 s, got {n_records} of {seconds:g} s")
    folder = Path(folder)
    (folder / "clean").mkdir(parents=True, exist_ok=True)
    mark_owned(folder)
    events = quake_synth.make_events(n_records, seed, length=length, fs=fs)
    noise = quake_synth.make_noise(n_records, seed + 1, length=length, fs=fs)
    noisy = quake_synth.mix_paper(events.clean, noise, seed + 2)
    p_s, s_s = np.asarray(events.p_sample, float), np.asarray(events.s_sample, float)
    start = "2026-12-01T00:00:00Z"
    written = []
    for data, where in ((noisy, folder), (events.clean, folder / "clean")):
        for i in range(n_records):  # one station record at a time
            if format == "mseed":
                rec = Record(f"SY.ST{i:02d}..HH?", data[i], fs, start, p_sample=p_s[i], s_sample=s_s[i])
                paths = [export_mseed([rec], where / f"ST{i:02d}.mseed")]
            else:
                paths = []
                for c, comp in enumerate("ZNE"):
                    header = {"network": "SY", "station": f"ST{i:02d}", "channel": f"HH{comp}", "sampling_rate": fs}
                    tr = obspy.Trace(np.asarray(data[i, c], dtype=np.float32), header=header)
                    tr.stats.starttime = obspy.UTCDateTime(start)
                    tr.stats.sac = obspy.core.AttribDict({"b": 0.0, "a": p_s[i] / fs, "t0": s_s[i] / fs})
                    path = where / f"ST{i:02d}.{comp}.sac"
                    tmp = path.with_name(f".{path.name}.seiscore-tmp")
                    tr.write(str(tmp), format="SAC")
                    os.replace(tmp, path)
                    paths.append(str(path))
            if where == folder:
                written += paths
    lines = ["id,p_sample,s_sample"] + [f"SY.ST{i:02d}..HH?,{p_s[i]:.2f},{s_s[i]:.2f}" for i in range(n_records)]
    picks_csv = folder / "picks.csv"
    picks_csv.write_text("\n".join(lines) + "\n")
    return {"records": written, "clean": str(folder / "clean"), "picks": str(picks_csv)}
