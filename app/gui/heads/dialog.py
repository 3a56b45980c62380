"""The Heads dialog: make, train, manage and activate personal heads (non-modal).

Left: the saved heads (trained ones with their card, drafts, unreadable files with their error) and
New / Rename / Delete / Import / Export / Activate. Right: the edited head's classes (drop files or folders
on a class, record N seconds into it, add a "background" class), Train (logistic regression or MLP,
false-alarm rate) with progress and Cancel, and the result: cross-validated accuracy, the confusion
table and warnings. Embedding and training run on :class:`~app.gui.heads.jobs.HeadJobRunner`'s thread
(own Engine); the GUI thread never runs torch. Examples are kept as embeddings next to the head.

:func:`install` is called by the main window (``actions.install_heads``): it adds the dialog, the
"Personal head" dock and the Heads menu entries, and returns the :class:`HeadsFeature` that the window
keeps (``win.heads``) and tells when it closes. "That was X": :meth:`HeadsDialog.add_examples` takes a span's
embeddings; :meth:`HeadsDialog.label_span` takes a time span of the current view (the dock's span
selector calls it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMenu,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.gui.heads.editor import ClassTable, Recorder
from app.gui.heads.jobs import EmbedJob, HeadJobRunner, audio_dir
from app.gui.heads.manage import HeadListMixin
from app.gui.heads.output import HeadOutputPanel, export_events_dialog, span_embeddings
from app.gui.heads.train import TrainMixin, button
from app.gui.state import heads as logic
from app.paths import heads_dir
from models.config import WindowConfig
from models.head_store import ExampleSet, HeadStore, PackStamp
from models.heads import BACKGROUND, Head, HeadReport

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)
_button = button


class HeadsDialog(HeadListMixin, TrainMixin, QDialog):
    """Non-modal head manager and editor for ``win`` (see module docstring)."""

    def __init__(self, win: MainWindow, panel: HeadOutputPanel) -> None:
        super().__init__(win)
        self.win, self.panel = win, panel
        self.setWindowTitle("Personal heads")
        self.setModal(False)
        self.resize(980, 620)
        self.setAcceptDrops(False)
        self.store = HeadStore(heads_dir())
        self.current: str | None = None
        self.examples = ExampleSet.empty()
        self.active: Head | None = None
        self.active_name: str | None = None
        self.last_report: HeadReport | None = None
        self._jobs: dict[int, str] = {}  # job id → "embed" | "train"
        self._wanted_head: str | None = win.settings.head_path
        self.runner = HeadJobRunner(win.pack_path, WindowConfig(win.settings.window_s, win.settings.hop_s))
        self.runner.progress.connect(self._job_progress)
        self.runner.finished.connect(self._job_finished)
        self.recorder = Recorder(win)
        self.recorder.tick.connect(lambda s: self.record_button.setText(f"Recording… {s:.0f} s"))
        self.recorder.finished.connect(self._recorded)
        self.recorder.failed.connect(self._record_failed)
        panel.span_requested.connect(self.label_span)
        self._build()
        self.refresh_list()

    # --- layout ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.head_list = QListWidget()
        self.head_list.setWordWrap(True)
        self.head_list.currentItemChanged.connect(lambda cur, _prev: self._list_clicked(cur))
        self.activate_button = _button(
            "Activate", self.toggle_active, "Run the selected head live and on files"
        )
        heads_box = QGroupBox("Heads")
        hb = QVBoxLayout(heads_box)
        hb.addWidget(self.head_list, 1)
        grid = QGridLayout()
        buttons = [
            _button("New…", self._new_clicked), _button("Rename…", self._rename_clicked),
            _button("Delete", self._delete_clicked), _button("Import…", self._import_clicked),
            _button("Export…", self._export_clicked), self.activate_button,
        ]  # fmt: skip
        for i, b in enumerate(buttons):
            grid.addWidget(b, i // 3, i % 3)
        hb.addLayout(grid)

        self.class_table = ClassTable()
        self.class_table.files_dropped.connect(self.add_files)
        self.class_table.itemSelectionChanged.connect(self._sync_buttons)
        self.record_seconds = QSpinBox()
        self.record_seconds.setRange(1, 120)
        self.record_seconds.setValue(5)
        self.record_seconds.setSuffix(" s")
        self.record_button = _button(
            "Record", self._record_clicked, "Record from the input into the selected class"
        )
        self.edit_box = QGroupBox("Classes")
        eb = QVBoxLayout(self.edit_box)
        eb.addWidget(QLabel("Drop audio files or folders on a class, record into it, or mark a span in the "
                            "Personal head dock and press “That was…”."))  # fmt: skip
        eb.addWidget(self.class_table, 1)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for b in (
            _button("Add class…", self._add_class_clicked),
            _button(
                "Background class", self.add_background, "A 'none of these' class: record the room into it"
            ),
            _button("Rename class…", self._rename_class_clicked),
            _button("Remove class", self._remove_class_clicked),
        ):
            row1.addWidget(b)
        row2.addWidget(_button("Add files…", self._add_files_clicked))
        row2.addWidget(_button("Add folder…", self._add_folder_clicked))
        row2.addWidget(_button("Clear examples", self._clear_clicked))
        row2.addStretch(1)
        self.keep_audio = QCheckBox("Keep audio")
        self.keep_audio.setToolTip(
            "Also keep recordings as FLAC files next to the head (by default only embeddings are kept)"
        )
        row2.addWidget(self.keep_audio)
        row2.addWidget(self.record_seconds)
        row2.addWidget(self.record_button)
        eb.addLayout(row1)
        eb.addLayout(row2)

        train_box = self._build_train_box()

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.edit_box, 3)
        rl.addWidget(train_box, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(heads_box)
        split.addWidget(right)
        split.setStretchFactor(1, 2)
        split.setSizes([340, 640])
        self.msg = QLabel("")
        self.msg.setWordWrap(True)
        self.msg.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.msg)
        self._sync_buttons()

    def message(self, text: str, error: bool = True) -> None:
        """Show a one-line notice in the dialog (errors in red) and log it."""
        self.msg.setStyleSheet("color: #dc322f" if error else "")
        self.msg.setText(text)
        (log.warning if error else log.info)("heads: %s", text)

    def _sync_buttons(self) -> None:
        has_head = self.current is not None
        busy = bool(self._jobs) or self.recorder.active
        self.edit_box.setEnabled(has_head)
        self.edit_box.setTitle(
            f"Classes of '{self.current}'" if has_head else "Classes (choose or make a head)"
        )
        self.train_button.setEnabled(has_head and "train" not in self._jobs.values())
        self.cancel_button.setEnabled(busy)
        self.record_button.setEnabled(
            not self.recorder.active and self.class_table.current_class() is not None
        )
        if not self.recorder.active:
            self.record_button.setText("Record")
        self.progress.setVisible(bool(self._jobs))
        self.activate_button.setText(
            "Deactivate" if self._selected() == self.active_name and self.active else "Activate"
        )
        self.panel.set_span_classes(self.examples.classes if has_head else ())

    # --- classes and examples ---------------------------------------------------------------------------
    def _set_examples(self, ex: ExampleSet, select: str | None = None) -> None:
        assert self.current is not None
        self.store.save_examples(self.current, ex)
        self.examples = ex
        self.class_table.set_examples(ex)
        if select:
            self.class_table.select_class(select)
        self.refresh_list()

    def _edit(self, fn: Any, *args: Any, select: str | None = None) -> bool:
        if self.current is None:
            self.message("Choose or make a head first.")
            return False
        try:
            self._set_examples(fn(self.examples, *args), select)
        except (ValueError, OSError) as exc:
            self.message(str(exc))
            return False
        return True

    def add_class(self, name: str) -> bool:
        return self._edit(logic.add_class, name, select=name.strip())

    def add_background(self) -> bool:
        if BACKGROUND in self.examples.classes:
            self.class_table.select_class(BACKGROUND)
        elif not self.add_class(BACKGROUND):
            return False
        self.message("Record 10–30 s of the room (no target sounds) into 'background'.", error=False)
        return True

    def remove_class(self, name: str) -> bool:
        return self._edit(logic.remove_class, name)

    def rename_class(self, old: str, new: str) -> bool:
        return self._edit(logic.rename_class, old, new, select=new.strip())

    def clear_class(self, name: str) -> bool:
        return self._edit(logic.clear_class, name, select=name)

    def add_examples(self, class_name: str, emb: np.ndarray, source: str = "span") -> bool:
        """ "That was X": add embeddings (n, D) float32 to ``class_name`` of the edited head."""
        if self.current is None:
            self.message("Choose or make a head first (Heads ▸ Manage heads…).")
            return False
        pack = PackStamp.of(self.win.pack_info) if self.win.pack_info is not None else None
        return self._edit(logic.add_examples, class_name, emb, source, pack, select=class_name)

    def label_span(self, class_name: str, t0: float, t1: float) -> bool:
        """Add the current view's windows centred in [t0, t1] s as examples of ``class_name``."""
        emb, source = span_embeddings(self.win, t0, t1)
        if not len(emb):
            self.message("Nothing tagged in that span yet.")
            return False
        if self.add_examples(class_name, emb, source):
            self.message(f"Added {len(emb)} window(s) of {source} to '{class_name}'.", error=False)
            return True
        return False

    def add_files(self, class_name: str, paths: list[str]) -> int | None:
        """Embed files/folders (off the GUI thread) into ``class_name``; returns the job id."""
        if self.current is None:
            self.message("Choose or make a head first.")
            return None
        return self._submit(EmbedJob(self.current, class_name, tuple(str(p) for p in paths)), "embed")

    def record(self, class_name: str, seconds: float) -> bool:
        try:
            self.recorder.start(class_name, seconds)
        except Exception as exc:  # noqa: BLE001 - AudioInputError and PortAudio errors alike
            self.message(f"Cannot record: {exc}")
            return False
        self._sync_buttons()
        return True

    def _recorded(self, class_name: str, audio: np.ndarray, sr: int) -> None:
        self._record_done()
        if self.current is not None:
            keep = str(audio_dir(self.store, self.current)) if self.keep_audio.isChecked() else None
            job = EmbedJob(
                self.current, class_name, audio=audio, sample_rate=sr, source="mic", keep_audio_dir=keep
            )
            self._submit(job, "embed")

    def _record_done(self) -> None:
        self._sync_buttons()

    def _record_failed(self, message: str) -> None:
        self._sync_buttons()
        self.message(f"Recording failed: {message}")

    def show_dialog(self) -> None:
        """Show the (non-modal) dialog and bring it to the front."""
        self.show()
        self.raise_()
        self.activateWindow()

    def shutdown(self) -> None:
        """Stop recording and background jobs (the window is closing)."""
        self.recorder.cancel()
        self.runner.stop()

    # --- class buttons with input dialogs ------------------------------------------------------------
    def _add_class_clicked(self) -> None:
        name = self._ask("Add class", "Class name (e.g. my doorbell):")
        if name:
            self.add_class(name)

    def _rename_class_clicked(self) -> None:
        old = self.class_table.current_class()
        new = self._ask("Rename class", "New name:", old or "") if old else None
        if old and new:
            self.rename_class(old, new)

    def _remove_class_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            self.remove_class(name)

    def _clear_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            self.clear_class(name)

    def _add_files_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            from app.gui.actions import AUDIO_FILTER

            files, _ = QFileDialog.getOpenFileNames(
                self, f"Examples of '{name}'", str(Path.home()), AUDIO_FILTER
            )
            if files:
                self.add_files(name, files)

    def _add_folder_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            folder = QFileDialog.getExistingDirectory(
                self, f"A folder of '{name}' examples", str(Path.home())
            )
            if folder:
                self.add_files(name, [folder])

    def _record_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            self.record(name, float(self.record_seconds.value()))


@dataclass(frozen=True)
class HeadsFeature:
    """The personal heads in the main window: the dialog, the "Personal head" dock and its panel, and
    the Heads ▸ Manage heads… action. The window calls :meth:`window_closing` from its ``closeEvent``."""

    dialog: HeadsDialog
    panel: HeadOutputPanel
    dock: QDockWidget
    act_manage: QAction

    def window_closing(self) -> None:
        self.dialog.shutdown()


def install(win: MainWindow, menu: QMenu) -> HeadsFeature:
    """Add the Heads dialog, the "Personal head" dock and the entries of the Heads ``menu``."""
    panel = HeadOutputPanel(win)
    dock = QDockWidget("Personal head", win)
    dock.setObjectName("dock_head")
    dock.setWidget(panel)
    panel.dock = dock
    win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    if not win.restoreDockWidget(dock):
        dock.hide()
    dialog = HeadsDialog(win, panel)
    win.worker.worker.engine_ready.connect(dialog.engine_ready)
    manage = QAction("&Manage heads…", win)
    manage.setShortcut(QKeySequence("Ctrl+H"))
    manage.triggered.connect(dialog.show_dialog)
    export = QAction("Export &head events…", win)
    export.triggered.connect(lambda: export_events_dialog(win, dialog.active))
    off = QAction("&Deactivate head", win)
    off.triggered.connect(lambda: dialog.activate(None))
    menu.addActions([manage, export, off])
    menu.addSeparator()
    menu.addAction(dock.toggleViewAction())
    return HeadsFeature(dialog, panel, dock, manage)
