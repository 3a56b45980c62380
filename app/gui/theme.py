"""Light and dark themes: Fusion palettes, following the system colour scheme unless the user picks one."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def system_is_dark() -> bool:
    """True when the platform reports a dark colour scheme (Qt ≥ 6.5), else judge the default palette."""
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None:
        value = scheme()
        if value == Qt.ColorScheme.Dark:
            return True
        if value == Qt.ColorScheme.Light:
            return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor(30, 32, 36), QColor(42, 45, 50), QColor(225, 228, 232)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.ToolTipBase: window,
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: window,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 80, 80),
        QPalette.ColorRole.Highlight: QColor(0, 150, 200),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(80, 180, 230),
        QPalette.ColorRole.PlaceholderText: QColor(140, 144, 150),
        QPalette.ColorRole.Mid: QColor(70, 74, 80),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 124, 130))
    return p


def _light_palette() -> QPalette:
    p = QApplication.style().standardPalette()
    p.setColor(QPalette.ColorRole.Highlight, QColor(0, 120, 180))
    return p


def apply_theme(app: QApplication, theme: str) -> bool:
    """Apply ``"system"``, ``"light"`` or ``"dark"``; returns True when the result is dark.

    pyqtgraph's defaults (background/foreground) are set to match; plots created afterwards use them.
    """
    app.setStyle("Fusion")
    dark = system_is_dark() if theme == "system" else theme == "dark"
    app.setPalette(_dark_palette() if dark else _light_palette())
    pg.setConfigOptions(
        background=(30, 32, 36) if dark else (255, 255, 255),
        foreground=(210, 214, 220) if dark else (40, 40, 40),
        antialias=False,  # much cheaper to paint; curves are dense enough not to need it
    )
    return dark


def restyle_plot(plot: pg.PlotWidget, dark: bool) -> None:
    """Re-colour an existing plot after a theme switch."""
    plot.setBackground((30, 32, 36) if dark else (255, 255, 255))
    fg = (210, 214, 220) if dark else (40, 40, 40)
    for name in ("left", "bottom"):
        axis = plot.getAxis(name)
        axis.setPen(fg)
        axis.setTextPen(fg)
