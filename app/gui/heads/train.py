"""The train panel of the Heads dialog: model kind, how thresholds are calibrated (a fraction of
background windows, false alarms per hour of background, or a target precision), Train / Cancel, job
progress, and the last training's report: the accuracy **cross-validated by recording** (folds never
split a recording, so overlapping windows of one file are never on both sides), the confusion table
(rows: true class, columns: predicted), each class's threshold with its cross-validated precision and
recall, and the warnings of ``models.heads.heads.HeadReport``. It emits ``train_requested`` and
``cancel_requested``; the dialog runs the jobs on its :class:`~app.gui.heads.jobs.HeadJobRunner`.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.gui.heads.manage import button
from app.gui.state.heads import accuracy_text, class_rows
from models.heads.head_cv import Calibration
from models.heads.heads import HeadCard, HeadReport
from models.tagging.results import Progress


class TrainPanel(QGroupBox):
    """The Train box (see module docstring)."""

    train_requested = Signal(str, float)  # kind ("logreg" | "mlp"), false-alarm rate
    cancel_requested = Signal()

    def __init__(self) -> None:
        super().__init__("Train")
        self.kind = QComboBox()
        self.kind.addItem("Logistic regression", "logreg")
        self.kind.addItem("MLP (one hidden layer)", "mlp")
        self.far = QDoubleSpinBox()
        self.far.setRange(0.001, 0.5)
        self.far.setDecimals(3)
        self.far.setSingleStep(0.005)
        self.far.setValue(0.01)
        self.far.setToolTip("Thresholds: the target for the chosen calibration")
        self.mode = QComboBox()
        self.mode.addItem("false-alarm fraction", "far")
        self.mode.addItem("false alarms per hour", "per_hour")
        self.mode.addItem("precision", "precision")
        self.mode.setToolTip(
            "How each class's threshold is chosen: a fraction of background windows, false alarms per "
            "hour of background audio, or a target precision on held-out examples"
        )
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.train_button = button(
            "Train", lambda: self.train_requested.emit(self.kind.currentData(), float(self.far.value()))
        )
        self.cancel_button = button("Cancel", self.cancel_requested.emit)
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
        tb = QVBoxLayout(self)
        row3 = QHBoxLayout()
        for w in (
            QLabel("Model"),
            self.kind,
            QLabel("thresholds"),
            self.mode,
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
        self.class_table = QTableWidget(0, 5)
        self.class_table.setHorizontalHeaderLabels(
            ["class", "threshold", "precision", "recall", "false alarms/h"]
        )
        self.class_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.setToolTip(
            "At each class's threshold, on held-out examples (cross-validated by recording)"
        )
        tb.addWidget(self.class_table, 1)
        tb.addWidget(self.warnings)

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        ranges = {"far": (0.001, 0.5, 3, 0.005, 0.01), "per_hour": (0.0, 3600.0, 1, 1.0, 10.0),
                  "precision": (0.5, 1.0, 2, 0.01, 0.9)}  # fmt: skip
        lo, hi, dec, step, value = ranges[mode]
        self.far.setRange(lo, hi)
        self.far.setDecimals(dec)
        self.far.setSingleStep(step)
        self.far.setValue(value)

    def calibration(self, hop_s: float) -> Calibration:
        """The chosen calibration (``hop_s``: the hop of the examples' windows, for per-hour rates)."""
        mode, v = self.mode.currentData(), float(self.far.value())
        if mode == "per_hour":
            return Calibration(per_hour=v, hop_s=hop_s)
        if mode == "precision":
            return Calibration(precision=v)
        return Calibration(false_alarm_rate=v)

    def sync(self, can_train: bool, busy: bool, jobs: bool) -> None:
        self.train_button.setEnabled(can_train)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(jobs)

    def job_started(self, text: str) -> None:
        self.progress.setRange(0, 0)
        self.job_label.setText(text)

    def job_progress(self, p: Progress) -> None:
        self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)
        self.job_label.setText(p.message)

    def job_ended(self) -> None:
        self.job_label.setText("")

    def clear_report(self) -> None:
        self.cv_label.setText("")

    def show_card(self, card: HeadCard, thresholds: Sequence[float]) -> None:
        """A saved head's figures (no confusion table: that needs a training run)."""
        self.cv_label.setText(
            f"'{card.name}': {accuracy_text(card)} ({sum(card.example_counts)} examples, {card.kind})"
        )
        self.confusion.setRowCount(0)
        self.confusion.setColumnCount(0)
        self.warnings.setText("")
        rows = class_rows(card, thresholds)
        self.class_table.setRowCount(len(rows))
        for i, cells in enumerate(rows):
            for j, text in enumerate((*cells, "—")):
                self.class_table.setItem(i, j, QTableWidgetItem(text))

    def show_report(self, rep: HeadReport, n_examples: int, kind: str) -> None:
        by = "by recording" if rep.grouping == "recording" else "over windows (optimistic)"
        self.cv_label.setText(
            f"Accuracy {by}: {rep.cv_accuracy:.3f} (cross-validated; {n_examples} examples, "
            f"{kind}, C={rep.c:g}, {rep.seconds:.2f} s)"
        )
        self.cv_label.setToolTip(
            "Cross-validated with folds that keep every recording (file, span or microphone take) on one "
            "side, so overlapping windows of one recording never score each other"
        )
        self.class_table.setRowCount(len(rep.per_class))
        for i, f in enumerate(rep.per_class):
            fah = "—" if f.false_alarms_per_hour is None else f"{f.false_alarms_per_hour:.1f}"
            na = f.precision < 0 and f.recall < 0
            prec = "—" if f.precision < 0 else f"{f.precision:.2f}"
            rec = "—" if f.recall < 0 else f"{f.recall:.2f}"
            cells = (f.name, "—" if na else f"{f.threshold:.2f}", prec, rec, fah)
            for j, text in enumerate(cells):
                self.class_table.setItem(i, j, QTableWidgetItem(text))
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
