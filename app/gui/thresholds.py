"""The "Tag thresholds" dock: a threshold per pinned tag ("global" = the toolbar's threshold), and the
live detection line ("Heard now: …") of the tags above their own thresholds.

The thresholds are kept in the settings (``Settings.tag_thresholds``) by ``app.gui.views``, which also
hands them to the plots (one dashed line per tag), the live detection and the exports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.plots import curve_colour

GLOBAL = -0.05  # the spin box's "global" value (below 0)


class ThresholdPanel(QWidget):
    """One row per pinned tag: its name (in its curve colour) and a threshold spin box."""

    changed = Signal(str, object)  # label, threshold or None (the global one)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hint = QLabel("Pin tags in the Tag picker to give each its own threshold.")
        self.hint.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["pinned tag", "threshold"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.hint)
        lay.addWidget(self.table, 1)
        self.labels: list[str] = []
        self.spins: dict[str, QDoubleSpinBox] = {}
        self.default = 0.3

    def set_tags(self, labels: Sequence[str], thresholds: Mapping[str, float], default: float) -> None:
        """Show ``labels`` (the pinned tags, in curve order) with their thresholds."""
        self.default = float(default)
        if list(labels) != self.labels:
            self.labels = list(labels)
            self.spins = {}
            self.table.setRowCount(len(labels))
            for row, name in enumerate(labels):
                cell = QTableWidgetItem(name)
                cell.setForeground(QColor(*curve_colour(row)))
                cell.setToolTip(name)
                self.table.setItem(row, 0, cell)
                spin = QDoubleSpinBox()
                spin.setRange(GLOBAL, 1.0)
                spin.setSingleStep(0.05)
                spin.setDecimals(2)
                spin.setToolTip(f"Threshold of '{name}' (lowest value: use the global threshold)")
                spin.valueChanged.connect(lambda v, n=name: self._spun(n, v))
                self.table.setCellWidget(row, 1, spin)
                self.spins[name] = spin
        for name, spin in self.spins.items():
            spin.blockSignals(True)
            spin.setSpecialValueText(f"global ({self.default:.2f})")
            spin.setValue(float(thresholds.get(name, GLOBAL)))
            spin.blockSignals(False)
        self.hint.setVisible(not labels)

    def _spun(self, name: str, value: float) -> None:
        self.changed.emit(name, None if value < 0 else round(float(value), 4))

    def set_value(self, name: str, value: float | None) -> None:
        """Set ``name``'s threshold as a user would (None: the global one); emits ``changed``."""
        self.spins[name].setValue(GLOBAL if value is None else float(value))
