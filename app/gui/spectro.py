"""The spectrogram view: log-frequency axis (ticks in Hz), a colour scale in dB, a cursor line.

Fed :class:`~app.gui.state.spectrogram.Spectrogram` objects computed on a background thread
(``app.gui.spectro_jobs``); drawing is one ``setImage`` per update.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

from app.gui.plots import _style_plot
from app.gui.state.spectrogram import FLOOR_DB, Spectrogram

TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 5000, 10000)
COLOUR_MAP = "inferno"
LEVELS_DB = (-90.0, 0.0)


def _hz(f: float) -> str:
    return f"{f / 1000:g}k" if f >= 1000 else f"{f:g}"


class SpectrogramPlot(pg.PlotWidget):
    """Time × log-frequency image with a dB colour bar; ``live`` views count time in seconds ago."""

    def __init__(self, live: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _style_plot(self)
        self.live = live
        self.live_span_s = 30.0  # live views show this many seconds (the live history kept)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.addItem(self.image)
        self.setLabel("left", "frequency", units="Hz")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.getAxis("left").setWidth(48)
        self.setLabel("bottom", "seconds ago" if live else "time", units=None if live else "s")
        self.setMouseEnabled(x=not live, y=False)
        self.colour_bar = pg.ColorBarItem(
            values=LEVELS_DB, colorMap=COLOUR_MAP, label="dBFS", interactive=False, width=12
        )
        self.colour_bar.setImageItem(self.image, insert_in=self.getPlotItem())
        self.cursor = pg.InfiniteLine(0.0, angle=90, movable=False, pen=pg.mkPen((220, 50, 47), width=2))
        self.cursor.setVisible(not live)
        self.addItem(self.cursor)
        self.spectrogram: Spectrogram | None = None
        self._edges: tuple[float, float] | None = None
        self.setMinimumHeight(90)

    def set_spectrogram(self, spec: Spectrogram) -> None:
        """Show ``spec`` (time from ``spec.t0``, log-frequency bands from ``spec.edges``)."""
        self.spectrogram = spec
        if spec.db.shape[0] == 0:
            self.image.clear()
            return
        lo, hi = math.log10(float(spec.edges[0])), math.log10(float(spec.edges[-1]))
        self.image.setImage(np.maximum(spec.db, FLOOR_DB), autoLevels=False, levels=LEVELS_DB)
        x0 = spec.t0 - spec.dt / 2
        self.image.setRect(QRectF(x0, lo, spec.db.shape[0] * spec.dt, hi - lo))
        if self._edges != (lo, hi):
            self._edges = (lo, hi)
            ticks = [(math.log10(f), _hz(f)) for f in TICKS_HZ if lo <= math.log10(f) <= hi + 1e-9]
            self.getAxis("left").setTicks([ticks, []])
            self.setYRange(lo, hi, padding=0)
        if self.live:
            self.setXRange(-max(self.live_span_s, spec.db.shape[0] * spec.dt), 0.0, padding=0)

    def frequency_at(self, y: float) -> float:
        """The frequency (Hz) at view coordinate ``y`` (the axis is log10 of Hz)."""
        return float(10.0**y)
