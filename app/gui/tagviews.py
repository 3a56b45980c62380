"""Model/view pieces for tags: the tags-at-a-moment table and the searchable tag picker."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QHeaderView, QLabel, QLineEdit, QListView, QTableView, QVBoxLayout, QWidget

UNTRUSTED_TIP = "† the pack was not trained or validated on this label: treat its score with care"

_Index = QModelIndex | QPersistentModelIndex


class TagTableModel(QAbstractTableModel):
    """Top tags of one probability vector: columns Tag, Probability; rows sorted by probability."""

    COLUMNS = ("Tag", "Probability")

    def __init__(self, top_k: int = 10, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.top_k = top_k
        self.labels: tuple[str, ...] = ()
        self.trusted: tuple[bool, ...] = ()
        self.time_s: float | None = None
        self._rows: list[tuple[int, float]] = []

    def set_labels(self, labels: Sequence[str], trusted: Sequence[bool] | None = None) -> None:
        self.beginResetModel()
        self.labels = tuple(labels)
        self.trusted = tuple(trusted) if trusted is not None else (True,) * len(labels)
        self._rows = []
        self.endResetModel()

    def set_probs(self, probs: np.ndarray | None, time_s: float | None = None) -> None:
        """Show the ``top_k`` entries of ``probs`` (C,) float32 (None clears)."""
        self.beginResetModel()
        self.time_s = time_s
        if probs is None or len(self.labels) == 0:
            self._rows = []
        else:
            idx = np.argsort(-probs, kind="stable")[: self.top_k]
            self._rows = [(int(i), float(probs[i])) for i in idx]
        self.endResetModel()

    def rows(self) -> list[tuple[str, float]]:
        """(label, probability) of the rows shown, best first."""
        return [(self.labels[i], p) for i, p in self._rows]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        cls, p = self._rows[index.row()]
        untrusted = not self.trusted[cls]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == 0:
                return self.labels[cls] + (" †" if untrusted else "")
            return f"{p:.3f}"
        if role == Qt.ItemDataRole.UserRole:
            return p if index.column() == 1 else self.labels[cls]
        if role == Qt.ItemDataRole.ToolTipRole and untrusted:
            return UNTRUSTED_TIP
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class TagTableView(QWidget):
    """Caption ("Tags at 12.3 s") over a table of :class:`TagTableModel`."""

    def __init__(self, model: TagTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.caption = QLabel("No tags yet")
        self.table = QTableView()
        self.table.setModel(model)
        self.table.verticalHeader().hide()
        self.table.setSelectionMode(QTableView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.caption)
        lay.addWidget(self.table)
        model.modelReset.connect(self._caption)

    def _caption(self) -> None:
        t = self.model.time_s
        self.caption.setText("No tags yet" if t is None else f"Tags at {t:.2f} s")


class TagPicker(QWidget):
    """Searchable, checkable list of every label; untrusted labels are marked † and greyed.

    ``selection_changed`` carries the checked class indices in label order.
    """

    selection_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tags…")
        self.search.setClearButtonEnabled(True)
        self.source = QStandardItemModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.source)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.view = QListView()
        self.view.setModel(self.proxy)
        self.view.setUniformItemSizes(True)
        self.count = QLabel("")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.search)
        lay.addWidget(self.view)
        lay.addWidget(self.count)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.source.itemChanged.connect(self._changed)
        self._quiet = False

    def set_labels(self, labels: Sequence[str], trusted: Sequence[bool] | None = None) -> None:
        self._quiet = True
        self.source.clear()
        italic = QFont()
        italic.setItalic(True)
        for i, name in enumerate(labels):
            ok = trusted is None or trusted[i]
            item = QStandardItem(name if ok else f"{name} †")
            item.setCheckable(True)
            item.setEditable(False)
            item.setData(i, Qt.ItemDataRole.UserRole)
            if not ok:
                item.setFont(italic)
                item.setToolTip(UNTRUSTED_TIP)
                item.setForeground(self.palette().placeholderText())
            self.source.appendRow(item)
        self._quiet = False
        n_bad = 0 if trusted is None else sum(not t for t in trusted)
        self.count.setText(f"{len(labels)} labels" + (f", {n_bad} marked †" if n_bad else ""))

    def checked(self) -> list[int]:
        return [
            i for i in range(self.source.rowCount())
            if self.source.item(i).checkState() == Qt.CheckState.Checked
        ]  # fmt: skip

    def set_checked(self, indices: Sequence[int]) -> None:
        self._quiet = True
        wanted = set(indices)
        for i in range(self.source.rowCount()):
            state = Qt.CheckState.Checked if i in wanted else Qt.CheckState.Unchecked
            self.source.item(i).setCheckState(state)
        self._quiet = False
        self.selection_changed.emit(self.checked())

    def _changed(self, _item: QStandardItem) -> None:
        if not self._quiet:
            self.selection_changed.emit(self.checked())
