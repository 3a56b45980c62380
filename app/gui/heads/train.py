"""The train panel of the Heads dialog: model kind, false-alarm rate, Train / Cancel, job progress, and
the last training's report: cross-validated accuracy, the confusion table (rows: true class, columns:
predicted) and the warnings of ``models.heads.heads.HeadReport``. It emits ``train_requested`` and
``cancel_requested``; the dialog runs the jobs on its :class:`~app.gui.heads.jobs.HeadJobRunner`.
"""

from __future__ import annotations

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
from models.heads.heads import HeadReport
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
        self.far.setToolTip("False-alarm rate on the background class the thresholds are calibrated to")
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

    def show_report(self, rep: HeadReport, n_examples: int, kind: str) -> None:
        self.cv_label.setText(
            f"Cross-validated accuracy: {rep.cv_accuracy:.3f} ({n_examples} examples, "
            f"{kind}, C={rep.c:g}, {rep.seconds:.2f} s)"
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
