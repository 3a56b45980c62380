"""The inference worker: one QObject living in its own QThread that alone owns the Engine (and torch).

Engines: where the pack's ONNX files are in the user cache (every launch after the first, with the
``onnx`` extra installed) the worker loads :class:`~models.tagging.onnx_engine.OnnxEngine` and never
imports torch: first tags in seconds instead of the 16–20 s ``import torch`` takes on a busy machine.
Otherwise it loads the torch ``Engine`` and, once it is idle, exports the ONNX files for the next launch
(:func:`~models.tagging.onnx_export.export_onnx_pack`, verified against torch first). The ONNX engine
serves everything the worker does (file jobs, live windows; live codec packs tag 1 s windows of audio,
not streamed codes); head training and the other jobs have their own engines on their own threads.

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
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from app.gui.jobs import JobGen, JobRunner, Noted, one_line
from app.gui.state.live import LiveTap
from app.gui.state.series import Overview, ResultBatch, envelope
from models.config import WindowConfig, worker_threads
from models.tagging.results import Progress, WindowResult

log = logging.getLogger(__name__)

OVERVIEW_RATE = 8000  # Hz, decode rate of the waveform overview
OVERVIEW_BINS_PER_S = 200
BATCH_INTERVAL_S = 0.1  # file results are handed to the GUI at most this often
COMMANDS = ("load", "set_window", "set_head", "start_live", "stop_live")
BETWEEN_JOBS = frozenset({"load", "set_window"})  # never applied while a file job runs


def inference_threads() -> int:
    """Threads for the worker: half the cores (at most 4), leaving the rest to the GUI and audio."""
    return worker_threads()


class InferenceWorker(JobRunner):
    """Owns the Engine; serves the live stream and runs file jobs (a :class:`~app.gui.jobs.JobRunner`).

    Create it, ``moveToThread``, then :meth:`post` commands (``load``, ``set_window``, ``set_head``,
    ``start_live``, ``stop_live``) and :meth:`put` file paths. Commands are queued and applied on the
    worker thread: while idle at once; during a file job at its yield points (between result batches)
    for the live ones (``start_live``, ``stop_live``, ``set_head``), and *between* jobs for ``load`` and
    ``set_window``, which change what a running job depends on. Nothing runs re-entrantly: the worker
    thread never pumps the Qt event loop.

    File jobs yield an :class:`~app.gui.state.series.Overview`, then
    :class:`~app.gui.state.series.ResultBatch` es.
    """

    engine_loading = Signal(str)  # pack path or "default"
    engine_ready = Signal(object)  # PackInfo
    engine_failed = Signal(str)  # one-line reason
    live_result = Signal(object)  # WindowResult
    live_error = Signal(str)
    file_batch = Signal(int, object)  # job id, ResultBatch: the batches also yielded (for the GUI bench)
    jobs_idle = Signal()

    _wake = Signal()

    def __init__(self, window: WindowConfig | None = None) -> None:
        super().__init__()
        self.window = window or WindowConfig()
        self.engine: Any = None
        self.head: Any = None
        self._tap: LiveTap | None = None
        self._commands: collections.deque[tuple[str, Any]] = collections.deque()
        self._busy = False  # the pending commands and jobs are being run (guards re-entrancy)
        self.in_job = False  # a file job is running (read by tests)
        self._load_failed = False
        self._export_due = False  # the torch engine is loaded and the pack's ONNX files are not cached
        self.load_times: dict[str, float] = {}  # the last load: engine imports, pack load (seconds)
        self._timer: QTimer | None = None
        self._wake.connect(self._run_pending, Qt.ConnectionType.QueuedConnection)

    # --- commands (any thread) ------------------------------------------------------------------------
    def post(self, command: str, arg: Any = None) -> None:
        """Queue ``command`` (one of ``COMMANDS``) with its argument; applied on the worker thread."""
        if command not in COMMANDS:
            raise ValueError(f"unknown worker command {command!r}")
        with self._lock:
            self._commands.append((command, arg))
        self._wake.emit()

    def _queued(self) -> None:
        self._wake.emit()

    def _apply_commands(self, mid_job: bool) -> None:
        """Apply queued commands in order; during a job stop before the first one that must wait."""
        while True:
            with self._lock:
                if not self._commands or (mid_job and self._commands[0][0] in BETWEEN_JOBS):
                    return
                command, arg = self._commands.popleft()
            getattr(self, command)(*(() if command == "stop_live" else (arg,)))

    @Slot()
    def _run_pending(self) -> None:
        """Apply the queued commands, then run the queued file jobs one after another (worker thread)."""
        if self._busy:
            return
        self._busy = True
        ran = False
        try:
            while True:
                self._apply_commands(mid_job=False)
                if self.engine is None:
                    if self._load_failed:
                        self.fail_queued("no model loaded (choose a model pack)")
                    break
                item = self.pop()
                if item is None:
                    break
                self.in_job = ran = True
                try:
                    self.execute(*item)
                finally:
                    self.in_job = False
            self._export_when_idle()
        finally:
            self._busy = False
        if ran:
            self.jobs_idle.emit()

    def _export_when_idle(self) -> None:
        """Export the torch engine's ONNX files for the next launch, once, with nothing else waiting."""
        with self._lock:
            waiting = bool(self._commands or self._queue)
        if not self._export_due or self.engine is None or waiting:
            return
        self._export_due = False
        from models.tagging.onnx_export import export_onnx_pack

        t0 = time.perf_counter()
        if export_onnx_pack(self.engine) is not None:
            log.info("ONNX files of %s ready in %.1f s (the next launch tags without torch)",
                     self.engine.info.name, time.perf_counter() - t0)  # fmt: skip

    # --- engine ---------------------------------------------------------------------------------------
    def load(self, pack_path: str | None) -> None:
        """Load the pack (None = the shipped default pack) on this thread: the ONNX Runtime engine where
        its files are cached, else ``Engine.load`` (torch; see the module docstring)."""
        self.engine_loading.emit(pack_path or "default")
        try:
            t0 = time.perf_counter()
            from models.tagging.onnx_engine import engine_choice, load_onnx_engine  # no torch

            t1 = time.perf_counter()
            path = Path(pack_path) if pack_path else None
            engine: Any = load_onnx_engine(path, threads=inference_threads())
            onnx = engine is not None
            if engine is None:
                t0 = time.perf_counter()
                from models.tagging.engine import Engine  # torch: most of a cold start (docs/PERFORMANCE.md)

                t1 = time.perf_counter()
                engine = Engine.load(path, threads=inference_threads())
            self.load_times = {"import_s": t1 - t0, "load_s": time.perf_counter() - t1, "onnx": float(onnx)}
        except Exception as exc:  # noqa: BLE001 - any failure becomes a visible notice, never a crash
            from models.packs.pack_manifest import PackError
            from models.safeio import printable
            from models.tagging.windows import EngineError

            reason = printable(one_line(exc))
            if isinstance(exc, PackError | EngineError | OSError):  # an ordinary bad pack: one line
                log.warning("cannot load the model pack: %s", reason)
            else:
                log.exception("cannot load the model pack %s", pack_path or "(default)")
            self.engine_failed.emit(reason)
            if self.engine is None:
                self.fail_queued(f"no model ({reason})")
            self._load_failed = True
            return
        self._load_failed = False
        self.engine = engine
        self._export_due = not onnx and engine_choice() != "torch" and _has_onnxruntime()
        log.info("pack %s loaded in %.2f s", engine.info.name, time.perf_counter() - t0)
        self.engine_ready.emit(engine.info)
        self._attach_tagger()

    def set_head(self, head: Any) -> None:
        """Use a personal head (``models.heads.heads.Head``) for ``head_probs``; None removes it."""
        self.head = head
        if self._tap is not None and self._tap.tagger is not None:
            self._tap.tagger.head = head

    def set_window(self, window: WindowConfig) -> None:
        self.window = window
        if self._tap is not None:
            self._attach_tagger()
        if self._timer is not None and self._timer.isActive():
            self._timer.start(max(10, int(self.window.hop_s * 1000 / 4)))

    # --- live -----------------------------------------------------------------------------------------
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
        from models.tagging.pipeline import StreamTagger

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
            self.live_error.emit(one_line(exc))
            self.stop_live()
            return
        if result is not None:
            self.live_result.emit(result)

    # --- file jobs ------------------------------------------------------------------------------------
    def describe(self, job: Any) -> str:
        return str(job)

    def is_expected(self, exc: BaseException) -> bool:
        from models.audio import AudioError

        return isinstance(exc, AudioError)

    def error_message(self, job: Any, exc: BaseException) -> str:
        return str(exc) if self.is_expected(exc) else f"{job}: {one_line(exc)}"

    def work(self, job_id: int, job: Any, cancel: threading.Event) -> JobGen:
        """Tag the file ``job`` (a path): yields its Overview, then ResultBatches at most every
        ``BATCH_INTERVAL_S``; the live stream and the live commands are served between batches.
        A file cut short (fewer frames than its header claims) is tagged as far as it decodes and
        returns a :class:`~app.gui.jobs.Noted` result: its outcome reads ``"done (truncated: …)"``."""
        from models.tagging.pipeline import TagStats, tag_file

        path = Path(job)
        stats = TagStats()
        yield self._overview(path, cancel)
        pending: list[WindowResult] = []
        last_emit = time.perf_counter()

        def progress(p: Progress) -> None:
            self.progress.emit(job_id, p)

        for result in tag_file(
            self.engine, path, window=self.window, head=self.head, progress=progress, cancel=cancel,
            batch_size=4, stats=stats,
        ):  # fmt: skip
            pending.append(result)
            now = time.perf_counter()
            if now - last_emit >= BATCH_INTERVAL_S:
                yield self._batch(job_id, pending)
                pending = []
                last_emit = now
                self._service()
            if cancel.is_set():
                break
        if pending:
            yield self._batch(job_id, pending)
        if stats.truncated and not cancel.is_set():  # the user must know the rest is missing
            log.warning("%s: truncated: only the part that decoded was tagged", path)
            return Noted(None, "truncated: only the part that decoded was tagged")
        return None

    def _batch(self, job_id: int, results: list[WindowResult]) -> ResultBatch:
        batch = ResultBatch.from_results(results)
        self.file_batch.emit(job_id, batch)
        return batch

    def _service(self) -> None:
        """At a job's yield points: apply the live commands and serve the live stream (no event loop)."""
        self._apply_commands(mid_job=True)
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


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class WorkerThread(QObject):
    """Runs an :class:`InferenceWorker` in its own QThread (lives in the GUI thread).

    Its methods post commands to the worker (thread-safe), so e.g. ``load(path)`` called on the GUI
    thread runs ``Engine.load`` on the worker thread.
    """

    def __init__(self, window: WindowConfig | None = None) -> None:
        super().__init__()
        self.qthread = QThread()
        self.qthread.setObjectName("encotag-inference")
        self.worker = InferenceWorker(window)
        self.worker.moveToThread(self.qthread)
        self.qthread.start()

    def load(self, pack_path: str | None) -> None:
        self.worker.post("load", pack_path)

    def start_live(self, tap: LiveTap) -> None:
        self.worker.post("start_live", tap)

    def stop_live(self) -> None:
        self.worker.post("stop_live")

    def set_head(self, head: Any) -> None:
        self.worker.post("set_head", head)

    def set_window(self, window: WindowConfig) -> None:
        self.worker.post("set_window", window)

    def enqueue(self, job_id: int, path: str | Path) -> None:
        self.worker.put(Path(path), job_id)

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
