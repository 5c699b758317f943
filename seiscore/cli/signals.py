"""Clean stops of the long commands (``seis run``, ``reprocess``, ``demo``) on Ctrl-C (SIGINT) or SIGTERM.

On the first signal the command prints one line, silences everything else it would print (Prefect's crash
report, Dask's shutdown lines, tracebacks of threads being torn down) and unwinds: ``KeyboardInterrupt`` is
raised in the main thread, so the run's own clean-up (temporary files, locks, the flow run's state) happens.
The command then ends its child processes (the local Dask workers, the temporary Prefect server) and exits
130 (SIGINT) or 143 (SIGTERM). A watchdog bounds the whole stop to ``STOP_DEADLINE_S`` seconds: if unwinding
hangs (e.g. the Prefect server it reports to is gone), it ends the children and exits anyway. A second
signal exits at once the same way.

The state is process-wide: :func:`stopping` tells other code (the flows' task runner) that a stop is in
progress, and :func:`begin` lets it start one from a signal handler of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
STOP_DEADLINE_S = 7.0  # signal -> process gone, at most (children included)
REAP_GRACE_S = 1.5  # SIGTERM -> SIGKILL for child processes still alive when the command ends

_state: dict = {"command": None, "signum": None}


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when the command is asked to stop."""


def stopping() -> bool:
    """True once a stop has begun in this process."""
    return _state["signum"] is not None


def exit_code() -> int:
    """The exit status of the stop in progress: 130 (SIGINT) or 143 (SIGTERM)."""
    return EXIT_CODES.get(_state["signum"], 130)


def message(command: str, signum: int) -> str:
    """The one line printed when ``command`` is stopped by ``signum``."""
    how = "interrupted" if signum == signal.SIGINT else "stopped by SIGTERM"
    return (
        f"seis {command}: {how}; the published output is unchanged and finished tiles are kept; "
        "rerun the same command to resume"
    )


def begin(signum: int) -> bool:
    """Start a stop (print the line, silence the rest, arm the watchdog); False if one had begun already or
    no command armed stops in this process."""
    if _state["command"] is None or _state["signum"] is not None:
        return False
    _state["signum"] = signum
    try:
        os.write(2, (message(_state["command"], signum) + "\n").encode())
    except OSError:
        pass
    _silence()
    threading.Thread(target=_watchdog, name="seis-stop-watchdog", daemon=True).start()
    return True


def _handler(signum, frame) -> None:
    if not begin(signum):
        if stopping():  # a second signal: do not wait any longer
            finish()
        return
    raise Interrupted()


def _silence() -> None:
    """Send what this process would still print to /dev/null (the one line is out already)."""
    logging.disable(logging.CRITICAL)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass


def _watchdog() -> None:
    time.sleep(STOP_DEADLINE_S - REAP_GRACE_S - 0.5)
    finish()


def reap_children(grace_s: float = REAP_GRACE_S) -> None:
    """End every process this one started (Dask workers, the temporary Prefect server): SIGTERM, then SIGKILL."""
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=0.5)


def finish() -> None:
    """End the stop: children gone, exit with 130 / 143 without running further clean-up of the interpreter."""
    reap_children()
    os._exit(exit_code())


@contextmanager
def clean_stops(command: str) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM stop the command cleanly (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in EXIT_CODES}
    _state.update(command=command, signum=None)
    try:
        yield
    except KeyboardInterrupt:
        begin(signal.SIGINT)  # no-op when a signal started the stop; else e.g. a KeyboardInterrupt of the engine
        raise
    finally:
        if stopping():  # whatever the unwinding turned the interrupt into (or swallowed): one exit path
            finish()
        for s, h in previous.items():
            signal.signal(s, h)
        _state["command"] = None


def dask_setup(worker) -> None:
    """Dask preload (``preload=["seiscore.cli.signals"]``) of local workers: a terminal's Ctrl-C reaches the
    whole process group; the workers ignore it and the command stops them, instead of each printing a traceback."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
