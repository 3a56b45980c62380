"""The Encotag main window: live tab + one tab per file, docks for tags, trajectory and the tag picker.

The window never runs torch: the :class:`~app.gui.worker.WorkerThread` owns the engine. Results come in
through queued signals and are drawn by one refresh timer (``REFRESH_MS``) with ``setData``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QToolBar,
)

from app.gui import actions, layout
from app.gui.drawing import REFRESH_MS, Painter
from app.gui.errors import ErrorNotifier
from app.gui.file_view import FileView
from app.gui.live import LiveSession, LiveTab
from app.gui.plots import LevelMeter, TopKBars, TrajectoryView
from app.gui.tagviews import TagPicker, TagTableModel, TagTableView
from app.gui.worker import WorkerThread
from app.settings import Settings
from models.config import WindowConfig
from models.results import Progress

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Any]  # () -> app.audio_input.InputSource


class MainWindow(QMainWindow):
    """Main window. ``source_factory`` (tests, ``--synthetic``) replaces the sound-device input."""

    source_failed = Signal(str)
    model_settled = Signal()  # the model pack loaded or failed (GUI thread)
    closed = Signal()

    # widgets made by app.gui.layout
    topk: TopKBars
    trajectory_view: TrajectoryView
    table_model: TagTableModel
    table_view: TagTableView
    picker: TagPicker
    dock_topk: QDockWidget
    dock_traj: QDockWidget
    dock_table: QDockWidget
    dock_picker: QDockWidget
    toolbar: QToolBar
    device_combo: QComboBox
    level: LevelMeter
    topk_spin: QSpinBox
    thr_spin: QDoubleSpinBox
    model_status: QLabel
    job_status: QLabel
    job_bar: QProgressBar
    cancel_button: QPushButton
    # actions and menus made by app.gui.actions.build_menus
    act_open: QAction
    act_open_dir: QAction
    act_export: QAction
    act_play: QAction
    act_live: QAction
    menu_recent: QMenu
    menu_devices: QMenu
    menu_heads: QMenu

    def __init__(
        self,
        settings: Settings,
        pack_path: str | None = None,
        source_factory: SourceFactory | None = None,
        notifier: ErrorNotifier | None = None,
        dark: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.pack_path = pack_path if pack_path is not None else settings.pack_path
        self.source_factory = source_factory
        self.notifier = notifier or ErrorNotifier(self)
        self.notifier.parent_widget = self
        self.dark = dark
        self.pack_info: Any = None
        self.labels: tuple[str, ...] = ()
        self.curve_labels: tuple[str, ...] = ()  # labels with † for untrusted ones (plot legends)
        self.trusted: tuple[bool, ...] = ()
        self.live = LiveSession(settings.hop_s)
        self.files: dict[int, FileView] = {}
        self._job_ids = itertools.count(1)
        self._jobs_open: set[int] = set()
        self._jobs_total = 0
        self._live_dirty = False
        self._progress: dict[int, Progress] = {}
        self.painter = Painter(self)
        self.setWindowTitle("Encotag")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self._build_central()
        layout.build_docks(self)
        layout.build_toolbar(self)
        layout.build_status(self)
        actions.build_menus(self)
        layout.restore_window(self)

        self.worker = WorkerThread(WindowConfig(settings.window_s, settings.hop_s))
        w = self.worker.worker
        w.engine_ready.connect(self._engine_ready)
        w.engine_failed.connect(self._engine_failed)
        w.live_result.connect(self._live_result)
        w.live_error.connect(self._live_error)
        w.file_started.connect(self._file_started)
        # bound methods of this window (not lambdas): Qt then queues the calls onto the GUI thread
        w.file_overview.connect(self._file_overview)
        w.file_batch.connect(self._file_batch)
        w.file_progress.connect(self._file_progress)
        w.file_finished.connect(self._file_finished)
        self.source_failed.connect(self._live_error)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(REFRESH_MS)
        self.model_status.setText("Loading model…")
        self.worker.load(self.pack_path)
        actions.install_heads(self)
        if not settings.window_state:
            layout.default_layout(self)

    # --- layout --------------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setDocumentMode(True)
        self.live_tab = LiveTab()
        self.tabs.addTab(self.live_tab, "Live")
        self.tabs.tabBar().setTabButton(0, self.tabs.tabBar().ButtonPosition.RightSide, None)
        self.tabs.tabCloseRequested.connect(self._close_tab)
        self.tabs.currentChanged.connect(lambda _i: self._view_changed())
        self.setCentralWidget(self.tabs)

    # --- engine --------------------------------------------------------------------------------------
    def _engine_ready(self, info: Any) -> None:
        self.pack_info = info
        self.labels = tuple(info.labels)
        self.trusted = tuple(info.trusted)
        marked = zip(self.labels, self.trusted, strict=True)
        self.curve_labels = tuple(n if ok else f"{n} †" for n, ok in marked)
        self.table_model.set_labels(self.labels, self.trusted)
        self.picker.set_labels(self.labels, self.trusted)
        wanted = set(self.settings.selected_tags)
        self.picker.set_checked([i for i, n in enumerate(self.labels) if n in wanted])
        for view in self.files.values():
            view.set_labels(self.curve_labels)
        n_bad = sum(not t for t in self.trusted)
        self.model_settled.emit()
        self.model_status.setText(
            f"Model: {info.name} — {len(self.labels)} labels" + (f" ({n_bad} marked †)" if n_bad else "")
        )

    def _engine_failed(self, reason: str) -> None:
        self.model_status.setText(f"Model failed to load: {reason}")
        self.notifier.report(f"The model pack could not be loaded:\n{reason}")
        self.model_settled.emit()

    # --- live ----------------------------------------------------------------------------------------
    def start_live(self) -> None:
        """Start listening on the chosen input (or the injected source); errors become a notice."""
        if self.live.running:
            return
        try:
            source = self.source_factory() if self.source_factory else actions.device_source(self)
            tap = self.live.start(source, self.source_failed.emit)
        except Exception as exc:  # noqa: BLE001 - AudioInputError and PortAudio errors alike
            log.warning("cannot start live input: %s", exc)
            self.notifier.report(f"Cannot start listening: {exc}")
            return
        self.worker.start_live(tap)
        self.live_tab.info.setText(f"Listening: {source.name} ({source.sample_rate} Hz)")
        actions.sync_live_actions(self)
        self.tabs.setCurrentWidget(self.live_tab)

    def stop_live(self) -> None:
        self.worker.stop_live()
        self.live.stop()
        self.live_tab.info.setText("Live input is stopped. Press Start (Ctrl+L) to listen.")
        actions.sync_live_actions(self)

    def toggle_live(self) -> None:
        self.stop_live() if self.live.running else self.start_live()

    def _live_result(self, result: Any) -> None:
        self.live.add(result)
        self._live_dirty = True

    def _live_error(self, message: str) -> None:
        log.warning("live input: %s", message)
        if self.live.running:
            self.stop_live()
        self.notifier.report(f"Live input stopped: {message}")

    # --- files ---------------------------------------------------------------------------------------
    def open_paths(self, paths: Iterable[str | Path]) -> list[int]:
        """Queue files (folders are expanded) for tagging; returns the job ids."""
        from models.audio import list_audio_files

        ids = []
        for path in list_audio_files(paths):
            job = next(self._job_ids)
            view = FileView(path, job)
            view.set_labels(self.curve_labels)
            view.set_threshold(self.settings.threshold)
            view.set_selected(self.picker.checked())
            view.time_selected.connect(self._cursor_moved)
            view.play_failed.connect(self._play_failed)
            self.files[job] = view
            self.tabs.addTab(view, path.name)
            self.tabs.setTabToolTip(self.tabs.count() - 1, str(path))
            self._jobs_open.add(job)
            self._jobs_total += 1
            self.worker.enqueue(job, path)
            ids.append(job)
            actions.remember_file(self, path)
        if ids:
            self.tabs.setCurrentWidget(self.files[ids[0]])
            self._update_job_status()
        return ids

    def _file(self, job: int, fn: Callable[[FileView], None]) -> None:
        view = self.files.get(job)
        if view is not None:
            fn(view)

    def _file_overview(self, job: int, overview: Any) -> None:
        self._file(job, lambda v: v.set_overview(overview))

    def _file_batch(self, job: int, batch: Any) -> None:
        self._file(job, lambda v: v.add_batch(batch))

    def _file_started(self, job: int, _path: str) -> None:
        self._file(job, lambda v: v.set_progress(0, 1))

    def _file_progress(self, job: int, p: Progress) -> None:
        self._progress[job] = p  # drawn by the next file stage (progress bars repaint synchronously)

    def _file_finished(self, job: int, status: str) -> None:
        self._progress.pop(job, None)
        self._file(job, lambda v: v.set_finished(status))
        self._jobs_open.discard(job)
        if status.startswith("error") or "truncated" in status:
            self.statusBar().showMessage(status, 10000)
        self._update_job_status()
        if self.current_file() is self.files.get(job):
            self._view_changed()

    def _update_job_status(self, p: Progress | None = None) -> None:
        if not self._jobs_open:
            self._jobs_total = 0
            layout.set_jobs_visible(self, False)
            return
        layout.set_jobs_visible(self, True)
        done_files = self._jobs_total - len(self._jobs_open)
        self.job_status.setText(f"Tagging file {done_files + 1} of {self._jobs_total}")
        if p is not None:
            self.job_bar.setMaximum(max(p.total, 1))
            self.job_bar.setValue(p.done)

    def cancel_jobs(self) -> None:
        self.worker.cancel(None)

    def _play_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)

    def system_scheme_changed(self, *_args: object) -> None:
        if self.settings.theme == "system":
            actions.set_theme(self, "system")

    def toggle_play(self) -> None:
        view = self.current_file()
        if view is not None:
            view.toggle_play()

    def _close_tab(self, index: int) -> None:
        view = self.tabs.widget(index)
        if isinstance(view, FileView):
            view.player.stop()
            self.worker.cancel(view.job_id)
            self.files.pop(view.job_id, None)
            self.tabs.removeTab(index)
            view.deleteLater()

    def current_file(self) -> FileView | None:
        w = self.tabs.currentWidget()
        return w if isinstance(w, FileView) else None

    # --- view state ----------------------------------------------------------------------------------
    def set_top_k(self, k: int) -> None:
        self.settings = dataclasses.replace(self.settings, top_k=int(k))
        self.topk.set_k(int(k))
        self.table_model.top_k = int(k)
        self._view_changed()

    def set_threshold(self, value: float) -> None:
        self.settings = dataclasses.replace(self.settings, threshold=float(value))
        self.topk.set_threshold(value)
        self.live_tab.history.set_threshold(value)
        for view in self.files.values():
            view.set_threshold(value)
        self._view_changed()

    def _selection_changed(self, indices: Sequence[int]) -> None:
        self.live_tab.selected = list(indices)
        for view in self.files.values():
            view.set_selected(indices)
        self.settings = dataclasses.replace(
            self.settings, selected_tags=tuple(self.labels[i] for i in indices if i < len(self.labels))
        )
        self._live_dirty = True

    def _cursor_moved(self, t: float) -> None:
        view = self.current_file()
        if view is None:
            return
        probs = view.probs_at(t)
        if probs is not None:
            self.table_model.set_probs(probs, t)
            self.topk.set_probs(probs, self.labels, self.trusted)
        self.trajectory_view.mark_time(t)

    def jump_to(self, t: float) -> None:
        """Show the tags at time ``t`` of the current view (trajectory clicks land here)."""
        view = self.current_file()
        if view is not None:
            view.set_cursor(t)
            return
        i = self.live.series.index_at(t)
        if i is not None:
            self.table_model.set_probs(self.live.series.probs[i], float(self.live.series.centres[i]))
            self.trajectory_view.mark_time(t)

    def _view_changed(self) -> None:
        view = self.current_file()
        if view is None:
            self._live_dirty = True
            return
        view.bars_dirty = view.traj_dirty = view._dirty = True

    # --- drawing (app/gui/drawing.py) ---------------------------------------------------------------
    def refresh(self) -> None:
        """Timer tick: the next drawing stage that has work."""
        self.painter.refresh()

    def refresh_all(self) -> None:
        """Run every drawing stage now (screenshots, tests)."""
        self.painter.refresh_all()

    # --- drag and drop, close ------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        actions.save_window_settings(self)
        super().closeEvent(event)
        self.closed.emit()

    def shutdown(self) -> None:
        """Stop input, cancel jobs and join the worker thread (idempotent)."""
        self.timer.stop()
        for view in self.files.values():
            view.player.stop()
        if self.live.running:
            self.stop_live()
        self.worker.stop()

    def shortcut(self, action: QAction, keys: QKeySequence | str) -> QAction:
        action.setShortcut(QKeySequence(keys))
        return action
