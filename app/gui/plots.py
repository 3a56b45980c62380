"""pyqtgraph views: level meter, live scope, top-k bars, tag history, embedding trajectory.

Every view is a thin widget with ``set_*``/``update_*`` methods fed numpy arrays by the main window's
refresh timer (``setData`` on existing items; nothing is recreated per frame).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.gui.state.series import envelope
from app.gui.state.trajectory import TrajectorySnapshot, trail_colours

ACCENT = QColor(0, 150, 200)
TRAIL_LEVELS = 24  # colours of the trajectory trail (oldest → newest)
CURVE_COLOURS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def curve_colour(i: int) -> tuple[int, int, int]:
    return CURVE_COLOURS[i % len(CURVE_COLOURS)]


def _style_plot(plot: pg.PlotWidget) -> None:
    plot.setMenuEnabled(False)
    plot.hideButtons()
    # no grid: grid lines belong to the axes, which would then repaint the whole plot on every update


class LevelMeter(QWidget):
    """Horizontal input level meter: RMS bar and peak tick in dBFS (-60 … 0), the RMS level written on
    it in dBFS (e.g. "-23 dBFS"), the peak in the tooltip."""

    FLOOR_DB = -60.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rms_db = self.FLOOR_DB
        self.peak_db = self.FLOOR_DB
        self.setMinimumSize(120, 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level (dBFS)")

    def set_block(self, x: np.ndarray) -> None:
        """Update from the newest samples ``x`` (n,) float32."""
        if x.size == 0:
            self.set_level(self.FLOOR_DB, self.FLOOR_DB)
            return
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        peak = float(np.max(np.abs(x)))
        self.set_level(20 * np.log10(max(rms, 1e-6)), 20 * np.log10(max(peak, 1e-6)))

    def set_level(self, rms_db: float, peak_db: float) -> None:
        self.rms_db = max(self.FLOOR_DB, min(0.0, rms_db))
        self.peak_db = max(self.FLOOR_DB, min(0.0, peak_db))
        self.setToolTip(f"Input level: RMS {self.rms_db:.1f} dBFS, peak {self.peak_db:.1f} dBFS")
        self.update()

    def text(self) -> str:
        """The level written on the meter: RMS in whole dBFS."""
        return f"{self.rms_db:.0f} dBFS"

    def _frac(self, db: float) -> float:
        return (db - self.FLOOR_DB) / -self.FLOOR_DB

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(self.palette().mid().color())
        p.setBrush(self.palette().base())
        p.drawRoundedRect(r, 3, 3)
        w = r.width() * self._frac(self.rms_db)
        colour = QColor(60, 180, 75) if self.rms_db < -12 else QColor(240, 180, 0)
        if self.peak_db > -1:
            colour = QColor(220, 50, 47)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawRoundedRect(QRectF(r.left(), r.top(), w, r.height()), 3, 3)
        x = r.left() + r.width() * self._frac(self.peak_db)
        p.setPen(self.palette().text().color())
        p.drawLine(int(x), int(r.top()) + 1, int(x), int(r.bottom()) - 1)
        font = p.font()
        font.setPointSizeF(max(6.0, min(9.0, r.height() * 0.6)))
        p.setFont(font)
        p.drawText(
            r.adjusted(0, 0, -4, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.text()
        )
        p.end()


class ScopeView(pg.PlotWidget):
    """Scrolling waveform of the last ``seconds`` of input (min/max envelope, ~1000 columns)."""

    def __init__(self, seconds: float = 5.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _style_plot(self)
        self.seconds = seconds
        self.setYRange(-1, 1, padding=0.02)
        self.setXRange(-seconds, 0, padding=0)
        self.setMouseEnabled(x=False, y=False)
        self.setLabel("bottom", "seconds ago")
        self.curve = self.plot(pen=pg.mkPen(ACCENT, width=1))
        self.setMinimumHeight(90)

    def set_samples(self, x: np.ndarray, sample_rate: int) -> None:
        """Draw ``x`` (n,) float32, the newest ``seconds`` of audio at ``sample_rate``."""
        if x.size == 0:
            self.curve.setData([], [])
            return
        spb = max(1, x.size // 1000)
        lo, hi = envelope(x, spb)
        t = (np.arange(lo.size) * spb - x.size) / sample_rate
        self.curve.setData(np.repeat(t, 2), np.column_stack([lo, hi]).ravel())


class TopKBars(pg.PlotWidget):
    """Horizontal bars of the k most probable tags of the current window, with a threshold line."""

    def __init__(self, k: int = 10, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _style_plot(self)
        self.k = k
        self.threshold = 0.3
        self.tag_thr: dict[int, float] = {}  # per-tag thresholds (class index → threshold)
        self.setMouseEnabled(x=False, y=False)
        self.getViewBox().invertY(True)
        self.setXRange(0, 1, padding=0.01)
        self.setLabel("bottom", "probability")
        self.getAxis("left").setStyle(showValues=False)
        self.getAxis("left").setWidth(4)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.8, width=[], brushes=[])
        self.addItem(self.bars)
        self.thr_line = pg.InfiniteLine(self.threshold, angle=90, pen=pg.mkPen((220, 50, 47), width=1.5))
        self.addItem(self.thr_line)
        self.texts: list[pg.TextItem] = []
        self.labels_shown: list[str] = []
        self._font = QFont()
        self._font.setPointSizeF(9)
        self.set_k(k)

    def set_k(self, k: int) -> None:
        for t in self.texts:
            self.removeItem(t)
        self.k = k
        self.texts = []
        for _ in range(k):
            t = pg.TextItem("", anchor=(0, 0.5), color=self.getAxis("left").textPen().color())
            t.setFont(self._font)
            self.addItem(t)
            self.texts.append(t)
        self.setYRange(-0.6, k - 0.4, padding=0)

    def set_threshold(self, value: float) -> None:
        self.threshold = value
        self.thr_line.setValue(value)

    def set_probs(
        self, probs: np.ndarray, labels: Sequence[str], trusted: Sequence[bool] | None = None
    ) -> None:
        """Show the top k of ``probs`` (C,) with their ``labels``; untrusted labels get a † mark."""
        k = min(self.k, probs.shape[0])
        idx = np.argsort(-probs, kind="stable")[:k]
        vals = probs[idx].astype(float)
        above = pg.mkBrush(ACCENT)
        below = pg.mkBrush(150, 150, 150, 160)
        thr = [self.tag_thr.get(int(i), self.threshold) for i in idx]  # each tag's own, else the global one
        self.bars.setOpts(
            x0=np.zeros(k), y=np.arange(k), width=vals, height=0.8,
            brushes=[above if v >= t else below for v, t in zip(vals, thr, strict=True)],
        )  # fmt: skip
        self.labels_shown = []
        for i, t in enumerate(self.texts):
            if i < k:
                name = labels[idx[i]]
                if trusted is not None and not trusted[idx[i]]:
                    name += " †"
                self.labels_shown.append(name)
                t.setText(f"{name}  {vals[i]:.2f}")
                t.setPos(0.01, i)
            else:
                t.setText("")


class TagHistoryPlot(pg.PlotWidget):
    """Curves of selected tags over time (scrolling for live, whole file otherwise) + threshold line."""

    def __init__(self, span_s: float | None = 30.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _style_plot(self)
        self.span_s = span_s
        self.setYRange(0, 1, padding=0.02)
        self.setLabel("bottom", "time", units="s")
        self.setLabel("left", "probability")
        self.setMouseEnabled(x=span_s is None, y=False)
        self.setClipToView(True)
        self.setDownsampling(auto=True, mode="peak")
        self.legend = self.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.thr_line = pg.InfiniteLine(
            0.3, angle=0, pen=pg.mkPen((220, 50, 47), width=1, style=Qt.PenStyle.DashLine)
        )
        self.addItem(self.thr_line)
        self.curves: dict[int, pg.PlotDataItem] = {}
        self.order: list[int] = []  # class indices in curve-colour order
        self.tag_thr: dict[int, float] = {}  # per-tag thresholds (class index → threshold)
        self.tag_lines: dict[int, pg.InfiniteLine] = {}

    def set_threshold(self, value: float) -> None:
        self.thr_line.setValue(value)

    def set_tag_thresholds(self, thresholds: Mapping[int, float]) -> None:
        """Per-tag thresholds: each drawn tag that has one gets its own dashed line in its colour."""
        self.tag_thr = dict(thresholds)
        self._sync_tag_lines()

    def _sync_tag_lines(self) -> None:
        for i in [i for i in self.tag_lines if i not in self.curves or i not in self.tag_thr]:
            self.removeItem(self.tag_lines.pop(i))
        for n, i in enumerate(self.order):
            if i not in self.tag_thr:
                continue
            colour = curve_colour(n)
            pen = pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashDotLine)
            line = self.tag_lines.get(i)
            if line is None:
                opts = {"position": 0.02, "color": colour, "anchors": [(0, 1), (0, 1)]}
                line = pg.InfiniteLine(self.tag_thr[i], angle=0, pen=pen, label="{value:.2f}", labelOpts=opts)
                self.addItem(line)
                self.tag_lines[i] = line
            line.setPen(pen)
            line.setValue(self.tag_thr[i])

    def set_tags(self, indices: Sequence[int], labels: Sequence[str]) -> None:
        """Draw curves for these class indices (others removed)."""
        for i in list(self.curves):
            if i not in indices:
                curve = self.curves.pop(i)
                self.legend.removeItem(curve)
                self.removeItem(curve)
        for n, i in enumerate(indices):
            pen = pg.mkPen(curve_colour(n), width=2)
            if i not in self.curves:
                self.curves[i] = self.plot([], [], pen=pen, name=labels[i])
            else:
                self.curves[i].setPen(pen)
        if list(indices) != self.order:
            self.order = list(indices)
            self._sync_tag_lines()

    def update_data(self, times: np.ndarray, probs: np.ndarray) -> None:
        """times (N,) seconds, probs (N, C) float32; live plots scroll to the last ``span_s``."""
        for i, curve in self.curves.items():
            if probs.shape[0] and i < probs.shape[1]:
                curve.setData(times, probs[:, i])
            else:
                curve.setData([], [])
        if self.span_s is not None and times.size:
            end = max(float(times[-1]), self.span_s)
            self.setXRange(end - self.span_s, end, padding=0)


class TrajectoryView(pg.PlotWidget):
    """2-D embedding trajectory: fading trail coloured by time, current point marked; click → time."""

    time_clicked = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _style_plot(self)
        self.setAspectLocked(False)
        self.setLabel("bottom", "PC 1")
        self.setLabel("left", "PC 2")
        self.path = pg.PlotCurveItem(pen=pg.mkPen(128, 128, 128, 70, width=1))
        self.addItem(self.path)
        self.scatter = pg.ScatterPlotItem(size=7, pen=None, hoverable=True, hoverSize=11)
        self.addItem(self.scatter)
        self.current = pg.ScatterPlotItem(
            size=16, symbol="o", pen=pg.mkPen((220, 50, 47), width=2.5), brush=pg.mkBrush(255, 255, 255, 60)
        )
        self.addItem(self.current)
        self.scatter.sigClicked.connect(self._clicked)
        self.snapshot = TrajectorySnapshot(np.zeros(0), np.zeros((0, 2), np.float32))
        self.dark = False
        self._brushes: dict[bool, list[Any]] = {}

    def set_snapshot(self, snap: TrajectorySnapshot, current_time: float | None = None) -> None:
        """Draw the points of ``snap``; mark the point at ``current_time`` (default: the newest)."""
        self.snapshot = snap
        n = snap.times.size
        if n == 0:
            self.scatter.setData([])
            self.path.setData([], [])
            self.current.setData([])
            return
        palette = self._palette()
        levels = np.arange(n) * len(palette) // n  # colour by age, quantised: cached symbols
        brushes = [palette[i] for i in levels]
        self.scatter.setData(
            x=snap.xy[:, 0], y=snap.xy[:, 1], brush=brushes, data=snap.times, size=7
        )  # fmt: skip
        self.path.setData(snap.xy[:, 0], snap.xy[:, 1])
        i = n - 1 if current_time is None else int(np.argmin(np.abs(snap.times - current_time)))
        self.current.setData(x=[snap.xy[i, 0]], y=[snap.xy[i, 1]])

    def _palette(self) -> list[Any]:
        key = bool(self.dark)
        if key not in self._brushes:
            self._brushes[key] = [pg.mkBrush(*c) for c in trail_colours(TRAIL_LEVELS, dark=key)]
        return self._brushes[key]

    def mark_time(self, t: float) -> None:
        if self.snapshot.times.size:
            i = int(np.argmin(np.abs(self.snapshot.times - t)))
            self.current.setData(x=[self.snapshot.xy[i, 0]], y=[self.snapshot.xy[i, 1]])

    def _clicked(self, _item: object, points: Sequence[object], _ev: object = None) -> None:
        if len(points):
            self.time_clicked.emit(float(points[0].data()))  # type: ignore[attr-defined]
