"""Flow ``reprocess-archive``: ``process-survey`` for many catalog surveys.

A survey whose input content hash, method, parameters and code version match its last
successful output is skipped (``process-survey`` checks the lineage in the output store),
unless ``force``. One survey failing does not stop the others; the flow fails at the end,
naming the failed surveys.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows._runtime import load_catalog_from
from flows.process_survey import process_survey
from seiscore.core.settings import get_settings

OWN_FLOW_KINDS = ("traces3c",)  # data kinds whose catalog entries another flow processes


def survey_names(cat) -> list[str]:
    """The catalog entries process-survey runs: not those of a ``fit``-mode method (a velocity2d collection is
    compressed by compress-velocity-archive, not processed), nor trace records (kind traces3c: the
    ``denoise-traces`` flow and its nightly deployments run them)."""
    from seiscore.methods.registry import method_class

    return [
        n for n, e in cat.surveys.items() if method_class(e.method.name).mode != "fit" and e.kind not in OWN_FLOW_KINDS
    ]


@flow(name="reprocess-archive", log_prints=True)
def reprocess_archive(
    selection: list[str] | None = None, force: bool = False, catalog: str | None = None
) -> dict[str, Any]:
    """Reprocess catalog surveys, skipping those whose output is up to date.

    Args:
        selection: Survey names to process (default: every survey in the catalog).
        force: Reprocess even surveys whose output is up to date.
        catalog: Path of the data catalog (default: SEIS_CATALOG or data_catalog.yaml).
    """
    logger = get_run_logger()
    catalog = catalog or str(get_settings().catalog)
    names = list(selection) if selection else survey_names(load_catalog_from(catalog))
    results: dict[str, Any] = {}
    failed = []
    for name in names:
        try:
            results[name] = process_survey(name, catalog=catalog, force=force)
        except Exception as exc:  # noqa: BLE001 - keep going, report at the end
            logger.error(f"{name}: {type(exc).__name__}: {exc}")
            results[name] = {"survey": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
    skipped = [n for n, r in results.items() if r.get("skipped")]
    processed = len(names) - len(skipped) - len(failed)
    logger.info(f"{len(names)} surveys: {len(skipped)} up to date, {len(failed)} failed, {processed} processed")
    if failed:
        raise RuntimeError(f"reprocess-archive: {len(failed)} of {len(names)} surveys failed: {', '.join(failed)}")
    return results
