"""Logging for the ``encotag`` command: a rotating file in the user log folder plus stderr.

Library code only calls ``logging.getLogger(__name__)``; this module is the one place that decides where
records go. The file gets INFO and above (DEBUG with ``-v``), stderr gets WARNING and above (DEBUG with
``-v``). If the log folder cannot be written the file handler is skipped with one warning on stderr:
logging never stops the program.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from app import __version__, paths

LOG_FILE = "encotag.log"
MAX_BYTES = 2_000_000
BACKUPS = 3
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(threadName)s %(name)s: %(message)s"
STDERR_FORMAT = "encotag: %(levelname)s: %(message)s"
STDERR_FORMAT_VERBOSE = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Chatty third-party loggers that are kept at WARNING even with -v.
QUIET_LOGGERS = ("PIL", "matplotlib", "urllib3", "filelock", "fsspec", "httpx", "httpcore", "numba")

_MARK = "_encotag_handler"


def _remove_own_handlers(root: logging.Logger) -> None:
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()


def _file_handler(verbose: bool) -> logging.FileHandler | None:
    try:
        folder = paths.log_dir(ensure=True)
        handler = logging.handlers.RotatingFileHandler(
            folder / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        print(f"encotag: warning: cannot write the log file ({exc}); logging to stderr only", file=sys.stderr)
        return None
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    return handler


def setup_logging(verbose: bool = False, command: str | None = None) -> Path | None:
    """Route log records to the rotating log file and stderr; safe to call more than once.

    Args:
        verbose: DEBUG on stderr and in the file (``-v``); otherwise WARNING on stderr, INFO in the file.
        command: the sub-command being run, written into the start-up record.

    Returns:
        The log file path, or ``None`` when only stderr is used.
    """
    root = logging.getLogger()
    _remove_own_handlers(root)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)

    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.DEBUG if verbose else logging.WARNING)
    stderr.setFormatter(logging.Formatter(STDERR_FORMAT_VERBOSE if verbose else STDERR_FORMAT))
    setattr(stderr, _MARK, True)
    root.addHandler(stderr)

    log_file: Path | None = None
    handler = _file_handler(verbose)
    if handler is not None:
        setattr(handler, _MARK, True)
        root.addHandler(handler)
        log_file = Path(handler.baseFilename)

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    logging.getLogger(__name__).info(
        "encotag %s starting (command=%s, python %s, frozen=%s)",
        __version__,
        command or "-",
        sys.version.split()[0],
        bool(getattr(sys, "frozen", False)),
    )
    return log_file
