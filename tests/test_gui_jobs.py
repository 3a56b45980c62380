"""The one job model of the GUI (``app.gui.jobs``) and the inference worker's command queue."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402

from app.gui.heads.jobs import HeadJobRunner  # noqa: E402
from app.gui.jobs import JobError, JobOutcome, JobRunner, JobStarted, JobStatus, Noted  # noqa: E402
from app.gui.state.series import Overview, ResultBatch  # noqa: E402
from app.gui.worker import InferenceWorker, WorkerThread  # noqa: E402
from models.config import WindowConfig  # noqa: E402
from models.tagging.windows import count_windows  # noqa: E402

SR = 16000
DIRECT = Qt.ConnectionType.DirectConnection


class _Counter(JobRunner):
    """Jobs are ints: n >= 0 yields 0..n-1 and returns n; -1 raises ValueError; -2 a bug."""

    def work(self, job_id: int, job: Any, cancel: threading.Event) -> Any:
        if job == -1:
            raise ValueError("bad  input\n here")
        if job == -2:
            raise RuntimeError("a bug")
        yield from range(job)
        return job


def _record(runner: JobRunner) -> list[tuple[str, int, Any]]:
    seen: list[tuple[str, int, Any]] = []
    runner.started.connect(lambda j, p: seen.append(("started", j, p)))
    runner.yielded.connect(lambda j, p: seen.append(("yielded", j, p)))
    runner.errored.connect(lambda j, p: seen.append(("errored", j, p)))
    runner.aborted.connect(lambda j: seen.append(("aborted", j, None)))
    runner.finished.connect(lambda j, p: seen.append(("finished", j, p)))
    return seen


def test_job_runner_signals_and_outcomes(qtbot) -> None:
    runner = _Counter()
    seen = _record(runner)
    ok, bad, bug, cancelled = (runner.put(job) for job in (3, -1, -2, 5))
    runner.cancel(cancelled)
    assert runner.pending() == {ok, bad, bug, cancelled}
    while (item := runner.pop()) is not None:
        runner.execute(*item)
    assert runner.pending() == set()
    by_job = {j: [(kind, p) for kind, jj, p in seen if jj == j] for j in (ok, bad, bug, cancelled)}
    assert by_job[ok] == [
        ("started", JobStarted(ok, "int")),
        ("yielded", 0),
        ("yielded", 1),
        ("yielded", 2),
        ("finished", JobOutcome(ok, JobStatus.DONE, result=3)),
    ]
    assert by_job[bad][1:] == [
        ("errored", JobError(bad, "bad input here", expected=True)),
        ("finished", JobOutcome(bad, JobStatus.ERROR, "bad input here")),
    ]
    assert by_job[bug][1] == ("errored", JobError(bug, "a bug", expected=False))
    assert by_job[cancelled][1:] == [
        ("aborted", None),
        ("finished", JobOutcome(cancelled, JobStatus.CANCELLED)),
    ]
    texts = [o.text for k, _, o in seen if k == "finished"]
    assert texts == ["done", "error: bad input here", "error: a bug", "cancelled"]
    assert JobStatus.DONE == "done" and isinstance(JobStatus.ERROR, str)


def test_a_noted_result_is_done_with_a_note(qtbot) -> None:
    """A job that succeeds with a caveat (a truncated file) stays DONE; its note is in the status line."""

    class _Cut(JobRunner):
        def work(self, job_id: int, job: Any, cancel: threading.Event) -> Any:
            yield 1
            return Noted(7, "truncated: only the part that decoded was tagged")

    runner = _Cut()
    seen = _record(runner)
    job = runner.put(None)
    item = runner.pop()
    assert item is not None
    outcome = runner.execute(*item)
    assert outcome == JobOutcome(
        job, JobStatus.DONE, result=7, note="truncated: only the part that decoded was tagged"
    )
    assert outcome.text == "done (truncated: only the part that decoded was tagged)" and outcome.notable
    assert [k for k, _, _ in seen] == ["started", "yielded", "finished"]  # no "errored": it did not fail
    plain = JobOutcome(job, JobStatus.DONE, result=7)
    assert plain.text == "done" and not plain.notable and JobOutcome(job, JobStatus.ERROR, "x").notable


def test_both_gui_workers_share_the_job_base() -> None:
    assert issubclass(InferenceWorker, JobRunner) and issubclass(HeadJobRunner, JobRunner)


def test_load_and_set_window_sent_during_a_file_job_wait_for_it(
    qtbot, tiny_mel_pack: Path, tmp_path: Path
) -> None:
    """``load``/``set_window`` posted while a file is tagged run after the job, never inside it."""
    path = tmp_path / "tone.wav"
    t = np.arange(6 * SR) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)
    wt = WorkerThread(WindowConfig(1.0, 0.5))
    w = wt.worker
    events: list[tuple[str, Any]] = []
    windows: list[int] = []

    def on_started(job: int, _p: JobStarted) -> None:  # worker thread (direct connection)
        events.append(("started", w.in_job))
        wt.load(str(tiny_mel_pack))
        wt.set_window(WindowConfig(2.0, 1.0))

    def on_yielded(_job: int, item: Any) -> None:
        if isinstance(item, ResultBatch):
            windows.append(len(item.starts))
        events.append(("yielded", type(item).__name__))

    try:
        with qtbot.waitSignal(w.engine_ready, timeout=60000):
            wt.load(str(tiny_mel_pack))
        w.engine_loading.connect(lambda _p: events.append(("loading", w.in_job)), DIRECT)
        w.started.connect(on_started, DIRECT)
        w.yielded.connect(on_yielded, DIRECT)
        w.finished.connect(lambda _j, o: events.append(("finished", o.status)), DIRECT)
        with qtbot.waitSignal(w.engine_ready, timeout=120000):  # the second load, after the job
            wt.enqueue(1, path)
    finally:
        wt.stop()
    kinds = [k for k, _ in events]
    assert kinds[0] == "started" and kinds.index("finished") < kinds.index("loading"), events
    assert ("loading", False) in events and ("finished", JobStatus.DONE) in events
    assert events[1] == ("yielded", Overview.__name__)
    # the whole file was tagged with the window it was queued with (1 s every 0.5 s), the next with the new
    assert sum(windows) == count_windows(6 * SR, SR, SR // 2)
    assert w.window == WindowConfig(2.0, 1.0)
