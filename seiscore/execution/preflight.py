"""Pre-flight of a survey run: every check that needs no compute, and the plan of the run.

:func:`preflight` validates a catalog survey as ``seis run`` / the ``process-survey`` flow would
run it - the catalog entry, the method and every one of its parameters (an unknown name is
refused with the closest valid names), the SSB model artifact, the GPU rule, the source file,
the write targets, the tile plan and its memory against the worker limit - and returns a
:class:`RunPlan`. It reads headers and metadata only: nothing is computed, created or written.
Every problem is a :class:`PreflightError` (a ``ValueError``) with a one-line message.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seiscore.core.safety import check_write_targets, default_segy_path, resolve
from seiscore.core.settings import PipelineSettings, get_settings
from seiscore.execution.blockwise.jobs import (
    DIMS,
    SPEC_KEYS,
    DenoiserSpec,
    plan_job_tiles,
    resolve_spec,
    tile_resources,
)
from seiscore.execution.blockwise.tiling import TilePlan

# Peak memory of one tile task as a multiple of its extended block's float32 bytes.
# TLSM: 17x measured for the denoiser alone (tracemalloc peak and RSS high-water above the
# warm start agree within 0.5x; blocks 24x40x60, 48x100x100 and 48x200x400, synthetic preset,
# threads_per_task=1, seiscore 0.1.0), plus 3 block copies the tile task holds (the read
# block, its scaled copy, the weighted support): 20.
TLSM_PEAK_FACTOR = 20.0
# SSB: 6x measured on the NumPy side (tracemalloc, 32x100x100 block, patch-16 model on CPU) plus
# the model's weights (the size of model.safetensors) - a rough bound, GPU memory is not counted.
SSB_PEAK_FACTOR = 6.0
# Dask's nanny terminates a worker whose memory passes this share of its limit.
DASK_TERMINATE = 0.95


class PreflightError(ValueError):
    """A configuration error found before any compute; the message is one line."""


class SSBParams(BaseModel):
    """Parameters a run passes to :func:`seiscore.methods.ssb.denoise` (keyword arguments; checked in tests)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(32, ge=1)
    device: str | None = None
    allow_cpu: bool = False
    mode: Literal["blend", "swin", "dino"] = "blend"
    overlap: int | None = Field(None, ge=0)


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
    method: Literal["tlsm", "ssb"]
    preset: str | None = None
    params: dict[str, Any] = Field(description="every parameter of the method, overrides applied")
    spec: DenoiserSpec
    shape: tuple[int, int, int]
    shape_from: str
    tiles: TilesPlan
    peak_memory_per_tile: int = Field(description="estimated bytes one tile task needs at its peak")
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
            f"  survey      : {_x(self.shape)} (inline x crossline x sample, from {self.shape_from})",
            f"  tiles       : {t.count} (grid {_x(t.grid)}), core up to {_x(t.core)}, block with halo {_x(t.block)}",
            f"  memory      : ~{_size(self.peak_memory_per_tile)} peak per tile; {where}",
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


def preflight(
    survey: str,
    *,
    catalog: str | os.PathLike,
    denoiser: str | None = None,
    params: dict | None = None,
    export_segy: bool = False,
    force: bool = False,
    settings: PipelineSettings | None = None,
) -> RunPlan:
    """Validate a run of ``survey`` without computing or writing anything; return its plan.

    Raises :class:`PreflightError` (or the catalog's ``CatalogError`` / ``FileNotFoundError``)
    with a one-line message naming the survey and the problem.
    """
    settings = settings or get_settings()
    catalog_path = Path(catalog)
    entry = _entry(survey, catalog_path)
    spec = _spec(entry, denoiser, params)
    resolved, model = _method_params(spec)
    source = _check_source(entry)
    _check_reference(entry)
    targets = _write_targets(entry, settings, catalog_path, export_segy)
    shape, chunks, shape_from, store_fresh = _geometry(entry, source)
    _check_axes(spec, shape, model)
    try:
        plan = plan_job_tiles(shape, chunks, spec)
    except ValueError as exc:
        raise PreflightError(f"survey {survey!r}: tiles: {exc}") from None
    tiles = _tiles(plan)
    workers, notes = _workers(spec, settings)
    peak = _peak_memory(spec, tiles, model)
    notes += _check_memory(survey, peak, workers)
    up_to_date, reason = _up_to_date(entry, spec, settings, source, store_fresh, force)
    return RunPlan(
        survey=survey,
        catalog=str(catalog_path.resolve()),
        method=spec.name,
        preset=spec.preset,
        params=resolved,
        spec=spec,
        shape=shape,
        shape_from=shape_from,
        tiles=tiles,
        peak_memory_per_tile=peak,
        workers=workers,
        targets={k: str(v) for k, v in targets.items()},
        lineage_endpoint=settings.openlineage_url,
        export_segy=export_segy,
        up_to_date=up_to_date,
        up_to_date_reason=reason,
        notes=notes,
    )


# --- the entry and the method ---------------------------------------------------------------


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _entry(survey: str, catalog_path: Path):
    from seiscore.data.catalog import load_catalog

    cat = load_catalog(catalog_path)
    if survey not in cat.surveys:
        raise PreflightError(
            f"no survey {survey!r} in catalog {catalog_path}{_did_you_mean(survey, cat.names())} "
            f"(known: {', '.join(cat.names())})"
        )
    return cat.surveys[survey]


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    got = f" (got {err['input']!r})" if err.get("type") != "missing" and not isinstance(err.get("input"), dict) else ""
    return where, f"{err['msg']}{got}"


def _spec(entry, denoiser: str | None, params: dict | None) -> DenoiserSpec:
    name = denoiser or entry.denoiser.name
    if name not in ("tlsm", "ssb"):
        raise PreflightError(
            f"survey {entry.name!r}: unknown denoiser {name!r}{_did_you_mean(name, ('tlsm', 'ssb'))} "
            "(choose tlsm or ssb)"
        )
    try:
        return resolve_spec(entry, denoiser, params)
    except ValidationError as exc:
        where, msg = _first_error(exc)
        raise PreflightError(f"survey {entry.name!r}: parameter {where!r}: {msg}") from None


def _schema_params(spec: DenoiserSpec, schema: type[BaseModel], base: dict) -> dict[str, Any]:
    """``spec.params`` validated against ``schema`` on top of ``base``: unknown names get suggestions."""
    method = spec.name.upper()
    for key in spec.params:
        if key not in schema.model_fields:
            valid = list(schema.model_fields) + list(SPEC_KEYS)
            hint = _did_you_mean(key, valid) or f"; valid names: {', '.join(valid)}"
            raise PreflightError(f"unknown {method} parameter {key!r}{hint}")
    try:
        return schema.model_validate({**base, **spec.params}).model_dump()
    except ValidationError as exc:
        where, msg = _first_error(exc)
        raise PreflightError(f"{method} parameter {where!r}: {msg}") from None


def _method_params(spec: DenoiserSpec) -> tuple[dict[str, Any], dict | None]:
    """Every parameter of the method, validated; for SSB also the model card."""
    if spec.name == "tlsm":
        from seiscore.methods.tlsm.params import PRESETS, TLSMParams

        if spec.preset is not None and spec.preset not in PRESETS:
            raise PreflightError(
                f"unknown TLSM preset {spec.preset!r}{_did_you_mean(spec.preset, PRESETS)} "
                f"(choose one of {', '.join(PRESETS)})"
            )
        from seiscore.data.catalog import TLSMAxes

        try:
            TLSMAxes(**spec.axes)
        except (ValidationError, TypeError) as exc:
            detail = _first_error(exc)[1] if isinstance(exc, ValidationError) else str(exc)
            raise PreflightError(
                f"TLSM axes {spec.axes}: must map smooth, footprint and tube onto a permutation of "
                f"{', '.join(DIMS)}: {detail}"
            ) from None
        return _schema_params(spec, TLSMParams, PRESETS[spec.preset or "synthetic"].model_dump()), None
    if spec.section_dim not in DIMS:
        hint = _did_you_mean(spec.section_dim, DIMS)
        raise PreflightError(
            f"SSB section_dim {spec.section_dim!r} is not a store dim{hint} (one of {', '.join(DIMS)})"
        )
    return _schema_params(spec, SSBParams, {}), _ssb_card(spec.model)


def _ssb_card(model: str | None) -> dict:
    """The model card of an SSB artifact folder, checked (format, version, configuration, tensors file)."""
    if not model:
        raise PreflightError(
            "SSB needs a model artifact folder: set denoiser.model in the catalog or pass "
            "--param model=PATH (a folder written by seis train-ssb)"
        )
    folder = Path(model)
    if not folder.exists():
        raise PreflightError(f"SSB model folder {folder} does not exist")
    if not folder.is_dir():
        raise PreflightError(
            f"SSB model {folder} is not a folder (an artifact is a folder with model_card.json and model.safetensors)"
        )
    from seiscore.methods.ssb.artifacts import TENSORS, read_card
    from seiscore.methods.ssb.config import SSBModelConfig

    card = read_card(folder)
    if not (folder / TENSORS).is_file():
        raise PreflightError(f"SSB artifact {folder} has a model card but no {TENSORS}")
    try:
        cfg = SSBModelConfig.model_validate(card.get("model_config"))
    except ValidationError as exc:
        where, msg = _first_error(exc)
        raise PreflightError(f"SSB artifact {folder}: model_config.{where}: {msg}") from None
    return {"patch": cfg.patch, "weights_bytes": (folder / TENSORS).stat().st_size}


# --- the data --------------------------------------------------------------------------------


def _check_source(entry) -> Path:
    """The source SEG-Y: an existing, readable regular file."""
    path = entry.source_path
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
    from seiscore.io.store import is_complete

    if not is_complete(store):
        return None
    known = zarr.open_group(str(store), mode="r").attrs.get(SOURCE_ATTR)
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

    store = Path(entry.store)
    known = _store_matches_source(store, source)
    if known is not None:
        amp = zarr.open_group(str(store), mode="r")["amplitude"]
        return tuple(amp.shape), tuple(amp.chunks), "the input store", known
    from seiscore.io.geometry import guess_regular, probe, scan
    from seiscore.io.plan import resolve_chunks

    layout = probe(source)
    geom = guess_regular(layout, entry.il_byte, entry.xl_byte) or scan(layout, entry.il_byte, entry.xl_byte)
    shape = (len(geom.inlines), len(geom.crosslines), layout.n_samples)
    return shape, resolve_chunks(entry.chunks, shape), "the SEG-Y headers", None


def _check_axes(spec: DenoiserSpec, shape: tuple[int, int, int], model: dict | None) -> None:
    """SSB sections must hold at least one model patch."""
    if spec.name != "ssb" or model is None:
        return
    axis = DIMS.index(spec.section_dim)
    section = [n for a, n in enumerate(shape) if a != axis]
    if min(section) < model["patch"]:
        raise PreflightError(
            f"SSB sections across {spec.section_dim} are {section[0]} x {section[1]} samples, smaller "
            f"than the model's {model['patch']} x {model['patch']} patch; use another section_dim"
        )


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


def _peak_memory(spec: DenoiserSpec, tiles: TilesPlan, model: dict | None) -> int:
    block_bytes = 4 * tiles.block[0] * tiles.block[1] * tiles.block[2]
    if spec.name == "tlsm":
        return int(TLSM_PEAK_FACTOR * block_bytes)
    return int(SSB_PEAK_FACTOR * block_bytes) + (model or {}).get("weights_bytes", 0)


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


def _workers(spec: DenoiserSpec, settings: PipelineSettings) -> tuple[Workers, list[str]]:
    """The cluster a run will use and its GPU rule (``tile_resources``) for a local one."""
    if settings.dask_address:
        return Workers(cluster="external", scheduler=settings.dask_address), []
    has_gpu = False
    if spec.needs_gpu():
        import importlib.util

        from seiscore.execution.blockwise.jobs import gpu_available

        has_gpu = gpu_available() and importlib.util.find_spec("dask_cuda") is not None
    cluster = {"type": "LocalCUDACluster" if has_gpu else "LocalCluster", "n_workers": settings.dask_workers}
    try:
        resources, note = tile_resources(spec, cluster, has_gpu=has_gpu)
    except RuntimeError as exc:
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
    entry, spec: DenoiserSpec, settings: PipelineSettings, source: Path, store_fresh: dict | None, force: bool
) -> tuple[bool | None, str]:
    """Whether a run would find the output up to date, decided as the flow decides it
    (:func:`seiscore.execution.runs.freshness`), when that is cheap: only if the input store already records the
    unchanged source's content hash."""
    from seiscore.core.lineage import read_lineage
    from seiscore.execution.runs import freshness, lineage_record

    if force:
        return False, "reprocessed: --force"
    output = Path(entry.output)
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
    return freshness(read_lineage(output) if output.exists() else None, record, output)
