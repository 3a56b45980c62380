"""The live tab: scope over the scrolling tag history, drawn from the Qt-free
:class:`app.gui.state.live.LiveSession` by the window's refresh timer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from app.gui.plots import ScopeView, TagHistoryPlot
from app.gui.state.series import ResultSeries

log = logging.getLogger(__name__)

AUTO_TAGS = 5
AUTO_EVERY_S = 2.0


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
