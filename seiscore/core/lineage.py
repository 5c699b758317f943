"""Lineage of a processing run: what went in, what ran, what came out.

A :class:`LineageRecord` is stored in the output store's attributes (key ``lineage``)
and sent as OpenLineage run events (START, COMPLETE, FAIL) through ``openlineage-python``:
to a JSON-lines file by default (``SEIS_LINEAGE_DIR/events.jsonl``), or to an HTTP
endpoint such as Marquez when ``SEIS_OPENLINEAGE_URL`` is set (events it cannot take are
spooled and re-sent later: :mod:`seiscore.core.lineage_spool`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import attr
import zarr
from pydantic import BaseModel, Field

import seiscore
from seiscore.core.settings import PipelineSettings

LINEAGE_ATTR = "lineage"
KEY_DEPENDENCIES = (
    "numpy",
    "scipy",
    "numba",
    "xarray",
    "zarr",
    "dask",
    "distributed",
    "segyio",
    "prefect",
    "prefect-dask",
    "torch",
)


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def content_hash(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """``blake2b:HEX`` of a file, or of a directory tree (relative paths and bytes, sorted)."""
    path = Path(path)
    h = hashlib.blake2b(digest_size=20)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(f"cannot hash {path}: no such file or empty directory")
    for f in files:
        if f != path:
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return f"blake2b:{h.hexdigest()}"


def path_size(path: str | os.PathLike) -> int:
    """Bytes of a file, or of every file under a directory."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def git_commit() -> str | None:
    """HEAD of the checkout the package runs from (``+dirty`` if modified), or None outside git."""
    root = Path(seiscore.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def code_version() -> dict[str, str | None]:
    """Package name, version and git commit of the running code."""
    return {"package": "seiscore", "version": seiscore.__version__, "git_commit": git_commit()}


def dependency_versions(names=KEY_DEPENDENCIES) -> dict[str, str]:
    """Installed versions of ``names`` (those not installed are left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def fingerprint(payload: Any) -> str:
    """Stable short hash of a JSON-serialisable payload (sorted keys)."""
    return hashlib.blake2b(json.dumps(payload, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


class DatasetRef(BaseModel):
    """A dataset a run read or wrote: its URI, size and content hash (when known)."""

    uri: str
    size_bytes: int | None = None
    content_hash: str | None = None


class LineageRecord(BaseModel):
    """Everything needed to tell how an output store was made."""

    run_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    survey: str
    status: str = "running"
    input: DatasetRef
    output: DatasetRef
    denoiser: dict[str, Any]
    code: dict[str, Any] = Field(default_factory=code_version)
    dependencies: dict[str, str] = Field(default_factory=dependency_versions)
    flow_run_id: str | None = None
    dask_cluster: dict[str, Any] = Field(default_factory=dict)
    started: str = Field(default_factory=now_iso)
    ended: str | None = None
    tile_grid: dict[str, Any] = Field(default_factory=dict)
    tiles_computed: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None

    def reuse_key(self) -> str:
        """What decides whether an earlier output can be reused: input content, denoiser, code."""
        return fingerprint(
            {
                "input": self.input.content_hash,
                "denoiser": self.denoiser,
                "code": self.code["version"],
                "commit": self.code.get("git_commit"),
            }
        )


def write_lineage(store: str | os.PathLike, record: LineageRecord) -> None:
    """Store ``record`` in the attributes of ``store`` (``attrs['lineage']``)."""
    from seiscore.io import set_attrs

    set_attrs(store, {LINEAGE_ATTR: record.model_dump(mode="json")})


def read_lineage(store: str | os.PathLike) -> LineageRecord | None:
    """The lineage record of ``store``, or None when it has none (or does not exist)."""
    try:
        raw = zarr.open_group(str(store), mode="r", use_consolidated=False).attrs.get(LINEAGE_ATTR)
    except FileNotFoundError:
        return None
    return LineageRecord.model_validate(raw) if raw else None


# --- OpenLineage --------------------------------------------------------------------------

PRODUCER = f"https://github.com/seiscore/seiscore/tree/{seiscore.__version__}"


def _seiscore_facet():
    from openlineage.client.generated.base import RunFacet

    @attr.define
    class SeiscoreRunFacet(RunFacet):
        """The full lineage record of the run."""

        record: dict = attr.field(factory=dict)

    return SeiscoreRunFacet


def make_client(settings: PipelineSettings):
    """OpenLineage client: HTTP when ``openlineage_url`` is set, else a JSON-lines file."""
    from openlineage.client import OpenLineageClient

    if settings.openlineage_url:  # an endpoint that is down or slow never fails the run: see lineage_spool
        from seiscore.core.lineage_spool import SpoolingTransport

        return OpenLineageClient(transport=SpoolingTransport(settings.openlineage_url, settings.lineage_dir))
    from openlineage.client.transport.file import FileConfig, FileTransport

    settings.lineage_dir.mkdir(parents=True, exist_ok=True)
    path = settings.lineage_dir / "events.jsonl"
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))


def emit_event(record: LineageRecord, event_type: str, settings: PipelineSettings, client=None) -> str | None:
    """Send one OpenLineage run event (START, COMPLETE or FAIL) for ``record``.

    Returns a one-line warning when the HTTP endpoint could not take it (the event is then spooled,
    :mod:`seiscore.core.lineage_spool`; said once per run), else None."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.generated.error_message_run import ErrorMessageRunFacet

    facets: dict[str, Any] = {"seiscore": _seiscore_facet()(record=record.model_dump(mode="json"))}
    if record.error:
        facets["errorMessage"] = ErrorMessageRunFacet(message=record.error, programmingLanguage="python")
    event = RunEvent(
        eventType=RunState[event_type],
        eventTime=now_iso(),
        run=Run(runId=record.run_id, facets=facets),
        job=Job(namespace=settings.openlineage_namespace, name=f"process_survey.{record.survey}"),
        inputs=[InputDataset(namespace="file", name=record.input.uri)],
        outputs=[OutputDataset(namespace="file", name=record.output.uri)],
        producer=PRODUCER,
    )
    client = client or make_client(settings)
    client.emit(event)
    client.close()
    return getattr(client.transport, "warning", None)


def read_events(path: str | os.PathLike) -> list[dict]:
    """Events of a file transport's JSON-lines log, oldest first."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
