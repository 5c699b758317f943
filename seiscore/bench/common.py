"""Helpers shared by the benchmarks: timing medians, peak memory, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import psutil

RESULTS_DIR = Path(os.environ.get("SEIS_BENCH_RESULTS", "benchmarks/results"))


def machine() -> dict[str, Any]:
    """Describe the machine a figure was measured on."""
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Run ``fn`` ``repeats`` times; return (median seconds, all times, last result)."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


class PeakRSS:
    """Context manager sampling this process's resident memory (plus children) every few ms.

    ``peak`` is the maximum RSS in bytes seen while the block ran; ``delta`` is the peak
    minus the RSS when the block started.
    """

    def __init__(self, interval: float = 0.005, children: bool = True):
        self.interval, self.children = interval, children
        self.peak = self.start = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        proc = psutil.Process()
        rss = proc.memory_info().rss
        if self.children:
            for child in proc.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
        return rss

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def delta(self) -> int:
        """Peak resident memory above the level at entry, in bytes."""
        return self.peak - self.start


def write_results(name: str, payload: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``benchmarks/results/NAME.json`` and ``NAME.md``; return both paths."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), **payload}
    json_path = RESULTS_DIR / f"{name}.json"
    md_path = RESULTS_DIR / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
