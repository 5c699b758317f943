"""Tasks of the ``denoise-traces`` flow: ingest the source into windows, merge + export, QC, artifacts.

Thin wrappers: the work is in :mod:`seiscore.execution.traces` and :mod:`seiscore.qc.traces`; the batches of
windows run through the per-item tasks (:mod:`tasks.items`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from seiscore.data.traces import iter_store_records, trace_store_info
from seiscore.execution.traces import TracesPlan, export_mseed, ingest_source


@task(name="ingest-traces", cache_policy=NO_CACHE)
def ingest_traces_task(plan: TracesPlan) -> dict[str, Any]:
    """The source's records cut into windows in the window store (skipped when it holds the same source)."""
    return ingest_source(plan)


@task(name="export-traces", cache_policy=NO_CACHE)
def export_traces_task(output_store: str, mseed: str) -> dict[str, Any]:
    """Merge the denoised windows into records (cosine cross-fade, one record in memory at a time) and write
    them as one MiniSEED file."""
    return {"mseed": export_mseed(iter_store_records(output_store), mseed)}


@task(name="traces-qc", cache_policy=NO_CACHE)
def traces_qc_task(
    input_store: str, output_store: str, folder: str, title: str, info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The QC report of a trace-denoising run (records merged from both stores, read record by record)."""
    from seiscore.qc.traces import write_traces_qc

    before, after = iter_store_records(input_store), iter_store_records(output_store)
    total = trace_store_info(input_store)["n_records"]
    return write_traces_qc(before, after, folder, title=title, info=info, total=total)


@task(name="publish-traces-artifacts", cache_policy=NO_CACHE)
def publish_traces_artifacts(name: str, quality: dict[str, Any]) -> None:
    """Prefect artifacts: the per-record metric table, the sampled records' images, a link to the QC report."""
    from seiscore.qc.images import data_uri

    key = "traces-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    if quality.get("records"):
        create_table_artifact(quality["records"], key=f"{key}-metrics", description=f"{name}: metrics per record")
    images = quality.get("images") or {}
    lines = [f"# {name}: before / after / removed", ""]
    lines += [f"![{k}]({data_uri(Path(v))})" for k, v in list(images.items())[:4]]
    report = Path(quality["report"]).resolve()
    lines += ["", f"QC report: [{report}]({report.as_uri()})"]
    create_markdown_artifact("\n".join(lines), key=f"{key}-records", description=f"{name}: sampled records")
    create_link_artifact(key=f"{key}-qc-report", link=report.as_uri(), link_text=str(report), description="QC report")
