"""The one definition of a personal head's events, used by ``encotag tag --head`` and by the window's
**Heads ▸ Export head events…** (Qt-free).

For each class of the head except ``background``: the windows whose probability is at or above that
class's calibrated threshold (``Head.thresholds``), merged with hysteresis by
:func:`models.tagging.events.merge_events` (off at 0.7 × the threshold, gaps up to 0.25 s bridged,
events shorter than ``min_duration`` dropped). Events are labelled ``"<class> (head)"`` so they never
mix with an AudioSet label of the same name, and sorted by start time.
"""

from __future__ import annotations

import numpy as np

from models.heads.head_cv import BACKGROUND
from models.heads.heads import Head
from models.tagging.events import merge_events
from models.tagging.results import Event

HEAD_SUFFIX = " (head)"


def head_label(class_name: str) -> str:
    """The event label of a head class."""
    return f"{class_name}{HEAD_SUFFIX}"


def head_events(
    head: Head, starts: np.ndarray, ends: np.ndarray, probs: np.ndarray, min_duration: float = 0.25
) -> list[Event]:
    """Events of ``head``'s classes (module docstring). ``probs`` (N, K) float32 are the head's
    probabilities of the windows ``starts`` / ``ends`` (N,) s."""
    probs = np.asarray(probs, np.float32)
    events: list[Event] = []
    if len(probs) == 0:
        return events
    for j, name in enumerate(head.classes):
        if name == BACKGROUND:
            continue
        on = float(head.thresholds[j]) if len(head.thresholds) else 0.5
        events += merge_events(
            starts, ends, probs[:, j : j + 1], [head_label(name)], on=on, min_duration=min_duration
        )
    return sorted(events, key=lambda e: (e.start, e.label))
