"""Unexpected errors: logged with a traceback, then shown as a non-modal notice naming the log file.

``install_error_hooks`` replaces ``sys.excepthook`` and ``threading.excepthook``; exceptions from any
thread are handed to the GUI thread through a queued signal, so the app never dies silently and never
blocks on a modal dialog.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from app import paths
from app.logsetup import LOG_FILE

log = logging.getLogger(__name__)


class ErrorNotifier(QObject):
    """Shows one non-modal message box per error (at most one open at a time; later ones are counted)."""

    error = Signal(str, str)  # summary, details

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self.parent_widget = parent_widget
        self.box: QMessageBox | None = None
        self.last_notice: QMessageBox | None = None
        self.count = 0
        self.error.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def log_path(self) -> str:
        return str(paths.log_dir() / LOG_FILE)

    def report(self, summary: str, details: str = "") -> None:
        """Thread-safe: log is written by the caller; the notice appears on the GUI thread."""
        self.error.emit(summary, details)

    def _show(self, summary: str, details: str) -> None:
        self.count += 1
        text = f"{summary}\n\nDetails are in the log file:\n{self.log_path()}"
        if self.box is not None and self.box.isVisible():
            self.box.setText(f"{text}\n\n({self.count} errors so far)")
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Encotag: unexpected error", text, parent=self.parent_widget
        )
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()
        self.box = box

    def notice(self, title: str, text: str) -> QMessageBox:
        """A plain, non-modal warning for an expected problem (no device, …): ``title`` and ``text`` as
        given, no mention of an unexpected error or the log."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=self.parent_widget)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()
        self.last_notice = box
        return box


def install_error_hooks(notifier: ErrorNotifier) -> None:
    """Route uncaught exceptions of the main thread and of Python threads to the log and ``notifier``."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unexpected error: %s", details)
        notifier.report(f"{exc_type.__name__}: {exc}", details)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        hook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
