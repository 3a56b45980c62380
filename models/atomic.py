"""Atomic file writes (kept for the existing imports): see :mod:`models.safeio`.

A regular target is replaced atomically (temp file in its folder, fsync, ``os.replace``), so a crash or a
full disk mid-write leaves the previous file intact; a symlink is followed, a character device or FIFO is
written directly and never replaced, and the new file gets the user's umask mode.
"""

from __future__ import annotations

import os
from pathlib import Path

from models.safeio import atomic_write_bytes, atomic_write_with

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_with"]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))
