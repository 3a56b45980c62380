"""Live-path measurements: a synthetic real-time stream through
 :class:`~models.tagging.pipeline.StreamTagger`.

The feeder (:class:`app`-free stand-in for the audio callback, a thread pacing blocks in real time)
writes each block into the tagger's ring buffer and notes when every input sample arrived; the
measuring thread plays the inference worker: it polls ``process_latest`` every ``poll_s`` seconds like
the GUI worker does. For every result it records

- ``compute_ms``: wall time of the ``process_latest`` calls since the previous result, the one that
  produced it included (resampling + encoder + tagger), i.e. the compute spent per hop;
- ``latency_ms``: from the moment the newest sample of the window entered the ring buffer to the
  moment its tags were available (includes waiting for the hop to complete, the poll and compute).

Used by ``encotag bench`` (a few seconds) and ``tools/soak.py`` (30 minutes and more).
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.benchmark.timing import percentile, rss_mb
from models.config import WindowConfig
from models.tagging.pipeline import StreamTagger


@dataclass
class LiveStats:
    """What one measuring interval saw; times in ms, ``skipped_s`` input seconds dropped (worker late)."""

    seconds: float
    results: int
    latency_ms: list[float] = field(default_factory=list)
    compute_ms: list[float] = field(default_factory=list)
    call_ms: list[float] = field(default_factory=list)  # the producing call alone (within latency)
    skipped_s: float = 0.0
    rss_mb: float = 0.0

    def summary(self) -> dict[str, float]:
        """p50 / p95 / max of latency and compute, results per second, RSS (JSON-ready)."""
        lat, com = self.latency_ms, self.compute_ms
        return {
            "seconds": round(self.seconds, 3),
            "results": self.results,
            "results_per_s": round(self.results / self.seconds, 3) if self.seconds > 0 else 0.0,
            "latency_p50_ms": round(percentile(lat, 50), 3),
            "latency_p95_ms": round(percentile(lat, 95), 3),
            "latency_max_ms": round(max(lat), 3) if lat else float("nan"),
            "compute_p50_ms": round(percentile(com, 50), 3),
            "compute_p95_ms": round(percentile(com, 95), 3),
            "compute_max_ms": round(max(com), 3) if com else float("nan"),
            "skipped_s": round(self.skipped_s, 3),
            "rss_mb": round(self.rss_mb, 1),
        }


def synthetic_signal(sr: int, seconds: float = 20.0, seed: int = 0) -> np.ndarray:
    """A varied mono test signal (n,) float32 at ``sr``: tones, chirp-like sweeps and noise bursts."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n, dtype=np.float64) / sr
    x = 0.15 * np.sin(2 * np.pi * 220.0 * t) * (np.sin(2 * np.pi * 0.25 * t) > 0)
    x += 0.1 * np.sin(2 * np.pi * (300.0 + 200.0 * np.sin(2 * np.pi * 0.1 * t)) * t)
    bursts = (np.sin(2 * np.pi * 0.7 * t) > 0.8).astype(np.float64)
    x += 0.2 * bursts * rng.standard_normal(n)
    return x.astype(np.float32)


class LiveProbe:
    """Feeds ``signal`` (looped, at ``speed`` × real time) into a :class:`StreamTagger` over ``engine``.

    ``signal``: mono float32 (n,) at ``input_sr``. Call :meth:`start`, then :meth:`measure` as often as
    wanted (each returns the :class:`LiveStats` of its interval), then :meth:`stop`.
    """

    def __init__(
        self,
        engine: Any,
        signal: np.ndarray,
        input_sr: int = 48000,
        *,
        window: WindowConfig | None = None,
        block_size: int = 1024,
        poll_s: float = 0.005,
        speed: float = 1.0,
    ) -> None:
        self.tagger = StreamTagger(engine, window, input_sr)
        self.input_sr = int(input_sr)
        self.signal = np.asarray(signal, dtype=np.float32)
        self.block_size = int(block_size)
        self.poll_s = float(poll_s)
        self.speed = float(speed)
        self._totals: list[int] = []  # ring total after each block …
        self._times: list[float] = []  # … and when that block arrived
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    # ---------------------------------------------------------------- feeder
    def _feed(self) -> None:
        n, pos, sent = len(self.signal), 0, 0
        t0 = time.perf_counter()
        while not self._stop.is_set():
            k = min(self.block_size, n - pos)
            self.tagger.push(self.signal[pos : pos + k])
            now = time.perf_counter()
            with self._lock:
                self._totals.append(self.tagger.ring.total)
                self._times.append(now)
            pos = 0 if pos + k >= n else pos + k
            sent += k
            due = t0 + sent / (self.input_sr * self.speed)
            if due > now:
                self._stop.wait(due - now)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("live probe already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._feed, name="live-probe-feeder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _arrival(self, input_index: int) -> float | None:
        """When input sample ``input_index`` (0-based, absolute) entered the ring; prunes older blocks."""
        with self._lock:
            i = bisect.bisect_right(self._totals, input_index)
            if i >= len(self._totals):
                return None
            t = self._times[i]
            if i > 64:  # keep the lists short: later queries are never older than this one
                del self._totals[: i - 1]
                del self._times[: i - 1]
            return t

    # ---------------------------------------------------------------- worker
    def measure(self, seconds: float) -> LiveStats:
        """Play the inference worker for ``seconds``; returns this interval's statistics."""
        stats = LiveStats(seconds=0.0, results=0)
        skipped0 = self.tagger.skipped_s
        start = time.perf_counter()
        end = start + seconds
        spent = 0.0  # compute of the calls since the last result (resampling between results counts)
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            result = self.tagger.process_latest()
            t1 = time.perf_counter()
            spent += t1 - t0
            if result is None:
                time.sleep(self.poll_s)
                continue
            stats.results += 1
            stats.compute_ms.append(1000.0 * spent)
            stats.call_ms.append(1000.0 * (t1 - t0))
            spent = 0.0
            newest = round(result.end * self.input_sr) - 1
            arrived = self._arrival(max(0, newest))
            if arrived is not None:
                stats.latency_ms.append(1000.0 * (t1 - arrived))
        stats.seconds = time.perf_counter() - start
        stats.skipped_s = self.tagger.skipped_s - skipped0
        stats.rss_mb = rss_mb()
        return stats
