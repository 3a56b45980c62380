"""Docks, toolbar widgets and status bar of the main window (built once, at start-up).

:func:`build` returns them as one frozen :class:`WindowParts`; the window keeps it as ``win.ui`` and
connects the widgets' signals itself.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolBar,
    QWidget,
)

from app.gui.plots import LevelMeter, TopKBars, TrajectoryView
from app.gui.tagviews import TagPicker, TagTableModel, TagTableView
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowParts:
    """The docks, toolbar and status-bar widgets of the main window (made once by :func:`build`)."""

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

    @property
    def docks(self) -> tuple[QDockWidget, ...]:
        return (self.dock_topk, self.dock_traj, self.dock_table, self.dock_picker)

    def set_jobs_visible(self, on: bool) -> None:
        for w in (self.job_status, self.job_bar, self.cancel_button):
            w.setVisible(on)


def _dock(win: QMainWindow, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, win)
    dock.setObjectName(name)
    dock.setWidget(widget)
    win.addDockWidget(area, dock)
    return dock


def build(win: QMainWindow, settings: Settings, dark: bool) -> WindowParts:
    """Make the docks (added to ``win``), the toolbar widgets and the status bar; the caller connects
    their signals."""
    right, left = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.LeftDockWidgetArea
    topk = TopKBars(settings.top_k)
    topk.set_threshold(settings.threshold)
    trajectory_view = TrajectoryView()
    trajectory_view.dark = dark
    table_model = TagTableModel(settings.top_k, win)
    table_view = TagTableView(table_model)
    picker = TagPicker()
    dock_topk = _dock(win, "Top tags", "dock_topk", topk, right)
    dock_traj = _dock(win, "Embedding trajectory", "dock_trajectory", trajectory_view, right)
    dock_table = _dock(win, "Tags at cursor", "dock_table", table_view, left)
    dock_picker = _dock(win, "Tag picker", "dock_picker", picker, left)
    win.tabifyDockWidget(dock_table, dock_picker)
    dock_table.raise_()
    topk.setMinimumHeight(240)
    trajectory_view.setMinimumHeight(240)

    tb = QToolBar("Main")
    tb.setObjectName("toolbar_main")
    win.addToolBar(tb)
    device_combo = QComboBox()
    device_combo.setMinimumWidth(220)
    device_combo.setToolTip("Input device")
    level = LevelMeter()
    level.setMaximumWidth(220)
    topk_spin = QSpinBox()
    topk_spin.setRange(1, 50)
    topk_spin.setValue(min(settings.top_k, 50))
    topk_spin.setPrefix("top ")
    thr_spin = QDoubleSpinBox()
    thr_spin.setRange(0.0, 1.0)
    thr_spin.setSingleStep(0.05)
    thr_spin.setDecimals(2)
    thr_spin.setValue(settings.threshold)
    thr_spin.setPrefix("threshold ")

    sb = win.statusBar()
    model_status = QLabel("")
    job_status = QLabel("")
    job_bar = QProgressBar()
    job_bar.setMaximumWidth(200)
    job_bar.setMaximumHeight(16)
    cancel_button = QPushButton("Cancel")
    sb.addWidget(model_status, 1)
    sb.addPermanentWidget(job_status)
    sb.addPermanentWidget(job_bar)
    sb.addPermanentWidget(cancel_button)
    parts = WindowParts(
        topk, trajectory_view, table_model, table_view, picker, dock_topk, dock_traj, dock_table,
        dock_picker, tb, device_combo, level, topk_spin, thr_spin, model_status, job_status, job_bar,
        cancel_button,
    )  # fmt: skip
    parts.set_jobs_visible(False)
    return parts


def restore_window(win: QMainWindow, settings: Settings) -> None:
    """Restore the saved geometry and dock layout; an unreadable saved layout is ignored (logged)."""
    try:
        if settings.window_geometry:
            win.restoreGeometry(QByteArray(base64.b64decode(settings.window_geometry)))
        if settings.window_state:
            win.restoreState(QByteArray(base64.b64decode(settings.window_state)))
    except (ValueError, TypeError):
        log.warning("ignoring unreadable saved window layout")


def default_layout(win: QMainWindow, parts: WindowParts) -> None:
    """First-run layout: docks added by extensions (e.g. the heads panel) are tabbed behind the
    trajectory; the tag docks get a comfortable size."""
    for dock in win.findChildren(QDockWidget):
        if dock not in parts.docks and win.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea:
            win.tabifyDockWidget(parts.dock_traj, dock)
    parts.dock_traj.raise_()
    win.resizeDocks([parts.dock_table, parts.dock_topk], [250, 430], Qt.Orientation.Horizontal)
    win.resizeDocks([parts.dock_topk, parts.dock_traj], [330, 400], Qt.Orientation.Vertical)
