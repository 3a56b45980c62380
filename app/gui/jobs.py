"""One job model for all background work of the GUI (file tagging, head embedding and training).

The vocabulary is napari/superqt's ``thread_worker``: a job is a **generator** (or a plain function)
run off the GUI thread; what it yields is emitted as ``yielded``, its ``Progress`` reports as
``progress``, and it ends with
exactly one ``finished(job_id, JobOutcome)`` (status :class:`JobStatus`), preceded by ``errored`` when it
raised or ``aborted`` when it was cancelled. ``started`` is emitted before the first step. A job that
succeeded with a caveat the user must see (a file tagged only as far as it decodes) returns a
:class:`Noted` result: the outcome stays DONE and carries the note (``"done (truncated: …)"``).

:class:`JobRunner` is the one base class: a thread-safe queue of ``(job_id, job)`` with one cancel
``threading.Event`` per job, and :meth:`JobRunner.execute`, which drives one job's generator and emits the
signals. Where the jobs run is the subclass's choice: ``app.gui.worker.InferenceWorker`` drains the queue
on its QThread (between live polls), ``app.gui.heads.jobs.HeadJobRunner`` on a plain Python thread. Worker
threads never pump the Qt event loop; signals cross to the GUI thread queued, carrying only numpy arrays
and frozen dataclasses.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

JobGen = Generator[Any, None, Any]  # yields partial results, returns the final result


class JobStatus(enum.StrEnum):
    """How a job ended (a ``str``: ``JobStatus.DONE == "done"``)."""

    DONE = "done"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class JobStarted:
    """``started`` payload: what the job works on (a path, a head name)."""

    job_id: int
    description: str


@dataclass(frozen=True)
class JobError:
    """``errored`` payload: a one-line reason, and whether it was expected (bad input, not a bug)."""

    job_id: int
    message: str
    expected: bool = True


@dataclass(frozen=True)
class Noted:
    """What a job returns to succeed with a caveat: its ``result`` and a one-line ``note`` for the user."""

    result: Any
    note: str


@dataclass(frozen=True)
class JobOutcome:
    """``finished`` payload: the status, the error message (ERROR), the generator's return value and a
    note on a DONE job that the user must see (e.g. ``"truncated: …"``; empty when there is none)."""

    job_id: int
    status: JobStatus
    message: str = ""
    result: Any = None
    note: str = ""

    @property
    def text(self) -> str:
        """``"done"``, ``"done (<note>)"``, ``"cancelled"`` or ``"error: <message>"`` (for status lines)."""
        if self.status is JobStatus.ERROR:
            return f"error: {self.message}"
        return f"{self.status} ({self.note})" if self.note else str(self.status)

    @property
    def notable(self) -> bool:
        """Whether the status line should be shown to the user (an error, or a note on a done job)."""
        return self.status is JobStatus.ERROR or bool(self.note)


class JobCancelledError(Exception):
    """Raised inside a job (or its callees) to stop it as cancelled."""


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class JobRunner(QObject):
    """Base of the GUI's background workers: a job queue, cancel events and the job signals."""

    started = Signal(int, object)  # job id, JobStarted
    yielded = Signal(int, object)  # job id, whatever the job's generator yields
    progress = Signal(int, object)  # job id, models.tagging.results.Progress
    errored = Signal(int, object)  # job id, JobError
    aborted = Signal(int)  # job id
    finished = Signal(int, object)  # job id, JobOutcome (always the last signal of a job)

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._cancel: dict[int, threading.Event] = {}
        self._next_id = 0

    # --- any thread -----------------------------------------------------------------------------------
    def put(self, job: Any, job_id: int | None = None) -> int:
        """Queue ``job`` (thread-safe); returns its id (``job_id`` if given, else the next free one)."""
        with self._lock:
            if job_id is None:
                self._next_id += 1
                job_id = self._next_id
            self._cancel[job_id] = threading.Event()
            self._queue.append((job_id, job))
        self._queued()
        return job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job, or every queued and running job when ``job_id`` is None (thread-safe)."""
        with self._lock:
            events = list(self._cancel.values()) if job_id is None else [self._cancel.get(job_id)]
        for ev in events:
            if ev is not None:
                ev.set()

    def pending(self) -> set[int]:
        """Ids of the jobs queued or running."""
        with self._lock:
            return set(self._cancel)

    # --- subclass hooks -------------------------------------------------------------------------------
    def _queued(self) -> None:
        """Called after a job was queued (any thread): wake the thread that runs the jobs."""

    def work(self, job_id: int, job: Any, cancel: threading.Event) -> Any:
        """Run the job (worker thread): a generator (its items are ``yielded``, its return value is the
        result), or a plain function whose return value is the result. Check ``cancel`` often."""
        raise NotImplementedError

    def describe(self, job: Any) -> str:
        return type(job).__name__

    def is_cancel(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the job was cancelled (not failed)."""
        return isinstance(exc, JobCancelledError)

    def is_expected(self, exc: BaseException) -> bool:
        """Whether ``exc`` is an ordinary failure (bad input: logged as a warning, no traceback)."""
        return isinstance(exc, (ValueError, OSError))

    def error_message(self, job: Any, exc: BaseException) -> str:
        return one_line(exc)

    # --- worker thread --------------------------------------------------------------------------------
    def pop(self) -> tuple[int, Any, threading.Event] | None:
        """The next queued job and its cancel event, or None."""
        with self._lock:
            if not self._queue:
                return None
            job_id, job = self._queue.popleft()
            return job_id, job, self._cancel[job_id]

    def execute(self, job_id: int, job: Any, cancel: threading.Event) -> JobOutcome:
        """Run one job's generator to its end, emitting the job signals; never raises."""
        self.started.emit(job_id, JobStarted(job_id, self.describe(job)))
        try:
            if cancel.is_set():
                raise JobCancelledError
            gen = result = self.work(job_id, job, cancel)
            while isinstance(gen, Generator):
                try:
                    item = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                self.yielded.emit(job_id, item)
            if cancel.is_set():
                raise JobCancelledError
            note = ""
            if isinstance(result, Noted):
                result, note = result.result, result.note
            outcome = JobOutcome(job_id, JobStatus.DONE, result=result, note=note)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an outcome, never a dead thread
            if self.is_cancel(exc):
                self.aborted.emit(job_id)
                outcome = JobOutcome(job_id, JobStatus.CANCELLED)
            else:
                expected = self.is_expected(exc)
                message = self.error_message(job, exc)
                if expected:
                    log.warning("%s", message)
                else:
                    log.exception("job %d (%s) failed", job_id, self.describe(job))
                self.errored.emit(job_id, JobError(job_id, message, expected))
                outcome = JobOutcome(job_id, JobStatus.ERROR, message)
        with self._lock:
            self._cancel.pop(job_id, None)
        self.finished.emit(job_id, outcome)
        return outcome

    def fail_queued(self, message: str) -> None:
        """Finish every queued (not running) job as an error with ``message``."""
        with self._lock:
            jobs = list(self._queue)
            self._queue.clear()
            for job_id, _ in jobs:
                self._cancel.pop(job_id, None)
        for job_id, _ in jobs:
            self.errored.emit(job_id, JobError(job_id, message))
            self.finished.emit(job_id, JobOutcome(job_id, JobStatus.ERROR, message))


class ThreadJobRunner(JobRunner):
    """A :class:`JobRunner` whose jobs run one after another on one daemon thread of its own, started
    when the first job is queued. ``thread_name`` names the thread (logs, debuggers)."""

    thread_name = "encotag-jobs"

    def __init__(self) -> None:
        super().__init__()
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- GUI thread -----------------------------------------------------------------------------------
    def _queued(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
            self._thread.start()
        self._wakeup.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel everything and join the thread (idempotent)."""
        self.cancel(None)
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._stopping = True
            self._wakeup.set()
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s thread did not stop within %.0f s", self.thread_name, timeout_s)

    # --- job thread -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping:
            item = self.pop()
            if item is None:
                self._wakeup.wait()
                self._wakeup.clear()
                continue
            self.execute(*item)
        while (item := self.pop()) is not None:  # cancelled by stop(): finish them as cancelled
            self.execute(*item)
