"""Per-window probabilities → labelled events, with hysteresis, gap merging and a minimum duration.

For each label, windows are scanned in time order: an event opens at a window whose probability is
≥ ``on`` and stays open while windows stay ≥ ``off`` (default ``0.7 · on``). The event spans from the
start of its first window to the end of its last active window; its score is the peak probability.
Events of one label closer than ``max_gap`` seconds are merged, then events shorter than
``min_duration`` seconds are dropped. NaN probabilities count as 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.tagging.results import Event

OFF_RATIO = 0.7


def _label_events(
    starts: np.ndarray, ends: np.ndarray, p: np.ndarray, on: float, off: float
) -> list[tuple[float, float, float]]:
    spans: list[tuple[float, float, float]] = []
    active = False
    s = e = peak = 0.0
    for i in range(len(p)):
        if not active:
            if p[i] >= on:
                active, s, e, peak = True, float(starts[i]), float(ends[i]), float(p[i])
        elif p[i] >= off:
            e = max(e, float(ends[i]))
            peak = max(peak, float(p[i]))
        else:
            spans.append((s, e, peak))
            active = False
    if active:
        spans.append((s, e, peak))
    return spans


def merge_events(
    starts: Sequence[float] | np.ndarray,
    ends: Sequence[float] | np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    on: float = 0.5,
    off: float | None = None,
    min_duration: float = 0.25,
    max_gap: float = 0.25,
) -> list[Event]:
    """Events from window times ``starts``/``ends`` (N,) seconds and ``probs`` (N, C) float.

    ``labels`` has C names. Returns events sorted by start (then label).
    """
    st = np.asarray(starts, dtype=np.float64).reshape(-1)
    en = np.asarray(ends, dtype=np.float64).reshape(-1)
    pr = np.asarray(probs, dtype=np.float32)  # float32 thresholds compare exactly; half the memory
    if not np.isfinite(pr).all():
        pr = np.nan_to_num(pr, nan=0.0, posinf=1.0, neginf=0.0)
    if pr.ndim == 1:
        pr = pr[:, None]
    if pr.shape[0] != len(st) or len(st) != len(en):
        raise ValueError(f"{len(st)} starts, {len(en)} ends and {pr.shape[0]} probability rows differ")
    if pr.shape[1] != len(labels):
        raise ValueError(f"{pr.shape[1]} probability columns but {len(labels)} labels")
    off_t = on * OFF_RATIO if off is None else off
    if off_t > on:
        raise ValueError(f"off threshold {off_t} is above the on threshold {on}")
    if len(st) > 1 and not (np.diff(st) >= 0).all():  # windows usually come sorted: no copy then
        order = np.argsort(st, kind="stable")
        st, en, pr = st[order], en[order], pr[order]
    events: list[Event] = []
    # only labels that ever reach `on` can have events
    for c in np.flatnonzero((pr >= on).any(axis=0)).tolist():
        merged: list[list[float]] = []
        for s, e, peak in _label_events(st, en, pr[:, c], on, off_t):
            if merged and s - merged[-1][1] <= max_gap:
                merged[-1][1] = max(merged[-1][1], e)
                merged[-1][2] = max(merged[-1][2], peak)
            else:
                merged.append([s, e, peak])
        events.extend(
            Event(label=str(labels[c]), start=s, end=e, score=peak)
            for s, e, peak in merged
            if e - s >= min_duration
        )
    events.sort(key=lambda ev: (ev.start, ev.label))
    return events
