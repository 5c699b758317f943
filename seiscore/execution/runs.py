"""Library side of one survey run (no Prefect here): what the flows used to assemble themselves.

- :func:`run_mode` - the run mode a survey run dispatches on; a ``fit`` method is refused with one line;
- :func:`lineage_record` - the :class:`~seiscore.core.lineage.LineageRecord` of a run, built from the
  catalog entry, the resolved method spec, the input's reference and the settings;
- :func:`freshness` / :func:`is_up_to_date` - THE decision "an earlier output can be reused": the flow
  takes it after ingest, the pre-flight (:mod:`seiscore.execution.preflight`) when it is cheap;
- :func:`work_layout` - how the work was cut (tile grid, or item batches), for the lineage;
- :func:`reference_to_ingest` - whether the entry's clean reference is a SEG-Y that must be ingested first;
- :func:`run_summary` - the result dict of a run; :class:`Stages` - wall seconds per stage.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from seiscore.core.lineage import DatasetRef, LineageRecord
from seiscore.core.safety import reference_store_path
from seiscore.core.settings import PipelineSettings
from seiscore.methods.base import Method, MethodConfigError, MethodSpec

# Run modes a survey run (``seis run`` / the ``process-survey`` flow) executes; ``fit`` has its own flow.
SURVEY_MODES = ("blockwise", "per_item")


class FitMethodError(MethodConfigError):
    """A ``fit`` method given to a survey run (it trains or inverts: the ``fit-method`` flow runs it)."""


def run_mode(method: Method) -> str:
    """The run mode a survey run of ``method`` dispatches on; :class:`FitMethodError` for a fit method."""
    if method.mode == "fit":
        raise FitMethodError(
            f"method {method.name!r} is a fit method: run it with the fit-method flow "
            f"(seis fit {method.name} --out FOLDER)"
        )
    if method.mode not in SURVEY_MODES:
        raise MethodConfigError(f"method {method.name!r} has run mode {method.mode!r}; a survey run does not know it")
    return method.mode


def _uri(loc: str | os.PathLike) -> str:
    """The URI of a location: a URL normalised, a local path made absolute."""
    from seiscore.io import location

    return str(location.normalize(loc)) if location.is_remote(loc) else str(Path(loc).resolve())


def lineage_record(
    *,
    survey: str,
    source: DatasetRef | dict[str, Any],
    output: str | os.PathLike,
    spec: MethodSpec,
    settings: PipelineSettings,
    run_id: str | None = None,
) -> LineageRecord:
    """The lineage record of a run of ``spec`` on ``survey`` (input ``source``, output store ``output``).

    ``run_id`` is the flow run's id (also recorded as ``flow_run_id``); None: a fresh id, no flow run (the
    pre-flight's record, which only serves the reuse key). ``settings.code_version`` (``SEIS_CODE_VERSION``)
    replaces the git commit in the code version when set."""
    ids = {"run_id": run_id, "flow_run_id": run_id} if run_id else {}
    record = LineageRecord(
        **ids,
        survey=survey,
        input=source if isinstance(source, DatasetRef) else DatasetRef(**source),
        output=DatasetRef(uri=_uri(output)),
        denoiser=spec.model_dump(mode="json"),
    )
    if settings.code_version:
        record.code["version"], record.code["git_commit"] = settings.code_version, None
    return record


def freshness(
    previous: LineageRecord | None, record: LineageRecord | None, output: str | os.PathLike
) -> tuple[bool | None, str]:
    """(can the published ``output`` be reused?, why): it exists, is complete, its lineage records a
    completed run, and that run's reuse key (input content, method spec, code) equals ``record``'s.
    ``record`` None: the input's content is not known yet (not ingested), so neither is the answer (None)."""
    from seiscore.io import location
    from seiscore.io.store import is_complete

    if not location.exists(output):
        return False, "does not exist yet: everything is computed"
    if not is_complete(output):
        return False, "incomplete: a run resumes or recomputes it"
    if record is None:
        return None, "exists; up to date or not is known after ingest (the source is not ingested or has changed)"
    if previous is None or previous.status != "completed":
        return False, "has no completed run recorded: everything is computed"
    if previous.reuse_key() != record.reuse_key():
        return False, "out of date (input, method, parameters or code changed): everything is recomputed"
    return True, f"up to date (run {previous.run_id}): a run computes nothing"


def is_up_to_date(previous: LineageRecord | None, record: LineageRecord, output: str | os.PathLike) -> bool:
    """True when a run of ``record`` may reuse ``output`` as it is (:func:`freshness`)."""
    return freshness(previous, record, output)[0] is True


def work_layout(job: Any) -> dict[str, Any]:
    """How a run's work is cut, for the lineage: the tile grid of a blockwise job, the batches of a per-item job."""
    plan = getattr(job, "plan", None)
    if plan is not None:
        return {
            "grid": plan.grid,
            "n_tiles": plan.n_tiles,
            "edges": plan.edges,
            "halo": plan.halo,
            "blend": plan.blend,
            "chunks": plan.chunks,
            "scale": job.scale,
        }
    fields = ("kind", "item_dim", "batch", "n_items", "chunks", "scale")
    return {k: getattr(job, k) for k in fields if hasattr(job, k)}


def reference_to_ingest(entry: Any) -> tuple[str, str] | None:
    """(SEG-Y, store) when the entry's clean reference is a SEG-Y file, ingested beside the input store before
    QC; None when there is no reference or it already is a store (used as it is)."""
    ref = getattr(entry, "reference", None)
    if not ref or Path(ref).suffix.lower() not in (".sgy", ".segy"):
        return None
    return ref, str(reference_store_path(entry))


def run_summary(record: LineageRecord, output: str | os.PathLike, *, skipped: bool) -> dict[str, Any]:
    """The result of a run (what ``seis run`` prints and the flow returns)."""
    return {
        "survey": record.survey,
        "method": record.denoiser.get("name"),
        "output": str(output),
        "skipped": skipped,
        "run_id": record.run_id,
        "tiles_computed": 0 if skipped else record.tiles_computed,
        "metrics": record.metrics,
        "qc_report": record.metrics.get("qc_report"),
        "lineage": "output store attrs 'lineage' + OpenLineage events",
        "status": record.status,
    }


class Stages:
    """Wall seconds per stage of a run: ``lap(name)`` adds the time since the previous lap to ``name``."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        """Charge the seconds since the last lap (or the start) to stage ``name``."""
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._t, 3)
        self._t = now
