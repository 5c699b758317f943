"""Pre-flight of a survey run: every check that needs no compute, and the plan of the run.

:func:`preflight` validates a catalog survey as ``seis run`` / the ``process-survey`` flow would
run it - the catalog entry, the method (checked against the registry) and every one of its
parameters (validated by the method's strict spec: an unknown name is refused with the closest
valid names), the method's own checks (e.g. SSB's model artifact), the GPU rule
(:func:`seiscore.execution.resources.placement`), the source file, the write targets, the tile
plan and its memory (the method's peak-memory model) against the worker limit, and its GPU memory (the method's
device-memory model) against the GPU budget - and returns a
:class:`RunPlan`. It reads headers and metadata only: nothing is computed, created or written.
Every problem is a :class:`PreflightError` (a ``ValueError``) with a one-line message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from seiscore.core.safety import check_write_targets, default_segy_path, resolve
from seiscore.core.settings import (
    GPU_MEMORY_FRACTION,
    PipelineSettings,
    get_settings,
    gpu_task_memory_budget,
    task_memory_budget,
)
from seiscore.data.kinds import get_kind
from seiscore.execution.blockwise.jobs import plan_job_tiles
from seiscore.execution.blockwise.tiling import TilePlan
from seiscore.execution.resources import GPURequiredError, gpu_cluster_possible, placement
from seiscore.methods.base import Method, MethodConfigError, MethodSpec, did_you_mean
from seiscore.methods.registry import AnySpec, get_method, resolve_spec

# Dask's nanny terminates a worker whose memory passes this share of its limit.
DASK_TERMINATE = 0.95


class PreflightError(ValueError):
    """A configuration error found before any compute; the message is one line."""


class TilesPlan(BaseModel):
    """The tiles a run cuts the survey into."""

    grid: tuple[int, int, int]
    count: int
    core: tuple[int, int, int] = Field(description="largest tile core (inline, crossline, sample)")
    block: tuple[int, int, int] = Field(description="largest extended block the denoiser sees (core + halo)")
    halo: tuple[int, int, int]
    chunks: tuple[int, int, int]


class Workers(BaseModel):
    """Where the tiles run."""

    cluster: Literal["local", "local CUDA", "external"]
    scheduler: str | None = None
    n_workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: int | None = Field(None, description="bytes per worker; None = unknown or unlimited")
    resources: dict[str, float] | None = None


class RunPlan(BaseModel):
    """What a run of one survey will do, found without computing or writing anything."""

    survey: str
    catalog: str
    method: str = Field(description="name of the registered method")
    kind: str = Field("poststack3d", description="data kind of the survey's stores")
    preset: str | None = None
    params: dict[str, Any] = Field(description="every parameter of the method, overrides applied")
    spec: AnySpec
    shape: tuple[int, int, int]
    shape_from: str
    tiles: TilesPlan
    peak_memory_per_tile: int = Field(description="estimated bytes one tile task needs at its peak")
    task_memory_budget: int | None = Field(None, description="bytes one tile task may use (tiles planned to fit)")
    gpu_memory_per_tile: int | None = Field(
        None, description="estimated bytes of GPU memory one tile task needs on a GPU; None: the method uses none"
    )
    gpu_memory_budget: int | None = Field(
        None, description="bytes of GPU memory one tile task may use (tiles planned to fit); None: unknown"
    )
    workers: Workers
    targets: dict[str, str] = Field(description="where results go (input/output stores, SEG-Y, QC, lineage)")
    lineage_endpoint: str | None = Field(None, description="OpenLineage HTTP endpoint, if events go there")
    export_segy: bool = False
    up_to_date: bool | None = Field(None, description="True: a run computes nothing; None: unknown before ingest")
    up_to_date_reason: str = ""
    notes: list[str] = Field(default_factory=list)

    def summary(self) -> list[str]:
        """A few readable lines for ``seis run --check``."""
        t, w = self.tiles, self.workers
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        method = self.method + (f", preset {self.preset}" if self.preset else "") + (f": {params}" if params else "")
        where = (
            f"{w.n_workers} local worker(s) x {w.threads_per_worker} thread(s), "
            f"{_size(w.memory_limit) if w.memory_limit else 'no'} memory limit each"
            if w.cluster != "external"
            else f"external scheduler {w.scheduler} (its workers are checked when the run connects)"
        )
        if w.resources:
            where += f", resources {w.resources}"
        lines = [
            f"{self.survey}: pre-flight OK (nothing computed or written)",
            f"  method      : {method}",
            f"  survey      : {_x(self.shape)} ({' x '.join(get_kind(self.kind).dims)}, from {self.shape_from})",
            f"  tiles       : {t.count} (grid {_x(t.grid)}), core up to {_x(t.core)}, block with halo {_x(t.block)}",
            f"  memory      : ~{_size(self.peak_memory_per_tile)} planned peak per tile"
            + (f" (task budget {_size(self.task_memory_budget)})" if self.task_memory_budget else "")
            + f"; {where}",
            *self._gpu_lines(),
            f"  input store : {self.targets['input_store']}",
            f"  output store: {self.targets['output_store']} ({self.up_to_date_reason})",
        ]
        if self.export_segy:
            lines.append(f"  SEG-Y       : {self.targets['segy']}")
        lines.append(f"  QC report   : {self.targets['qc_report']}")
        events = self.lineage_endpoint or self.targets["lineage"]
        lines.append(f"  lineage     : attrs['lineage'] of the output store; OpenLineage events -> {events}")
        lines += [f"  note        : {n}" for n in self.notes]
        return lines

    def _gpu_lines(self) -> list[str]:
        """The GPU memory line, for a method whose tasks may run on a GPU."""
        if self.gpu_memory_per_tile is None:
            return []
        budget = (
            f" (GPU task budget {_size(self.gpu_memory_budget)})"
            if self.gpu_memory_budget
            else " (GPU budget unknown: no GPU here, SEIS_GPU_MEMORY_BYTES unset)"
        )
        return [f"  GPU memory  : ~{_size(self.gpu_memory_per_tile)} planned per tile on a GPU{budget}"]


def preflight(
    survey: str,
    *,
    catalog: str | os.PathLike,
    method: str | None = None,
    params: dict | None = None,
    export_segy: bool = False,
    force: bool = False,
    settings: PipelineSettings | None = None,
    denoiser: str | None = None,
) -> RunPlan:
    """Validate a run of ``survey`` without computing or writing anything; return its plan.

    ``method`` (a registered method's name; ``denoiser`` is its old name) replaces the catalog's method,
    starting from that method's defaults; ``params`` overrides fields of the spec or method parameters.
    Raises :class:`PreflightError` (or the catalog's ``CatalogError`` / ``FileNotFoundError``)
    with a one-line message naming the survey and the problem.
    """
    settings = settings or get_settings()
    catalog_path = Path(catalog)
    entry = _entry(survey, catalog_path)
    spec = _spec(entry, method or denoiser, params)
    try:
        impl = get_method(spec.name)  # an unavailable method: the extra to install
    except MethodConfigError as exc:
        raise PreflightError(f"survey {survey!r}: {exc}") from None
    kind = get_kind(entry.kind)
    if kind.name == "traces3c":  # station records, not a SEG-Y survey: their own flow ingests and windows them
        raise PreflightError(
            f"survey {survey!r} holds three-component records (kind traces3c): denoise it with "
            f"seis traces denoise {survey} (flow denoise-traces)"
        )
    resolved = _method_params(impl, spec)
    source = _check_source(entry)
    _check_reference(entry)
    targets = _write_targets(entry, settings, catalog_path, export_segy)
    shape, chunks, shape_from, store_fresh = _geometry(entry, source)
    notes = _check_method(impl, spec, kind, shape)
    try:
        plan = plan_job_tiles(shape, chunks, spec, entry.kind)
    except ValueError as exc:
        raise PreflightError(f"survey {survey!r}: tiles: {exc}") from None
    tiles = _tiles(plan)
    workers, more = _workers(impl, spec, settings)
    notes += more
    peak = impl.peak_memory(spec, tiles.block)
    notes += _check_memory(survey, peak, workers)
    budget = task_memory_budget(settings)
    given = getattr(spec, "tiles", None) is not None
    if peak > budget:
        notes.append(
            f"a tile needs ~{_size(peak)}, over the task memory budget of {_size(budget)} (SEIS_TASK_MEMORY_BYTES): "
            + ("the run's tiles were given explicitly" if given else "the smallest tiles the method allows")
        )
    gpu_peak = impl.gpu_memory(spec, tiles.block)
    gpu_budget = gpu_task_memory_budget(settings) if gpu_peak is not None else None
    if gpu_peak is not None and gpu_budget is not None and gpu_peak > gpu_budget:
        notes.append(
            f"a tile needs ~{_size(gpu_peak)} of GPU memory, over the GPU task budget of {_size(gpu_budget)} "
            f"({GPU_MEMORY_FRACTION:.0%} of SEIS_GPU_MEMORY_BYTES or of this machine's GPU)"
            + (", with the run's tiles given explicitly" if given else "")
            + ": a task on a GPU may run out of its memory; give smaller tiles (--param tiles=...)"
        )
    up_to_date, reason = _up_to_date(entry, spec, settings, source, store_fresh, force)
    return RunPlan(
        survey=survey,
        catalog=str(catalog_path.resolve()),
        method=spec.name,
        kind=entry.kind,
        preset=getattr(spec, "preset", None),
        params=resolved,
        spec=spec,
        shape=shape,
        shape_from=shape_from,
        tiles=tiles,
        peak_memory_per_tile=peak,
        task_memory_budget=budget,
        gpu_memory_per_tile=gpu_peak,
        gpu_memory_budget=gpu_budget,
        workers=workers,
        targets={k: str(v) for k, v in targets.items()},
        lineage_endpoint=settings.openlineage_url,
        export_segy=export_segy,
        up_to_date=up_to_date,
        up_to_date_reason=reason,
        notes=notes,
    )


# --- the entry and the method ---------------------------------------------------------------


def _entry(survey: str, catalog_path: Path):
    from seiscore.data.catalog import load_catalog

    cat = load_catalog(catalog_path)
    if survey not in cat.surveys:
        raise PreflightError(
            f"no survey {survey!r} in catalog {catalog_path}{did_you_mean(survey, cat.names())} "
            f"(known: {', '.join(cat.names())})"
        )
    return cat.surveys[survey]


def _spec(entry, method: str | None, params: dict | None) -> MethodSpec:
    """The run's spec: the catalog's, or ``method``'s defaults, with the run's overrides (validated by the
    method's strict model: unknown names get the closest valid ones)."""
    try:
        return resolve_spec(entry, method, params)
    except MethodConfigError as exc:
        raise PreflightError(f"survey {entry.name!r}: {exc}") from None


def _method_params(impl: Method, spec: MethodSpec) -> dict[str, Any]:
    """Every parameter the run uses (presets and defaults applied); the method's availability is checked."""
    try:
        return impl.parameters(spec)
    except ValueError as exc:
        raise PreflightError(f"{spec.name} parameters: {exc}") from None


def _check_method(impl: Method, spec: MethodSpec, kind, shape: tuple[int, ...]) -> list[str]:
    """The method's own checks (artifacts, dims, shapes) against the survey's data kind and shape."""
    if kind.name not in impl.data_kinds:
        accepted = ", ".join(impl.data_kinds)
        raise PreflightError(f"method {impl.name!r} does not run on {kind.name} data (it accepts: {accepted})")
    try:
        return list(impl.check(spec, kind, tuple(shape)))
    except MethodConfigError as exc:
        raise PreflightError(str(exc)) from None


# --- the data --------------------------------------------------------------------------------


def _check_source(entry) -> Path:
    """The source SEG-Y: an existing, readable regular file (an existing object for a source at a URL)."""
    from seiscore.io import location

    path = entry.source_path
    if location.is_remote(path):
        try:
            found = location.is_file(path)
        except (OSError, ValueError) as exc:
            raise PreflightError(f"survey {entry.name!r}: source {path} cannot be reached ({exc})") from None
        if not found:
            raise PreflightError(f"survey {entry.name!r}: source {path} not found")
        return path
    try:
        st = path.stat()
    except FileNotFoundError:
        raise PreflightError(
            f"survey {entry.name!r}: source {path} not found (for the bundled surveys: seis make-data NAME)"
        ) from None
    except PermissionError:
        raise PreflightError(f"survey {entry.name!r}: source {path} cannot be reached (permission denied)") from None
    if stat.S_ISDIR(st.st_mode):
        raise PreflightError(f"survey {entry.name!r}: source {path} is a directory, not a SEG-Y file")
    if not stat.S_ISREG(st.st_mode):
        raise PreflightError(f"survey {entry.name!r}: source {path} is not a regular file (a FIFO, socket or device)")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except PermissionError:
        raise PreflightError(f"survey {entry.name!r}: source {path} cannot be read (permission denied)") from None
    return path


def _check_reference(entry) -> None:
    """The clean reference (synthetic surveys), if the entry names one, must exist: the run ingests or reads it."""
    if entry.reference and "://" not in entry.reference and not Path(entry.reference).exists():
        raise PreflightError(f"survey {entry.name!r}: reference {entry.reference} not found")


def _write_targets(entry, settings: PipelineSettings, catalog_path: Path, export_segy: bool) -> dict[str, Path]:
    """Every path a run of ``entry`` writes, resolved and checked by :func:`seiscore.core.safety.check_write_targets`
    (raises its one-line ``UnsafePathError``)."""
    checked = check_write_targets(entry, settings, catalog_path, export_segy=export_segy)
    targets = {
        "input_store": checked["store"],
        "output_store": checked["output"],
        "segy": checked.get("output_segy") or resolve(entry.output_segy or default_segy_path(checked["output"])),
        "qc_report": checked["qc"],
        "lineage": resolve(settings.lineage_dir) / "events.jsonl",
    }
    if "reference_store" in checked:
        targets["reference_store"] = checked["reference_store"]
    return targets


def _store_matches_source(store: Path, source: Path) -> dict | None:
    """The input store's record of its source when the store is complete and the source unchanged (size, mtime)."""
    import zarr

    from seiscore.execution.pipeline import SOURCE_ATTR
    from seiscore.io.location import zarr_store
    from seiscore.io.store import is_complete

    if not is_complete(store):
        return None
    known = zarr.open_group(zarr_store(store, read_only=True), mode="r").attrs.get(SOURCE_ATTR)
    if isinstance(source, str):  # a URL: the object's size and ETag (seiscore.execution.pipeline.source_ref)
        from seiscore.execution.pipeline import source_ref

        ref = source_ref(source)
        return known if known and known.get("content_hash") == ref.content_hash else None
    st = source.stat()
    if (
        known
        and known.get("uri") == str(source.resolve())
        and known.get("size_bytes") == st.st_size
        and known.get("mtime_ns") == st.st_mtime_ns
    ):
        return known
    return None


def _geometry(entry, source: Path) -> tuple[tuple[int, int, int], tuple[int, int, int], str, dict | None]:
    """(shape, input chunks, where they come from, the store's source record if it is fresh): from a complete,
    up-to-date input store's metadata, else from the SEG-Y headers (the regular-grid guess, else a header scan)."""
    import zarr

    from seiscore.io import location

    store = location.normalize(entry.store)
    known = _store_matches_source(store, source)
    if known is not None:
        amp = zarr.open_group(location.zarr_store(store, read_only=True), mode="r")["amplitude"]
        return tuple(amp.shape), tuple(amp.chunks), "the input store", known
    from seiscore.io.geometry import guess_regular, probe, scan
    from seiscore.io.plan import resolve_chunks

    layout = probe(source)
    geom = guess_regular(layout, entry.il_byte, entry.xl_byte) or scan(layout, entry.il_byte, entry.xl_byte)
    shape = (len(geom.inlines), len(geom.crosslines), layout.n_samples)
    return shape, resolve_chunks(entry.chunks, shape), "the SEG-Y headers", None


def _tiles(plan: TilePlan) -> TilesPlan:
    core, block = [], []
    for a, edges in enumerate(plan.edges):
        n, h = plan.shape[a], plan.halo[a]
        core.append(max(e1 - e0 for e0, e1 in zip(edges, edges[1:])))
        block.append(max(min(e1 + h, n) - max(e0 - h, 0) for e0, e1 in zip(edges, edges[1:])))
    return TilesPlan(
        grid=plan.grid, count=plan.n_tiles, core=tuple(core), block=tuple(block), halo=plan.halo, chunks=plan.chunks
    )


# --- resources -------------------------------------------------------------------------------


def _system_memory() -> int:
    """Memory this process may use: the machine's, capped by a cgroup limit (as Dask's ``auto`` reads it)."""
    import psutil

    total = psutil.virtual_memory().total
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value))
    return total


def worker_memory_limit(value: str, threads: int) -> int | None:
    """Bytes per local worker for ``SEIS_DASK_MEMORY_LIMIT`` (Dask's rules: ``auto`` = the machine's share of the
    worker's threads, a number <= 1 a fraction of it, else bytes such as ``4GB``; 0 / none = no limit)."""
    text = str(value).strip().lower()
    if text in ("0", "none", "", "null"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if text == "auto":
        return int(_system_memory() * min(1.0, threads / cores))
    try:
        number = float(text)
    except ValueError:
        from dask.utils import parse_bytes

        return int(parse_bytes(text))
    return int(_system_memory() * number) if number <= 1 else int(number)


def _workers(impl: Method, spec: MethodSpec, settings: PipelineSettings) -> tuple[Workers, list[str]]:
    """The cluster a run will use and, for a local one, where the tasks go (:func:`placement`, the GPU rule)."""
    if settings.dask_address:
        return Workers(cluster="external", scheduler=settings.dask_address), []
    has_gpu = False
    if impl.resources(spec).get("GPU"):
        has_gpu = gpu_cluster_possible()
    cluster = {"type": "LocalCUDACluster" if has_gpu else "LocalCluster", "n_workers": settings.dask_workers}
    try:
        resources, note = placement(impl, spec, cluster, has_gpu=has_gpu)
    except GPURequiredError as exc:
        raise PreflightError(str(exc)) from None
    threads = settings.dask_threads_per_worker
    if has_gpu:
        return Workers(cluster="local CUDA", threads_per_worker=1, resources=resources), [note] if note else []
    try:
        limit = worker_memory_limit(settings.dask_memory_limit, threads)
    except ValueError as exc:
        raise PreflightError(f"SEIS_DASK_MEMORY_LIMIT {settings.dask_memory_limit!r}: {exc}") from None
    return (
        Workers(
            cluster="local",
            n_workers=settings.dask_workers,
            threads_per_worker=threads,
            memory_limit=limit,
            resources=resources,
        ),
        [note] if note else [],
    )


def _check_memory(survey: str, peak: int, workers: Workers) -> list[str]:
    """Refuse tiles a worker cannot hold; note when its threads together come close to the limit."""
    if not workers.memory_limit:
        return []
    threads = workers.threads_per_worker or 1
    if peak > DASK_TERMINATE * workers.memory_limit:
        raise PreflightError(
            f"survey {survey!r}: one tile needs ~{_size(peak)} but a worker may use "
            f"{_size(workers.memory_limit)} (SEIS_DASK_MEMORY_LIMIT); use smaller tiles "
            f"(--param tiles=...) or more memory per worker"
        )
    if threads * peak > 0.8 * workers.memory_limit:
        return [
            f"{threads} tiles at once need ~{_size(threads * peak)}, over 80 % of a worker's "
            f"{_size(workers.memory_limit)}: Dask may pause or spill (fewer threads per worker avoid it)"
        ]
    return []


def _x(shape) -> str:
    return " x ".join(map(str, shape))


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


# --- is the output up to date? ----------------------------------------------------------------


def _up_to_date(
    entry, spec: MethodSpec, settings: PipelineSettings, source: Path, store_fresh: dict | None, force: bool
) -> tuple[bool | None, str]:
    """Whether a run would find the output up to date, decided as the flow decides it
    (:func:`seiscore.execution.runs.freshness`), when that is cheap: only if the input store already records the
    unchanged source's content hash."""
    from seiscore.core.lineage import read_lineage
    from seiscore.execution.runs import freshness, lineage_record

    if force:
        return False, "reprocessed: --force"
    from seiscore.io import location

    output = location.normalize(entry.output)
    record = (
        lineage_record(
            survey=entry.name,
            source={"uri": str(source.resolve()), "content_hash": store_fresh.get("content_hash")},
            output=output,
            spec=spec,
            settings=settings,
        )
        if store_fresh is not None
        else None
    )
    return freshness(read_lineage(output) if location.exists(output) else None, record, output)
