"""Tasks of the ``build-velocity-model`` flow: the DRFWI fit on a worker, the QC artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.fit import EventPublisher
from seiscore.execution.fit import FitEvent, FitStep, fit_method

COLUMNS = {"misfit_norm": "J/J0", "mse_v": "MSE_v (km/s)^2", "rel_err": "RelErr", "ssim": "SSIM"}
INVERT_PHASE = "invert"


class FWIPublisher(EventPublisher):
    """:class:`EventPublisher` that also moves the progress artifact with the inversion's iterations (a DRFWI fit
    reports each iteration as a step of one epoch) and logs the misfit every ``every`` iterations."""

    def __init__(self, *args: Any, every: int = 10, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.every = max(1, every)
        self.last_pct = -1.0

    def __call__(self, event: FitEvent) -> None:
        """Publish one event; an inversion step updates the progress (at most once per percent)."""
        if isinstance(event, FitStep) and event.phase == INVERT_PHASE and event.steps:
            from prefect.artifacts import update_progress_artifact

            pct = round(100.0 * event.step / event.steps)
            if pct > self.last_pct:
                update_progress_artifact(self.progress_id, float(pct))
                self.last_pct = pct
            if event.step % self.every == 0 or event.step == event.steps:
                self.logger.info(f"iteration {event.step}/{event.steps}: misfit {event.loss:.4g}")
            return
        super().__call__(event)


@task(name="fit", cache_policy=NO_CACHE)
def fit_fwi_task(spec: Any, folder: str, seed: int) -> dict[str, Any]:
    """Run (or resume) the ``drfwi`` fit of ``spec`` in ``folder`` on this worker, publishing its iterations."""
    publisher = FWIPublisher(prefix="drfwi", title=f"DRFWI {spec.params.mode}", columns=COLUMNS)
    return fit_method(spec, folder, seed=seed, callback=publisher)


@task(name="publish-fwi-qc", cache_policy=NO_CACHE)
def publish_fwi_qc(run: str, result: dict[str, Any]) -> None:
    """The run's metrics table, the QC page as markdown (images inlined) and a link to the HTML report."""
    from seiscore.qc.images import data_uri

    key = "".join(c if c.isalnum() else "-" for c in run.lower()).strip("-") or "fwi"
    metrics = result.get("metrics") or {}
    create_table_artifact(
        key=f"{key}-fwi-metrics",
        table=[{"metric": k, "value": v} for k, v in metrics.items()],
        description=f"Velocity-model building metrics of {run} ({result.get('mode')})",
    )
    md_path = Path(result["qc_markdown"])
    text = md_path.read_text()
    for png in sorted((md_path.parent / f"{md_path.stem}_images").glob("*.png")):
        text = text.replace(f"]({png.parent.name}/{png.name})", f"]({data_uri(png)})")
    create_markdown_artifact(text, key=f"{key}-fwi-qc", description=f"QC of {run}")
    create_link_artifact(key=f"{key}-fwi-report", link=Path(result["qc"]).resolve().as_uri(), link_text="QC report")
