"""The Encotag main window: live tab + one tab per file, docks for tags, trajectory and the tag picker.

The window is composed of explicit parts, each made in its own module and kept here:

- ``ui``: the docks, toolbar and status widgets (:class:`app.gui.layout.WindowParts`, frozen);
- ``menus``: the menus and actions (:class:`app.gui.actions.WindowActions`), which emit signals that
  the window connects to its methods;
- ``live``: the live session (Qt-free state) and ``files``: the registry of file views
  (:class:`app.gui.files.FileViews`), which receives the worker's job signals;
- ``painter``: the drawing code (:class:`app.gui.drawing.Painter`), which reads ``live`` and ``files``;
- ``worker``: the :class:`~app.gui.worker.WorkerThread` that owns the engine (the window never runs
  torch); results come in through queued signals and are drawn by one refresh timer (``REFRESH_MS``);
- ``extensions``: features plugged in through :func:`app.gui.actions.install_heads` (the personal heads)
  and ``app.gui.views.install`` (``views``), told through ``window_closing()`` when the window closes.
Only this module sets the window's attributes; the other parts get what they need passed in.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QTabWidget

from app.gui import actions, batch, layout, views
from app.gui.drawing import REFRESH_MS, Painter
from app.gui.errors import ErrorNotifier
from app.gui.file_view import FileView
from app.gui.files import FileViews
from app.gui.live import LiveTab
from app.gui.state.live import LiveSession
from app.gui.state.series import TagLabels
from app.gui.worker import WorkerThread
from app.settings import Settings
from models.config import WindowConfig

log = logging.getLogger(__name__)

SourceFactory = Callable[[], Any]  # () -> app.audio_input.InputSource


class MainWindow(QMainWindow):
    """Main window. ``source_factory`` (tests, ``--synthetic``) replaces the sound-device input."""

    source_failed = Signal(str)
    model_settled = Signal()  # the model pack loaded or failed (GUI thread)
    closed = Signal()

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
        self.tag_labels = TagLabels()
        self.live = LiveSession(settings.hop_s)
        self._job_ids = itertools.count(1)
        self.setWindowTitle("Encotag")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setDocumentMode(True)
        self.live_tab = LiveTab()
        self.tabs.addTab(self.live_tab, "Live")
        self.tabs.tabBar().setTabButton(0, self.tabs.tabBar().ButtonPosition.RightSide, None)
        self.tabs.tabCloseRequested.connect(self._close_tab)
        self.tabs.currentChanged.connect(lambda _i: self._view_changed())
        self.setCentralWidget(self.tabs)

        self.ui = layout.build(self, settings, dark)
        self.ui.trajectory_view.time_clicked.connect(self.jump_to)
        self.ui.picker.selection_changed.connect(self._selection_changed)
        self.ui.topk_spin.valueChanged.connect(self.set_top_k)
        self.ui.thr_spin.valueChanged.connect(self.set_threshold)
        self.ui.cancel_button.clicked.connect(self.cancel_jobs)
        self.files = FileViews(self.tabs, self.ui)
        self.files.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.files.job_finished.connect(self._job_finished)
        self.menus = actions.WindowActions(self, self.ui, lambda: self.settings, source_factory is not None)
        self._connect_actions(self.menus)
        self.painter = Painter(self.live, self.files, self.ui, self.live_tab, lambda: self.tag_labels,
                               self._cursor_moved)  # fmt: skip

        self.worker = WorkerThread(WindowConfig(settings.window_s, settings.hop_s))
        w = self.worker.worker
        # bound methods of QObjects living on the GUI thread (not lambdas): Qt queues the calls onto it
        w.engine_ready.connect(self._engine_ready)
        w.engine_failed.connect(self._engine_failed)
        w.live_result.connect(self._live_result)
        w.live_error.connect(self._live_error)
        w.started.connect(self.files.job_started)
        w.yielded.connect(self.files.job_yielded)
        w.progress.connect(self.files.job_progress)
        w.finished.connect(self.files.job_done)
        self.source_failed.connect(self._live_error)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(REFRESH_MS)
        self.ui.model_status.setText("Loading model…")
        self.worker.load(self.pack_path)
        heads = actions.install_heads(self, self.menus.menu_heads)
        self.views = views.install(self)  # spectrograms, per-tag thresholds, timeline keys (app/gui/views.py)
        packs = actions.install_packs(self, self.menus.menu_model)  # the Model menu (app.gui.packs)
        self.extensions: list[actions.WindowExtension] = [
            e for e in (heads, self.views, packs) if e is not None
        ]
        self.heads: Any = heads  # the personal heads feature (app.gui.heads.dialog.HeadsFeature) or None
        layout.restore_window(self, settings)  # after the extensions: their docks are laid out too
        if not settings.window_state:
            layout.default_layout(self, self.ui)

    def _connect_actions(self, menus: actions.WindowActions) -> None:
        menus.open_requested.connect(self.open_paths)
        menus.export_requested.connect(lambda: actions.export_dialog(self))
        menus.play_toggled.connect(self.toggle_play)
        menus.live_toggled.connect(self.toggle_live)
        menus.pack_requested.connect(self.use_pack)
        menus.quit_requested.connect(self.close)
        menus.clear_live_requested.connect(self.clear_live)
        menus.analysis_requested.connect(self.set_analysis)
        menus.theme_requested.connect(self.set_theme)
        menus.device_chosen.connect(lambda name: self.update_settings(input_device=name))
        menus.about_requested.connect(lambda: actions.about(self, self.pack_info))

    # --- settings ------------------------------------------------------------------------------------
    def update_settings(self, **changes: Any) -> None:
        """Change the in-memory settings (saved when the window closes)."""
        self.settings = dataclasses.replace(self.settings, **changes)

    labels = property(lambda self: self.tag_labels.names, doc="The loaded pack's labels.")
    trusted = property(lambda self: self.tag_labels.trusted, doc="Per label: trained/validated on.")

    @property
    def curve_labels(self) -> tuple[str, ...]:
        """Labels with † for untrusted ones (plot legends)."""
        return self.tag_labels.curve

    # --- engine --------------------------------------------------------------------------------------
    def use_pack(self, folder: str | None) -> None:
        """Load another pack on the worker (None: the shipped default); remembered in the settings."""
        self.pack_path = folder
        self.pack_info = None
        self.update_settings(pack_path=folder)
        self.ui.model_status.setText("Loading model…")
        self.worker.load(folder)

    def _engine_ready(self, info: Any) -> None:
        self.pack_info = info
        self.tag_labels = TagLabels(tuple(info.labels), tuple(info.trusted))
        self.ui.table_model.set_labels(self.labels, self.trusted)
        self.ui.picker.set_labels(self.labels, self.trusted)
        wanted = set(self.settings.selected_tags)
        self.ui.picker.set_checked([i for i, n in enumerate(self.labels) if n in wanted])
        for view in self.files.values():
            view.set_labels(self.curve_labels)
        n_bad = sum(not t for t in self.trusted)
        self.model_settled.emit()
        self.ui.model_status.setText(
            f"Model: {info.name} — {len(self.labels)} labels" + (f" ({n_bad} marked †)" if n_bad else "")
        )

    def _engine_failed(self, reason: str) -> None:
        self.ui.model_status.setText(f"Model failed to load: {reason}")
        self.notifier.report(f"The model pack could not be loaded:\n{reason}")
        self.model_settled.emit()

    # --- live ----------------------------------------------------------------------------------------
    def input_source(self) -> Any:
        """A new input source: the injected one, else the chosen sound device (raises AudioInputError)."""
        if self.source_factory is not None:
            return self.source_factory()
        return actions.device_source(self.ui.device_combo.currentData())

    def start_live(self) -> None:
        """Start listening on the chosen input (or the injected source); errors become a notice."""
        if self.live.running:
            return
        try:
            source = self.input_source()
            tap = self.live.start(source, self.source_failed.emit)
        except Exception as exc:  # noqa: BLE001 - AudioInputError and PortAudio errors alike
            log.warning("cannot start live input: %s", exc)
            self.notifier.notice("Encotag: cannot start listening", str(exc))
            return
        self.worker.start_live(tap)
        self.live_tab.info.setText(f"Listening: {source.name} ({source.sample_rate} Hz)")
        self.menus.sync_live(True)
        self.tabs.setCurrentWidget(self.live_tab)

    def stop_live(self) -> None:
        self.worker.stop_live()
        self.live.stop()
        self.live_tab.info.setText("Live input is stopped. Press Start (Ctrl+L) to listen.")
        self.menus.sync_live(False)

    def toggle_live(self) -> None:
        self.stop_live() if self.live.running else self.start_live()

    def clear_live(self) -> None:
        self.live.clear()

    def set_analysis(self, window_s: float | None = None, hop_s: float | None = None) -> None:
        """Change the analysis window/hop: live tagging restarts with it, files opened later use it."""
        w = window_s if window_s is not None else self.settings.window_s
        h = min(hop_s if hop_s is not None else self.settings.hop_s, w)
        self.update_settings(window_s=w, hop_s=h)
        self.worker.set_window(WindowConfig(window_s=w, hop_s=h))
        self.clear_live()
        self.statusBar().showMessage(f"Analysis: {w:g} s windows every {h:g} s", 5000)

    def _live_result(self, result: Any) -> None:
        self.live.add(result)

    def _live_error(self, message: str) -> None:
        log.warning("live input: %s", message)
        if self.live.running:
            self.stop_live()
        self.notifier.report(f"Live input stopped: {message}")

    # --- files ---------------------------------------------------------------------------------------
    def open_paths(self, paths: Iterable[str | Path]) -> list[int]:
        """Queue files (folders are expanded) for tagging; returns the job ids."""
        from models.audio import list_audio_files

        if batch.wanted(paths := list(paths)):  # a folder or many files: one batch view, no file jobs
            return batch.open_batch(self, paths)
        ids = []
        for path in list_audio_files(paths):
            job = next(self._job_ids)
            view = FileView(path, job)
            view.set_labels(self.curve_labels)
            view.set_threshold(self.settings.threshold)
            view.set_selected(self.ui.picker.checked())
            view.time_selected.connect(self._cursor_moved)
            view.play_failed.connect(self._play_failed)
            self.files.add(view)
            self.tabs.addTab(view, path.name)
            self.tabs.setTabToolTip(self.tabs.count() - 1, str(path))
            self.worker.enqueue(job, path)
            ids.append(job)
            self.settings = actions.remembered(self.settings, path)
            self.menus.fill_recent(self.settings.recent_files)
        if ids:
            self.tabs.setCurrentWidget(self.files[ids[0]])
            self.files.update_status()
        return ids

    def _job_finished(self, job: int) -> None:
        if self.current_file() is self.files.get(job):
            self._view_changed()

    def cancel_jobs(self) -> None:
        self.worker.cancel(None)

    def _play_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)

    def toggle_play(self) -> None:
        view = self.current_file()
        if view is not None:
            view.toggle_play()

    def _close_tab(self, index: int) -> None:
        view = self.tabs.widget(index)
        if isinstance(view, FileView):
            view.player.stop()
            self.worker.cancel(view.job_id)
            self.files.remove(view.job_id)
            self.tabs.removeTab(index)
            view.deleteLater()

    def current_file(self) -> FileView | None:
        return self.files.current()

    # --- view state ----------------------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        from app.gui.theme import apply_theme, restyle_plot

        self.update_settings(theme=name)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            self.dark = apply_theme(app, name)
        self.ui.trajectory_view.dark = self.dark
        plots = [self.ui.topk, self.ui.trajectory_view, self.live_tab.scope, self.live_tab.history]
        for view in self.files.values():
            plots += [view.wave, view.tags]
        for plot in plots:
            restyle_plot(plot, self.dark)
        self.live.mark_dirty()

    def system_scheme_changed(self, *_args: object) -> None:
        if self.settings.theme == "system":
            self.set_theme("system")

    def set_top_k(self, k: int) -> None:
        self.update_settings(top_k=int(k))
        self.ui.topk.set_k(int(k))
        self.ui.table_model.top_k = int(k)
        self._view_changed()

    def set_threshold(self, value: float) -> None:
        self.update_settings(threshold=float(value))
        self.ui.topk.set_threshold(value)
        self.live_tab.history.set_threshold(value)
        for view in self.files.values():
            view.set_threshold(value)
        self._view_changed()

    def _selection_changed(self, indices: Sequence[int]) -> None:
        self.live_tab.selected = list(indices)
        for view in self.files.values():
            view.set_selected(indices)
        self.update_settings(selected_tags=tuple(self.labels[i] for i in indices if i < len(self.labels)))
        self.live.mark_dirty()

    def _cursor_moved(self, t: float) -> None:
        view = self.current_file()
        if view is None:
            return
        probs = view.probs_at(t)
        if probs is not None:
            self.ui.table_model.set_probs(probs, t)
            self.ui.topk.set_probs(probs, self.labels, self.trusted)
        self.ui.trajectory_view.mark_time(t)

    def jump_to(self, t: float) -> None:
        """Show the tags at time ``t`` of the current view (trajectory clicks land here)."""
        view = self.current_file()
        if view is not None:
            view.set_cursor(t)
            return
        i = self.live.series.index_at(t)
        if i is not None:
            self.ui.table_model.set_probs(self.live.series.probs[i], float(self.live.series.centres[i]))
            self.ui.trajectory_view.mark_time(t)

    def _view_changed(self) -> None:
        view = self.current_file()
        if view is None:
            self.live.mark_dirty()
        else:
            view.mark_dirty()

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
        for ext in self.extensions:  # the explicit hook: extensions stop their work first
            ext.window_closing()
        self.shutdown()
        self.settings = actions.with_window_state(self, self.settings)
        actions.store_settings(self.settings)
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
