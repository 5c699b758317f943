"""Tasks: quality metrics + QC report of a run, and their Prefect artifacts."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from seiscore.execution.pipeline import run_quality, summary_metrics


@task(name="quality-metrics", cache_policy=NO_CACHE)
def quality_task(
    input_store: str, output_store: str, report_dir: str, reference: str | None = None, survey: str = ""
) -> dict:
    """PSNR/SSIM (with a reference), BRISQUE/PIQE before and after, section images and the QC report."""
    return run_quality(input_store, output_store, report_dir, reference=reference, survey=survey)


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts(survey: str, quality: dict) -> None:
    """A metrics table, a markdown artifact with before / after / removed images, a link to the QC report."""
    from seiscore.qc.images import data_uri

    key = "".join(c if c.isalnum() else "-" for c in survey.lower())
    summary = summary_metrics(quality["metrics"])
    create_table_artifact(
        key=f"{key}-metrics",
        table=[{"metric": k, "value": v} for k, v in summary.items()],
        description=f"Quality metrics of {survey}",
    )
    images = quality["images"]
    rows = []
    for view in ("inline", "time"):
        cells = [
            f"![{view} {w}]({data_uri(Path(images[f'{view}_{w}']))})"
            for w in ("before", "after", "removed")
            if f"{view}_{w}" in images
        ]
        rows.append(f"| {view} | " + " | ".join(cells) + " |")
    report = Path(quality["report"]).resolve()
    md = "\n".join(
        [
            f"# {survey}: before / after / removed",
            "",
            "| view | before | after | removed |",
            "|---|---|---|---|",
            *rows,
            "",
            f"QC report: [{report}]({report.as_uri()})",
        ]
    )
    create_markdown_artifact(key=f"{key}-sections", markdown=md, description=f"Sections of {survey}")
    create_link_artifact(key=f"{key}-qc-report", link=report.as_uri(), link_text=str(report), description="QC report")
