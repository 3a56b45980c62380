"""What the Heads dialog does to trained heads besides training them: corrections ("not X" on a span of
a file's timeline or of the live history), merging heads, reviewing and removing examples by source,
and the portable ONNX export.

- **Correct span** (the "Personal head" dock): the current view's windows in the shaded span become
  examples of ``background`` (or of the class picked) of the **active** head, with the span as their
  source (``"<file> 12.00-14.00 s"`` or ``"live <date time> 3.00-5.00 s"``); the head is retrained in the
  background with its own kind and calibration and re-activated when done. Its other examples are kept.
- **Merge…** (head list): two heads of one pack → a new head with the union of classes (examples
  combined, same-named classes joined), trained in the background.
- **Examples…** (class panel): a table of the edited head's examples by class and source; the selected
  sources are removed (then press Train).
- **ONNX…** (head list): ``models.heads.head_onnx.export_onnx`` on the job thread.
All torch work runs on the dialog's :class:`~app.gui.heads.jobs.HeadJobRunner`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.heads.jobs import OnnxJob, OnnxResult, TrainJob
from app.gui.heads.output import span_embeddings
from app.gui.state import heads as logic
from models.heads.head_edit import calibration_of, merge_sets
from models.heads.head_store import check_name
from models.heads.heads import BACKGROUND, HeadError

if TYPE_CHECKING:
    from app.gui.heads.dialog import HeadsDialog


class ReviewDialog(QDialog):
    """The examples of a head by class and source; select rows and press Remove."""

    def __init__(self, rows: list[tuple[str, str, int]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Examples by source")
        self.resize(640, 420)
        self.rows = rows
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["class", "windows", "source"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        for i, (cls, src, n) in enumerate(rows):
            for j, text in enumerate((cls, str(n), src or "(unknown source)")):
                self.table.setItem(i, j, QTableWidgetItem(text))
        buttons = QDialogButtonBox()
        self.remove_button = buttons.addButton("Remove selected", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        note = (
            "Where the examples came from (files, spans, recordings). Removing does not retrain: press Train."
        )
        lay.addWidget(QLabel(note))
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)

    def selected(self) -> list[tuple[str, str]]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [(self.rows[r][0], self.rows[r][1]) for r in rows]


class HeadExtras:
    """Corrections, merging, review and ONNX export for ``dlg`` (see the module docstring)."""

    def __init__(self, dlg: HeadsDialog) -> None:
        self.dlg = dlg
        dlg.panel.correction_requested.connect(self.correct_span)
        dlg.heads_panel.merge_requested.connect(self.merge)
        dlg.heads_panel.onnx_requested.connect(self.export_onnx)
        dlg.class_panel.review_requested.connect(self.review)
        dlg.heads_panel.selected.connect(self.show_card)

    def show_card(self, name: str | None) -> None:
        """The selected trained head's accuracy by recording and per-class threshold, precision, recall."""
        entry = self.dlg.editor.entries.get(name) if name else None
        if entry is None or entry.card is None or self.dlg._jobs:
            return
        try:
            head = self.dlg.store.load(entry.name)
        except (HeadError, ValueError, OSError):
            return  # the list shows the error
        self.dlg.train_panel.show_card(head.card, [float(t) for t in head.thresholds])

    def correct_span(self, target: str, t0: float, t1: float) -> int | None:
        """ "Not X": the span's windows → ``target`` of the active head, then retrain it (job id)."""
        dlg, ed = self.dlg, self.dlg.editor
        head, name = ed.active, ed.active_name
        if head is None or name is None:
            dlg.message("Activate a head first: corrections go to the active head.")
            return None
        emb, source = span_embeddings(dlg.win, t0, t1)
        if not len(emb):
            dlg.message("Nothing tagged in that span yet.")
            return None
        ex = ed.correct(name, target or BACKGROUND, emb, source)
        dlg.sync()
        if ex is None:
            return None
        cal = calibration_of(head)
        job = TrainJob(name, ex, dlg.store, head.card.kind, cal.background_fraction(), cal)
        job_id = dlg._submit(job, "train")
        dlg.message(f"Added {len(emb)} window(s) of {source} to '{target}' of '{name}'; retraining…", False)
        return job_id

    def merge(self, names: list[str], out: str) -> int | None:
        """Merge heads ``names`` into a new head ``out`` (trained in the background; job id)."""
        dlg = self.dlg
        try:
            out = check_name(out)
            if out in dlg.editor.entries:
                raise ValueError(f"a head named '{out}' already exists")
            sets = [dlg.store.load_examples(n) for n in names]
            if len(names) < 2 or any(not len(s.label) for s in sets):
                raise ValueError("merging needs two heads with their examples kept")
            merged = sets[0]
            for s in sets[1:]:
                merged = merge_sets(merged, s)
            first = dlg.store.load(names[0])
            dlg.store.save_examples(out, merged)
        except (ValueError, OSError, HeadError) as exc:
            dlg.message(f"Merge refused: {exc}")
            return None
        dlg.refresh_list()
        cal = calibration_of(first)
        job_id = dlg._submit(
            TrainJob(out, merged, dlg.store, first.card.kind, cal.background_fraction(), cal), "train"
        )
        dlg.message(f"Merging {', '.join(names)} into '{out}'; training…", False)
        return job_id

    def review(self) -> list[tuple[str, str]]:
        """Show the edited head's examples by source; remove the ones the user selects."""
        dlg = self.dlg
        if dlg.current is None:
            return []
        box = ReviewDialog(logic.source_rows(dlg.examples), dlg)
        if box.exec() != QDialog.DialogCode.Accepted or not box.selected():
            return []
        return self.remove(box.selected())

    def remove(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        ok = self.dlg.editor.remove_sources(items)
        self.dlg.sync()
        return items if ok else []

    def export_onnx(self, name: str, path: str) -> int | None:
        """Export head ``name`` as one ONNX graph to ``path`` on the job thread (job id)."""
        if not name or not path:
            return None
        self.dlg.message(f"Exporting '{name}' to {path} (a minute or two)…", False)
        return self.dlg._submit(OnnxJob(name, self.dlg.store, path), "onnx")

    def finished(self, result: Any) -> bool:
        """Show an export's outcome; False for results that are not this module's."""
        if not isinstance(result, OnnxResult):
            return False
        e = result.export
        self.dlg.message(f"Exported '{result.job.head}' to {e.path} (card: {e.card_path.name}).", False)
        return True
