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
from PySide6.QtWidgets import QDialog, QDockWidget, QLabel, QMenu, QSplitter, QVBoxLayout, QWidget

from app.gui.exporting import export_dir, remember_export
from app.gui.heads.editor import ClassPanel, Recorder
from app.gui.heads.jobs import EmbedJob, EmbedResult, HeadJobRunner, TrainJob, TrainResult
from app.gui.heads.manage import HeadListPanel
from app.gui.heads.output import HeadOutputPanel, export_events_dialog, span_embeddings
from app.gui.heads.train import TrainPanel
from app.gui.jobs import JobOutcome, JobStatus
from app.gui.state import heads as logic
from app.gui.state.head_editor import HeadEditor, audio_dir
from app.paths import heads_dir
from models.config import WindowConfig
from models.heads.head_store import ExampleSet, HeadStore
from models.heads.heads import BACKGROUND, Head, HeadReport

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)


class HeadsDialog(QDialog):
    """Non-modal head manager and editor for ``win`` (see module docstring)."""

    def __init__(self, win: MainWindow, panel: HeadOutputPanel) -> None:
        super().__init__(win)
        self.win, self.panel = win, panel
        self.setWindowTitle("Personal heads")
        self.setModal(False)
        self.resize(980, 620)
        self.setAcceptDrops(False)
        self.editor = HeadEditor(
            HeadStore(heads_dir()), lambda: self.win.pack_info, self.message, self._activated,
            lambda path: self.win.update_settings(head_path=None if path is None else str(path)),
            win.settings.head_path,
        )  # fmt: skip
        self._jobs: dict[int, str] = {}  # job id → "embed" | "train"
        self.runner = HeadJobRunner(win.pack_path, WindowConfig(win.settings.window_s, win.settings.hop_s))
        self.runner.progress.connect(self._job_progress)
        self.runner.finished.connect(self._job_finished)
        self.recorder = Recorder(win)
        self.recorder.finished.connect(self._recorded)
        self.recorder.failed.connect(self._record_failed)
        panel.span_requested.connect(self.label_span)

        self.heads_panel = HeadListPanel()
        self.heads_panel.start_dir = lambda: export_dir(self.win)  # the last export's folder
        self.class_panel = ClassPanel()
        self.train_panel = TrainPanel()
        self._connect_panels()
        self.recorder.tick.connect(lambda s: self.class_panel.record_button.setText(f"Recording… {s:.0f} s"))
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.class_panel, 3)
        rl.addWidget(self.train_panel, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.heads_panel)
        split.addWidget(right)
        split.setStretchFactor(1, 2)
        split.setSizes([340, 640])
        self.msg = QLabel("")
        self.msg.setWordWrap(True)
        self.msg.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.msg)
        self.refresh_list()

    def _connect_panels(self) -> None:
        hp, cp, tp = self.heads_panel, self.class_panel, self.train_panel
        hp.selected.connect(self.select_head)
        hp.new_requested.connect(self.new_head)
        hp.rename_requested.connect(self.rename_head)
        hp.delete_requested.connect(self.delete_head)
        hp.import_requested.connect(self.import_head)
        hp.export_requested.connect(self.export_head)
        hp.activate_requested.connect(self.activate)
        cp.add_class.connect(self.add_class)
        cp.add_background.connect(self.add_background)
        cp.rename_class.connect(self.rename_class)
        cp.remove_class.connect(self.remove_class)
        cp.clear_class.connect(self.clear_class)
        cp.add_files.connect(self.add_files)
        cp.record.connect(self.record)
        cp.class_table.itemSelectionChanged.connect(self._sync_buttons)
        tp.train_requested.connect(lambda kind, far: self.train(kind, far))
        tp.cancel_requested.connect(self.cancel_jobs)

    # --- the editor's state ---------------------------------------------------------------------------
    @property
    def store(self) -> HeadStore:
        return self.editor.store

    @property
    def current(self) -> str | None:
        return self.editor.current

    @property
    def examples(self) -> ExampleSet:
        return self.editor.examples

    @property
    def active(self) -> Head | None:
        return self.editor.active

    @property
    def active_name(self) -> str | None:
        return self.editor.active_name

    @property
    def last_report(self) -> HeadReport | None:
        return self.editor.last_report

    # --- drawing ----------------------------------------------------------------------------------------
    def message(self, text: str, error: bool = True) -> None:
        """Show a one-line notice in the dialog (errors in red) and log it."""
        self.msg.setStyleSheet("color: #dc322f" if error else "")
        self.msg.setText(text)
        (log.warning if error else log.info)("heads: %s", text)

    def refresh_list(self) -> None:
        """Re-read the heads folder and redraw the panels (selection kept)."""
        self.editor.reload()
        self.sync()

    def sync(self, heads_list: bool = True) -> None:
        """Redraw the panels from the editor's state, the jobs and the recorder."""
        ed = self.editor
        if heads_list:
            pack_id = getattr(self.win.pack_info, "pack_id", None)
            self.heads_panel.show_entries(ed.entries.values(), ed.active_name, pack_id, ed.current)
        else:
            self.heads_panel.select_name(ed.current)
        table = self.class_panel.class_table
        table.blockSignals(True)
        self.class_panel.show_head(ed.current, ed.examples)
        table.blockSignals(False)
        self.panel.set_span_classes(ed.examples.classes if ed.current is not None else ())
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        busy = bool(self._jobs) or self.recorder.active
        can_train = self.editor.current is not None and "train" not in self._jobs.values()
        self.train_panel.sync(can_train, busy, bool(self._jobs))
        self.class_panel.sync(self.recorder.active)
        self.heads_panel.sync(self.editor.active is not None)

    # --- heads ------------------------------------------------------------------------------------------
    def select_head(self, name: str | None) -> None:
        """Edit head ``name`` (its example set, or its card's classes when no examples were kept)."""
        self.editor.select(name)
        self.sync(heads_list=False)  # may run inside the list's own selection signal: no rebuild

    def new_head(self, name: str, classes: tuple[str, ...] = ()) -> bool:
        return self._then_sync(self.editor.new_head(name, classes))

    def rename_head(self, old: str, new: str) -> bool:
        return self._then_sync(self.editor.rename_head(old, new))

    def delete_head(self, name: str) -> None:
        self.editor.delete_head(name)
        self.sync()

    def import_head(self, path: str | Path, name: str | None = None) -> bool:
        return self._then_sync(self.editor.import_head(path, name))

    def export_head(self, name: str, path: str | Path) -> Path | None:
        out = self.editor.export_head(name, path)
        if out is not None:
            remember_export(self.win, out)
        return out

    def activate(self, name: str | None) -> bool:
        """Run head ``name`` live and on files (None: no head). A head of another pack is refused."""
        return self._then_sync(self.editor.activate(name))

    def _activated(self, head: Head | None, _name: str | None) -> None:
        self.win.worker.set_head(head)
        self.panel.set_head(head)
        if head is not None and self.panel.dock is not None:
            self.panel.dock.show()
            self.panel.dock.raise_()

    def engine_ready(self, _info: Any = None) -> None:
        """Activate the head remembered in the settings (or asked for while loading), once."""
        self.editor.engine_ready()
        self.sync()

    def _then_sync(self, ok: bool) -> bool:
        self.sync()
        return ok

    # --- classes and examples ---------------------------------------------------------------------------
    def _edit(self, fn: Any, *args: Any, select: str | None = None) -> bool:
        ok = self.editor.edit(fn, *args)
        self.sync()
        if ok and select:
            self.class_panel.class_table.select_class(select)
        return ok

    def add_class(self, name: str) -> bool:
        return self._edit(logic.add_class, name, select=name.strip())

    def add_background(self) -> bool:
        ok = self.editor.add_background()
        self.sync()
        if ok:
            self.class_panel.class_table.select_class(BACKGROUND)
        return ok

    def remove_class(self, name: str) -> bool:
        return self._edit(logic.remove_class, name)

    def rename_class(self, old: str, new: str) -> bool:
        return self._edit(logic.rename_class, old, new, select=new.strip())

    def clear_class(self, name: str) -> bool:
        return self._edit(logic.clear_class, name, select=name)

    def add_examples(self, class_name: str, emb: np.ndarray, source: str = "span") -> bool:
        """ "That was X": add embeddings (n, D) float32 to ``class_name`` of the edited head."""
        ok = self.editor.add_examples(class_name, emb, source)
        self.sync()
        if ok:
            self.class_panel.class_table.select_class(class_name)
        return ok

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

    # --- background jobs and recording ------------------------------------------------------------------
    def add_files(self, class_name: str, paths: list[str]) -> int | None:
        """Embed files/folders (off the GUI thread) into ``class_name``; returns the job id."""
        if self.current is None:
            self.message("Choose or make a head first.")
            return None
        return self._submit(EmbedJob(self.current, class_name, tuple(str(p) for p in paths)), "embed")

    def train(self, kind: str | None = None, far: float | None = None) -> int | None:
        """Train the edited head in the background (kind and false-alarm rate from the train panel)."""
        if self.current is None:
            return None
        tp = self.train_panel
        self.train_panel.clear_report()
        kind = kind or tp.kind.currentData()
        far = float(tp.far.value()) if far is None else far
        return self._submit(TrainJob(self.current, self.examples, self.store, kind, far), "train")

    def _submit(self, job: EmbedJob | TrainJob, kind: str) -> int:
        job_id = self.runner.submit(job)
        self._jobs[job_id] = kind
        self.train_panel.job_started("Embedding examples…" if kind == "embed" else "Training…")
        self.sync()
        return job_id

    def cancel_jobs(self) -> None:
        self.runner.cancel(None)
        if self.recorder.active:
            self.recorder.cancel()
        self.sync()

    def _job_progress(self, job_id: int, p: Any) -> None:
        if job_id in self._jobs:
            self.train_panel.job_progress(p)

    def _job_finished(self, job_id: int, outcome: JobOutcome) -> None:
        kind = self._jobs.pop(job_id, "job")
        self.train_panel.job_ended()
        r = outcome.result
        if outcome.status is JobStatus.CANCELLED:
            self.message("Cancelled.", error=False)
        elif outcome.status is JobStatus.ERROR:
            self.message(f"{kind.capitalize()} failed: {outcome.message}")
        elif isinstance(r, EmbedResult):
            self.editor.embedded(r)
            self.sync()
            if r.job.head == self.current:
                self.class_panel.class_table.select_class(r.job.class_name)
            return
        elif isinstance(r, TrainResult):
            self.train_panel.show_report(r.report, len(r.job.examples.label), r.job.kind)
            self.editor.trained(r)
        self.sync()

    def record(self, class_name: str, seconds: float) -> bool:
        try:
            self.recorder.start(class_name, seconds)
        except Exception as exc:  # noqa: BLE001 - AudioInputError and PortAudio errors alike
            self.message(f"Cannot record: {exc}")
            return False
        self.sync()
        return True

    def _recorded(self, class_name: str, audio: np.ndarray, sr: int) -> None:
        self.sync()
        if self.current is not None:
            keep = (
                str(audio_dir(self.store, self.current)) if self.class_panel.keep_audio.isChecked() else None
            )
            job = EmbedJob(
                self.current, class_name, audio=audio, sample_rate=sr, source="mic", keep_audio_dir=keep
            )
            self._submit(job, "embed")

    def _record_failed(self, message: str) -> None:
        self.sync()
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
