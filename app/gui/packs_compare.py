"""Compare two packs on one file: the second pack's curves drawn dashed over the file timeline.

A :class:`CompareOverlay` belongs to one :class:`~app.gui.file_view.FileView`. It keeps the second
pack's results (a :class:`~app.gui.state.series.ResultSeries` filled by a compare job) and draws, for
each tag the timeline shows (the picker's selection, else the file's top tags), that tag's curve from the
second pack: same colour, dashed, named "<tag> [<pack>]" in the legend. Tags are matched by name, so
packs with different label lists compare on the labels they share. Drawing is rate-limited by the caller
(:meth:`refresh` redraws only when results or the shown tags changed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from app.gui.file_view import FileView
from app.gui.plots import curve_colour
from app.gui.state.series import ResultBatch, ResultSeries

MAX_PACK_NAME = 40


class CompareOverlay:
    """The second pack's curves on ``view``'s tag plot (see the module docstring)."""

    def __init__(self, view: FileView, pack_name: str, labels: Sequence[str]) -> None:
        self.view = view
        self.pack_name = pack_name[:MAX_PACK_NAME]
        self.labels = tuple(labels)
        self._index = {name: i for i, name in enumerate(self.labels)}
        self.series = ResultSeries()
        self.curves: dict[str, pg.PlotDataItem] = {}  # tag name -> dashed curve
        self.status = "tagging"
        self._drawn: tuple[tuple[tuple[int, str], ...], int] = ((), -1)

    def add(self, batch: ResultBatch) -> None:
        self.series.append(batch)

    def shown_names(self, names: Sequence[str]) -> list[tuple[int, str]]:
        """(position among the shown tags, name) of each tag the view shows (``names``: the main pack's
        labels) that the second pack has too; the position gives the curve its colour."""
        shown = self.view.shown_tags()
        return [(n, names[i]) for n, i in enumerate(shown) if 0 <= i < len(names) and names[i] in self._index]

    def refresh(self, names: Sequence[str], force: bool = False) -> bool:
        """Redraw the dashed curves if the results or the shown tags changed; True when it drew."""
        shown = tuple(self.shown_names(names))
        key = (shown, len(self.series))
        if key == self._drawn and not force:
            return False
        self._drawn = key
        plot = self.view.tags
        wanted = {name for _, name in shown}
        for name in list(self.curves):
            if name not in wanted:
                curve = self.curves.pop(name)
                plot.legend.removeItem(curve)
                plot.removeItem(curve)
        times = self.series.centres
        probs = self.series.probs
        for n, name in shown:
            pen = pg.mkPen(curve_colour(n), width=2, style=Qt.PenStyle.DashLine)
            if name not in self.curves:
                self.curves[name] = plot.plot([], [], pen=pen, name=f"{name} [{self.pack_name}]")
            else:
                self.curves[name].setPen(pen)
            j = self._index[name]
            if len(self.series) and j < probs.shape[1]:
                self.curves[name].setData(np.asarray(times), probs[:, j])
            else:
                self.curves[name].setData([], [])
        return True

    def clear(self) -> None:
        """Remove the curves from the plot."""
        plot = self.view.tags
        for curve in self.curves.values():
            plot.legend.removeItem(curve)
            plot.removeItem(curve)
        self.curves.clear()
