"""The save dialogs of the exports: the last-used export folder and the format's extension.

Every export dialog (events, head events, head files) opens in the folder of the last export
(``Settings.last_export_dir``; else the last opened file's folder, else the home folder) and remembers
the folder it wrote to. A bare name gets the chosen format's extension (``app.export.with_extension``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow

EXPORT_FILTERS = {
    "csv": "CSV (*.csv)",
    "json": "JSON (*.json)",
    "audacity": "Audacity labels (*.txt)",
    "srt": "SubRip subtitles (*.srt)",
    "vtt": "WebVTT subtitles (*.vtt)",
    "raven": "Raven selection table (*.selections.txt)",
}


def export_dir(win: MainWindow) -> Path:
    """Where an export dialog opens: the last export's folder, else the last opened one, else home."""
    st = win.settings
    for folder in (st.last_export_dir, st.last_open_dir):
        if folder and Path(folder).is_dir():
            return Path(folder)
    return Path.home()


def remember_export(win: MainWindow, path: str | Path) -> None:
    win.update_settings(last_export_dir=str(Path(path).parent))


def ask_events_path(win: MainWindow, title: str, name: str) -> tuple[Path, str] | None:
    """Ask where to write events (None: cancelled); returns the path (extension added) and format."""
    from app.export import format_from_path, with_extension

    start = str(export_dir(win) / f"{name}.events.csv")
    path, chosen = QFileDialog.getSaveFileName(win, title, start, ";;".join(EXPORT_FILTERS.values()))
    if not path:
        return None
    fmt = next((k for k, v in EXPORT_FILTERS.items() if v == chosen), None) or format_from_path(path) or "csv"
    out = with_extension(path, fmt)
    remember_export(win, out)
    return out, fmt
