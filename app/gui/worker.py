"""The inference worker: one QObject living in its own QThread that alone owns the Engine (and torch).

Threads (docs/ARCHITECTURE.md): the audio source callback only writes into a ``RingBuffer``; this worker
polls that buffer for the newest complete window (newest wins: stale windows are skipped, nothing is
queued), runs the engine and emits a ``WindowResult``; file jobs (decode + tag, with progress and
cancel) run on the same thread, and the live stream keeps being served between file windows. Only numpy
arrays and frozen dataclasses cross threads, through queued signals.

Signals carry ``object`` payloads: ``PackInfo``, ``WindowResult``, ``ResultBatch``, ``Overview``,
``Progress`` (all frozen) and plain strings/ints.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from app.gui.series import Overview, ResultBatch, envelope
from models.config import WindowConfig
from models.results import Progress, WindowResult

log = logging.getLogger(__name__)

OVERVIEW_RATE = 8000  # Hz, decode rate of the waveform overview
OVERVIEW_BINS_PER_S = 200
BATCH_INTERVAL_S = 0.1  # file results are handed to the GUI at most this often


def inference_threads() -> int:
    """Torch threads for the worker: half the cores (at most 4), leaving the rest to the GUI and audio."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class LiveTap:
    """The audio-callback side of the live path (Qt-free, callback-safe).

    ``write(block)`` is what an input source calls for every block (float32 ``(n,)`` or ``(n, ch)``): it
    copies the block into the display ring (level meter, scope) and, once the engine is ready, into the
    ``StreamTagger``'s ring. Nothing else happens on the audio thread.
    """

    def __init__(self, sample_rate: int, channels: int = 1, display_s: float = 10.0) -> None:
        from models.pipeline import RingBuffer

        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.display = RingBuffer(max(1, int(display_s * sample_rate)), channels)
        self.tagger: Any = None  # models.pipeline.StreamTagger, attached by the worker

    def write(self, block: np.ndarray) -> None:
        self.display.write(block)
        tagger = self.tagger
        if tagger is not None:
            tagger.push(block)

    __call__ = write

    def latest_mono(self, n: int) -> np.ndarray:
        """The newest ``n`` frames as mono float32 (for display)."""
        x, _ = self.display.read_latest(n)
        return x if x.ndim == 1 else x.mean(axis=1)


class InferenceWorker(QObject):
    """Owns the Engine; serves the live stream and file jobs. Create it, ``moveToThread``, then ``load``."""

    engine_loading = Signal(str)  # pack path or "default"
    engine_ready = Signal(object)  # PackInfo
    engine_failed = Signal(str)  # one-line reason
    live_result = Signal(object)  # WindowResult
    live_error = Signal(str)
    file_started = Signal(int, str)  # job id, path
    file_overview = Signal(int, object)  # job id, Overview
    file_batch = Signal(int, object)  # job id, ResultBatch
    file_progress = Signal(int, object)  # job id, Progress
    file_finished = Signal(int, str)  # job id, "done" [(truncated: …)] | "cancelled" | "error: <reason>"
    jobs_idle = Signal()

    _kick_jobs = Signal()

    def __init__(self, window: WindowConfig | None = None) -> None:
        super().__init__()
        self.window = window or WindowConfig()
        self.engine: Any = None
        self.head: Any = None
        self._tap: LiveTap | None = None
        self._lock = threading.Lock()
        self._jobs: collections.deque[tuple[int, Path]] = collections.deque()
        self._cancel: dict[int, threading.Event] = {}
        self._running_jobs = False
        self._load_failed = False
        self._timer: QTimer | None = None
        self._kick_jobs.connect(self._drain_jobs)

    # --- engine ---------------------------------------------------------------------------------------
    @Slot(object)
    def load(self, pack_path: str | None) -> None:
        """Load ``Engine.load(pack_path)`` on this thread (None = the shipped default pack)."""
        self.engine_loading.emit(pack_path or "default")
        try:
            from models.engine import Engine

            t0 = time.perf_counter()
            engine = Engine.load(Path(pack_path) if pack_path else None, threads=inference_threads())
        except Exception as exc:  # noqa: BLE001 - any failure becomes a visible notice, never a crash
            from models.engine import EngineError
            from models.pack import PackError
            from models.safeio import printable

            reason = printable(" ".join(str(exc).split()) or type(exc).__name__)
            if isinstance(exc, PackError | EngineError | OSError):  # an ordinary bad pack: one line
                log.warning("cannot load the model pack: %s", reason)
            else:
                log.exception("cannot load the model pack %s", pack_path or "(default)")
            self.engine_failed.emit(reason)
            if self.engine is None:
                self._fail_queued(f"error: no model ({reason})")
            self._load_failed = True
            return
        self._load_failed = False
        self.engine = engine
        log.info("pack %s loaded in %.2f s", engine.info.name, time.perf_counter() - t0)
        self.engine_ready.emit(engine.info)
        self._attach_tagger()
        if self._jobs:
            QTimer.singleShot(0, self._drain_jobs)  # after requests already queued (e.g. start_live)

    @Slot(object)
    def set_head(self, head: Any) -> None:
        """Use a personal head (``models.heads.Head``) for ``head_probs``; None removes it."""
        self.head = head
        if self._tap is not None and self._tap.tagger is not None:
            self._tap.tagger.head = head

    @Slot(object)
    def set_window(self, window: WindowConfig) -> None:
        self.window = window
        if self._tap is not None:
            self._attach_tagger()
        if self._timer is not None and self._timer.isActive():
            self._timer.start(max(10, int(self.window.hop_s * 1000 / 4)))

    # --- live -----------------------------------------------------------------------------------------
    @Slot(object)
    def start_live(self, tap: LiveTap) -> None:
        """Serve ``tap``: tag its newest window every hop (times are seconds since the tagger started)."""
        self._tap = tap
        self._attach_tagger()
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.timeout.connect(self.poll_live)
        self._timer.start(max(10, int(self.window.hop_s * 1000 / 4)))

    def _attach_tagger(self) -> None:
        tap = self._tap
        if tap is None or self.engine is None:
            return
        from models.pipeline import StreamTagger

        tap.tagger = StreamTagger(
            self.engine, self.window, tap.sample_rate, self.head, channels=tap.channels
        )  # fmt: skip

    @Slot()
    def stop_live(self) -> None:
        if self._tap is not None:
            self._tap.tagger = None
        self._tap = None
        if self._timer is not None:
            self._timer.stop()

    @Slot()
    def poll_live(self) -> None:
        """Tag the newest complete live window if a hop has passed since the last one (else nothing)."""
        tap = self._tap
        tagger = None if tap is None else tap.tagger
        if tagger is None:
            return
        try:
            t0 = time.perf_counter()
            result = tagger.process_latest()
            if result is not None:
                log.debug("live window %.2f–%.2f s tagged in %.0f ms", result.start, result.end,
                          1000 * (time.perf_counter() - t0))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - shown to the user, live stops, the app keeps running
            log.exception("live inference failed")
            self.live_error.emit(" ".join(str(exc).split()) or type(exc).__name__)
            self.stop_live()
            return
        if result is not None:
            self.live_result.emit(result)

    # --- files ----------------------------------------------------------------------------------------
    def enqueue(self, job_id: int, path: str | Path) -> None:
        """Queue a file job (thread-safe; callable from the GUI thread)."""
        with self._lock:
            self._cancel[job_id] = threading.Event()
            self._jobs.append((job_id, Path(path)))
        self._kick_jobs.emit()

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job, or every queued and running job when ``job_id`` is None (thread-safe)."""
        with self._lock:
            events = list(self._cancel.values()) if job_id is None else [self._cancel.get(job_id)]
        for ev in events:
            if ev is not None:
                ev.set()

    def _fail_queued(self, status: str) -> None:
        """Finish every queued job with ``status`` (no model to run them)."""
        with self._lock:
            jobs = list(self._jobs)
            self._jobs.clear()
            for job_id, _ in jobs:
                self._cancel.pop(job_id, None)
        for job_id, _ in jobs:
            self.file_finished.emit(job_id, status)

    @Slot()
    def _drain_jobs(self) -> None:
        if self._running_jobs or self.engine is None:
            if self.engine is None and self._load_failed:
                self._fail_queued("error: no model loaded (choose a model pack)")
            return
        self._running_jobs = True
        try:
            while True:
                with self._lock:
                    if not self._jobs:
                        break
                    job_id, path = self._jobs.popleft()
                    cancel = self._cancel[job_id]
                status = self._run_file(job_id, path, cancel)
                with self._lock:
                    self._cancel.pop(job_id, None)
                self.file_finished.emit(job_id, status)
        finally:
            self._running_jobs = False
        self.jobs_idle.emit()

    def _run_file(self, job_id: int, path: Path, cancel: threading.Event) -> str:
        from models.audio import AudioError
        from models.pipeline import TagStats, tag_file

        stats = TagStats()
        self.file_started.emit(job_id, str(path))
        if cancel.is_set():
            return "cancelled"
        try:
            self.file_overview.emit(job_id, self._overview(path, cancel))
            pending: list[WindowResult] = []
            last_emit = time.perf_counter()

            def progress(p: Progress) -> None:
                self.file_progress.emit(job_id, p)

            for result in tag_file(
                self.engine,
                path,
                window=self.window,
                head=self.head,
                progress=progress,
                cancel=cancel,
                batch_size=4,
                stats=stats,
            ):
                pending.append(result)
                now = time.perf_counter()
                if now - last_emit >= BATCH_INTERVAL_S:
                    self.file_batch.emit(job_id, ResultBatch.from_results(pending))
                    pending = []
                    last_emit = now
                    self._service()
                if cancel.is_set():
                    break
            if pending:
                self.file_batch.emit(job_id, ResultBatch.from_results(pending))
        except AudioError as exc:
            log.warning("%s", exc)
            return f"error: {exc}"
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            log.exception("tagging %s failed", path)
            return f"error: {path}: {' '.join(str(exc).split()) or type(exc).__name__}"
        if cancel.is_set():
            return "cancelled"
        if stats.truncated:  # tagged as far as it decodes, but the user must know the rest is missing
            log.warning("%s: truncated: only the part that decoded was tagged", path)
            return "done (truncated: only the part that decoded was tagged)"
        return "done"

    def _service(self) -> None:
        """Between file windows: run queued requests (live start/stop, head) and serve the live stream."""
        QCoreApplication.processEvents()
        self.poll_live()

    def _overview(self, path: Path, cancel: threading.Event) -> Overview:
        """Min/max envelope of the file at OVERVIEW_BINS_PER_S bins/s (decoded at OVERVIEW_RATE)."""
        from models.audio import iter_audio

        spb = OVERVIEW_RATE // OVERVIEW_BINS_PER_S
        los, his, n = [], [], 0
        carry = np.zeros(0, np.float32)
        for block in iter_audio(path, OVERVIEW_RATE):
            x = np.concatenate([carry, block])
            full = (x.shape[0] // spb) * spb
            lo, hi = envelope(x[:full], spb)
            los.append(lo)
            his.append(hi)
            carry = x[full:]
            n += block.shape[0]
            self._service()
            if cancel.is_set():
                break
        if carry.size:
            lo, hi = envelope(carry, spb)
            los.append(lo)
            his.append(hi)
        lo_all = np.concatenate(los) if los else np.zeros(0, np.float32)
        hi_all = np.concatenate(his) if his else np.zeros(0, np.float32)
        return Overview(lo=lo_all, hi=hi_all, rate=float(OVERVIEW_BINS_PER_S), duration=n / OVERVIEW_RATE)


class WorkerThread(QObject):
    """Runs an :class:`InferenceWorker` in its own QThread; requests reach it through queued signals.

    Lives in the GUI thread. ``request_*`` signals are connected to the worker's slots, so calling e.g.
    ``load(path)`` from the GUI thread runs ``Engine.load`` on the worker thread.
    """

    request_load = Signal(object)
    request_start_live = Signal(object)
    request_stop_live = Signal()
    request_head = Signal(object)
    request_window = Signal(object)

    def __init__(self, window: WindowConfig | None = None) -> None:
        super().__init__()
        self.qthread = QThread()
        self.qthread.setObjectName("encotag-inference")
        self.worker = InferenceWorker(window)
        self.worker.moveToThread(self.qthread)
        self.request_load.connect(self.worker.load)
        self.request_start_live.connect(self.worker.start_live)
        self.request_stop_live.connect(self.worker.stop_live)
        self.request_head.connect(self.worker.set_head)
        self.request_window.connect(self.worker.set_window)
        self.qthread.start()

    def load(self, pack_path: str | None) -> None:
        self.request_load.emit(pack_path)

    def start_live(self, tap: LiveTap) -> None:
        self.request_start_live.emit(tap)

    def stop_live(self) -> None:
        self.request_stop_live.emit()

    def set_head(self, head: Any) -> None:
        self.request_head.emit(head)

    def set_window(self, window: WindowConfig) -> None:
        self.request_window.emit(window)

    def enqueue(self, job_id: int, path: str | Path) -> None:
        self.worker.enqueue(job_id, path)

    def cancel(self, job_id: int | None = None) -> None:
        self.worker.cancel(job_id)

    def stop(self, timeout_ms: int = 10000) -> None:
        """Cancel file jobs, stop live polling and join the thread."""
        self.worker.cancel()
        if self.qthread.isRunning():  # stop the worker's timer on its own thread, then end the loop
            QMetaObject.invokeMethod(self.worker, "stop_live", Qt.ConnectionType.BlockingQueuedConnection)
        self.qthread.quit()
        if not self.qthread.wait(timeout_ms):
            log.warning("inference thread did not stop within %d ms", timeout_ms)
