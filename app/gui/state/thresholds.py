"""Per-tag thresholds (Qt-free): each pinned tag may carry its own threshold, the others use the global one.

The same thresholds decide the live event detection (:func:`open_events`: the tags heard now), the
exported events (:func:`events_with_thresholds`) and the dashed line drawn per curve. They are kept in
the settings as ``Settings.tag_thresholds`` (label → threshold).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from models.tagging.events import merge_events
from models.tagging.results import Event

MIN_EVENT_S = 0.25  # events shorter than this are dropped (as in the window's export)


def threshold_array(labels: Sequence[str], default: float, per_tag: Mapping[str, float]) -> np.ndarray:
    """``(C,)`` float32 thresholds of ``labels``: the tag's own one, else ``default``."""
    out = np.full(len(labels), float(default), np.float32)
    if per_tag:
        for i, name in enumerate(labels):
            if name in per_tag:
                out[i] = float(per_tag[name])
    return out


def index_thresholds(labels: Sequence[str], per_tag: Mapping[str, float]) -> dict[int, float]:
    """``{class index: threshold}`` of the tags that carry their own threshold (for the plot lines)."""
    index = {name: i for i, name in enumerate(labels)}
    return {index[name]: float(t) for name, t in per_tag.items() if name in index}


def events_with_thresholds(
    starts: np.ndarray,
    ends: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    default: float,
    per_tag: Mapping[str, float],
    min_duration: float = MIN_EVENT_S,
) -> list[Event]:
    """Hysteresis events (``models.tagging.events.merge_events``) where each label opens at its own
    threshold (closing at 0.7 × it); labels without one use ``default``. Sorted by start, then label."""
    if len(starts) == 0 or not len(labels):
        return []
    thr = threshold_array(labels, default, per_tag)
    events: list[Event] = []
    for value in np.unique(thr):
        cols = np.flatnonzero(thr == value)
        events += merge_events(
            starts,
            ends,
            probs[:, cols],
            [labels[int(i)] for i in cols],
            on=float(value),
            min_duration=min_duration,
        )
    events.sort(key=lambda e: (e.start, e.label))
    return events


def open_events(
    starts: np.ndarray,
    ends: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    default: float,
    per_tag: Mapping[str, float],
    span_s: float = 30.0,
) -> list[Event]:
    """The live detection: events of the last ``span_s`` seconds still open at the newest window
    (strongest first). Short events count too: a tag heard now has not lasted long yet."""
    if len(ends) == 0:
        return []
    now = float(ends[-1])
    rows = np.flatnonzero(np.asarray(ends) >= now - span_s)
    events = events_with_thresholds(
        np.asarray(starts)[rows],
        np.asarray(ends)[rows],
        np.asarray(probs)[rows],
        labels,
        default,
        per_tag,
        0.0,
    )
    return sorted((e for e in events if e.end >= now - 1e-9), key=lambda e: -e.score)


def pinned_thresholds(tag_thresholds: Sequence[tuple[str, float]], pinned: Sequence[str]) -> dict[str, float]:
    """The per-tag thresholds in force: those of the pinned tags (an unpinned tag's is kept, unused)."""
    keep = set(pinned)
    return {name: float(t) for name, t in tag_thresholds if name in keep}
