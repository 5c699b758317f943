"""Whether an up-to-date output's SEG-Y export must be written again.

A run asked to export (``--export-segy``) whose output is already up to date exports when the
SEG-Y is missing or older than the start of the run that produced the output (so it was made
from an earlier output); an export of the current output is left as it is.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def segy_is_current(segy: str | Path, output_started: str | None) -> bool:
    """True when the file ``segy`` exists and was written after ``output_started`` (ISO time of
    the start of the run that wrote the current output; None: unknown, so not current)."""
    path = Path(segy)
    if not path.is_file() or not output_started:
        return False
    started = datetime.fromisoformat(output_started).timestamp()
    return path.stat().st_mtime >= started
