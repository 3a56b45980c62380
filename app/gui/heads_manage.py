"""The head list half of the Heads dialog: list, new, rename, delete, import, export, activate.

A mixin of :class:`app.gui.heads_dialog.HeadsDialog` (it uses the dialog's widgets and store). Activating
loads the head with the current pack's id and embedding layout, so a head made for another pack is
refused with a message; the active head goes to the inference worker (``head_probs`` in its results),
to the "Personal head" dock, and into the settings (``head_path``) to be re-activated next start.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFileDialog, QInputDialog, QListWidget, QListWidgetItem, QMessageBox, QWidget

from app.gui import heads_logic as logic
from app.gui.heads_jobs import audio_dir
from models.head_store import ExamplePackError, ExampleSet, PackStamp, check_name
from models.heads import HeadError, load_head

if TYPE_CHECKING:
    from app.gui.heads_editor import ClassTable
    from app.gui.heads_logic import HeadEntry
    from app.gui.heads_output import HeadOutputPanel
    from app.gui.main_window import MainWindow
    from models.head_store import HeadStore
    from models.heads import Head

HEAD_FILTER = "Encotag heads (*.safetensors);;All files (*)"


class HeadListMixin:
    """Head list and activation (mixed into ``HeadsDialog``, which owns these attributes)."""

    win: MainWindow
    panel: HeadOutputPanel
    store: HeadStore
    head_list: QListWidget
    class_table: ClassTable
    current: str | None
    examples: ExampleSet
    active: Head | None
    active_name: str | None
    entries: dict[str, HeadEntry]
    _wanted_head: str | None

    if TYPE_CHECKING:

        def message(self, text: str, error: bool = True) -> None: ...
        def _sync_buttons(self) -> None: ...

    def _widget(self) -> QWidget:
        return cast(QWidget, self)

    # --- head list --------------------------------------------------------------------------------------
    def _selected(self) -> str | None:
        item = self.head_list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def refresh_list(self) -> None:
        """Re-read the heads folder (selection kept)."""
        keep = self.current
        pack_id = getattr(self.win.pack_info, "pack_id", None)
        self.head_list.blockSignals(True)
        self.head_list.clear()
        self.entries = {e.name: e for e in logic.list_entries(self.store)}
        for e in self.entries.values():
            text = e.describe()
            other = e.card is not None and pack_id and e.card.pack_id and e.card.pack_id != pack_id
            if other:
                text += " — made for another model pack"
            if e.name == self.active_name:
                text = "● " + text
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, e.name)
            item.setToolTip(e.tooltip())
            if e.error or other:
                item.setForeground(QColor(220, 50, 47) if e.error else QColor(150, 150, 150))
            self.head_list.addItem(item)
            if e.name == keep:
                self.head_list.setCurrentItem(item)
        self.head_list.blockSignals(False)
        if keep is not None and keep not in self.entries:
            self.select_head(None)
        self._sync_buttons()

    def _list_clicked(self, item: QListWidgetItem | None) -> None:
        self.select_head(None if item is None else item.data(Qt.ItemDataRole.UserRole))

    def select_head(self, name: str | None) -> None:
        """Edit head ``name`` (its example set, or its card's classes when no examples were kept)."""
        self.current, self.examples = name, ExampleSet.empty()
        note = ""
        if name is not None:
            try:
                self.examples = self.store.load_examples(name)
            except HeadError as exc:
                self.message(str(exc))
            entry = self.entries.get(name)
            card = entry.card if entry else None
            if not len(self.examples.label) and not self.examples.classes and card is not None:
                self.examples = ExampleSet.empty(card.classes)
                note = f"'{name}' was trained without keeping its examples: add examples again to retrain."
            if self.win.pack_info is not None:
                try:
                    self.examples.check_pack(PackStamp.of(self.win.pack_info))
                except ExamplePackError as exc:
                    self.message(f"'{name}': {exc}")
            for i in range(self.head_list.count()):
                if self.head_list.item(i).data(Qt.ItemDataRole.UserRole) == name:
                    self.head_list.blockSignals(True)
                    self.head_list.setCurrentRow(i)
                    self.head_list.blockSignals(False)
        self.class_table.set_examples(self.examples)
        if note:
            self.message(note, error=False)
        self._sync_buttons()

    def new_head(self, name: str, classes: tuple[str, ...] = ()) -> bool:
        try:
            name = check_name(name)
            if name in self.entries or self.store.path(name).exists():
                raise ValueError(f"a head named '{name}' already exists")
            ex = ExampleSet.empty()
            for c in classes:
                ex = logic.add_class(ex, c)
            self.store.save_examples(name, ex)
        except (ValueError, OSError) as exc:
            self.message(str(exc))
            return False
        self.refresh_list()
        self.select_head(name)
        self.message(f"Head '{name}' created: add classes and examples, then Train.", error=False)
        return True

    def rename_head(self, old: str, new: str) -> bool:
        try:
            new = check_name(new)
            if self.store.path(old).exists():
                self.store.rename(old, new)
            elif new in self.entries:
                raise ValueError(f"a head named '{new}' already exists")
            else:
                self.store.examples_path(old).rename(self.store.examples_path(new))
            if audio_dir(self.store, old).is_dir() and not audio_dir(self.store, new).exists():
                audio_dir(self.store, old).rename(audio_dir(self.store, new))
        except (ValueError, OSError, HeadError) as exc:
            self.message(str(exc))
            return False
        if self.active_name == old:
            self.active_name = new
            self._remember(self.store.path(new))
        self.current = new if self.current == old else self.current
        self.refresh_list()
        self.select_head(self.current)
        return True

    def delete_head(self, name: str) -> None:
        if self.active_name == name:
            self.activate(None)
        try:
            self.store.delete(name)
        except (HeadError, OSError) as exc:
            self.message(str(exc))
        kept = audio_dir(self.store, name)
        if kept.is_dir():
            for f in kept.glob("*.flac"):
                f.unlink(missing_ok=True)
            try:
                kept.rmdir()
            except OSError as exc:  # other files the user put there stay
                self.message(f"Kept audio folder not removed: {exc}")
        self.refresh_list()

    def import_head(self, path: str | Path, name: str | None = None) -> bool:
        try:
            out = self.store.import_file(path, name)
        except (HeadError, ValueError, OSError) as exc:
            self.message(f"Import refused: {exc}")
            return False
        self.refresh_list()
        self.select_head(out.name[: -len(".safetensors")])
        self.message(f"Imported {out}", error=False)
        return True

    def export_head(self, name: str, path: str | Path) -> Path | None:
        try:
            out = self.store.export(name, path)
        except (HeadError, ValueError, OSError) as exc:
            self.message(f"Export failed: {exc}")
            return None
        self.message(f"Exported '{name}' to {out}", error=False)
        return out

    # --- activation -------------------------------------------------------------------------------------
    def activate(self, name: str | None) -> bool:
        """Run head ``name`` live and on files (None: no head). A head of another pack is refused."""
        head = None
        if name is not None:
            info = self.win.pack_info
            if info is None:
                self._wanted_head = str(self.store.path(name))
                self.message(
                    "The model is still loading; the head will be activated when it is ready.", False
                )
                return False
            try:
                head = load_head(self.store.path(name), pack_id=info.pack_id, layout=info.embedding_layout)
            except (HeadError, ValueError) as exc:
                self.message(f"Cannot activate: {exc}")
                return False
        self.active, self.active_name = head, name
        self.win.worker.set_head(head)
        self.panel.set_head(head)
        self._remember(None if name is None else self.store.path(name))
        if head is not None:
            if self.panel.dock is not None:
                self.panel.dock.show()
                self.panel.dock.raise_()
            self.message(f"Head '{name}' is active.", error=False)
        self.refresh_list()
        return True

    def toggle_active(self) -> None:
        name = self._selected()
        self.activate(None if name is None or name == self.active_name else name)

    def _remember(self, path: Path | None) -> None:
        self.win.settings = dataclasses.replace(
            self.win.settings, head_path=None if path is None else str(path)
        )

    def engine_ready(self, _info: Any = None) -> None:
        """Activate the head remembered in the settings (or asked for while loading), once."""
        self.refresh_list()
        wanted, self._wanted_head = self._wanted_head, None
        if wanted and Path(wanted).parent == self.store.root and Path(wanted).is_file():
            self.activate(Path(wanted).name[: -len(".safetensors")])

    # --- buttons with input dialogs ---------------------------------------------------------------------
    def _ask(self, title: str, label: str, text: str = "") -> str | None:
        value, ok = QInputDialog.getText(self._widget(), title, label, text=text)
        return value.strip() if ok and value.strip() else None

    def _new_clicked(self) -> None:
        name = self._ask("New head", "Name of the new head (e.g. doorbell):")
        if name:
            self.new_head(name)

    def _rename_clicked(self) -> None:
        old = self._selected()
        new = self._ask("Rename head", "New name:", old or "") if old else None
        if old and new and new != old:
            self.rename_head(old, new)

    def _delete_clicked(self) -> None:
        name = self._selected()
        q = f"Delete head '{name}' and its examples?"
        if name and QMessageBox.question(self._widget(), "Delete head", q) == QMessageBox.StandardButton.Yes:
            self.delete_head(name)

    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._widget(), "Import a head", str(Path.home()), HEAD_FILTER)
        if path:
            self.import_head(path)

    def _export_clicked(self) -> None:
        name = self._selected()
        if name:
            start = str(Path.home() / f"{name}.safetensors")
            path, _ = QFileDialog.getSaveFileName(self._widget(), "Export head", start, HEAD_FILTER)
            if path:
                self.export_head(name, path)
