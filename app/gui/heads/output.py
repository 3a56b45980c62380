"""The "Personal head" dock: the active head's outputs next to the AudioSet tags, and span labelling.

The active head is also handed to the inference worker (``win.worker.set_head``), so the live and file
``WindowResult``s it produces carry ``head_probs``. The dock draws from the window's result series
(live history or the current file's timeline): ``Head.predict`` is a small numpy product on the stored
embeddings (no torch on the GUI thread), so a head activated after a file was tagged still shows on it.

Per class (background excluded) one curve and a dashed line at the class's calibrated threshold; a table
gives the current value (live: newest window, file: at the cursor) and marks classes above threshold.
A draggable span (``LinearRegionItem``) plus "That was …" adds the span's windows as examples of a class
of the head being edited (``span_requested`` → ``HeadsDialog.label_span``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.plots import _style_plot, curve_colour
from app.gui.state.heads import head_events, span_rows
from models.heads.heads import BACKGROUND, Head

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

LIVE_SPAN_S = 30.0
REFRESH_MS = 200


def current_series(win: MainWindow) -> tuple[Any, str]:
    """The result series of the current view (file tab or live history) and a name for it."""
    view = win.current_file()
    if view is not None:
        return view.series, str(view.path)
    return win.live.series, "live"


def span_embeddings(win: MainWindow, t0: float, t1: float) -> tuple[np.ndarray, str]:
    """Embeddings (n, D) float32 of the current view's windows centred in [t0, t1] s, and a source."""
    series, name = current_series(win)
    rows = span_rows(series.starts, series.ends, t0, t1)
    if len(rows) == 0:
        return np.zeros((0, 0), np.float32), name
    emb = np.array(series.embeddings[rows], dtype=np.float32)
    a, b = float(series.starts[rows[0]]), float(series.ends[rows[-1]])
    return emb, f"{name} {a:.2f}-{b:.2f} s"


def export_head_events(
    win: MainWindow, head: Head, path: str | Path, fmt: str | None = None
) -> tuple[Path, int]:
    """Write the current view's head events (per-class thresholds) to ``path``; returns (path, count)."""
    from app.export import format_from_path, write_events

    series, _ = current_series(win)
    probs = head.predict(series.embeddings) if len(series) else np.zeros((0, len(head.classes)), np.float32)
    events = head_events(head, series.starts, series.ends, probs)
    out = write_events(events, path, fmt or format_from_path(path) or "csv")
    return out, len(events)


def export_events_dialog(win: MainWindow, head: Head | None) -> None:
    """Ask for a file and write the active head's events of the current view (per-class thresholds)."""
    if head is None:
        QMessageBox.information(win, "Export head events", "No personal head is active.")
        return
    from app.gui.exporting import ask_events_path

    asked = ask_events_path(win, "Export head events", "head")
    if asked is not None:
        try:
            out, n = export_head_events(win, head, *asked)
        except (OSError, ValueError) as exc:
            win.notifier.report(f"Export failed: {exc}")
            return
        win.statusBar().showMessage(f"Exported {n} head events to {out}", 8000)


class HeadOutputPanel(QWidget):
    """Curves, thresholds and current values of the active head; the span selector for "that was X"."""

    span_requested = Signal(str, float, float)  # class name, start s, end s

    def __init__(self, win: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.win = win
        self.head: Head | None = None
        self.dock: QDockWidget | None = None  # its dock (set by app.gui.heads.dialog.install)
        self.title = QLabel("No personal head active. Heads ▸ Manage heads… to make or choose one.")
        self.title.setWordWrap(True)
        self.plot = pg.PlotWidget()
        _style_plot(self.plot)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setLabel("left", "head")
        self.plot.setMouseEnabled(x=True, y=False)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.region = pg.LinearRegionItem(values=(0.0, 2.0), brush=pg.mkBrush(0, 150, 200, 40))
        self.region.setZValue(-10)
        self.plot.addItem(self.region)
        self.curves: list[Any] = []  # one per class of the head; None for background
        self.thr_lines: list[Any] = []
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["class", "now", "threshold"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(130)
        self.span_class = QComboBox()
        self.span_class.setToolTip("Class of the head being edited in the Heads dialog")
        self.span_button = QPushButton("That was…")
        self.span_button.setToolTip("Add the windows inside the shaded span as examples of the chosen class")
        self.span_button.clicked.connect(self._span_clicked)
        self.span_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(QLabel("Span:"))
        row.addWidget(self.span_button)
        row.addWidget(self.span_class, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.table)
        lay.addLayout(row)
        self.probs = np.zeros((0, 0), np.float32)  # (N, K) of what is drawn
        self.times = np.zeros(0)
        self._key: tuple[Any, ...] = ()
        self._view_id = -1
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(REFRESH_MS)

    # --- head -----------------------------------------------------------------------------------------
    def set_head(self, head: Head | None) -> None:
        """Show ``head``'s classes (None: no head)."""
        self.head = head
        for item in (*self.curves, *self.thr_lines):
            if item is not None:
                self.plot.removeItem(item)
        self.legend.clear()
        self.curves, self.thr_lines = [], []
        self.table.setRowCount(0)
        self._key = ()
        if head is None:
            self.title.setText("No personal head active. Heads ▸ Manage heads… to make or choose one.")
            return
        far = head.card.false_alarm_rate
        self.title.setText(
            f"Head <b>{head.card.name}</b>: {', '.join(head.classes)}"
            + (f" — thresholds at {far:g} false alarms on background" if far is not None else "")
        )
        self.table.setRowCount(len(head.classes))
        for j, name in enumerate(head.classes):
            colour = (150, 150, 150) if name == BACKGROUND else curve_colour(j)
            cell = QTableWidgetItem(name)
            cell.setForeground(QColor(*colour))
            self.table.setItem(j, 0, cell)
            self.table.setItem(j, 1, QTableWidgetItem(""))
            thr = "—" if name == BACKGROUND else f"{float(head.thresholds[j]):.2f}"
            self.table.setItem(j, 2, QTableWidgetItem(thr))
            if name == BACKGROUND:
                self.curves.append(None)
                self.thr_lines.append(None)
                continue
            self.curves.append(self.plot.plot([], [], pen=pg.mkPen(colour, width=2), name=name))
            line = pg.InfiniteLine(
                float(head.thresholds[j]), angle=0, pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine)
            )
            self.plot.addItem(line)
            self.thr_lines.append(line)
        self.refresh()

    def set_span_classes(self, classes: tuple[str, ...]) -> None:
        """Classes offered by "That was…" (those of the head being edited)."""
        keep = self.span_class.currentText()
        self.span_class.clear()
        self.span_class.addItems(list(classes))
        if keep in classes:
            self.span_class.setCurrentText(keep)
        self.span_button.setEnabled(bool(classes))

    def _span_clicked(self) -> None:
        name = self.span_class.currentText()
        if name:
            t0, t1 = self.region.getRegion()
            self.span_requested.emit(name, float(t0), float(t1))

    # --- drawing --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw if the view, its results, its cursor or the head changed (called by a timer)."""
        view = self.win.current_file()
        series, _ = current_series(self.win)
        n = len(series)
        cursor = view.cursor_s if view is not None else None
        key = (id(series), n, float(series.ends[-1]) if n else 0.0, cursor, id(self.head))
        if key == self._key:
            return
        self._key = key
        if id(series) != self._view_id and n:
            self._view_id = id(series)
            end = float(series.ends[-1])
            t0 = max(0.0, end - 3.0) if view is None else max(0.0, float(cursor or 0.0) - 1.0)
            self.region.setRegion((t0, t0 + 3.0 if view is None else t0 + 2.0))
        if self.head is None or n == 0:
            self.times, self.probs = np.zeros(0), np.zeros((0, 0), np.float32)
            for c in self.curves:
                if c is not None:
                    c.setData([], [])
            return
        rows = np.arange(n)
        if view is None:
            rows = np.flatnonzero(series.ends >= float(series.ends[-1]) - LIVE_SPAN_S)
        self.times = np.asarray(series.centres[rows])
        self.probs = self.head.predict(series.embeddings[rows])
        for j, c in enumerate(self.curves):
            if c is not None:
                c.setData(self.times, self.probs[:, j])
        if view is None:
            end = max(float(self.times[-1]), LIVE_SPAN_S)
            self.plot.setXRange(end - LIVE_SPAN_S, end, padding=0)
        now = (
            len(self.times) - 1 if view is None else int(np.argmin(np.abs(self.times - float(cursor or 0.0))))
        )
        self._fill_table(self.probs[now])

    def _fill_table(self, p: np.ndarray) -> None:
        head = self.head
        if head is None:
            return
        for j, name in enumerate(head.classes):
            on = name != BACKGROUND and p[j] >= head.thresholds[j]
            item = self.table.item(j, 1)
            if item is not None:
                item.setText(f"{float(p[j]):.2f}" + ("  ●" if on else ""))
