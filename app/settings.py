"""Versioned user settings: a frozen dataclass stored as JSON in the user config folder.

``load_settings`` never raises: a missing file gives the defaults; an unreadable or corrupt file gives the
defaults (logged, the bad file is kept as ``settings.json.corrupt``); a file written by an older or newer
Encotag keeps every field this version knows and can validate, and resets the rest (logged).
``save_settings`` is atomic: it writes a temporary file in the same folder, flushes and fsyncs it, then
``os.replace``-s it over the old file, so an interrupted save leaves the previous settings intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import paths

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
THEMES = ("system", "light", "dark")
MAX_TOP_K = 527


@dataclass(frozen=True)
class Settings:
    """Everything the app remembers between runs.

    Attributes:
        version: format version of the file this came from (always ``SETTINGS_VERSION`` once loaded).
        input_device: PortAudio input device name, ``None`` for the system default.
        window_s: analysis window in seconds (0.1 … 30).
        hop_s: hop between windows in seconds (0 < hop_s ≤ window_s).
        top_k: number of tags shown (1 … 527).
        threshold: probability at which a tag counts as present (0 … 1).
        theme: ``"system"``, ``"light"`` or ``"dark"``.
        selected_tags: labels pinned in the timeline plot.
        pack_path: model pack folder, ``None`` for the shipped default pack.
        head_path: personal head file in use, ``None`` for none.
        last_open_dir: folder of the last opened file.
        recent_files: most recently opened files, newest first.
        window_geometry: ``QWidget.saveGeometry()`` as base64 text ("" = unset).
        window_state: ``QMainWindow.saveState()`` as base64 text ("" = unset).
    """

    version: int = SETTINGS_VERSION
    input_device: str | None = None
    window_s: float = 1.0
    hop_s: float = 0.25
    top_k: int = 10
    threshold: float = 0.3
    theme: str = "system"
    selected_tags: tuple[str, ...] = ()
    pack_path: str | None = None
    head_path: str | None = None
    last_open_dir: str | None = None
    recent_files: tuple[str, ...] = ()
    window_geometry: str = ""
    window_state: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _str_tuple(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


_VALIDATORS: dict[str, Any] = {
    "input_device": _optional_str,
    "window_s": lambda v: _is_number(v) and 0.1 <= v <= 30.0,
    "hop_s": lambda v: _is_number(v) and 0.0 < v <= 30.0,
    "top_k": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_TOP_K,
    "threshold": lambda v: _is_number(v) and 0.0 <= v <= 1.0,
    "theme": lambda v: v in THEMES,
    "selected_tags": _str_tuple,
    "pack_path": _optional_str,
    "head_path": _optional_str,
    "last_open_dir": _optional_str,
    "recent_files": _str_tuple,
    "window_geometry": lambda v: isinstance(v, str),
    "window_state": lambda v: isinstance(v, str),
}


def settings_from_dict(data: dict[str, Any], source: str = "settings") -> Settings:
    """Build ``Settings`` from a parsed JSON object, keeping valid known fields and defaulting the rest.

    Unknown keys and invalid values are dropped with one log record each; ``hop_s`` larger than
    ``window_s`` is clamped to ``window_s``. Never raises for any JSON object.
    """
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "version":
            continue
        check = _VALIDATORS.get(key)
        if check is None:
            log.info("%s: ignoring unknown setting %r", source, key)
            continue
        if not check(value):
            log.warning("%s: invalid value for %r (%r); using the default", source, key, value)
            continue
        if isinstance(value, list):
            value = tuple(value)
        elif key in ("window_s", "hop_s", "threshold"):
            value = float(value)
        values[key] = value
    settings = Settings(**values)
    if settings.hop_s > settings.window_s:
        log.warning(
            "%s: hop %.3f s exceeds window %.3f s; clamped", source, settings.hop_s, settings.window_s
        )
        settings = dataclasses.replace(settings, hop_s=settings.window_s)
    return settings


def _keep_corrupt(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".corrupt"))


def load_settings(path: Path | None = None) -> Settings:
    """Read settings from ``path`` (default: ``paths.settings_path()``); never raises.

    Returns the defaults for a missing, unreadable or corrupt file, and a best-effort migration
    (known, valid fields kept) for a file of another version.
    """
    path = paths.settings_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        log.info("%s: no settings file yet; using defaults", path)
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("%s: cannot read settings (%s); using defaults", path, exc)
        return Settings()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        log.warning("%s: corrupt settings (%s); using defaults, old file kept as .corrupt", path, exc)
        _keep_corrupt(path)
        return Settings()
    if not isinstance(data, dict):
        log.warning("%s: corrupt settings (not a JSON object); using defaults", path)
        _keep_corrupt(path)
        return Settings()
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        log.warning("%s: settings without a valid version; keeping the fields that validate", path)
    elif version < SETTINGS_VERSION:
        log.info("%s: migrating settings from version %d to %d", path, version, SETTINGS_VERSION)
    elif version > SETTINGS_VERSION:
        log.warning(
            "%s: settings from a newer Encotag (version %d > %d); keeping the fields this version knows",
            path,
            version,
            SETTINGS_VERSION,
        )
    return settings_from_dict(data, source=str(path))


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write ``settings`` atomically to ``path`` (default: ``paths.settings_path()``) and return the path.

    Raises:
        OSError: the folder or file cannot be written; the previous file, if any, is left unchanged.
    """
    path = paths.settings_path() if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dataclasses.replace(settings, version=SETTINGS_VERSION).to_dict()
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    fd, tmp_name = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    log.debug("%s: settings saved", path)
    return path


def _fsync_dir(folder: Path) -> None:
    """Persist the rename on POSIX file systems (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
