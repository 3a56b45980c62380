"""Widgets of the head editor: the class panel, its class table (a drop target per class) and the
microphone recorder.

- :class:`ClassPanel`: the edited head's classes and the buttons to change them (emits requests).

- :class:`ClassTable`: one row per class (name, example count, where the examples came from); dropping
  files or folders on a row emits ``files_dropped(class_name, paths)``.
- :class:`Recorder`: records N seconds from the app's input. While live listening runs it copies from
  the live tap (no second stream on the device); otherwise it opens the window's input source (the
  sound device, or the injected test source) into its own ring buffer. The audio callback only writes
  into a ``RingBuffer``; a GUI timer collects the samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.heads.manage import ask, button
from models.heads.head_store import ExampleSet
from models.heads.heads import BACKGROUND

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)


class ClassTable(QTableWidget):
    """Classes of the edited head; each row is a drop target for audio files and folders."""

    files_dropped = Signal(str, list)  # class name, list[str] paths

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["class", "examples", "from"])
        self.verticalHeader().setVisible(False)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setToolTip("Drop audio files or folders on a class to add them as examples")
        self.classes: tuple[str, ...] = ()

    def set_examples(self, ex: ExampleSet) -> None:
        """Show ``ex``'s classes with their example counts and sources (selection kept by name)."""
        keep = self.current_class()
        self.classes = tuple(ex.classes)
        counts = np.bincount(ex.label, minlength=len(ex.classes)) if len(ex.classes) else np.zeros(0, int)
        self.setRowCount(len(ex.classes))
        for i, name in enumerate(ex.classes):
            srcs = [s for s, lab in zip(ex.sources, ex.label, strict=False) if lab == i and s]
            uniq = list(dict.fromkeys(srcs))
            text = ", ".join(s.rsplit("/", 1)[-1] for s in uniq[:3]) + (
                f" … (+{len(uniq) - 3})" if len(uniq) > 3 else ""
            )
            label = f"{name}  (none of these)" if name == BACKGROUND else name
            for col, value in enumerate((label, str(int(counts[i])), text)):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, name)
                if col == 2:
                    item.setToolTip("\n".join(uniq[:20]))
                self.setItem(i, col, item)
        if keep in self.classes:
            self.select_class(keep)
        elif self.classes:
            self.selectRow(0)

    def current_class(self) -> str | None:
        row = self.currentRow()
        return self.classes[row] if 0 <= row < len(self.classes) else None

    def select_class(self, name: str) -> None:
        if name in self.classes:
            self.selectRow(self.classes.index(name))

    def class_at(self, y: int) -> str | None:
        row = self.rowAt(y)
        return self.classes[row] if 0 <= row < len(self.classes) else None

    @staticmethod
    def _paths(event: QDropEvent | QDragMoveEvent | QDragEnterEvent) -> list[str]:
        mime = event.mimeData()
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self._paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 - Qt override
        if self._paths(event) and self.class_at(int(event.position().y())) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        paths = self._paths(event)
        name = self.class_at(int(event.position().y()))
        if not paths or name is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.select_class(name)
        self.files_dropped.emit(name, paths)


class ClassPanel(QGroupBox):
    """The edited head's classes: the class table (drop files or folders on a class), class buttons,
    Add files / Add folder, Keep audio and Record N seconds. It emits what the user asked for."""

    add_class = Signal(str)
    add_background = Signal()
    rename_class = Signal(str, str)  # old, new
    remove_class = Signal(str)
    clear_class = Signal(str)
    add_files = Signal(str, list)  # class name, list[str] files or folders
    record = Signal(str, float)  # class name, seconds
    review_requested = Signal()

    def __init__(self) -> None:
        super().__init__("Classes")
        self.class_table = ClassTable()
        self.class_table.files_dropped.connect(self.add_files)
        self.record_seconds = QSpinBox()
        self.record_seconds.setRange(1, 120)
        self.record_seconds.setValue(5)
        self.record_seconds.setSuffix(" s")
        self.record_button = button(
            "Record", self._record_clicked, "Record from the input into the selected class"
        )
        eb = QVBoxLayout(self)
        eb.addWidget(QLabel("Drop audio files or folders on a class, record into it, or mark a span in the "
                            "Personal head dock and press “That was…”."))  # fmt: skip
        eb.addWidget(self.class_table, 1)
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for b in (
            button("Add class…", self._add_class_clicked),
            button(
                "Background class",
                self.add_background.emit,
                "A 'none of these' class: record the room into it",
            ),
            button("Rename class…", self._rename_class_clicked),
            button("Remove class", lambda: self._with_class(self.remove_class.emit)),
        ):
            row1.addWidget(b)
        row2.addWidget(button("Add files…", self._add_files_clicked))
        row2.addWidget(button("Add folder…", self._add_folder_clicked))
        row2.addWidget(button("Clear examples", lambda: self._with_class(self.clear_class.emit)))
        row2.addWidget(
            button("Examples…", self.review_requested.emit, "Review and remove examples by source")
        )
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

    def show_head(self, current: str | None, examples: ExampleSet) -> None:
        self.setEnabled(current is not None)
        self.setTitle(f"Classes of '{current}'" if current is not None else "Classes (choose or make a head)")
        self.class_table.set_examples(examples)

    def sync(self, recording: bool) -> None:
        self.record_button.setEnabled(not recording and self.class_table.current_class() is not None)
        if not recording:
            self.record_button.setText("Record")

    def _with_class(self, fn: Callable[[str], object]) -> None:
        name = self.class_table.current_class()
        if name:
            fn(name)

    def _add_class_clicked(self) -> None:
        name = ask(self, "Add class", "Class name (e.g. my doorbell):")
        if name:
            self.add_class.emit(name)

    def _rename_class_clicked(self) -> None:
        old = self.class_table.current_class()
        new = ask(self, "Rename class", "New name:", old or "") if old else None
        if old and new:
            self.rename_class.emit(old, new)

    def _add_files_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            from app.gui.actions import AUDIO_FILTER

            files, _ = QFileDialog.getOpenFileNames(
                self, f"Examples of '{name}'", str(Path.home()), AUDIO_FILTER
            )
            if files:
                self.add_files.emit(name, list(files))

    def _add_folder_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            folder = QFileDialog.getExistingDirectory(
                self, f"A folder of '{name}' examples", str(Path.home())
            )
            if folder:
                self.add_files.emit(name, [folder])

    def _record_clicked(self) -> None:
        name = self.class_table.current_class()
        if name:
            self.record.emit(name, float(self.record_seconds.value()))


class Recorder(QObject):
    """Records ``seconds`` of mono audio from the window's input (see module docstring)."""

    finished = Signal(str, object, int)  # class name, audio (n,) float32, sample rate
    failed = Signal(str)
    tick = Signal(float)  # seconds still to record
    _source_error = Signal(str)

    def __init__(self, win: MainWindow) -> None:
        super().__init__()
        self.win = win
        self.class_name = ""
        self.sample_rate = 0
        self._need = 0
        self._pos = 0
        self._ring: Any = None
        self._source: Any = None
        self._chunks: list[np.ndarray] = []
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        self._source_error.connect(self._fail)

    @property
    def active(self) -> bool:
        return self._ring is not None

    def start(self, class_name: str, seconds: float) -> None:
        """Start recording into ``class_name`` (raises on a busy recorder or a device error)."""
        from models.tagging.pipeline import RingBuffer

        if self.active:
            raise RuntimeError("already recording")
        self.class_name = class_name
        tap = self.win.live.tap if self.win.live.running else None
        if tap is not None:
            self._ring, self.sample_rate = tap.display, int(tap.sample_rate)
            self._pos = self._ring.total
        else:
            source = self.win.input_source()
            self.sample_rate = int(source.sample_rate)
            ring = RingBuffer(int((seconds + 2) * self.sample_rate), int(getattr(source, "channels", 1)))
            self._pos = 0
            source.start(ring.write, self._source_error.emit)
            self._ring, self._source = ring, source
        self._need = max(1, int(round(seconds * self.sample_rate)))
        self._chunks = []
        self._timer.start(100)
        self.tick.emit(float(seconds))

    def _poll(self) -> None:
        from models.audio import to_mono

        if self._ring is None:
            return
        x, first = self._ring.read_range(self._pos)
        self._pos = first + len(x)
        if len(x):
            self._chunks.append(to_mono(x))
        got = sum(len(c) for c in self._chunks)
        self.tick.emit(max(0.0, (self._need - got) / self.sample_rate))
        if got >= self._need:
            audio = np.concatenate(self._chunks)[: self._need].astype(np.float32)
            self._stop()
            self.finished.emit(self.class_name, audio, self.sample_rate)

    def _stop(self) -> None:
        self._timer.stop()
        source, self._source, self._ring = self._source, None, None
        self._chunks = []
        if source is not None:
            try:
                source.stop()
            except Exception:  # noqa: BLE001 - a dying device must not take the dialog with it
                log.exception("error while stopping the recording input")

    def _fail(self, message: str) -> None:
        if self.active:
            self._stop()
            self.failed.emit(message)

    def cancel(self) -> None:
        self._stop()
