"""The batch view: a folder (or many files) opened in the window becomes one sortable, filterable table
of files, filled as results arrive, with overall progress, Cancel and Export.

- :func:`wanted` decides (more than :data:`BATCH_MIN_FILES` audio files, folders expanded; fewer open as
  file tabs, as before); :func:`open_batch` adds
  the view as a tab of the main window (``MainWindow.open_paths`` calls it).
- :class:`BatchJobRunner`: the one job model (``app.gui.jobs``) on its own Python thread with its own
  ``Engine``; a :class:`TagBatchJob` yields lists of records (:mod:`models.batch.work`) at most every
  :data:`YIELD_S` seconds, so 5 000 files cost the GUI thread a few hundred small updates; an
  :class:`ExportJob` writes the whole batch (below). The GUI thread never runs torch or writes files.
- :class:`BatchModel`: a ``QAbstractTableModel`` over :class:`app.gui.state.batch.BatchRows` (model/view:
  never one widget per file), behind a ``QSortFilterProxyModel``.
- Double-clicking a row opens that file's timeline (a file tab). Export writes, into a folder, the
  combined tables (``batch.parquet`` when pyarrow is there, and ``batch.csv``; each with its events
  table) and every file's events in every events format (``events/<format>/<name><ext>``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtCore import Signal as QtSignal
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.gui.jobs import JobCancelledError, JobOutcome, JobStatus, ThreadJobRunner
from app.gui.state.batch import COLUMNS, BatchRows
from models.tagging.results import Progress

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)

BATCH_MIN_FILES = 8  # more files than this (folders expanded) open as a batch
YIELD_S = 0.1  # the runner yields results at most this often
FLUSH_MS = 250  # and the view files them into the (sorted, filtered) table at most this often
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


def wanted(paths: list[str | Path]) -> bool:
    """More than :data:`BATCH_MIN_FILES` audio files in all (folders expanded): a batch, not tabs."""
    from models.audio import list_audio_files

    return len(paths) > BATCH_MIN_FILES or len(list_audio_files(paths)) > BATCH_MIN_FILES


@dataclass(frozen=True)
class TagBatchJob:
    paths: tuple[str, ...]
    spec: Any  # models.batch.runner.BatchSpec


@dataclass(frozen=True)
class ExportJob:
    folder: str
    records: list[dict[str, Any]] = field(compare=False)


class BatchJobRunner(ThreadJobRunner):
    """Batch jobs one after another on one Python thread with its own Engine (module docstring)."""

    thread_name = "encotag-batch"

    def __init__(self) -> None:
        super().__init__()
        self._engine: Any = None
        self._engine_pack: str | None = None

    def is_expected(self, exc: BaseException) -> bool:
        from models.audio import AudioError
        from models.packs.pack import PackError

        return isinstance(exc, ValueError | OSError | AudioError | PackError)

    def work(self, job_id: int, job: Any, cancel: threading.Event) -> Any:
        if isinstance(job, ExportJob):
            return export_batch(Path(job.folder), job.records)
        return self._tag(job_id, job, cancel)

    def _tag(self, job_id: int, job: TagBatchJob, cancel: threading.Event) -> Any:
        from models.batch.runner import Work
        from models.tagging.engine import Engine

        if self._engine is None or self._engine_pack != job.spec.pack:
            self._engine = Engine.load(Path(job.spec.pack) if job.spec.pack else None)
            self._engine_pack = job.spec.pack
        work = Work(job.spec, self._engine)
        pending: list[dict[str, Any]] = []
        last, n = time.monotonic(), len(job.paths)
        for i, p in enumerate(job.paths, 1):
            if cancel.is_set():
                break
            pending.append(work(Path(p)))
            if time.monotonic() - last >= YIELD_S or i == n:
                yield list(pending)
                pending.clear()
                self.progress.emit(job_id, Progress(i, n, "tagging"))
                last = time.monotonic()
        if pending:
            yield pending
        if cancel.is_set():
            raise JobCancelledError
        return n


def export_batch(folder: Path, records: list[dict[str, Any]]) -> Path:
    """The combined tables (Parquet when pyarrow is there, and CSV) and every file's events in every
    events format, into ``folder`` (worker thread)."""
    from app.commands.common import output_paths
    from app.export import EXTENSIONS, FORMATS, write_events
    from models.batch import tables
    from models.tagging.results import Event

    folder.mkdir(parents=True, exist_ok=True)
    if tables.have_pyarrow():
        tables.write_tag_tables(folder / "batch.parquet", "parquet", records)
    tables.write_tag_tables(folder / "batch.csv", "csv", records)
    done = [r for r in records if r.get("status") in ("ok", "warning")]
    files = [Path(r["file"]) for r in done]
    for fmt in FORMATS:
        sub = folder / "events" / fmt
        sub.mkdir(parents=True, exist_ok=True)
        for rec, target in zip(done, output_paths(files, sub, EXTENSIONS[fmt]), strict=True):
            assert target is not None
            events = [Event(label, start, end, score) for start, end, label, score, *_ in rec["events"]]
            write_events(events, target, fmt)
    return folder


class BatchModel(QAbstractTableModel):
    """The table of a batch: :class:`BatchRows` behind Qt's model interface (GUI thread)."""

    def __init__(self, rows: BatchRows, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows = rows
        self._sort: tuple[int, Qt.SortOrder] | None = None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cell(index.column())
        if role == SORT_ROLE:
            return row.sort_key(index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.path + (f"\n{row.error}" if row.error else "")
        return None

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows themselves (a Python key per row; the proxy's own sort would call :meth:`data`
        twice per comparison, seconds for thousands of rows); kept sorted as results arrive."""
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        old = [r.path for r in self.rows.rows]
        self.rows.sort(column, order == Qt.SortOrder.DescendingOrder)
        pos = {r.path: i for i, r in enumerate(self.rows.rows)}
        for idx in self.persistentIndexList():
            self.changePersistentIndex(idx, self.index(pos[old[idx.row()]], idx.column()))
        self.layoutChanged.emit()

    def add(self, records: list[dict[str, Any]]) -> None:
        """File a list of records (one model update for the whole list)."""
        new = [r for r in records if str(r["file"]) not in self.rows]
        if new:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for r in new:
                self.rows.update(r)
            self.endInsertRows()
        fresh = {id(r) for r in new}
        touched = [self.rows.update(r) for r in records if id(r) not in fresh]
        if touched:
            self.dataChanged.emit(self.index(min(touched), 0), self.index(max(touched), len(COLUMNS) - 1))
        if self._sort is not None:
            self.sort(*self._sort)


class SourceSortProxy(QSortFilterProxyModel):
    """Filters here, sorts in the source model (:meth:`BatchModel.sort`)."""

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        source = self.sourceModel()
        if isinstance(source, BatchModel) and column >= 0:
            source.sort(column, order)


class BatchView(QWidget):
    """A batch tab: filter box, progress, Cancel, Export and the table (module docstring)."""

    open_file = QtSignal(str)  # a row was double-clicked: open that file's timeline
    exported = QtSignal(str)  # the folder an export went to

    def __init__(self, paths: list[Path], spec: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows = BatchRows([str(p) for p in paths])
        self.model = BatchModel(self.rows, self)
        self.proxy = SourceSortProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self._double_clicked)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter (name, status, tags)…")
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, len(paths))
        self.status = QLabel(f"{len(paths)} files queued", self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export…", self)
        self.export_button.clicked.connect(self.export_dialog)
        top = QHBoxLayout()
        for w in (self.filter, self.bar, self.status, self.cancel_button, self.export_button):
            top.addWidget(w)
        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addWidget(self.table)
        self.runner = BatchJobRunner()
        self.runner.yielded.connect(self._records)
        self.runner.progress.connect(self._progress)
        self.runner.finished.connect(self._finished)
        self.job = self.runner.put(TagBatchJob(tuple(str(p) for p in paths), spec)) if spec is not None else 0
        self.state = "running" if spec is not None else "idle"
        self._pending: list[dict[str, Any]] = []
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self.flush)
        self._t0 = time.monotonic()

    # --- results (GUI thread, queued from the runner) ------------------------------------------------
    def _records(self, _job: int, item: Any) -> None:
        if isinstance(item, list):
            self._pending += item
            if not self._flush.isActive():
                self._flush.start()

    def flush(self) -> None:
        """File the results that arrived since the last flush (at most every :data:`FLUSH_MS`)."""
        records, self._pending = self._pending, []
        if records:
            t0 = time.monotonic()
            self.add_records(records)
            # a big sorted table costs more per update: keep the GUI thread at most ~20 % busy with it
            self._flush.setInterval(max(FLUSH_MS, int(4000 * (time.monotonic() - t0))))

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """File a list of results into the table and the progress line (one model update)."""
        self.model.add(records)
        self.bar.setValue(self.rows.done)
        rate = self.rows.done / max(time.monotonic() - self._t0, 1e-6)
        hours = self.rows.audio_s / 3600
        done = f"{self.rows.done}/{len(self.rows)} files"
        self.status.setText(f"{done}, {hours:.2f} h audio, {rate:.1f} files/s")

    def _progress(self, _job: int, p: Progress) -> None:
        self.bar.setValue(p.done)

    def _finished(self, job: int, outcome: JobOutcome) -> None:
        if job == self.job:
            self.flush()
            self.state = str(outcome.status)
            self.cancel_button.setEnabled(False)
            failed = sum(r.status == "failed" for r in self.rows.rows)
            text = f"{self.rows.done}/{len(self.rows)} files {outcome.text}, {failed} failed"
            self.status.setText(text)
        elif outcome.status is JobStatus.DONE:
            self.status.setText(f"Exported to {outcome.result}")
            self.exported.emit(str(outcome.result))
        else:
            self.status.setText(f"Export {outcome.text}")

    # --- actions ---------------------------------------------------------------------------------------
    def _double_clicked(self, index: QModelIndex) -> None:
        row = self.rows.rows[self.proxy.mapToSource(index).row()]
        self.open_file.emit(row.path)

    def cancel(self) -> None:
        self.runner.cancel(self.job)

    def export_to(self, folder: str | Path) -> int:
        """Export everything done so far into ``folder`` (on the runner thread); returns the job id."""
        return self.runner.put(ExportJob(str(folder), list(self.rows.records.values())))

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the batch into a folder")
        if folder:
            self.export_to(folder)

    def stop(self) -> None:
        self.runner.stop()


def open_batch(win: MainWindow, paths: list[str | Path]) -> list[int]:
    """Open ``paths`` (folders expanded) as a batch tab of ``win`` (the current tab), tagged with its pack
    and settings; returns no file-job ids (the batch is one job of its own runner)."""

    from models.audio import list_audio_files
    from models.batch.runner import BatchSpec
    from models.batch.work import TagOptions

    files = list_audio_files(paths)
    st = win.settings
    opts = TagOptions(top_k=min(st.top_k, 5), threshold=st.threshold)
    spec = BatchSpec("tag", win.pack_path, st.window_s, st.hop_s, opts)
    view = BatchView(files, spec, win.tabs)
    view.open_file.connect(lambda p: win.open_paths([p]))
    index = win.tabs.addTab(view, f"Batch ({len(files)} files)")
    win.tabs.setTabToolTip(index, "\n".join(str(p) for p in paths[:20]))
    win.tabs.setCurrentWidget(view)

    def close(i: int) -> None:
        if win.tabs.widget(i) is view:
            view.stop()
            win.tabs.removeTab(i)
            view.deleteLater()

    win.tabs.tabCloseRequested.connect(close)
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(view.stop)
    return []
