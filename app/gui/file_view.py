"""One tagged file: waveform overview on top, tag curves below, a shared cursor; click → time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui.playback import FilePlayer
from app.gui.plots import ACCENT, TagHistoryPlot, _style_plot
from app.gui.state.series import Overview, ResultBatch, ResultSeries
from app.gui.state.trajectory import Trajectory

AUTO_TAGS = 5  # curves drawn per file when the picker has nothing selected


class FileView(QWidget):
    """Timeline of one file (``series`` grows while the worker tags it).

    ``time_selected`` is emitted with the clicked (or dragged) cursor time in seconds.
    """

    time_selected = Signal(float)
    play_failed = Signal(str)  # emitted from the playback thread: connect to a QObject's method

    def __init__(self, path: Path, job_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.job_id = job_id
        self.series = ResultSeries()
        self.trajectory = Trajectory(capacity=100_000)
        self.overview: Overview | None = None
        self.status = "queued"
        self.cursor_s = 0.0
        self.labels: Sequence[str] = ()
        self.selected: list[int] = []
        self._dirty = False  # curves need redrawing
        self.bars_dirty = False  # tags at the cursor changed (new results)
        self.traj_dirty = False

        self.title = QLabel(f"<b>{self.path.name}</b> — queued")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.wave = pg.PlotWidget()
        _style_plot(self.wave)
        self.wave.setMouseEnabled(x=True, y=False)
        self.wave.setYRange(-1, 1, padding=0.05)
        self.wave.getAxis("left").setWidth(48)
        self.wave.setMaximumHeight(140)
        self.wave.setDownsampling(auto=True, mode="peak")
        self.wave.setClipToView(True)
        self.wave_curve = self.wave.plot(pen=pg.mkPen(ACCENT, width=1))
        self.tags = TagHistoryPlot(span_s=None)
        self.tags.getAxis("left").setWidth(48)
        self.tags.setXLink(self.wave)
        for plot in (self.wave, self.tags):  # fixed ranges: axes are not regenerated on every update
            plot.disableAutoRange()
        self.cursors = []
        for plot in (self.wave, self.tags):
            line = pg.InfiniteLine(0.0, angle=90, movable=True, pen=pg.mkPen((220, 50, 47), width=2))
            line.sigPositionChanged.connect(self._line_moved)
            plot.addItem(line)
            self.cursors.append(line)
            plot.scene().sigMouseClicked.connect(lambda ev, p=plot: self._clicked(p, ev))

        self.player = FilePlayer()
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play the file from the cursor (Ctrl+P)")
        self.play_button.clicked.connect(self.toggle_play)
        self.playheads = []
        for plot in (self.wave, self.tags):
            head = pg.InfiniteLine(0.0, angle=90, movable=False, pen=pg.mkPen((44, 160, 44), width=2))
            head.setVisible(False)
            plot.addItem(head)
            self.playheads.append(head)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.play_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.wave, 1)
        lay.addWidget(self.tags, 3)

    # --- data from the worker ------------------------------------------------------------------------
    def set_labels(self, labels: Sequence[str]) -> None:
        self.labels = labels

    def set_overview(self, ov: Overview) -> None:
        self.overview = ov
        t = np.arange(ov.lo.size) / ov.rate
        self.wave_curve.setData(np.repeat(t, 2), np.column_stack([ov.lo, ov.hi]).ravel())
        self.wave.setXRange(0, max(ov.duration, 1e-3), padding=0.01)
        self._set_title()

    def add_batch(self, batch: ResultBatch) -> None:
        self.series.append(batch)
        self.trajectory.extend(0.5 * (batch.starts + batch.ends), batch.embeddings)
        self._dirty = self.bars_dirty = self.traj_dirty = True

    def set_progress(self, done: int, total: int) -> None:
        self.status = f"tagging: {100 * done // max(total, 1)} %"
        self._set_title()

    def set_finished(self, status: str) -> None:
        self.status = status
        self._dirty = True
        self.refresh()
        self._set_title()

    def _set_title(self) -> None:
        dur = f"{self.overview.duration:.1f} s, " if self.overview else ""
        self.title.setText(f"<b>{self.path.name}</b> — {dur}{len(self.series)} windows — {self.status}")
        self.title.setToolTip(str(self.path))

    # --- drawing -------------------------------------------------------------------------------------
    def set_selected(self, indices: Sequence[int]) -> None:
        self.selected = list(indices)
        self._dirty = True

    def shown_tags(self) -> list[int]:
        """Class indices drawn: the picker's selection, else the file's top tags by peak probability."""
        if self.selected:
            return list(self.selected)
        return [int(i) for i in self.series.top_classes(AUTO_TAGS)]

    def refresh(self) -> None:
        """Redraw curves if new results arrived (called by the window's refresh timer)."""
        if not self._dirty or not self.labels:
            return
        self._dirty = False
        self.tags.set_tags(self.shown_tags(), self.labels)
        self.tags.update_data(self.series.centres, self.series.probs)
        if self.overview is None and len(self.series):
            self.wave.setXRange(0, float(self.series.ends[-1]), padding=0.01)

    def set_threshold(self, value: float) -> None:
        self.tags.set_threshold(value)

    def mark_dirty(self) -> None:
        """Redraw the curves, the tags at the cursor and the trajectory at the next drawing stages."""
        self._dirty = self.bars_dirty = self.traj_dirty = True

    @property
    def curves_dirty(self) -> bool:
        return self._dirty

    # --- playback ------------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        """Play from the cursor, or stop playing."""
        if self.player.playing:
            self.player.stop()
        else:
            self.player.play(self.path, self.cursor_s, on_error=self.play_failed.emit)
        self.update_playhead()

    def update_playhead(self) -> bool:
        """Move the playhead to the playing position; returns True while playing."""
        playing = self.player.playing
        self.play_button.setText("■ Stop" if playing else "▶ Play")
        for head in self.playheads:
            head.setVisible(playing)
            if playing:
                head.setValue(self.player.position())
        return playing

    # --- cursor --------------------------------------------------------------------------------------
    def set_cursor(self, t: float, emit: bool = True) -> None:
        self.cursor_s = float(t)
        for line in self.cursors:
            line.blockSignals(True)
            line.setValue(self.cursor_s)
            line.blockSignals(False)
        if emit:
            self.time_selected.emit(self.cursor_s)

    def probs_at(self, t: float) -> np.ndarray | None:
        i = self.series.index_at(t)
        return None if i is None else self.series.probs[i]

    def _line_moved(self, line: pg.InfiniteLine) -> None:
        self.set_cursor(float(line.value()))

    def _clicked(self, plot: pg.PlotWidget, ev: object) -> None:
        pos = ev.scenePos()  # type: ignore[attr-defined]
        vb = plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        self.set_cursor(float(vb.mapSceneToView(pos).x()))
