"""Prefect side of the ``fit`` run mode: typed fit events -> Prefect artifacts and log lines.

:class:`EventPublisher` is the callback a fit flow gives its run (:class:`seiscore.execution.fit.FitRun`):

- a progress artifact ``PREFIX-training-progress`` over all epochs of all phases;
- a table ``PREFIX-training-metrics``, one new version per epoch (every epoch so far);
- a markdown ``PREFIX-model-NAME`` per artifact folder, with its metrics (one row per entry);
- log lines for epochs, resumed phases and artifacts.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from seiscore.execution.fit import FitArtifact, FitEpoch, FitEvent, FitStart


def _rounded(value: Any) -> Any:
    return round(value, 5) if isinstance(value, float) else value


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}".rstrip("0").rstrip(".")
    return "-" if value is None else str(value)


def metrics_markdown(title: str, path: str, metrics: dict[str, Any], columns: dict[str, str] | None = None) -> str:
    """Markdown of an artifact: its folder and a table of ``metrics``. Nested metrics (e.g. per mode) give one
    row per entry with ``columns`` (metric key -> header; default: every key seen); flat ones a two-column
    table."""
    lines = [f"# {title}", "", f"Folder: `{path}`", ""]
    nested = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    if nested:
        if columns is None:
            columns = {c: c for row in nested.values() for c in row}
        lines += ["| | " + " | ".join(columns.values()) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [f"| {k} | " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for k, row in nested.items()]
    flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if flat:
        lines += ["", "| metric | value |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in flat.items()]
    return "\n".join(lines)


class EventPublisher:
    """Fit callback publishing the run's epochs and artifacts to Prefect (see the module docstring).

    ``total_epochs``: epochs of all phases together (the progress artifact's 100 %; None: the sum of the
    epochs announced by the phases started so far); ``prefix``: the artifact keys' prefix (e.g. ``"ssb"``);
    ``title``: the method's name in descriptions; ``columns``: metric key -> header of the artifact tables.
    """

    def __init__(
        self,
        total_epochs: int | None = None,
        *,
        prefix: str,
        title: str = "",
        columns: dict[str, str] | None = None,
    ):
        self.total_epochs = total_epochs
        self.phase_epochs: dict[str, int] = {}
        self.prefix, self.title, self.columns = prefix, title or prefix.upper(), columns
        self.rows: list[dict[str, Any]] = []
        self.progress_id = create_progress_artifact(
            0.0, key=f"{prefix}-training-progress", description=f"{self.title} training epochs done"
        )
        self.logger = get_run_logger()

    def __call__(self, event: FitEvent) -> None:
        """Publish one event (others are ignored)."""
        if isinstance(event, FitEpoch):
            row = {k: _rounded(v) for k, v in event.row().items()}
            self.rows.append(row)
            create_table_artifact(
                self.rows, key=f"{self.prefix}-training-metrics", description=f"{self.title} per-epoch metrics"
            )
            update_progress_artifact(self.progress_id, 100.0 * self._done() / self.total)
            shown = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("phase", "epoch", "seconds"))
            self.logger.info(f"{event.phase} epoch {event.epoch}: {shown}")
        elif isinstance(event, FitStart):
            self.phase_epochs[event.phase] = event.epochs
            if event.start_epoch:
                self.logger.info(f"{event.phase}: resuming at epoch {event.start_epoch}")
        elif isinstance(event, FitArtifact):
            md = metrics_markdown(f"{self.title} model `{event.name}`", event.path, event.metrics, self.columns)
            create_markdown_artifact(md, key=f"{self.prefix}-model-{event.name.replace('_', '-')}")
            self.logger.info(f"saved {event.name} -> {event.path}")

    @property
    def total(self) -> int:
        """Epochs of the whole run (at least 1)."""
        total = self.total_epochs if self.total_epochs is not None else sum(self.phase_epochs.values())
        return max(int(total), 1)

    def _done(self) -> int:
        return len({(r["phase"], r["epoch"]) for r in self.rows})
