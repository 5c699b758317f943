"""A tiny progress channel: long-running code reports "done of total", front ends listen.

The flows report tiles written (``report("tiles", label, done, total)``); the CLI subscribes a
progress bar with :func:`listening`. No Prefect or Dask here, so the library and the flows can
report and any caller can listen. A failing listener never fails the run that reports.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of ``what`` (e.g. ``"tiles"``) of ``label`` (e.g. an output store)."""

    what: str
    label: str
    done: int
    total: int


Listener = Callable[[Progress], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


@contextmanager
def listening(listener: Listener) -> Iterator[Listener]:
    """Call ``listener`` with every :class:`Progress` reported while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield listener
    finally:
        with _lock:
            _listeners.remove(listener)


def report(what: str, label: str, done: int, total: int) -> None:
    """Tell the listeners that ``done`` of ``total`` ``what`` of ``label`` are finished."""
    with _lock:
        listeners = list(_listeners)
    event = Progress(what, label, int(done), int(total))
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a display must never fail the run it shows
            pass
