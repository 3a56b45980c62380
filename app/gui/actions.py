"""Menus, shortcuts and the dialogs behind them (open, export, devices, theme, about, settings save)."""

from __future__ import annotations

import base64
import dataclasses
import importlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from app import __version__, paths
from app.settings import save_settings

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

log = logging.getLogger(__name__)

EXPORT_FILTERS = {
    "csv": "CSV (*.csv)",
    "json": "JSON (*.json)",
    "audacity": "Audacity labels (*.txt)",
    "srt": "SubRip subtitles (*.srt)",
    "vtt": "WebVTT subtitles (*.vtt)",
}
AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.oga *.opus *.mp3 *.aif *.aiff *.au *.caf *.w64);;All files (*)"
MIN_EVENT_S = 0.25
WINDOW_CHOICES = (0.5, 1.0, 2.0, 5.0)
HOP_CHOICES = (0.1, 0.25, 0.5, 1.0)
MAX_RECENT = 10


def app_icon() -> QIcon:
    from models.resources import resource_path

    for name in ("encotag.svg", "encotag.png", "encotag-256.png"):
        p = resource_path("icons", name)
        if p.is_file():
            return QIcon(str(p))
    return QIcon()


def _action(
    win: MainWindow, text: str, slot: Any, keys: str | QKeySequence.StandardKey | None = None
) -> QAction:
    act = QAction(text, win)
    if keys is not None:
        act.setShortcut(QKeySequence(keys))
    act.triggered.connect(slot)
    return act


def build_menus(win: MainWindow) -> None:
    """Menu bar, toolbar actions and shortcuts: Ctrl+L start/stop, Ctrl+O open, Ctrl+E export."""
    mb = win.menuBar()
    m_file = mb.addMenu("&File")
    win.act_open = _action(win, "&Open files…", lambda: open_dialog(win), QKeySequence.StandardKey.Open)
    win.act_open_dir = _action(win, "Open &folder…", lambda: open_folder_dialog(win), "Ctrl+Shift+O")
    win.act_export = _action(win, "&Export events…", lambda: export_dialog(win), "Ctrl+E")
    win.menu_recent = m_file.addMenu("Open &recent")
    m_file.addActions([win.act_open, win.act_open_dir])
    m_file.addMenu(win.menu_recent)
    win.act_play = _action(win, "&Play from cursor", win.toggle_play, "Ctrl+P")
    m_file.addAction(win.act_play)
    m_file.addSeparator()
    m_file.addAction(win.act_export)
    m_file.addSeparator()
    m_file.addAction(_action(win, "Choose model &pack…", lambda: pack_dialog(win)))
    m_file.addAction(_action(win, "Use the &default pack", lambda: use_pack(win, None)))
    m_file.addSeparator()
    m_file.addAction(_action(win, "&Quit", win.close, QKeySequence.StandardKey.Quit))
    _fill_recent(win)

    m_live = mb.addMenu("&Live")
    win.act_live = _action(win, "&Start listening", win.toggle_live, "Ctrl+L")
    win.act_live.setToolTip("Start or stop listening to the input device (Ctrl+L)")
    m_live.addAction(win.act_live)
    win.menu_devices = m_live.addMenu("Input &device")
    win.menu_devices.aboutToShow.connect(lambda: refresh_devices(win))
    m_live.addAction(_action(win, "&Clear live history", lambda: clear_live(win)))
    m_live.addSeparator()
    _choice_menu(win, m_live.addMenu("Analysis &window"), WINDOW_CHOICES, "window_s")
    _choice_menu(win, m_live.addMenu("Tag &updates (hop)"), HOP_CHOICES, "hop_s")

    m_view = mb.addMenu("&View")
    for dock in (win.dock_topk, win.dock_traj, win.dock_table, win.dock_picker):
        m_view.addAction(dock.toggleViewAction())
    m_view.addSeparator()
    m_theme = m_view.addMenu("&Theme")
    group = QActionGroup(win)
    for name in ("system", "light", "dark"):
        act = QAction(name.capitalize(), win, checkable=True)
        act.setChecked(win.settings.theme == name)
        act.triggered.connect(lambda _c=False, n=name: set_theme(win, n))
        group.addAction(act)
        m_theme.addAction(act)
    win.menu_heads = mb.addMenu("&Heads")
    win.menu_heads.menuAction().setVisible(False)  # shown once a heads dialog installs itself

    m_help = mb.addMenu("&Help")
    m_help.addAction(_action(win, "Open &log folder", lambda: _open_folder(paths.log_dir(ensure=True))))
    m_help.addAction(_action(win, "&About Encotag", lambda: about(win)))

    tb = win.toolbar
    tb.addAction(win.act_live)
    tb.addWidget(win.device_combo)
    tb.addWidget(win.level)
    tb.addSeparator()
    tb.addAction(win.act_open)
    tb.addAction(win.act_export)
    tb.addSeparator()
    tb.addWidget(win.topk_spin)
    tb.addWidget(win.thr_spin)
    win.device_combo.activated.connect(lambda _i: _device_chosen(win))
    refresh_devices(win)
    win.setWindowIcon(app_icon())


def _choice_menu(win: MainWindow, menu: Any, choices: tuple[float, ...], field: str) -> None:
    group = QActionGroup(win)
    current = getattr(win.settings, field)
    for value in choices:
        text = f"{value:g} s" if field == "window_s" else f"every {value:g} s ({1 / value:g} per second)"
        act = QAction(text, win, checkable=True)
        act.setChecked(abs(current - value) < 1e-9)
        act.triggered.connect(lambda _c=False, v=value: set_analysis(win, **{field: v}))
        group.addAction(act)
        menu.addAction(act)


def set_analysis(win: MainWindow, window_s: float | None = None, hop_s: float | None = None) -> None:
    """Change the analysis window/hop: live tagging restarts with it, files opened later use it."""
    from models.config import WindowConfig

    w = window_s if window_s is not None else win.settings.window_s
    h = min(hop_s if hop_s is not None else win.settings.hop_s, w)
    win.settings = dataclasses.replace(win.settings, window_s=w, hop_s=h)
    win.worker.set_window(WindowConfig(window_s=w, hop_s=h))
    clear_live(win)
    win.statusBar().showMessage(f"Analysis: {w:g} s windows every {h:g} s", 5000)


def clear_live(win: MainWindow) -> None:
    win.live.clear()
    win._live_dirty = True


def sync_live_actions(win: MainWindow) -> None:
    win.act_live.setText("S&top listening" if win.live.running else "&Start listening")
    win.device_combo.setEnabled(not win.live.running)


# --- devices -------------------------------------------------------------------------------------------
def refresh_devices(win: MainWindow) -> None:
    """Fill the device combo (and menu) from PortAudio; the saved device is selected if present."""
    combo = win.device_combo
    combo.clear()
    if win.source_factory is not None:
        combo.addItem("Test input (synthetic)", None)
        return
    from app.audio_input import AudioInputError, list_input_devices

    try:
        devices = list_input_devices()
    except AudioInputError as exc:
        combo.addItem("No audio input available", None)
        combo.setToolTip(str(exc))
        return
    combo.addItem("System default input", None)
    for d in devices:
        combo.addItem(f"{d.name} ({d.hostapi})" if d.hostapi else d.name, d.name)
    want = win.settings.input_device
    i = combo.findData(want) if want else 0
    combo.setCurrentIndex(max(i, 0))
    win.menu_devices.clear()
    for i in range(combo.count()):
        act = win.menu_devices.addAction(combo.itemText(i))
        act.triggered.connect(lambda _c=False, k=i: _pick_device(win, k))


def _pick_device(win: MainWindow, index: int) -> None:
    win.device_combo.setCurrentIndex(index)
    _device_chosen(win)


def _device_chosen(win: MainWindow) -> None:
    name = win.device_combo.currentData()
    win.settings = dataclasses.replace(win.settings, input_device=name)


def device_source(win: MainWindow) -> Any:
    """A SoundDeviceSource for the chosen device (raises AudioInputError)."""
    from app.audio_input import SoundDeviceSource

    return SoundDeviceSource(win.device_combo.currentData() or None)


# --- files ---------------------------------------------------------------------------------------------
def _start_dir(win: MainWindow) -> str:
    return win.settings.last_open_dir or str(Path.home())


def open_dialog(win: MainWindow) -> None:
    files, _ = QFileDialog.getOpenFileNames(win, "Open audio files", _start_dir(win), AUDIO_FILTER)
    if files:
        win.open_paths(files)


def open_folder_dialog(win: MainWindow) -> None:
    folder = QFileDialog.getExistingDirectory(win, "Open a folder of audio files", _start_dir(win))
    if folder:
        win.open_paths([folder])


def _absolute(path: str | Path) -> str:
    """``path`` resolved, or made absolute when it cannot be (a symlink loop must not abort the GUI)."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def remember_file(win: MainWindow, path: Path) -> None:
    p = _absolute(path)
    recent = (p, *[r for r in win.settings.recent_files if r != p])[:MAX_RECENT]
    win.settings = dataclasses.replace(win.settings, recent_files=recent, last_open_dir=str(Path(p).parent))
    _fill_recent(win)


def _fill_recent(win: MainWindow) -> None:
    win.menu_recent.clear()
    for p in win.settings.recent_files:
        act = win.menu_recent.addAction(p)
        act.triggered.connect(lambda _c=False, q=p: win.open_paths([q]))
    win.menu_recent.setEnabled(bool(win.settings.recent_files))


# --- model packs ---------------------------------------------------------------------------------------
def pack_dialog(win: MainWindow) -> None:
    folder = QFileDialog.getExistingDirectory(
        win, "Choose a model pack folder", win.pack_path or _start_dir(win)
    )
    if folder:
        use_pack(win, folder)


def use_pack(win: MainWindow, folder: str | None) -> None:
    """Load another pack on the worker (None: the shipped default); remembered in the settings."""
    win.pack_path = folder
    win.pack_info = None
    win.settings = dataclasses.replace(win.settings, pack_path=folder)
    win.model_status.setText("Loading model…")
    win.worker.load(folder)


# --- export --------------------------------------------------------------------------------------------
def current_events(win: MainWindow) -> tuple[list[Any], str]:
    """Events of the current view (file tab or live history) merged with hysteresis; and a base name."""
    from models.events import merge_events

    view = win.current_file()
    series = view.series if view is not None else win.live.series
    name = view.path.stem if view is not None else "live"
    if len(series) == 0 or not win.labels:
        return [], name
    events = merge_events(
        series.starts, series.ends, series.probs, win.labels,
        on=win.settings.threshold, min_duration=MIN_EVENT_S,
    )  # fmt: skip
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
    filters = ";;".join(EXPORT_FILTERS.values())
    start = str(Path(_start_dir(win)) / f"{name}.events.csv")
    path, chosen = QFileDialog.getSaveFileName(win, "Export events", start, filters)
    if not path:
        return
    fmt = next((k for k, v in EXPORT_FILTERS.items() if v == chosen), None)
    try:
        out = export_events(win, path, fmt)
    except (OSError, ValueError) as exc:
        win.notifier.report(f"Export failed: {exc}")
        return
    win.statusBar().showMessage(f"Exported {len(events)} events to {out}", 8000)


# --- theme, about, settings ----------------------------------------------------------------------------
def set_theme(win: MainWindow, name: str) -> None:
    from app.gui.theme import apply_theme, restyle_plot

    win.settings = dataclasses.replace(win.settings, theme=name)
    app = QApplication.instance()
    if isinstance(app, QApplication):
        win.dark = apply_theme(app, name)
    win.trajectory_view.dark = win.dark
    plots = [win.topk, win.trajectory_view, win.live_tab.scope, win.live_tab.history]
    for view in win.files.values():
        plots += [view.wave, view.tags]
    for plot in plots:
        restyle_plot(plot, win.dark)
    win._live_dirty = True


def about(win: MainWindow) -> None:
    info = win.pack_info
    if info is None:
        pack = "<p>The model pack is still loading.</p>"
    else:
        prov = "".join(f"<li>{k}: {v}</li>" for k, v in sorted(info.provenance.items()))
        pack = (
            f"<p><b>Model pack:</b> {info.name} (id {info.pack_id[:12]})<br>"
            f"<b>Licence:</b> {info.licence}</p>"
            + (f"<p><b>Provenance</b></p><ul>{prov}</ul>" if prov else "")
        )
    QMessageBox.about(
        win,
        "About Encotag",
        f"<h3>Encotag {__version__}</h3><p>Tells you what you are hearing: EnCodec latents → MobileNetV3 →"
        f" AudioSet tags, with embeddings and personal heads.</p>{pack}"
        f"<p>AudioSet labels: Google, CC BY 4.0.<br>Logs: {paths.log_dir()}</p>",
    )


def _open_folder(folder: Path) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def save_window_settings(win: MainWindow) -> None:
    """Store geometry, dock layout and choices in the versioned settings file (never raises)."""
    win.settings = dataclasses.replace(
        win.settings,
        window_geometry=base64.b64encode(bytes(win.saveGeometry().data())).decode("ascii"),
        window_state=base64.b64encode(bytes(win.saveState().data())).decode("ascii"),
    )
    try:
        save_settings(win.settings)
    except OSError as exc:
        log.warning("cannot save settings: %s", exc)


def install_heads(win: MainWindow) -> None:
    """Let ``app.gui.heads_dialog`` (when present) add its panel: it gets the window and uses
    ``win.menu_heads`` and ``win.worker.set_head(head)``."""
    try:
        module = importlib.import_module("app.gui.heads_dialog")
    except ModuleNotFoundError as exc:
        if exc.name != "app.gui.heads_dialog":
            raise
        return
    install = getattr(module, "install", None)
    if install is not None:
        win.menu_heads.menuAction().setVisible(True)
        install(win)
