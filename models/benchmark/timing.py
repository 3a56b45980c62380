"""Timing and memory helpers for the benchmarks (Qt-free, no torch import).

All clocks are ``time.perf_counter`` wall time; on a shared machine the **best** of several repeats is
the figure closest to the code's own cost, the median shows the noise. Memory: resident set size in MB
(1 MB = 2**20 bytes) from ``/proc/self/statm`` (current) and ``resource.getrusage`` (peak).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Seconds per call: ``best`` (min), ``median`` and the number of timed ``repeats``."""

    best: float
    median: float
    repeats: int

    def rtf(self, audio_s: float) -> float:
        """Real-time factor: seconds of audio processed per second of compute (higher is faster)."""
        return audio_s / self.best if self.best > 0 else float("inf")


def time_call(
    fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1, budget_s: float | None = None
) -> Timing:
    """Time ``fn()`` ``repeat`` times after ``warmup`` untimed calls.

    ``budget_s`` caps the timed repeats by wall time (at least one timed call always runs), so slow
    configurations do not stall a run.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if budget_s is not None and time.perf_counter() - start > budget_s:
            break
    return Timing(best=min(times), median=statistics.median(times), repeats=len(times))


def rss_mb() -> float:
    """Current resident set size of this process in MB (0.0 where ``/proc`` is unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far in MB.

    Linux: ``VmHWM`` of ``/proc/self/status`` (the high-water mark of this process's own address space;
    ``getrusage``'s ``ru_maxrss`` would also count the parent's memory at the ``fork`` before ``exec``).
    Elsewhere ``getrusage`` (kB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none)."""
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return None


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation) of ``values``; NaN for an empty list."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
