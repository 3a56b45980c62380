"""The training half of the Heads dialog: the Train box and the background jobs' results.

A mixin of :class:`app.gui.heads.dialog.HeadsDialog`. Jobs go to the dialog's
:class:`~app.gui.heads.jobs.HeadJobRunner` (own thread, own Engine); progress, results and failures come
back as queued signals. Training shows the cross-validated accuracy, the confusion table (rows: true
class, columns: predicted) and the warnings of ``models.heads.HeadReport``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.gui.heads.jobs import EmbedJob, EmbedResult, TrainJob, TrainResult
from app.gui.jobs import JobOutcome, JobStatus
from app.gui.state import heads as logic
from models.heads import HeadError

if TYPE_CHECKING:
    from app.gui.heads.editor import Recorder
    from app.gui.heads.jobs import HeadJobRunner
    from models.head_store import ExampleSet, HeadStore
    from models.heads import HeadReport


def button(text: str, slot: Any, tip: str = "") -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(lambda _c=False: slot())
    b.setToolTip(tip)
    return b


class TrainMixin:
    """Train box and job handling (mixed into ``HeadsDialog``, which owns these attributes)."""

    store: HeadStore
    current: str | None
    examples: ExampleSet
    active_name: str | None
    last_report: HeadReport | None
    runner: HeadJobRunner
    recorder: Recorder
    _jobs: dict[int, str]

    if TYPE_CHECKING:

        def message(self, text: str, error: bool = True) -> None: ...
        def _sync_buttons(self) -> None: ...
        def _set_examples(self, ex: ExampleSet, select: str | None = None) -> None: ...
        def refresh_list(self) -> None: ...
        def activate(self, name: str | None) -> bool: ...

    def _build_train_box(self) -> QGroupBox:
        self.kind = QComboBox()
        self.kind.addItem("Logistic regression", "logreg")
        self.kind.addItem("MLP (one hidden layer)", "mlp")
        self.far = QDoubleSpinBox()
        self.far.setRange(0.001, 0.5)
        self.far.setDecimals(3)
        self.far.setSingleStep(0.005)
        self.far.setValue(0.01)
        self.far.setToolTip("False-alarm rate on the background class the thresholds are calibrated to")
        self.train_button = button("Train", self.train)
        self.cancel_button = button("Cancel", self.cancel_jobs)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.job_label = QLabel("")
        self.cv_label = QLabel("")
        self.cv_label.setFont(QFont(self.cv_label.font().family(), -1, QFont.Weight.Bold))
        self.confusion = QTableWidget(0, 0)
        self.confusion.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.confusion.setToolTip("Cross-validated: rows are the true class, columns the predicted one")
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #b58900")
        train_box = QGroupBox("Train")
        tb = QVBoxLayout(train_box)
        row3 = QHBoxLayout()
        for w in (
            QLabel("Model"),
            self.kind,
            QLabel("false alarms"),
            self.far,
            self.train_button,
            self.cancel_button,
        ):
            row3.addWidget(w)
        tb.addLayout(row3)
        tb.addWidget(self.progress)
        tb.addWidget(self.job_label)
        tb.addWidget(self.cv_label)
        tb.addWidget(self.confusion, 1)
        tb.addWidget(self.warnings)

        return train_box

    # --- jobs -------------------------------------------------------------------------------------------
    def _submit(self, job: EmbedJob | TrainJob, kind: str) -> int:
        job_id = self.runner.submit(job)
        self._jobs[job_id] = kind
        self.progress.setRange(0, 0)
        self.job_label.setText("Embedding examples…" if kind == "embed" else "Training…")
        self._sync_buttons()
        return job_id

    def train(self) -> int | None:
        """Train the edited head in the background (kind and false-alarm rate from the controls)."""
        if self.current is None:
            return None
        self.cv_label.setText("")
        job = TrainJob(
            self.current, self.examples, self.store, self.kind.currentData(), float(self.far.value())
        )
        return self._submit(job, "train")

    def cancel_jobs(self) -> None:
        self.runner.cancel(None)
        if self.recorder.active:
            self.recorder.cancel()
        self._sync_buttons()

    def _job_progress(self, job_id: int, p: Any) -> None:
        if job_id in self._jobs:
            self.progress.setRange(0, max(p.total, 1))
            self.progress.setValue(p.done)
            self.job_label.setText(p.message)

    def _job_finished(self, job_id: int, outcome: JobOutcome) -> None:
        if outcome.status is JobStatus.DONE:
            self._job_done(job_id, outcome.result)
        else:
            self._job_failed(job_id, outcome)

    def _job_done(self, job_id: int, result: Any) -> None:
        self._jobs.pop(job_id, None)
        self.job_label.setText("")
        if isinstance(result, EmbedResult):
            self._embedded(result)
        elif isinstance(result, TrainResult):
            self._trained(result)
        self._sync_buttons()

    def _job_failed(self, job_id: int, outcome: JobOutcome) -> None:
        kind = self._jobs.pop(job_id, "job")
        self.job_label.setText("")
        cancelled = outcome.status is JobStatus.CANCELLED
        self.message("Cancelled." if cancelled else f"{kind.capitalize()} failed: {outcome.message}",
                     error=not cancelled)  # fmt: skip
        self._sync_buttons()

    def _embedded(self, r: EmbedResult) -> None:
        name = r.job.head
        try:
            ex = self.examples if name == self.current else self.store.load_examples(name)
            ex = logic.add_examples(ex, r.job.class_name, r.emb, r.sources, r.pack)
            if name == self.current:
                self._set_examples(ex, r.job.class_name)
            else:
                self.store.save_examples(name, ex)
        except (ValueError, OSError, HeadError) as exc:
            self.message(str(exc))
            return
        what = f"{r.files} file(s)" if r.job.audio is None else "the recording"
        errs = f"; skipped: {'; '.join(r.errors)}" if r.errors else ""
        self.message(f"Added {len(r.emb)} example window(s) from {what} to '{r.job.class_name}'{errs}.",
                     error=bool(r.errors))  # fmt: skip

    def _trained(self, r: TrainResult) -> None:
        rep = self.last_report = r.report
        self.cv_label.setText(
            f"Cross-validated accuracy: {rep.cv_accuracy:.3f} ({len(r.job.examples.label)} examples, "
            f"{r.job.kind}, C={rep.c:g}, {rep.seconds:.2f} s)"
        )
        k = len(rep.classes)
        self.confusion.setRowCount(k)
        self.confusion.setColumnCount(k)
        self.confusion.setHorizontalHeaderLabels([f"→ {c}" for c in rep.classes])
        self.confusion.setVerticalHeaderLabels(list(rep.classes))
        for i in range(k):
            for j in range(k):
                item = QTableWidgetItem(str(int(rep.confusion[i, j])))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if i == j:
                    item.setFont(QFont(item.font().family(), -1, QFont.Weight.Bold))
                self.confusion.setItem(i, j, item)
        self.warnings.setText("\n".join(f"⚠ {w}" for w in rep.warnings))
        self.message(f"Head '{r.job.head}' saved to {r.path}", error=False)
        self.refresh_list()
        if self.active_name == r.job.head:
            self.activate(r.job.head)
