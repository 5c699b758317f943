"""OpenLineage events that could not be sent: kept in a spool file and re-sent later, in order.

Lineage is a side system: an HTTP endpoint that is down, slow (no answer within
:data:`HTTP_TIMEOUT_S`) or answering an error never fails a run. The event is kept as one JSON
line in ``<lineage dir>/spool.jsonl`` and the caller gets one warning per run. The spool is
re-sent, oldest first, before the next event goes out (the next run's first lineage event) and
by ``seis lineage flush``; each event leaves the spool as soon as the endpoint accepted it.

Every change of the spool rewrites it under a temporary name, fsyncs it and renames it into
place, under an exclusive lock (``spool.lock``), so it never holds a half line and two runs
never lose or double-send each other's events. (A process killed between the endpoint's answer
and that rewrite sends the event once more on the next flush.)
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from openlineage.client.serde import Serde
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport

SPOOL_NAME = "spool.jsonl"
HTTP_TIMEOUT_S = 5.0  # connect and read timeout of one POST (the client's retries are off: the spool retries)
NO_RETRIES = {"total": 0}

_runs_warned: set[tuple[str, str | None]] = set()  # (endpoint, run id) found unreachable in this process


def spool_path(lineage_dir: str | os.PathLike) -> Path:
    """The spool file under ``lineage_dir``."""
    return Path(lineage_dir) / SPOOL_NAME


def http_transport(url: str, timeout_s: float = HTTP_TIMEOUT_S) -> HttpTransport:
    """The OpenLineage HTTP transport with a short timeout and no retries of its own."""
    return HttpTransport(HttpConfig(url=url, timeout=timeout_s, retry=dict(NO_RETRIES)))


def describe(exc: BaseException) -> str:
    """One line for a failed POST (requests' messages nest the whole retry history)."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.Timeout):
        return "no answer within the timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return f"{type(exc).__name__}: {exc}"


class Spool:
    """The JSON-lines file of unsent events (one serialised event per line, oldest first)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @contextmanager
    def locked(self):
        """Exclusive lock over the spool (held across a flush and the sends it makes)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            os.close(fd)  # releases the lock

    def pending(self) -> list[str]:
        """The unsent events as JSON lines (call with the lock held when others may write)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()]

    def _write(self, lines: list[str]) -> None:
        if not lines:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def append(self, line: str) -> None:
        """Add one serialised event at the end (lock held)."""
        self._write([*self.pending(), line])

    def flush(self, send: Callable[[dict], Any]) -> tuple[int, list[str], BaseException | None]:
        """Send the pending events in order (lock held) until one fails; returns (sent, still pending, error)."""
        lines = self.pending()
        for i, line in enumerate(lines):
            try:
                send(json.loads(line))
            except Exception as exc:  # noqa: BLE001 - any failure leaves the rest for later
                return i, lines[i:], exc
            self._write(lines[i + 1 :])
        return len(lines), [], None


def flush_spool(url: str, lineage_dir: str | os.PathLike) -> tuple[int, int, str | None]:
    """Re-send the spooled events to ``url``: (sent, remaining, why the first unsent one failed or None)."""
    transport = http_transport(url)
    try:
        with Spool(spool_path(lineage_dir)).locked() as spool:
            sent, left, exc = spool.flush(transport.emit)
    finally:
        transport.close()
    return sent, len(left), None if exc is None else describe(exc)


class SpoolingTransport(Transport):
    """HTTP transport that spools what it cannot send (see the module docstring).

    ``warning`` is set to one line when an event was spooled and this run had not been warned yet."""

    kind = "seiscore-spooling-http"

    def __init__(self, url: str, lineage_dir: str | os.PathLike, timeout_s: float = HTTP_TIMEOUT_S):
        self.url = url
        self.http = http_transport(url, timeout_s)
        self.spool = Spool(spool_path(lineage_dir))
        self.warning: str | None = None

    def emit(self, event) -> None:
        """Send ``event``; when the endpoint is down, append it to the spool (and set :attr:`warning` once)."""
        run = getattr(getattr(event, "run", None), "runId", None)
        key = (self.url, None if run is None else str(run))
        down = key in _runs_warned  # this run found the endpoint unavailable: do not wait on it again
        exc = None
        if not down and not self.spool.path.exists():  # nothing waiting: send without touching the disk
            exc = self._send(event)
            if exc is None:
                return
        with self.spool.locked():
            if not down and exc is None:
                if self.spool.pending():
                    exc = self.spool.flush(self.http.emit)[2]  # older events first
                if exc is None:
                    exc = self._send(event)
                    if exc is None:
                        return
            self.spool.append(Serde.to_json(event))
            n = len(self.spool.pending())
        if not down:
            _runs_warned.add(key)
            self.warning = (
                f"OpenLineage endpoint {self.url} unavailable ({describe(exc)}); event kept in "
                f"{self.spool.path} ({n} unsent; re-sent by the next run or `seis lineage flush`)"
            )

    def _send(self, event) -> BaseException | None:
        try:
            self.http.emit(event)
        except Exception as exc:  # noqa: BLE001 - lineage never fails a run
            return exc
        return None

    def close(self, timeout: float = -1) -> bool:
        """Close the HTTP transport; True when it closed within ``timeout`` seconds."""
        return self.http.close(timeout)
