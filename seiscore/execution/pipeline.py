"""Library side of the survey processing flow (no Prefect here): the steps between tiles.

- :func:`ensure_ingested` - ingest the SEG-Y source unless a complete store of the same
  content exists (the source's size, mtime and content hash are recorded in the store);
- :func:`prepare_output` - create the output store, or keep it to resume the same run;
- :func:`run_quality` - metrics, section images and the QC report of a finished output.

Sources and stores may be fsspec URLs (``s3://...``, :mod:`seiscore.io.location`): a remote source is
identified by its URL, size and ETag (the object's content hash as the server reports it, so it is never
read whole just to be identified); a QC report for an output at a URL is drawn in a local temporary folder and
uploaded, its ``.seiscore-owned`` mark last.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from seiscore.core.lineage import DatasetRef, content_hash, fingerprint
from seiscore.data.kinds import get_kind
from seiscore.execution.blockwise.jobs import TileJob, plan_job_tiles, scale_from_range, survey_scale
from seiscore.execution.blockwise.state import TileState
from seiscore.execution.per_item import ItemJob
from seiscore.methods.base import MethodSpec

SOURCE_ATTR = "seiscore_source"
RANGE_ATTR = "seiscore_amplitude_scale"


def source_ref(path: str | os.PathLike, known: dict | None = None) -> DatasetRef:
    """URI, size and content hash of a file or store; reuses ``known['content_hash']`` if size and mtime match.
    At a URL: the object's size and ETag (see the module docstring)."""
    from seiscore.io import location

    if location.is_remote(path):
        return _remote_ref(location.normalize(path))
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"survey source not found: {path} (for the bundled surveys: seis make-data NAME)")
    st = path.stat()
    ref = {"uri": str(path.resolve()), "size_bytes": st.st_size if path.is_file() else None}
    if (
        known
        and known.get("size_bytes") == ref["size_bytes"]
        and known.get("mtime_ns") == st.st_mtime_ns
        and known.get("uri") == ref["uri"]
    ):
        return DatasetRef(**ref, content_hash=known["content_hash"])
    if ref["size_bytes"] is None:
        from seiscore.core.lineage import path_size

        ref["size_bytes"] = path_size(path)
    return DatasetRef(**ref, content_hash=content_hash(path))


def _remote_ref(url: str) -> DatasetRef:
    """:func:`source_ref` of the object (or store prefix) at ``url``."""
    import hashlib
    import json

    from seiscore.io import location

    fs, path = location.fs_for(url)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"survey source not found: {url}") from None
    if info.get("type") == "directory":
        entries = sorted((k, v.get("size"), v.get("ETag")) for k, v in fs.find(path, detail=True).items())
        size = sum(int(e[1] or 0) for e in entries)
    else:
        entries, size = [(path, info.get("size"), info.get("ETag") or info.get("etag"))], int(info.get("size") or 0)
    digest = hashlib.blake2b(json.dumps(entries).encode(), digest_size=16).hexdigest()
    return DatasetRef(uri=url, size_bytes=size, content_hash=f"etag-blake2b:{digest}")


def _mtime_ns(source) -> int | None:
    from seiscore.io import location

    return None if location.is_remote(source) else Path(source).stat().st_mtime_ns


def ensure_ingested(
    source,
    store,
    *,
    il_byte: int = 189,
    xl_byte: int = 193,
    sample_unit: str = "ms",
    chunks=None,
    progress: bool = False,
    lock_wait_s: float | None = None,
) -> tuple[Path, DatasetRef, bool]:
    """Return (store, source ref, ingested now?); (re)ingest when the store is missing, incomplete or stale.

    Holds the store's lock (:mod:`seiscore.io.locks`) from the check to the end of ingest: a run that shares
    the input store waits (up to ``lock_wait_s`` seconds; None: as long as it takes), then reuses it."""
    import zarr

    from seiscore import io
    from seiscore.io import location
    from seiscore.io.locks import store_lock
    from seiscore.io.os_errors import check_regular_file

    store = location.normalize(store)
    if not location.is_remote(source) and Path(source).exists():
        check_regular_file(source)  # a directory or a FIFO is refused before it is hashed (a FIFO would block)
    with store_lock(store, wait_s=lock_wait_s, what="input store"):
        known = None
        if io.is_complete(store):
            known = zarr.open_group(location.zarr_store(store, read_only=True), mode="r").attrs.get(SOURCE_ATTR)
        ref = source_ref(source, known)
        if known and known.get("content_hash") == ref.content_hash:
            return store, ref, False
        io.ingest(
            source,
            store,
            il_byte=il_byte,
            xl_byte=xl_byte,
            sample_unit=sample_unit,
            chunks=chunks,
            progress=progress,
            overwrite=True,
        )
        io.set_attrs(store, {SOURCE_ATTR: {**ref.model_dump(), "mtime_ns": _mtime_ns(source)}})
    return store, ref, True


def make_job(input_store, output_store, spec: MethodSpec, kind: str = "poststack3d") -> TileJob:
    """Plan the tiles of a blockwise run of ``spec`` on ``kind`` data and measure the survey's amplitude range
    (for the global scaling, when the spec asks for it)."""
    from seiscore import io

    ds = io.open_survey(input_store)
    amp = ds["amplitude"].transpose(*get_kind(kind).dims)
    plan = plan_job_tiles(amp.shape, amp.encoding.get("chunks") or amp.shape, spec, kind)
    minmax = getattr(spec, "scale", "none") == "minmax"
    scale = amplitude_range(input_store, amp, ds["live_mask"]) if minmax else (0.0, 1.0)
    return TileJob(
        input_store=str(input_store), output_store=str(output_store), plan=plan, spec=spec, scale=scale, kind=kind
    )


def amplitude_range(store, amp, live_mask) -> tuple[float, float]:
    """Survey (mid-range, half-range), cached in the input store's attrs (a re-ingest resets it); from the
    range ingest measured when the store has it, else one pass over the live traces."""
    import zarr

    from seiscore.io import set_attrs
    from seiscore.io.location import zarr_store
    from seiscore.io.store import AMPLITUDE_MAX_ATTR, AMPLITUDE_MIN_ATTR

    g = zarr.open_group(zarr_store(store, read_only=True), mode="r", use_consolidated=False)
    cached = g.attrs.get(RANGE_ATTR)
    if cached is None:
        lo, hi = g.attrs.get(AMPLITUDE_MIN_ATTR), g.attrs.get(AMPLITUDE_MAX_ATTR)
        if lo is not None and hi is not None:  # measured by ingest: no pass over the survey
            cached = list(scale_from_range(lo, hi))
        else:
            cached = list(survey_scale(amp, live_mask))
        set_attrs(store, {RANGE_ATTR: cached})
    return tuple(cached)


def run_key(reuse_key: str, job: TileJob | ItemJob) -> str:
    """The run key of ``job`` (blockwise or per_item): its reuse key (input, method, parameters, code), the
    layout of its work units and its scaling. Resuming needs the same key."""
    layout = job.plan.model_dump(mode="json") if isinstance(job, TileJob) else job.layout()
    return fingerprint({"reuse": reuse_key, "plan": layout, "scale": job.scale})


def prepare_output(job: TileJob | ItemJob, key: str, attrs: dict | None = None, *, restart: bool = False) -> int:
    """Create the output store for run ``key`` or keep it to resume (unless ``restart``); returns the work units
    (tiles or batches) already done."""
    from seiscore import io

    if isinstance(job, TileJob):
        state, chunks, layout = TileState(job.output_store), job.plan.chunks, job.plan
    else:
        state, chunks, layout = job.state(), job.chunks, job
    from seiscore.io import location

    out = location.normalize(job.output_store)
    # Same run key: the same input, plan, method and code wrote it, so its recorded units stand,
    # also when it is complete (every unit written; the run then stopped in QC, export or lineage).
    if restart or not (location.exists(out) and state.run_key() == key):
        io.create_output_store(job.input_store, out, chunks=chunks, attrs=attrs, overwrite=True)
    return state.begin(key, layout)


def run_quality(
    input_store, output_store, report_dir, *, reference=None, max_slices: int = 16, survey: str = ""
) -> dict[str, Any]:
    """Metrics (PSNR/SSIM when a reference store is given), section images and the QC report."""
    from seiscore.core.safety import check_write_target, mark_owned
    from seiscore.io import location

    report_dir = check_write_target(
        report_dir,
        what="QC report folder",
        roots=None,
        protected=[("input store", input_store), ("output store", output_store)],
    )
    if location.is_remote(report_dir):  # drawn locally, then uploaded (its mark last)
        import tempfile

        from seiscore.core.safety import remove_replaceable

        with tempfile.TemporaryDirectory(prefix="seiscore-qc-") as tmp:
            local = Path(tmp) / location.name(report_dir)
            out = run_quality(
                input_store, output_store, local, reference=reference, max_slices=max_slices, survey=survey
            )
            remove_replaceable(report_dir, "QC report folder")
            location.upload(local, report_dir, last=(".seiscore-owned",))
        moved = {k: location.join(report_dir, str(Path(v).relative_to(local))) for k, v in out["images"].items()}
        return {**out, "images": moved, "report": location.join(report_dir, Path(out["report"]).name)}
    report_dir.mkdir(parents=True, exist_ok=True)
    mark_owned(report_dir)
    return _draw_quality(input_store, output_store, report_dir, reference, max_slices, survey)


def _draw_quality(input_store, output_store, report_dir: Path, reference, max_slices: int, survey: str) -> dict:
    from seiscore.qc import quality_metrics, section_images, write_qc_report
    from seiscore.qc.report import open_amplitude

    def amplitude(store):  # without cdp_x / cdp_y, which are chunked differently
        return open_amplitude(store)["amplitude"].reset_coords(drop=True)

    before, after = amplitude(input_store), amplitude(output_store)
    ref = amplitude(reference) if reference else None
    with ThreadPoolExecutor(1, thread_name_prefix="seiscore-qc-images") as pool:  # drawing beside the metrics
        drawn = pool.submit(section_images, before, after, report_dir / "images")
        metrics = quality_metrics(before, after, ref, max_slices=max_slices)
        images = drawn.result()
    report = write_qc_report(
        output_store,
        report_dir / f"{survey or 'survey'}_qc.html",
        against=input_store,
        metrics=metrics,
        max_slices=max_slices,
        images=images,
    )
    return {"metrics": metrics, "images": {k: str(v) for k, v in images.items()}, "report": str(report)}


def summary_metrics(metrics: dict) -> dict[str, Any]:
    """Headline numbers of a :func:`seiscore.qc.quality_metrics` dict (mean before / after; None for a
    metric that could not be computed, whose reason is under ``not_computed``)."""
    out: dict[str, Any] = {}
    reasons = {k: m["reason"] for k, m in metrics.items() if isinstance(m, dict) and m.get("reason")}
    for name in ("psnr", "ssim", "snr", "brisque", "piqe"):
        m = metrics.get(name)
        if isinstance(m, dict):
            for when in ("before", "after"):
                v = m.get(when)
                v = v.get("mean") if isinstance(v, dict) else v
                out[f"{name}_{when}"] = None if v is None else float(np.round(v, 4))
    leak = metrics.get("leakage", {})
    if isinstance(leak, dict) and leak.get("mean") is not None:
        out["leakage"] = float(np.round(leak["mean"], 4))
    if reasons:
        out["not_computed"] = reasons
    return out
