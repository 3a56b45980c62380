"""Docks, toolbar widgets and status bar of the main window (built once, at start-up)."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolBar,
    QWidget,
)

from app.gui.plots import LevelMeter, TopKBars, TrajectoryView
from app.gui.tagviews import TagPicker, TagTableModel, TagTableView

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)


def _dock(win: MainWindow, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, win)
    dock.setObjectName(name)
    dock.setWidget(widget)
    win.addDockWidget(area, dock)
    return dock


def restore_window(win: MainWindow) -> None:
    """Restore the saved geometry and dock layout; an unreadable saved layout is ignored (logged)."""
    try:
        if win.settings.window_geometry:
            win.restoreGeometry(QByteArray(base64.b64decode(win.settings.window_geometry)))
        if win.settings.window_state:
            win.restoreState(QByteArray(base64.b64decode(win.settings.window_state)))
    except (ValueError, TypeError):
        log.warning("ignoring unreadable saved window layout")


def build_docks(win: MainWindow) -> None:
    right, left = Qt.DockWidgetArea.RightDockWidgetArea, Qt.DockWidgetArea.LeftDockWidgetArea
    win.topk = TopKBars(win.settings.top_k)
    win.topk.set_threshold(win.settings.threshold)
    win.trajectory_view = TrajectoryView()
    win.trajectory_view.dark = win.dark
    win.trajectory_view.time_clicked.connect(win.jump_to)
    win.table_model = TagTableModel(win.settings.top_k, win)
    win.table_view = TagTableView(win.table_model)
    win.picker = TagPicker()
    win.picker.selection_changed.connect(win._selection_changed)
    win.dock_topk = _dock(win, "Top tags", "dock_topk", win.topk, right)
    win.dock_traj = _dock(win, "Embedding trajectory", "dock_trajectory", win.trajectory_view, right)
    win.dock_table = _dock(win, "Tags at cursor", "dock_table", win.table_view, left)
    win.dock_picker = _dock(win, "Tag picker", "dock_picker", win.picker, left)
    win.tabifyDockWidget(win.dock_table, win.dock_picker)
    win.dock_table.raise_()
    win.topk.setMinimumHeight(240)
    win.trajectory_view.setMinimumHeight(240)


def default_layout(win: MainWindow) -> None:
    """First-run layout: docks added by extensions (e.g. the heads panel) are tabbed behind the
    trajectory; the tag docks get a comfortable size."""
    for dock in win.findChildren(QDockWidget):
        known = (win.dock_topk, win.dock_traj, win.dock_table, win.dock_picker)
        if dock not in known and win.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea:
            win.tabifyDockWidget(win.dock_traj, dock)
    win.dock_traj.raise_()
    win.resizeDocks([win.dock_table, win.dock_topk], [250, 430], Qt.Orientation.Horizontal)
    win.resizeDocks([win.dock_topk, win.dock_traj], [330, 400], Qt.Orientation.Vertical)


def build_toolbar(win: MainWindow) -> None:
    tb = QToolBar("Main")
    tb.setObjectName("toolbar_main")
    win.addToolBar(tb)
    win.toolbar = tb
    win.device_combo = QComboBox()
    win.device_combo.setMinimumWidth(220)
    win.device_combo.setToolTip("Input device")
    win.level = LevelMeter()
    win.level.setMaximumWidth(220)
    win.topk_spin = QSpinBox()
    win.topk_spin.setRange(1, 50)
    win.topk_spin.setValue(min(win.settings.top_k, 50))
    win.topk_spin.setPrefix("top ")
    win.topk_spin.valueChanged.connect(win.set_top_k)
    win.thr_spin = QDoubleSpinBox()
    win.thr_spin.setRange(0.0, 1.0)
    win.thr_spin.setSingleStep(0.05)
    win.thr_spin.setDecimals(2)
    win.thr_spin.setValue(win.settings.threshold)
    win.thr_spin.setPrefix("threshold ")
    win.thr_spin.valueChanged.connect(win.set_threshold)


def build_status(win: MainWindow) -> None:
    sb = win.statusBar()
    win.model_status = QLabel("")
    win.job_status = QLabel("")
    win.job_bar = QProgressBar()
    win.job_bar.setMaximumWidth(200)
    win.job_bar.setMaximumHeight(16)
    win.cancel_button = QPushButton("Cancel")
    win.cancel_button.clicked.connect(win.cancel_jobs)
    sb.addWidget(win.model_status, 1)
    sb.addPermanentWidget(win.job_status)
    sb.addPermanentWidget(win.job_bar)
    sb.addPermanentWidget(win.cancel_button)
    set_jobs_visible(win, False)


def set_jobs_visible(win: MainWindow, on: bool) -> None:
    for w in (win.job_status, win.job_bar, win.cancel_button):
        w.setVisible(on)
