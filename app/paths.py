"""Per-user folders for Encotag (config, data, cache, logs), via platformdirs.

Nothing here touches the disk at import time; each function computes a path and only the
``ensure=True`` variants create the folder. Setting the environment variable ``ENCOTAG_HOME`` to a
folder redirects every path below it (``config/``, ``data/``, ``cache/``, ``logs/``), which tests and
portable installs use to keep the real user folders untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "encotag"
ENV_HOME = "ENCOTAG_HOME"


def _dirs() -> PlatformDirs:
    return PlatformDirs(appname=APP_NAME, appauthor=False)


def _home_override() -> Path | None:
    value = os.environ.get(ENV_HOME, "").strip()
    return Path(value).expanduser() if value else None


def _resolve(kind: str, ensure: bool) -> Path:
    home = _home_override()
    if home is not None:
        path = home / kind
    else:
        dirs = _dirs()
        path = Path(
            {
                "config": dirs.user_config_dir,
                "data": dirs.user_data_dir,
                "cache": dirs.user_cache_dir,
                "logs": dirs.user_log_dir,
            }[kind]
        )
    if ensure:
        path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir(ensure: bool = False) -> Path:
    """Folder for ``settings.json`` (e.g. ``~/.config/encotag``)."""
    return _resolve("config", ensure)


def data_dir(ensure: bool = False) -> Path:
    """Folder for user data: personal heads, fetched packs and downloads, the official codec
    (e.g. ``~/.local/share/encotag``)."""
    return _resolve("data", ensure)


def cache_dir(ensure: bool = False) -> Path:
    """Folder for re-creatable files: evaluation caches (``~/.cache/encotag``)."""
    return _resolve("cache", ensure)


def log_dir(ensure: bool = False) -> Path:
    """Folder for log files (e.g. ``~/.local/state/encotag/log``)."""
    return _resolve("logs", ensure)


def heads_dir(ensure: bool = False) -> Path:
    """Folder holding the user's personal heads (``<data>/heads``)."""
    path = data_dir() / "heads"
    if ensure:
        path.mkdir(parents=True, exist_ok=True)
    return path


def settings_path() -> Path:
    """The settings file (``<config>/settings.json``); the folder is created on save, not here."""
    return config_dir() / "settings.json"


def packs_dir(ensure: bool = False) -> Path:
    """Folder of the user's installed model packs (``<data>/packs``): fetched packs are built here."""
    path = data_dir() / "packs"
    if ensure:
        path.mkdir(parents=True, exist_ok=True)
    return path


def downloads_dir(ensure: bool = False) -> Path:
    """Folder of verified downloads that packs are built from (``<data>/downloads``)."""
    path = data_dir() / "downloads"
    if ensure:
        path.mkdir(parents=True, exist_ok=True)
    return path
