"""The live tab: scope, tag history; plus the live state (series, trajectory, source, tap).

``LiveSession`` is Qt-free state; ``LiveTab`` is the widget drawn from it by the window's refresh timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from app.gui.plots import ScopeView, TagHistoryPlot
from app.gui.series import ResultBatch, ResultSeries
from app.gui.worker import LiveTap
from app.trajectory import Trajectory
from models.results import WindowResult

log = logging.getLogger(__name__)

LIVE_HISTORY_S = 20 * 60  # live results kept for plots and export (bounded memory)
AUTO_TAGS = 5
AUTO_EVERY_S = 2.0


class LiveSession:
    """State of one live run: the source, its tap, the result series and the trajectory."""

    def __init__(self, hop_s: float = 0.25) -> None:
        self.series = ResultSeries(max_len=int(LIVE_HISTORY_S / max(hop_s, 0.01)))
        self.trajectory = Trajectory(capacity=600)
        self.source: Any = None
        self.tap: LiveTap | None = None
        self.results = 0
        self.latest: WindowResult | None = None
        self._pending: list[WindowResult] = []
        self._redraw = False

    def mark_dirty(self) -> None:
        """Redraw the live views at the next drawing stages (new labels, theme, selection)."""
        self._redraw = True

    def take_changes(self) -> bool:
        """File pending results (:meth:`flush`); True if the live views need redrawing since the last call."""
        changed = self.flush() or self._redraw
        self._redraw = False
        return changed

    @property
    def running(self) -> bool:
        return self.source is not None

    def start(self, source: Any, on_error: Callable[[str], None]) -> LiveTap:
        """Start ``source`` (an ``app.audio_input`` InputSource) writing into a fresh :class:`LiveTap`."""
        tap = LiveTap(int(source.sample_rate), int(getattr(source, "channels", 1)))
        source.start(tap.write, on_error)
        self.source, self.tap = source, tap
        return tap

    def stop(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            try:
                source.stop()
            except Exception:  # noqa: BLE001 - a dying device must not take the app with it
                log.exception("error while stopping the input")

    def clear(self) -> None:
        self._redraw = True
        self.series.clear()
        self.trajectory.clear()
        self.latest = None
        self.results = 0

    def add(self, result: WindowResult) -> None:
        """Queue a result from the worker (GUI thread); :meth:`flush` files them into the series."""
        self._pending.append(result)
        self.latest = result
        self.results += 1

    def flush(self) -> bool:
        """Move pending results into the series and trajectory; True if anything changed."""
        if not self._pending:
            return False
        if len(self.series) and self._pending[0].end < self.series.ends[-1]:
            self.clear()  # the stream clock restarted (new device or window settings)
            self.latest = self._pending[-1]
            self.results = len(self._pending)
        pending, self._pending = self._pending, []
        if len({r.embedding.shape for r in pending}) > 1:  # the pack changed mid-batch: keep the newest
            pending = [r for r in pending if r.embedding.shape == pending[-1].embedding.shape]
        batch = ResultBatch.from_results(pending)
        try:
            self.series.append(batch)
        except ValueError:  # another model pack (other embedding size): start a fresh history
            self.clear()
            self.latest, self.results = pending[-1], len(pending)
            self.series.append(batch)
        self.trajectory.extend(0.5 * (batch.starts + batch.ends), batch.embeddings)
        return True


class LiveTab(QWidget):
    """Scope (last seconds of input) over the scrolling tag history of the live stream."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.info = QLabel("Live input is stopped. Press Start (Ctrl+L) to listen.")
        self.scope = ScopeView(seconds=5.0)
        self.history = TagHistoryPlot(span_s=30.0)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.scope)
        split.addWidget(self.history)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.info)
        lay.addWidget(split, 1)
        self.selected: list[int] = []
        self._auto: list[int] = []
        self._auto_at = -1e9

    def shown_tags(self, series: ResultSeries) -> list[int]:
        """The picker's selection, else the top tags of the last 10 s (re-chosen every 2 s)."""
        if self.selected:
            return list(self.selected)
        if len(series) == 0:
            return []
        now = float(series.ends[-1])
        if now - self._auto_at >= AUTO_EVERY_S or not self._auto:
            recent = series.probs[series.ends >= now - 10.0]
            self._auto = [int(i) for i in np.argsort(-recent.mean(axis=0), kind="stable")[:AUTO_TAGS]]
            self._auto_at = now
        return self._auto

    def draw(self, series: ResultSeries, labels: Sequence[str]) -> None:
        self.history.set_tags(self.shown_tags(series), labels)
        self.history.update_data(series.centres, series.probs)
