"""What ``seis`` shows: quiet logging by default, a tile progress bar, true paths.

- :func:`configure_logging` runs before Prefect or Dask is imported: unless ``verbose``, Prefect
  logs warnings and errors only (``PREFECT_LOGGING_LEVEL``; flow / task state lines, the temporary
  server's start and stop lines go), Dask's ``distributed`` logger too, in this process and, through
  the environment, in the worker processes (``DASK_LOGGING__DISTRIBUTED``); shutdown chatter after
  the flow has finished (nanny kills, closed-comm tracebacks, the events worker draining) is
  dropped. Variables the user set already win.
- :func:`tile_progress`: a tqdm bar of tiles written / total with ETA on stderr, fed by
  :mod:`seiscore.core.progress`, shown when stderr is a terminal or when forced (``seis fit``: the
  same bar over a fit's steps or epochs).
- :func:`shown`: the absolute, resolved form of a path, as printed.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

QUIET_ENV = {"PREFECT_LOGGING_LEVEL": "WARNING", "DASK_LOGGING__DISTRIBUTED": "warning"}
VERBOSE_ENV = {"PREFECT_LOGGING_LEVEL": "INFO", "DASK_LOGGING__DISTRIBUTED": "info"}
# Logged by Dask / Prefect while a finished run's cluster and clients shut down: not for the user.
SHUTDOWN_NOISE = (
    "Worker process still alive after",
    "CommClosedError",
    "Stream is closed",
    "Still processing items",
    "Port 8787 is already in use",
)


class _DropShutdownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            text += " " + record.exc_info[0].__name__
        return not any(s in text for s in SHUTDOWN_NOISE)


def configure_logging(verbose: bool) -> None:
    """Set the log levels of Prefect and Dask for this process and its workers (call first)."""
    for key, value in (VERBOSE_ENV if verbose else QUIET_ENV).items():
        os.environ.setdefault(key, value)
    if verbose:
        return
    level = os.environ["DASK_LOGGING__DISTRIBUTED"]
    if "dask" in sys.modules:  # imported before the variable was set: tell its config too
        import dask

        dask.config.set({"logging.distributed": level})
    if "distributed" in sys.modules:  # its loggers are configured at import
        logging.getLogger("distributed").setLevel(level.upper())
    noise = _DropShutdownNoise()
    for name in (
        "distributed",
        "distributed.nanny",
        "distributed.worker",
        "distributed.core",
        "distributed.comm",
        "distributed.batched",
        "prefect",
        "prefect.events",
        "tornado.application",
        "asyncio",
    ):
        logging.getLogger(name).addFilter(noise)
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")


def shown(path) -> str:
    """``path`` as printed: absolute, symlinks resolved."""
    return str(Path(path).expanduser().resolve())


@contextmanager
def tile_progress(enabled: bool | None = None, kinds: tuple[str, ...] = ("tiles",)) -> Iterator[None]:
    """Show the tiles written by the runs inside the block as a progress bar on stderr.

    ``enabled``: True / False force it on / off; None (auto) shows it when stderr is a terminal.
    One bar per output store (a new bar starts when another store reports). ``kinds``: the progress
    kinds shown (:class:`seiscore.core.progress.Progress` ``what``; ``seis fit``: steps, epochs).
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield
        return
    from tqdm import tqdm

    from seiscore.core import progress

    state: dict = {"bar": None, "label": None}

    def on_progress(p: progress.Progress) -> None:
        if p.what not in kinds:
            return
        bar = state["bar"]
        if bar is None or state["label"] != p.label or p.done < bar.n:
            if bar is not None:
                bar.close()
            bar = state["bar"] = tqdm(
                total=p.total,
                initial=p.done,
                desc=f"{p.label} {p.what}",
                unit=p.what.removesuffix("s"),
                file=sys.stderr,
                dynamic_ncols=True,
            )
            state["label"] = p.label
        bar.update(p.done - bar.n)

    try:
        with progress.listening(on_progress):
            yield
    finally:
        if state["bar"] is not None:
            state["bar"].close()
