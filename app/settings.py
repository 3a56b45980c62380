"""Versioned user settings: a frozen dataclass stored as JSON in the user config folder.

``load_settings`` never raises and never blocks: a missing file gives the defaults; a file that is not a
regular file (a FIFO, a folder, a device, a symlink loop), larger than :data:`MAX_SETTINGS_BYTES`, not
UTF-8, not JSON, nested too deeply or not a JSON object gives the defaults (logged, the bad entry is moved
aside to ``settings.json.corrupt``, so the next save does not overwrite it); a file written by an older or
newer Encotag keeps every field this version knows and can validate, and resets the rest (logged).
Lists are capped (:data:`MAX_RECENT` recent files, :data:`MAX_TOP_K` pinned tags) and strings limited to
:data:`MAX_TEXT` characters, so no settings file can make the GUI slow to start.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import paths
from models.safeio import atomic_write_bytes

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1
THEMES = ("system", "light", "dark")
MAX_TOP_K = 527
MAX_RECENT = 10
MAX_TEXT = 8192  # paths, device names; window geometry/state as base64 are a few hundred characters
MAX_SETTINGS_BYTES = 1 << 20  # a real file is about 2 KiB


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
        tag_thresholds: per-tag thresholds of pinned tags, ``(label, threshold)`` pairs (a JSON object in
            the file); tags without one use ``threshold``.
        spectrogram: show the spectrogram instead of the waveform (file timelines and live).
        last_export_dir: folder of the last export (events, head events, heads).
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
    tag_thresholds: tuple[tuple[str, float], ...] = ()
    spectrogram: bool = False
    last_export_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists, the per-tag thresholds an object)."""
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        out["tag_thresholds"] = dict(self.tag_thresholds)
        return out

    def threshold_of(self, label: str) -> float:
        """The threshold of ``label``: its own one, else the global ``threshold``."""
        return dict(self.tag_thresholds).get(label, self.threshold)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _optional_str(value: Any) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= MAX_TEXT)


def _str_tuple(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value)


_LIST_CAPS = {"recent_files": MAX_RECENT, "selected_tags": MAX_TOP_K}


def _thresholds(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) <= MAX_TOP_K
        and all(
            isinstance(k, str) and len(k) <= MAX_TEXT and _is_number(v) and 0.0 <= v <= 1.0
            for k, v in value.items()
        )
    )


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
    "window_geometry": lambda v: isinstance(v, str) and len(v) <= MAX_TEXT,
    "window_state": lambda v: isinstance(v, str) and len(v) <= MAX_TEXT,
    "tag_thresholds": _thresholds,
    "spectrogram": lambda v: isinstance(v, bool),
    "last_export_dir": _optional_str,
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
        if key in _LIST_CAPS and isinstance(value, list) and len(value) > _LIST_CAPS[key]:
            log.warning(
                "%s: %r has %d entries; keeping the first %d", source, key, len(value), _LIST_CAPS[key]
            )
            value = value[: _LIST_CAPS[key]]
        check = _VALIDATORS.get(key)
        if check is None:
            log.info("%s: ignoring unknown setting %r", source, key[:100])
            continue
        if not check(value):
            log.warning("%s: invalid value for %r (%.100r); using the default", source, key, value)
            continue
        if key == "tag_thresholds":
            value = tuple(sorted((str(k), float(v)) for k, v in value.items()))
        elif isinstance(value, list):
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
    """Read settings from ``path`` (default: ``paths.settings_path()``); never raises, never blocks.

    Returns the defaults for a missing, unreadable or corrupt file (a corrupt one, or anything that is
    not a regular file, is moved aside to ``.corrupt``), and a best-effort migration (known, valid
    fields kept) for a file of another version.
    """
    from models.safeio import InputFileError, read_regular

    path = paths.settings_path() if path is None else Path(path)
    if not path.exists() and not path.is_symlink():
        log.info("%s: no settings file yet; using defaults", path)
        return Settings()
    try:
        blob = read_regular(path, MAX_SETTINGS_BYTES)
    except InputFileError as exc:
        if exc.reason == "permission denied":
            log.warning("%s; using defaults", exc)
            return Settings()
        log.warning("%s; using defaults, moved aside as .corrupt", exc)
        _keep_corrupt(path)
        return Settings()
    try:
        data = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        log.warning("%s: corrupt settings (%s); using defaults, old file kept as .corrupt", path, reason)
        _keep_corrupt(path)
        return Settings()
    if not isinstance(data, dict):
        log.warning(
            "%s: corrupt settings (not a JSON object); using defaults, old file kept as .corrupt", path
        )
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
    atomic_write_bytes(path, text.encode("utf-8"))  # a symlinked settings.json stays a symlink
    log.debug("%s: settings saved", path)
    return path
