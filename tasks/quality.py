"""Tasks: quality metrics + QC report of a run, and their Prefect artifacts."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from seiscore.execution.pipeline import run_quality, summary_metrics
from seiscore.io import location


def _image_uri(image: str, data_uri) -> str:
    """A data URI of the PNG ``image`` (a local path, or a URL of the report uploaded to object storage)."""
    if not location.is_remote(image):
        return data_uri(Path(image))
    import base64

    return "data:image/png;base64," + base64.b64encode(location.read_bytes(image)).decode()


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
            f"![{view} {w}]({_image_uri(images[f'{view}_{w}'], data_uri)})"
            for w in ("before", "after", "removed")
            if f"{view}_{w}" in images
        ]
        rows.append(f"| {view} | " + " | ".join(cells) + " |")
    if location.is_remote(quality["report"]):  # a report on object storage: its URL is the link
        report, link = quality["report"], location.normalize(quality["report"])
    else:
        report = Path(quality["report"]).resolve()
        link = report.as_uri()
    md = "\n".join(
        [
            f"# {survey}: before / after / removed",
            "",
            "| view | before | after | removed |",
            "|---|---|---|---|",
            *rows,
            "",
            f"QC report: [{report}]({link})",
        ]
    )
    create_markdown_artifact(key=f"{key}-sections", markdown=md, description=f"Sections of {survey}")
    create_link_artifact(key=f"{key}-qc-report", link=link, link_text=str(report), description="QC report")
