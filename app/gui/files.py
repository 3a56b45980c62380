"""The registry of open file views and the bookkeeping of their tagging jobs (GUI thread).

:class:`FileViews` maps job ids to :class:`~app.gui.file_view.FileView` tabs. It receives the inference
worker's job signals (``app.gui.jobs``: ``started``, ``yielded``, ``progress``, ``finished``), files each
payload into its view, and keeps the status-bar job line. Progress reports are kept (newest per job)
until the drawing code takes them (:meth:`take_progress`), so a burst of reports costs one repaint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QTabWidget

from app.gui.file_view import FileView
from app.gui.jobs import JobOutcome, JobStarted
from app.gui.layout import WindowParts
from app.gui.state.series import Overview, ResultBatch
from models.tagging.results import Progress


class FileViews(QObject):
    """Open file views by job id (a read-only mapping) and their job states."""

    message = Signal(str)  # a status line for the window (a file that failed or was cut short)
    job_finished = Signal(int)  # job id, after its view shows the outcome

    def __init__(self, tabs: QTabWidget, ui: WindowParts) -> None:
        super().__init__(tabs)
        self._tabs, self._ui = tabs, ui
        self._views: dict[int, FileView] = {}
        self._progress: dict[int, Progress] = {}
        self._open: set[int] = set()
        self._total = 0

    # --- mapping --------------------------------------------------------------------------------------
    def __getitem__(self, job: int) -> FileView:
        return self._views[job]

    def __iter__(self) -> Iterator[int]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def __bool__(self) -> bool:
        return bool(self._views)

    def get(self, job: int) -> FileView | None:
        return self._views.get(job)

    def values(self) -> list[FileView]:
        return list(self._views.values())

    def current(self) -> FileView | None:
        """The file view of the current tab (None on the live tab)."""
        w = self._tabs.currentWidget()
        return w if isinstance(w, FileView) else None

    # --- views ----------------------------------------------------------------------------------------
    def add(self, view: FileView) -> None:
        """Register ``view`` (its tab is added by the caller) as an open job."""
        self._views[view.job_id] = view
        self._open.add(view.job_id)
        self._total += 1

    def remove(self, job: int) -> FileView | None:
        return self._views.pop(job, None)

    # --- job signals (queued to the GUI thread) -------------------------------------------------------
    def job_started(self, job: int, _started: JobStarted) -> None:
        view = self._views.get(job)
        if view is not None:
            view.set_progress(0, 1)

    def job_yielded(self, job: int, item: Any) -> None:
        view = self._views.get(job)
        if view is None:
            return
        if isinstance(item, Overview):
            view.set_overview(item)
        elif isinstance(item, ResultBatch):
            view.add_batch(item)

    def job_progress(self, job: int, p: Progress) -> None:
        self._progress[job] = p  # drawn by the next file stage (progress bars repaint synchronously)

    def job_done(self, job: int, outcome: JobOutcome) -> None:
        self._progress.pop(job, None)
        view = self._views.get(job)
        if view is not None:
            view.set_finished(outcome.text)
        self._open.discard(job)
        if outcome.notable:  # an error, or a caveat such as "done (truncated: …)"
            self.message.emit(outcome.text)
        self.update_status()
        self.job_finished.emit(job)

    # --- status ---------------------------------------------------------------------------------------
    def take_progress(self) -> list[tuple[int, Progress]]:
        """The progress reports not drawn yet (newest per job), forgetting them."""
        out, self._progress = list(self._progress.items()), {}
        return out

    def update_status(self, p: Progress | None = None) -> None:
        """Show "Tagging file i of n" (and ``p`` on the bar) while jobs are open; hide it after."""
        ui = self._ui
        if not self._open:
            self._total = 0
            ui.set_jobs_visible(False)
            return
        ui.set_jobs_visible(True)
        done_files = self._total - len(self._open)
        ui.job_status.setText(f"Tagging file {done_files + 1} of {self._total}")
        if p is not None:
            ui.job_bar.setMaximum(max(p.total, 1))
            ui.job_bar.setValue(p.done)
