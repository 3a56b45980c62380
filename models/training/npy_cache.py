"""One ``.npy`` file per corpus clip: the per-clip caches of the teacher pass and of the codec codes.

Writes go to a temp name beside the target and are ``os.replace``-d in, so a reader sees a whole file or
none; no fsync, since a cache lost in a crash is simply computed again. A file that is missing, damaged,
or of another shape or dtype reads as ``None`` (a miss).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_array(path: Path, x: np.ndarray) -> None:
    """Write ``x`` to ``path`` (``.npy``), creating its folder; atomic by rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, path)


def load_array(path: Path, shape: tuple[int, ...], dtype: np.dtype | type | None = None) -> np.ndarray | None:
    """The array in ``path`` if it has ``shape`` (and ``dtype`` when given), else ``None``."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if x.shape != shape or (dtype is not None and x.dtype != np.dtype(dtype)):
        return None
    return x
