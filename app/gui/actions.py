"""Menus, shortcuts and the dialogs behind them (open, export, devices, packs, about, settings save).

:class:`WindowActions` owns the actions and menus and emits what they ask for as signals; the main
window connects them to its methods. Window extensions (the personal heads) plug in through
:func:`install_heads` and the :class:`WindowExtension` hook.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QWidget

from app import paths
from app.gui.exporting import ask_events_path
from app.gui.layout import WindowParts
from app.settings import Settings, save_settings

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)

AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.oga *.opus *.mp3 *.aif *.aiff *.au *.caf *.w64);;All files (*)"
MIN_EVENT_S = 0.25
WINDOW_CHOICES = (0.5, 1.0, 2.0, 5.0)
HOP_CHOICES = (0.1, 0.25, 0.5, 1.0)
MAX_RECENT = 10
HEADS_MODULE = "app.gui.heads"
PACKS_MODULE = "app.gui.packs"


class WindowExtension(Protocol):
    """A feature plugged into the main window (the personal heads): the window calls
    ``window_closing()`` from its ``closeEvent``, before it stops its own worker."""

    def window_closing(self) -> None: ...


def app_icon() -> QIcon:
    from models.resources import resource_path

    for name in ("encotag.svg", "encotag.png", "encotag-256.png"):
        p = resource_path("icons", name)
        if p.is_file():
            return QIcon(str(p))
    return QIcon()


class WindowActions(QObject):
    """The menu bar, the toolbar actions and their shortcuts (Ctrl+L start/stop, Ctrl+O open, Ctrl+E
    export, Ctrl+P play). Owns its actions and menus; what they ask for is emitted as a signal for the
    window to act on (the actions never change the window themselves)."""

    open_requested = Signal(list)  # list[str]: files and folders
    export_requested = Signal()
    play_toggled = Signal()
    live_toggled = Signal()
    pack_requested = Signal(object)  # a pack folder, or None for the shipped default
    quit_requested = Signal()
    clear_live_requested = Signal()
    analysis_requested = Signal(object, object)  # window_s | None, hop_s | None
    theme_requested = Signal(str)
    device_chosen = Signal(object)  # device name, or None for the system default
    about_requested = Signal()

    def __init__(self, win: QMainWindow, ui: WindowParts, settings: Callable[[], Settings], synthetic: bool):
        super().__init__(win)
        self._win, self._ui, self._settings, self._synthetic = win, ui, settings, synthetic
        st = settings()
        mb = win.menuBar()
        m_file = mb.addMenu("&File")
        self.act_open = self._action("&Open files…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.act_open_dir = self._action("Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.act_export = self._action("&Export events…", self.export_requested.emit, "Ctrl+E")
        self.menu_recent = m_file.addMenu("Open &recent")
        m_file.addActions([self.act_open, self.act_open_dir])
        m_file.addMenu(self.menu_recent)
        self.act_play = self._action("&Play from cursor", self.play_toggled.emit, "Ctrl+P")
        m_file.addAction(self.act_play)
        m_file.addSeparator()
        m_file.addAction(self.act_export)
        m_file.addSeparator()
        m_file.addAction(self._action("&Quit", self.quit_requested.emit, QKeySequence.StandardKey.Quit))
        self.fill_recent(st.recent_files)

        m_live = mb.addMenu("&Live")
        self.act_live = self._action("&Start listening", self.live_toggled.emit, "Ctrl+L")
        self.act_live.setToolTip("Start or stop listening to the input device (Ctrl+L)")
        m_live.addAction(self.act_live)
        self.menu_devices = m_live.addMenu("Input &device")
        self.menu_devices.aboutToShow.connect(self.refresh_devices)
        m_live.addAction(self._action("&Clear live history", self.clear_live_requested.emit))
        m_live.addSeparator()
        self._choice_menu(m_live.addMenu("Analysis &window"), WINDOW_CHOICES, st.window_s, 0)
        self._choice_menu(m_live.addMenu("Tag &updates (hop)"), HOP_CHOICES, st.hop_s, 1)
        self.menu_model = mb.addMenu("&Model")  # filled by app.gui.packs (install_packs)
        self.menu_model.addAction(self._action("Choose model &pack…", self.pack_dialog))
        self.menu_model.addAction(
            self._action("Use the &default pack", lambda: self.pack_requested.emit(None))
        )

        m_view = self.menu_view = mb.addMenu("&View")
        for dock in ui.docks:
            m_view.addAction(dock.toggleViewAction())
        m_view.addSeparator()
        m_theme = m_view.addMenu("&Theme")
        group = QActionGroup(self)
        for name in ("system", "light", "dark"):
            act = QAction(name.capitalize(), self, checkable=True)
            act.setChecked(st.theme == name)
            act.triggered.connect(lambda _c=False, n=name: self.theme_requested.emit(n))
            group.addAction(act)
            m_theme.addAction(act)
        self.menu_heads = mb.addMenu("&Heads")
        self.menu_heads.menuAction().setVisible(False)  # shown once a heads feature installs itself

        m_help = mb.addMenu("&Help")
        m_help.addAction(self._action("Open &log folder", lambda: _open_folder(paths.log_dir(ensure=True))))
        m_help.addAction(self._action("&About Encotag", self.about_requested.emit))

        tb = ui.toolbar
        tb.addAction(self.act_live)
        tb.addWidget(ui.device_combo)
        tb.addWidget(ui.level)
        tb.addSeparator()
        tb.addAction(self.act_open)
        tb.addAction(self.act_export)
        tb.addSeparator()
        tb.addWidget(ui.topk_spin)
        tb.addWidget(ui.thr_spin)
        ui.device_combo.activated.connect(lambda _i: self.device_chosen.emit(ui.device_combo.currentData()))
        self.refresh_devices()
        win.setWindowIcon(app_icon())

    def _action(self, text: str, slot: Any, keys: str | QKeySequence.StandardKey | None = None) -> QAction:
        act = QAction(text, self)
        if keys is not None:
            act.setShortcut(QKeySequence(keys))
        act.triggered.connect(lambda _c=False: slot())
        return act

    def _choice_menu(self, menu: QMenu, choices: tuple[float, ...], current: float, which: int) -> None:
        group = QActionGroup(self)
        for value in choices:
            text = f"{value:g} s" if which == 0 else f"every {value:g} s ({1 / value:g} per second)"
            act = QAction(text, self, checkable=True)
            act.setChecked(abs(current - value) < 1e-9)
            pair = (value, None) if which == 0 else (None, value)
            act.triggered.connect(lambda _c=False, p=pair: self.analysis_requested.emit(*p))
            group.addAction(act)
            menu.addAction(act)

    def sync_live(self, running: bool) -> None:
        self.act_live.setText("S&top listening" if running else "&Start listening")
        self._ui.device_combo.setEnabled(not running)

    # --- devices ---------------------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        """Fill the device combo (and menu) from PortAudio; the saved device is selected if present."""
        combo = self._ui.device_combo
        combo.clear()
        if self._synthetic:
            combo.addItem("Test input (synthetic)", None)
            return
        from app.audio_input import AudioInputError, list_input_devices

        try:
            devices = list_input_devices()
        except AudioInputError as exc:
            combo.addItem("No audio input available", None)
            combo.setToolTip(str(exc))
            return
        if not devices:  # no "System default input" to offer: say what to do instead
            from app.audio_input import NO_INPUT

            combo.addItem("No input device found", None)
            combo.setToolTip(NO_INPUT)
        else:
            combo.addItem("System default input", None)
            combo.setToolTip("Input device")
        for d in devices:
            combo.addItem(f"{d.name} ({d.hostapi})" if d.hostapi else d.name, d.name)
        want = self._settings().input_device
        i = combo.findData(want) if want else 0
        combo.setCurrentIndex(max(i, 0))
        self.menu_devices.clear()
        for i in range(combo.count()):
            act = self.menu_devices.addAction(combo.itemText(i))
            act.triggered.connect(lambda _c=False, k=i: self._pick_device(k))

    def _pick_device(self, index: int) -> None:
        self._ui.device_combo.setCurrentIndex(index)
        self.device_chosen.emit(self._ui.device_combo.currentData())

    # --- files and packs -------------------------------------------------------------------------------
    def _start_dir(self) -> str:
        return self._settings().last_open_dir or str(Path.home())

    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self._win, "Open audio files", self._start_dir(), AUDIO_FILTER
        )
        if files:
            self.open_requested.emit(list(files))

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self._win, "Open a folder of audio files", self._start_dir()
        )
        if folder:
            self.open_requested.emit([folder])

    def fill_recent(self, recent: Sequence[str]) -> None:
        self.menu_recent.clear()
        for p in recent:
            act = self.menu_recent.addAction(p)
            act.triggered.connect(lambda _c=False, q=p: self.open_requested.emit([q]))
        self.menu_recent.setEnabled(bool(recent))

    def pack_dialog(self) -> None:
        start = self._settings().pack_path or self._start_dir()
        folder = QFileDialog.getExistingDirectory(self._win, "Choose a model pack folder", start)
        if folder:
            self.pack_requested.emit(folder)


def _absolute(path: str | Path) -> str:
    """``path`` resolved, or made absolute when it cannot be (a symlink loop must not abort the GUI)."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def remembered(settings: Settings, path: Path) -> Settings:
    """``settings`` with ``path`` first in the recent files (and its folder as the last open one)."""
    p = _absolute(path)
    recent = (p, *[r for r in settings.recent_files if r != p])[:MAX_RECENT]
    return dataclasses.replace(settings, recent_files=recent, last_open_dir=str(Path(p).parent))


def device_source(device: str | None) -> Any:
    """A SoundDeviceSource for ``device`` (None: the system default; raises AudioInputError)."""
    from app.audio_input import SoundDeviceSource

    return SoundDeviceSource(device or None)


# --- export --------------------------------------------------------------------------------------------
def current_events(win: MainWindow) -> tuple[list[Any], str]:
    """Events of the current view (file tab or live history) merged with hysteresis; and a base name."""
    from app.gui.state.thresholds import events_with_thresholds, pinned_thresholds

    view = win.current_file()
    series = view.series if view is not None else win.live.series
    name = view.path.stem if view is not None else "live"
    st = win.settings
    own = pinned_thresholds(st.tag_thresholds, st.selected_tags)  # per-tag thresholds of pinned tags
    events = events_with_thresholds(
        series.starts, series.ends, series.probs, win.labels, st.threshold, own, MIN_EVENT_S
    )
    return events, name


def export_events(win: MainWindow, path: str | Path, fmt: str | None = None) -> Path:
    """Write the current view's events to ``path`` (format from ``fmt`` or the file name)."""
    from app.export import format_from_path, write_events

    fmt = fmt or format_from_path(path) or "csv"
    events, _ = current_events(win)
    out = write_events(events, path, fmt)
    log.info("exported %d events to %s (%s)", len(events), out, fmt)
    return out


def export_dialog(win: MainWindow) -> None:
    events, name = current_events(win)
    if not events:
        QMessageBox.information(win, "Export events", "Nothing to export yet: no tag reached the threshold.")
        return
    asked = ask_events_path(win, "Export events", name)
    if asked is None:
        return
    try:
        out = export_events(win, *asked)
    except (OSError, ValueError) as exc:
        win.notifier.report(f"Export failed: {exc}")
        return
    win.statusBar().showMessage(f"Exported {len(events)} events to {out}", 8000)


# --- about, settings, extensions -----------------------------------------------------------------------
def about(parent: QWidget, info: Any) -> QWidget:
    """The About box (``info``: the loaded ``PackInfo`` or None while loading): ``app.gui.about``."""
    from app.gui.about import about as open_about

    return open_about(parent, info)


def _open_folder(folder: Path) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def with_window_state(win: QMainWindow, settings: Settings) -> Settings:
    """``settings`` with the window's geometry and dock layout."""
    return dataclasses.replace(
        settings,
        window_geometry=base64.b64encode(bytes(win.saveGeometry().data())).decode("ascii"),
        window_state=base64.b64encode(bytes(win.saveState().data())).decode("ascii"),
    )


def store_settings(settings: Settings) -> None:
    """Write the versioned settings file (never raises)."""
    try:
        save_settings(settings)
    except OSError as exc:
        log.warning("cannot save settings: %s", exc)


def install_heads(win: MainWindow, menu: QMenu, module_name: str = HEADS_MODULE) -> WindowExtension | None:
    """Let ``app.gui.heads`` (when present) add its dock, dialog and menu entries to the window; it
    returns the extension that the window keeps and shuts down from ``closeEvent``. The Model menu's
    feature (``app.gui.packs``) plugs in the same way (:func:`install_packs`)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None
    install = getattr(module, "install", None)
    if install is None:
        return None
    menu.menuAction().setVisible(True)
    ext: WindowExtension = install(win, menu)
    return ext


def install_packs(win: MainWindow, menu: QMenu) -> WindowExtension | None:
    """Let ``app.gui.packs`` fill the Model menu (installed packs, fetch, compare)."""
    return install_heads(win, menu, PACKS_MODULE)
