"""The head list panel of the Heads dialog: the saved heads and New / Rename / Delete / Import / Export /
Activate.

It shows :class:`~app.gui.state.heads.HeadEntry` rows and emits what the user asked for; the dialog
passes the requests to the Qt-free :class:`~app.gui.state.head_editor.HeadEditor`. A head made for
another pack is greyed out (activating it is refused with a message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.state.heads import HeadEntry

HEAD_FILTER = "Encotag heads (*.safetensors);;All files (*)"


def button(text: str, slot: Callable[[], object], tip: str = "") -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(lambda _c=False: slot())
    b.setToolTip(tip)
    return b


def ask(parent: QWidget, title: str, label: str, text: str = "") -> str | None:
    value, ok = QInputDialog.getText(parent, title, label, text=text)
    return value.strip() if ok and value.strip() else None


class HeadListPanel(QGroupBox):
    """The saved heads (trained ones with their card, drafts, unreadable files with their error)."""

    selected = Signal(object)  # head name or None
    new_requested = Signal(str)
    rename_requested = Signal(str, str)  # old, new
    delete_requested = Signal(str)
    import_requested = Signal(str)  # path
    export_requested = Signal(str, str)  # name, path
    activate_requested = Signal(object)  # head name, or None to deactivate

    def __init__(self) -> None:
        super().__init__("Heads")
        self.active_name: str | None = None
        self.start_dir: Callable[[], Path] = Path.home  # where Import/Export open (the dialog sets it)
        self.head_list = QListWidget()
        self.head_list.setWordWrap(True)
        self.head_list.currentItemChanged.connect(lambda cur, _prev: self.selected.emit(self._name(cur)))
        self.activate_button = button(
            "Activate", self._activate_clicked, "Run the selected head live and on files"
        )
        hb = QVBoxLayout(self)
        hb.addWidget(self.head_list, 1)
        grid = QGridLayout()
        buttons = [
            button("New…", self._new_clicked), button("Rename…", self._rename_clicked),
            button("Delete", self._delete_clicked), button("Import…", self._import_clicked),
            button("Export…", self._export_clicked), self.activate_button,
        ]  # fmt: skip
        for i, b in enumerate(buttons):
            grid.addWidget(b, i // 3, i % 3)
        hb.addLayout(grid)

    @staticmethod
    def _name(item: QListWidgetItem | None) -> str | None:
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def selected_name(self) -> str | None:
        return self._name(self.head_list.currentItem())

    def show_entries(
        self, entries: Iterable[HeadEntry], active: str | None, pack_id: str | None, current: str | None
    ) -> None:
        """Rebuild the list (``current`` selected, ``active`` marked ●) without emitting ``selected``."""
        self.active_name = active
        self.head_list.blockSignals(True)
        self.head_list.clear()
        for e in entries:
            text = e.describe()
            other = e.card is not None and pack_id and e.card.pack_id and e.card.pack_id != pack_id
            if other:
                text += " — made for another model pack"
            if e.name == active:
                text = "● " + text
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, e.name)
            item.setToolTip(e.tooltip())
            if e.error or other:
                item.setForeground(QColor(220, 50, 47) if e.error else QColor(150, 150, 150))
            self.head_list.addItem(item)
            if e.name == current:
                self.head_list.setCurrentItem(item)
        self.head_list.blockSignals(False)

    def select_name(self, name: str | None) -> None:
        """Select the row of head ``name`` without emitting ``selected``."""
        for i in range(self.head_list.count()):
            if self.head_list.item(i).data(Qt.ItemDataRole.UserRole) == name:
                self.head_list.blockSignals(True)
                self.head_list.setCurrentRow(i)
                self.head_list.blockSignals(False)

    def sync(self, has_active: bool) -> None:
        on = self.selected_name() == self.active_name and has_active
        self.activate_button.setText("Deactivate" if on else "Activate")

    # --- buttons ----------------------------------------------------------------------------------------
    def _activate_clicked(self) -> None:
        name = self.selected_name()
        self.activate_requested.emit(None if name is None or name == self.active_name else name)

    def _new_clicked(self) -> None:
        name = ask(self, "New head", "Name of the new head (e.g. doorbell):")
        if name:
            self.new_requested.emit(name)

    def _rename_clicked(self) -> None:
        old = self.selected_name()
        new = ask(self, "Rename head", "New name:", old or "") if old else None
        if old and new and new != old:
            self.rename_requested.emit(old, new)

    def _delete_clicked(self) -> None:
        name = self.selected_name()
        q = f"Delete head '{name}' and its examples?"
        if name and QMessageBox.question(self, "Delete head", q) == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(name)

    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a head", str(self.start_dir()), HEAD_FILTER)
        if path:
            self.import_requested.emit(path)

    def _export_clicked(self) -> None:
        name = self.selected_name()
        if name:
            start = str(self.start_dir() / f"{name}.safetensors")
            path, _ = QFileDialog.getSaveFileName(self, "Export head", start, HEAD_FILTER)
            if path:
                self.export_requested.emit(name, path)
