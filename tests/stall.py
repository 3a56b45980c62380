"""How long the GUI thread blocks its own event loop, measured from a 10 ms QTimer's ticks.

Between two ticks the GUI thread either works (its CPU time), waits for a CPU (its run-queue time, Linux
schedstat), or sleeps: idle in the event loop, or waiting for the GIL that a worker thread holds while the
OS has that thread descheduled. On a loaded machine the last can last a second without the app doing
anything wrong, so the figure the GUI tests bound is the GUI thread's **CPU time between ticks** (work
done on the GUI thread: decoding, tagging, a table reset); the wall gap and the wall gap less run-queue
waits are kept for the message.
"""

from __future__ import annotations

import time


def run_queue_wait_s() -> float | None:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat), or None."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class TickGaps:
    """Call :meth:`tick` from a QTimer on the GUI thread; read the gaps afterwards (seconds)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.unqueued: list[float] = []  # wall gap less the run-queue wait
        self.cpu: list[float] = []  # the GUI thread's own CPU time in the gap
        self._last = (time.perf_counter(), run_queue_wait_s(), time.thread_time())

    def tick(self) -> None:
        now, wait, cpu = time.perf_counter(), run_queue_wait_s(), time.thread_time()
        t0, w0, c0 = self._last
        queued = wait - w0 if wait is not None and w0 is not None else 0.0
        self.wall.append(now - t0)
        self.unqueued.append(now - t0 - queued)
        self.cpu.append(cpu - c0)
        self._last = (now, wait, cpu)

    def summary(self) -> str:
        return (
            f"{len(self.wall)} ticks, max gap {max(self.wall) * 1000:.0f} ms wall, "
            f"{max(self.unqueued) * 1000:.0f} ms without run-queue waits, "
            f"{max(self.cpu) * 1000:.0f} ms of GUI-thread CPU"
        )
