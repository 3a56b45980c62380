"""The Model menu: the installed packs (what each is), switching, fetching known packs, comparing two.

:func:`install` is called by the main window (``actions.install_packs``) with the (empty) Model menu and
returns the :class:`PacksFeature` that the window keeps in ``extensions``. The menu lists:

- every installed pack (``models.packs.catalog``: the shipped one, ``<user data>/packs/*``, the folders
  chosen in the settings or in this session) as "name — kind, size", the full line (licence, trusted
  labels, evaluation figures from the manifest) as its tooltip and in *Pack details…*; the current pack
  is checked;
- each known pack that is not installed yet (``models.packs.fetch``: the EfficientAT mn04 mel reference)
  as "fetch on first use": choosing it downloads it with progress and Cancel, builds it and switches;
- *Compare the file with* ▸ a second pack: the current file is tagged by that pack on a background
  thread and its curves are drawn dashed over the timeline for the shown tags
  (:mod:`app.gui.packs_compare`);
- *Fetch the official EnCodec 24 kHz weights* (also done on its own before switching to a pack whose
  codec is the official one), *Choose a pack folder…* and *Use the shipped pack*.

Switching runs on the inference worker (``MainWindow.use_pack`` posts ``load``); the status bar says
which pack is being loaded and when it is ready. Listing, downloading and the compare tagging are jobs
of :class:`~app.gui.packs_jobs.PackJobRunner` (the GUI thread never reads manifests or runs torch). A
fetch that fails (offline, corrupt) shows one notice naming the file, its URL and where to put it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app import paths
from app.gui.jobs import JobOutcome, JobStatus
from app.gui.packs_compare import CompareOverlay
from app.gui.packs_jobs import CODEC_KEY, CompareJob, CompareStart, FetchJob, PackJobRunner, ScanJob
from app.gui.state.series import ResultBatch
from models.config import WindowConfig
from models.packs.catalog import PackSummary
from models.packs.fetch import KNOWN_PACKS
from models.tagging.results import Progress

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)

DRAW_MS = 250  # compare curves are redrawn at most this often
DETAIL_ROWS = ("kind", "size", "licence", "trusted labels", "evaluation (manifest)", "folder")


def _same(a: str | Path | None, b: str | Path | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return Path(a).absolute() == Path(b).absolute()


class PacksFeature(QObject):
    """The Model menu and its jobs (module docstring)."""

    def __init__(self, win: MainWindow, menu: QMenu) -> None:
        super().__init__(win)
        self.win, self.menu = win, menu
        self.runner = PackJobRunner()
        self.runner.finished.connect(self._finished)
        self.runner.progress.connect(self._progress)
        self.runner.yielded.connect(self._yielded)
        self.packs: tuple[PackSummary, ...] = ()
        self.codec_cached = False
        self.jobs: dict[int, tuple[str, Any]] = {}  # job id -> (what, then/context)
        self.overlays: dict[int, CompareOverlay] = {}  # file job id -> its comparison
        self.progress_dialog: QProgressDialog | None = None
        self.notice: QMessageBox | None = None
        self.fetch_urls: tuple[tuple[str, str], ...] = ()  # URL overrides (tests: a local server)
        self.used: list[str] = []  # pack folders used in this session (listed even after switching away)
        self.compare_menu = QMenu("&Compare the file with", menu)  # kept across rebuilds
        self._group: QActionGroup | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.draw_overlays)
        self.timer.start(DRAW_MS)
        w = win.worker.worker
        w.engine_loading.connect(self._loading)
        w.engine_ready.connect(self._ready)
        menu.aboutToHide.connect(self.rescan)  # the next opening shows packs added meanwhile
        self._build_menu()
        self.rescan()

    # --- listing ---------------------------------------------------------------------------------------
    def rescan(self) -> int:
        """List the installed packs on the job thread; the menu is rebuilt when the list arrives."""
        if self.win.pack_path and self.win.pack_path not in self.used:
            self.used.append(self.win.pack_path)
        job = self.runner.put(ScanJob(paths.packs_dir(), tuple(self.used)))
        self.jobs[job] = ("scan", None)
        return job

    def summary(self, folder: str | Path | None) -> PackSummary | None:
        for s in self.packs:
            if (folder is None and s.shipped) or (folder is not None and _same(s.path, folder)):
                return s
        return None

    def is_current(self, s: PackSummary) -> bool:
        return s.shipped if self.win.pack_path is None else _same(s.path, self.win.pack_path)

    def _folder_of(self, s: PackSummary) -> str | None:
        return None if s.shipped else str(s.path)

    def _build_menu(self) -> None:
        menu = self.menu
        menu.clear()  # deletes the actions it owns
        if self._group is not None:
            self._group.deleteLater()
        group = self._group = QActionGroup(menu)
        for s in self.packs:
            text = s.path.name + " — unreadable" if s.error else f"{s.name} — {s.kind}, {s.size_text}"
            act = QAction(text, menu, checkable=True)
            act.setToolTip(s.describe())
            act.setStatusTip(s.describe())
            act.setChecked(self.is_current(s))
            act.setEnabled(not s.error)
            act.triggered.connect(lambda _c=False, s=s: self.switch(self._folder_of(s)))
            group.addAction(act)
            menu.addAction(act)
        for key, known in KNOWN_PACKS.items():
            if not any(_same(s.path, paths.packs_dir() / known.folder) for s in self.packs):
                size = f"{known.download_bytes / 1e6:.0f} MB"
                act = menu.addAction(f"{known.title} — fetch on first use ({known.licence}, {size})")
                act.triggered.connect(lambda _c=False, k=key: self.fetch(k, ("switch", k)))
        menu.setToolTipsVisible(True)
        menu.addSeparator()
        compare = self.compare_menu
        compare.clear()
        menu.addMenu(compare)
        for s in self.packs:
            if not s.error and not self.is_current(s):
                act = compare.addAction(f"{s.name} ({s.kind})")
                act.triggered.connect(lambda _c=False, s=s: self.compare(self._folder_of(s)))
        for key, known in KNOWN_PACKS.items():
            if not any(_same(s.path, paths.packs_dir() / known.folder) for s in self.packs):
                act = compare.addAction(f"{known.title} (fetch first)")
                act.triggered.connect(lambda _c=False, k=key: self.fetch(k, ("compare", k)))
        compare.addSeparator()
        compare.addAction("&Remove the comparison", self.remove_comparison)
        menu.addAction("Pack &details…", self.details)
        menu.addSeparator()
        act = menu.addAction("Fetch the official &EnCodec 24 kHz weights", lambda: self.fetch(CODEC_KEY))
        act.setEnabled(not self.codec_cached)
        menu.addAction("Choose a pack &folder…", self.choose_folder)
        menu.addAction("Use the &shipped pack", lambda: self.switch(None))

    # --- switching -------------------------------------------------------------------------------------
    def switch(self, folder: str | None) -> None:
        """Use the pack at ``folder`` (None: the shipped one); the worker loads it. A pack whose codec is
        the official EnCodec gets its weights fetched first (progress, Cancel)."""
        s = self.summary(folder)
        if s is not None and s.needs_official_codec and not self.codec_cached:
            self.fetch(CODEC_KEY, ("switch", folder))
            return
        name = s.name if s is not None and s.name else (folder or "the shipped pack")
        self.win.statusBar().showMessage(f"Switching to the model pack {name}…")
        self.win.use_pack(folder)

    def choose_folder(self) -> None:
        start = self.win.pack_path or str(paths.packs_dir())
        folder = QFileDialog.getExistingDirectory(self.win, "Choose a model pack folder", start)
        if folder:
            self.switch(folder)

    def _loading(self, where: str) -> None:
        self.win.statusBar().showMessage(f"Loading the model pack {where} on the worker…")

    def _ready(self, info: Any) -> None:
        self.win.statusBar().showMessage(f"Model pack ready: {info.name}", 8000)
        self.rescan()

    # --- fetching --------------------------------------------------------------------------------------
    def fetch(self, key: str, then: tuple[str, Any] | None = None) -> int:
        """Fetch known pack ``key`` (or the official codec: :data:`CODEC_KEY`) with a progress dialog and
        Cancel; ``then``: ("switch" | "compare", folder or known key) once it is there."""
        job = self.runner.put(FetchJob(key, paths.packs_dir(), paths.downloads_dir(), self.fetch_urls))
        self.jobs[job] = ("fetch", (key, then))
        title = KNOWN_PACKS[key].title if key in KNOWN_PACKS else "the official EnCodec 24 kHz weights"
        dlg = QProgressDialog(f"Fetching {title}…", "Cancel", 0, 0, self.win)
        dlg.setWindowTitle("Fetching")
        dlg.setProperty("title", f"Fetching {title}")
        dlg.setMinimumDuration(0)
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.canceled.connect(lambda: self.runner.cancel(job))
        if self.progress_dialog is not None:
            self.progress_dialog.close()
        self.progress_dialog = dlg
        dlg.show()
        return job

    def _progress(self, job: int, p: Progress) -> None:
        what = self.jobs.get(job, ("", None))[0]
        if what == "fetch" and self.progress_dialog is not None:
            dlg = self.progress_dialog
            dlg.setMaximum(max(p.total // 1024, 0))
            dlg.setValue(p.done // 1024)
            of = f" of {p.total / 1e6:.1f}" if p.total else ""
            dlg.setLabelText(f"{dlg.property('title')}: {p.done / 1e6:.1f}{of} MB")
        elif what == "compare" and p.total:
            self.win.statusBar().showMessage(f"Comparing: {100 * p.done // p.total} %")

    def _fetched(self, outcome: JobOutcome, key: str, then: tuple[str, Any] | None) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.close()
            self.progress_dialog = None
        if outcome.status is JobStatus.CANCELLED:
            self.win.statusBar().showMessage("Fetch cancelled; nothing was kept", 8000)
            return
        if outcome.status is JobStatus.ERROR:
            self.notice = QMessageBox(QMessageBox.Icon.Warning, "Could not fetch", outcome.message,
                                      parent=self.win)  # fmt: skip
            self.notice.setWindowModality(Qt.WindowModality.NonModal)
            self.notice.show()
            return
        self.codec_cached = self.codec_cached or key == CODEC_KEY
        self.win.statusBar().showMessage(f"Fetched: {outcome.result}", 8000)
        self.rescan()
        if then is not None:
            what, target = then
            folder = str(outcome.result) if target in KNOWN_PACKS else target
            (self.switch if what == "switch" else self.compare)(folder)

    # --- comparing -------------------------------------------------------------------------------------
    def compare(self, folder: str | None) -> int | None:
        """Tag the current file with the pack at ``folder`` (None: the shipped one) and draw its curves."""
        view = self.win.current_file()
        if view is None:
            self.win.statusBar().showMessage("Open a file first: Compare tags the current file", 8000)
            return None
        s = self.summary(folder)
        if s is not None and s.needs_official_codec and not self.codec_cached:
            self.fetch(CODEC_KEY, ("compare", folder))
            return None
        self.remove_comparison()
        st = self.win.settings
        job = self.runner.put(CompareJob(view.path, folder, WindowConfig(st.window_s, st.hop_s)))
        self.jobs[job] = ("compare", view.job_id)
        name = s.name if s is not None else (folder or "the shipped pack")
        self.win.statusBar().showMessage(f"Comparing {view.path.name} with {name}…")
        return job

    def remove_comparison(self) -> None:
        view = self.win.current_file()
        if view is None:
            return
        for job, (what, target) in list(self.jobs.items()):
            if what == "compare" and target == view.job_id:
                self.runner.cancel(job)
        overlay = self.overlays.pop(view.job_id, None)
        if overlay is not None:
            overlay.clear()

    def _yielded(self, job: int, item: Any) -> None:
        what, file_job = self.jobs.get(job, ("", None))
        view = self.win.files.get(file_job) if what == "compare" else None
        if view is None:
            return
        if isinstance(item, CompareStart):
            self.overlays[file_job] = CompareOverlay(view, item.name, item.labels)
        elif isinstance(item, ResultBatch) and file_job in self.overlays:
            self.overlays[file_job].add(item)

    def draw_overlays(self) -> None:
        """Redraw the comparisons whose results or shown tags changed (timer; also called by tests)."""
        open_views = set(self.win.files)
        for job, (what, file_job) in list(self.jobs.items()):
            if what == "compare" and file_job not in open_views:  # its tab was closed
                self.runner.cancel(job)
        for file_job in list(self.overlays):
            if file_job not in open_views:
                del self.overlays[file_job]
            else:
                self.overlays[file_job].refresh(self.win.labels)

    # --- jobs, details, closing --------------------------------------------------------------------------
    def _finished(self, job: int, outcome: JobOutcome) -> None:
        what, ctx = self.jobs.pop(job, ("", None))
        if what == "scan" and outcome.status is JobStatus.DONE:
            self.packs, self.codec_cached = outcome.result
            self._build_menu()
        elif what == "fetch":
            self._fetched(outcome, *ctx)
        elif what == "compare":
            overlay = self.overlays.get(ctx)
            if overlay is not None:
                overlay.status = outcome.text
            if outcome.status is JobStatus.ERROR:
                self.win.statusBar().showMessage(f"Compare failed: {outcome.message}", 10000)
            else:
                self.win.statusBar().showMessage(f"Compare {outcome.text}", 8000)
            self.draw_overlays()

    def details(self) -> QDialog:
        """A table of the installed packs (one column each): kind, size, licence, trusted labels,
        evaluation figures from the manifest, folder."""
        dlg = QDialog(self.win)
        dlg.setWindowTitle("Installed model packs")
        table = QTableWidget(len(DETAIL_ROWS), len(self.packs), dlg)
        table.setVerticalHeaderLabels(DETAIL_ROWS)
        table.setHorizontalHeaderLabels(
            [(s.name or s.path.name) + (" (in use)" if self.is_current(s) else "") for s in self.packs]
        )
        table.setWordWrap(True)
        for c, s in enumerate(self.packs):
            cells = (
                (
                    s.kind,
                    s.size_text,
                    s.licence,
                    f"{s.n_trusted} of {s.n_labels}",
                    s.figures_text,
                    str(s.path),
                )
                if not s.error
                else ("unreadable", "", "", "", s.error, str(s.path))
            )
            for r, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                table.setItem(r, c, item)
        table.horizontalHeader().setDefaultSectionSize(320)
        table.resizeRowsToContents()
        QVBoxLayout(dlg).addWidget(table)
        dlg.resize(min(1200, 160 + 330 * max(len(self.packs), 1)), 360)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()
        return dlg

    def window_closing(self) -> None:
        self.timer.stop()
        if self.progress_dialog is not None:
            self.progress_dialog.close()
        self.runner.stop()


def install(win: MainWindow, menu: QMenu) -> PacksFeature:
    """Fill the Model menu and return the feature the window keeps (``win.extensions``)."""
    menu.menuAction().setVisible(True)
    return PacksFeature(win, menu)
