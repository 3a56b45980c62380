"""The window's views feature: spectrograms, per-tag thresholds, live detection and the timeline keys.

:func:`install` is called by the main window (like the personal heads) and returns a :class:`ViewsFeature`
(a window extension: ``window_closing()`` stops its threads). It adds

- *View ▸ Spectrogram* (Ctrl+G, saved): each file timeline and the live tab show a log-frequency
  spectrogram with a dB colour scale instead of the waveform. Spectrograms are computed on two
  background :class:`~app.gui.spectro_jobs.SpectrogramRunner` threads (files, live), never on the GUI thread;
- the *Tag thresholds* dock: a threshold per pinned tag (saved in ``Settings.tag_thresholds``), drawn
  as its own dashed line in the tag plots and used by the live detection ("Heard now: …") and the
  exports (``app.gui.actions.current_events``);
- *View ▸ Reset zoom* (Ctrl+0) and the timeline keys of every file tab (``app.gui.timeline_keys``).

A 100 ms timer does the GUI-thread part: decorate new file tabs, follow the live input, redraw.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QBoxLayout, QDockWidget, QLabel, QMenu, QSplitter, QWidget

from app.gui.jobs import JobOutcome, JobStatus
from app.gui.spectro import SpectrogramPlot
from app.gui.spectro_jobs import FileSpectrogramJob, LiveChunk, LiveSpectrogramJob, SpectrogramRunner
from app.gui.state.spectrogram import LiveColumns, Spectrogram
from app.gui.state.thresholds import index_thresholds, open_events, pinned_thresholds
from app.gui.thresholds import ThresholdPanel
from app.gui.timeline_keys import TimelineKeys, reset_zoom

if TYPE_CHECKING:
    from app.gui.file_view import FileView
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)

TICK_MS = 100


class ViewsFeature(QObject):
    """See the module docstring. ``spectra`` maps file job ids to their spectrogram plots."""

    def __init__(self, win: MainWindow, view_menu: QMenu | None) -> None:
        super().__init__(win)
        self.win = win
        self.files_runner = SpectrogramRunner("encotag-spectrogram")
        self.live_runner = SpectrogramRunner("encotag-live-spectrogram")
        self.files_runner.finished.connect(self._file_done)
        self.files_runner.progress.connect(self._file_progress)
        self.live_runner.yielded.connect(self._live_chunk)
        self.spectra: dict[int, SpectrogramPlot] = {}
        self.keys: dict[int, TimelineKeys] = {}
        self._jobs: dict[int, int] = {}  # spectrogram job id → file view job id
        self._live_tap: Any = None
        self._live_job: int | None = None
        self.live_columns = LiveColumns(seconds=30.0)
        self._thr_key: tuple[Any, ...] = ()
        self._heard_key: tuple[Any, ...] = ()

        self.act_spectrogram = QAction("&Spectrogram instead of waveform", self, checkable=True)
        self.act_spectrogram.setShortcut(QKeySequence("Ctrl+G"))
        self.act_spectrogram.setChecked(win.settings.spectrogram)
        self.act_spectrogram.toggled.connect(self.set_spectrogram)
        self.act_reset_zoom = QAction("&Reset zoom", self)
        self.act_reset_zoom.setShortcut(QKeySequence("Ctrl+0"))
        self.act_reset_zoom.triggered.connect(self.reset_zoom)
        self.panel = ThresholdPanel()
        self.panel.changed.connect(self.set_tag_threshold)
        self.dock = QDockWidget("Tag thresholds", win)
        self.dock.setObjectName("dock_thresholds")
        self.dock.setWidget(self.panel)
        win.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        if not win.restoreDockWidget(self.dock):
            win.splitDockWidget(win.ui.dock_table, self.dock, Qt.Orientation.Vertical)
        if view_menu is not None:
            view_menu.addSeparator()
            view_menu.addActions([self.act_spectrogram, self.act_reset_zoom, self.dock.toggleViewAction()])

        live = win.live_tab
        self.heard = QLabel("")
        self.heard.setWordWrap(True)
        _box(live).insertWidget(1, self.heard)
        self.live_spec = SpectrogramPlot(live=True)
        split = live.scope.parentWidget()
        if isinstance(split, QSplitter):
            split.insertWidget(1, self.live_spec)
            split.setStretchFactor(1, 1)
        self._show_mode()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.timer.start(TICK_MS)

    # --- settings and actions -----------------------------------------------------------------------------
    @property
    def spectrogram_on(self) -> bool:
        return bool(self.win.settings.spectrogram)

    def set_spectrogram(self, on: bool) -> None:
        """Show spectrograms (True) or waveforms (False) in every timeline; remembered in the settings."""
        if self.act_spectrogram.isChecked() != on:
            self.act_spectrogram.setChecked(on)  # re-enters through toggled
            return
        self.win.update_settings(spectrogram=bool(on))
        self._show_mode()
        self.tick()

    def tag_thresholds(self) -> dict[str, float]:
        """The per-tag thresholds in force (those of the pinned tags)."""
        st = self.win.settings
        return pinned_thresholds(st.tag_thresholds, st.selected_tags)

    def set_tag_threshold(self, label: str, value: float | None) -> None:
        """Give ``label`` its own threshold (None: back to the global one); saved in the settings."""
        d = dict(self.win.settings.tag_thresholds)
        if value is None:
            d.pop(label, None)
        else:
            d[label] = float(value)
        self.win.update_settings(tag_thresholds=tuple(sorted(d.items())))
        self.tick()

    def reset_zoom(self) -> None:
        view = self.win.current_file()
        if view is not None:
            reset_zoom(view)

    def _show_mode(self) -> None:
        on = self.spectrogram_on
        self.win.live_tab.scope.setVisible(not on)
        self.live_spec.setVisible(on)
        for job, spec in self.spectra.items():
            view = self.win.files.get(job)
            if view is not None:
                view.wave.setVisible(not on)
                spec.setVisible(on)

    # --- the timer ------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """GUI thread: decorate new file tabs, request spectrograms, follow the live input, redraw."""
        for view in self.win.files.values():
            if view.job_id not in self.spectra:
                self._decorate(view)
            elif self.spectrogram_on and self.spectra[view.job_id].spectrogram is None:
                self._request(view)
            spec = self.spectra[view.job_id]
            if spec.cursor.value() != view.cursor_s:
                spec.cursor.setValue(view.cursor_s)
        for job in [j for j in self.spectra if self.win.files.get(j) is None]:  # closed tabs
            self.spectra.pop(job).deleteLater()
            self.keys.pop(job, None)
            for spec_job in [k for k, v in self._jobs.items() if v == job]:
                self.files_runner.cancel(spec_job)
        self._follow_live()
        if self.live_columns.changed and self.spectrogram_on:
            self.live_columns.changed = False
            self.live_spec.set_spectrogram(self.live_columns.snapshot())
        self._sync_thresholds()
        self._update_heard()

    def _decorate(self, view: FileView) -> None:
        spec = SpectrogramPlot()
        spec.getAxis("left").setWidth(48)
        spec.setXLink(view.tags)
        lay = _box(view)
        lay.insertWidget(lay.indexOf(view.wave) + 1, spec, 1)
        self.spectra[view.job_id] = spec
        self.keys[view.job_id] = TimelineKeys(view, lambda: self.win.settings.hop_s)
        on = self.spectrogram_on
        view.wave.setVisible(not on)
        spec.setVisible(on)
        self._thr_key = ()  # the new view gets the threshold lines
        if on:
            self._request(view)

    def _request(self, view: FileView) -> None:
        if view.job_id in self._jobs.values():
            return
        job = self.files_runner.put(FileSpectrogramJob(view.path, view.job_id))
        self._jobs[job] = view.job_id

    def _file_progress(self, job: int, p: Any) -> None:
        spec = self.spectra.get(self._jobs.get(job, -1))
        if spec is not None and spec.spectrogram is None:
            spec.setTitle(f"computing the spectrogram… {100 * p.done // max(p.total, 1)} %", size="8pt")

    def _file_done(self, job: int, outcome: JobOutcome) -> None:
        view_id = self._jobs.pop(job, None)
        spec = self.spectra.get(view_id) if view_id is not None else None
        if spec is None:
            return
        if outcome.status == JobStatus.DONE and isinstance(outcome.result, Spectrogram):
            spec.setTitle(None)
            spec.set_spectrogram(outcome.result)
        elif outcome.status == JobStatus.ERROR:
            spec.set_spectrogram(Spectrogram(np.zeros((0, 1), np.float32), 0.0, 1.0, np.array([40.0, 80.0])))
            spec.setTitle(f"no spectrogram: {outcome.text}")

    def _follow_live(self) -> None:
        tap = self.win.live.tap if self.win.live.running and self.spectrogram_on else None
        if tap is self._live_tap:
            return
        if self._live_job is not None:
            self.live_runner.cancel(self._live_job)
            self._live_job = None
        self._live_tap = tap
        if tap is not None:
            self.live_columns.clear()
            self._live_job = self.live_runner.put(LiveSpectrogramJob(tap))

    def _live_chunk(self, job: int, chunk: Any) -> None:
        if job == self._live_job and isinstance(chunk, LiveChunk):
            self.live_columns.add(chunk.db, chunk.dt, chunk.edges)

    # --- thresholds and live detection ------------------------------------------------------------------
    def _sync_thresholds(self) -> None:
        st, labels = self.win.settings, self.win.labels
        key = (labels, st.selected_tags, st.tag_thresholds, st.threshold, len(self.spectra))
        if key == self._thr_key:
            return
        self._thr_key = key
        own = self.tag_thresholds()
        pinned = [n for n in st.selected_tags if n in set(labels)]
        self.panel.set_tags(pinned, own, st.threshold)
        by_index = index_thresholds(labels, own)
        self.win.live_tab.history.set_tag_thresholds(by_index)
        self.win.ui.topk.tag_thr = by_index  # bars at or above their own threshold are coloured
        for view in self.win.files.values():
            view.tags.set_tag_thresholds(by_index)
        self._heard_key = ()

    def _update_heard(self) -> None:
        series, labels, st = self.win.live.series, self.win.labels, self.win.settings
        n = len(series)
        key = (n, float(series.ends[-1]) if n else 0.0, st.tag_thresholds, st.threshold, st.selected_tags)
        if key == self._heard_key or not labels:
            return
        self._heard_key = key
        if n == 0:
            self.heard.setText("")
            return
        own = self.tag_thresholds()
        events = open_events(series.starts, series.ends, series.probs, labels, st.threshold, own)
        parts = [
            f"<b>{e.label}</b> {e.score:.2f}" + (f" (own ≥ {own[e.label]:.2f})" if e.label in own else "")
            for e in events[:6]
        ]
        self.heard.setText("Heard now: " + (" · ".join(parts) if parts else "nothing above its threshold"))

    def heard_now(self) -> list[str]:
        """The labels of the live events open now (the live detection, strongest first)."""
        series, st = self.win.live.series, self.win.settings
        own = self.tag_thresholds()
        events = open_events(series.starts, series.ends, series.probs, self.win.labels, st.threshold, own)
        return [e.label for e in events]

    # --- window extension ------------------------------------------------------------------------------
    def window_closing(self) -> None:
        self.timer.stop()
        self.files_runner.stop()
        self.live_runner.stop()


def _box(widget: QWidget) -> QBoxLayout:
    lay = widget.layout()
    assert isinstance(lay, QBoxLayout), f"{type(widget).__name__} has no box layout"
    return lay


def install(win: MainWindow) -> ViewsFeature:
    """Add the views feature to ``win`` (see the module docstring)."""
    return ViewsFeature(win, getattr(win.menus, "menu_view", None))
