"""Result types that cross thread and module boundaries (frozen dataclasses of numpy arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowResult:
    """Tags and embedding of one analysis window.

    start, end: seconds from the start of the file or stream.
    probs: float32 (n_labels,) sigmoid probabilities (527 for AudioSet packs).
    embedding: float32 (D,) scene embedding of the window (layout in the pack manifest).
    head_probs: float32 (n_head_classes,) from a personal head, or None.
    """

    start: float
    end: float
    probs: np.ndarray
    embedding: np.ndarray
    head_probs: np.ndarray | None = None


@dataclass(frozen=True)
class Event:
    """A merged event: one label active from start to end (seconds)."""

    label: str
    start: float
    end: float
    score: float  # peak probability inside the event


@dataclass(frozen=True)
class Progress:
    """Progress of a long job: done out of total units (total 0 = unknown), with a message."""

    done: int
    total: int
    message: str = ""
