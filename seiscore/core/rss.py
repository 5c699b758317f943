"""Peak resident memory (RSS high-water) of a stretch of work in this process.

Linux keeps the process's RSS high-water mark (``VmHWM`` in ``/proc/self/status``) and lets the
process reset it (write ``5`` to ``/proc/self/clear_refs``). :class:`PeakRSS` resets it on entry
(only when no other :class:`PeakRSS` of this process is running, so threads measuring at once never
erase each other's peak) and reads it on exit: ``peak`` is the process's highest RSS over the
stretch - exact up to the kernel's lazy RSS accounting, never lower than the true peak of the
stretch, and with several tasks at once in one process it includes theirs (conservative). Where the
high-water cannot be reset (another OS, a locked-down ``/proc``), a thread samples the RSS every
``interval`` seconds instead (a peak shorter than the interval can be missed).
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_active = 0


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def current_rss() -> int:
    """Resident bytes of this process now."""
    value = _status_bytes("VmRSS")
    if value is not None:
        return value
    import psutil

    return int(psutil.Process().memory_info().rss)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status_bytes("VmHWM") is not None


def trim_heap() -> bool:
    """Hand the C heap's free memory back to the OS (glibc ``malloc_trim(0)``, every thread's arena); False where
    there is no glibc. Buffers freed in other threads (e.g. zarr's decompression) otherwise stay resident in
    their arenas, which the main thread's next allocations cannot reuse."""
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if not _trim:
        return False
    _trim(0)
    return True


_trim = None


class PeakRSS:
    """Context manager measuring this process's RSS high-water over its body.

    After exit: ``start`` (RSS on entry), ``peak`` (high-water over the body, >= start) and
    ``increment`` (``peak - start``: what the body added on top of what the process held).
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.start = self.peak = 0
        self._hwm = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def increment(self) -> int:
        """Bytes the body added at its peak over the RSS on entry."""
        return max(self.peak - self.start, 0)

    def __enter__(self) -> PeakRSS:
        global _active
        with _lock:
            self._hwm = _reset_hwm() if _active == 0 else _status_bytes("VmHWM") is not None
            _active += 1
        self.start = self.peak = current_rss()
        if not self._hwm:
            self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, current_rss())

    def __exit__(self, *exc) -> None:
        global _active
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        now = current_rss()
        hwm = _status_bytes("VmHWM") if self._hwm else None
        self.peak = max(self.peak, now, hwm or 0)
        with _lock:
            _active -= 1
