"""Hysteresis event merging (models/tagging/events.py)."""

from __future__ import annotations

import numpy as np
import pytest

from models.tagging.events import merge_events

LABELS = ("Speech", "Music")


def run(p_speech: list[float], hop: float = 0.5, window: float = 0.5, **kw: float) -> list[tuple]:
    n = len(p_speech)
    starts = np.arange(n) * hop
    probs = np.stack([np.array(p_speech), np.zeros(n)], axis=1)
    events = merge_events(starts, starts + window, probs, LABELS, **kw)
    return [(e.label, e.start, e.end, round(e.score, 3)) for e in events]


@pytest.mark.parametrize(
    ("probs", "kw", "expected"),
    [
        # rises above on, stays while above off (0.7 * 0.5 = 0.35), falls below off
        ([0.1, 0.6, 0.4, 0.36, 0.2, 0.1], {}, [("Speech", 0.5, 2.0, 0.6)]),
        # never reaches on: no event, even if long above off
        ([0.45, 0.45, 0.45, 0.45], {}, []),
        # explicit off threshold equal to on: no hysteresis
        ([0.1, 0.6, 0.4, 0.6, 0.1], {"off": 0.5, "max_gap": 0.0, "min_duration": 0.0},
         [("Speech", 0.5, 1.0, 0.6), ("Speech", 1.5, 2.0, 0.6)]),
        # a dip below off: two events, the 0.5 s gap exceeds the default max_gap (0.25 s)
        ([0.1, 0.6, 0.1, 0.7, 0.1], {"min_duration": 0.0},
         [("Speech", 0.5, 1.0, 0.6), ("Speech", 1.5, 2.0, 0.7)]),
        # ... and merged with a larger max_gap
        ([0.1, 0.6, 0.1, 0.7, 0.1], {"max_gap": 0.5}, [("Speech", 0.5, 2.0, 0.7)]),
        # minimum duration drops short blips
        ([0.9, 0.1, 0.1, 0.8, 0.8, 0.8, 0.1], {"min_duration": 1.0}, [("Speech", 1.5, 3.0, 0.8)]),
        # active until the end of the input
        ([0.1, 0.1, 0.9, 0.9], {}, [("Speech", 1.0, 2.0, 0.9)]),
        # NaN counts as 0
        ([0.9, float("nan"), 0.9], {"max_gap": 0.0}, [("Speech", 0.0, 0.5, 0.9), ("Speech", 1.0, 1.5, 0.9)]),
    ],
)  # fmt: skip
def test_hysteresis_table(probs: list[float], kw: dict, expected: list[tuple]) -> None:
    assert run(probs, **kw) == expected


def test_overlapping_windows_merge_into_one_event() -> None:
    # 1 s windows every 0.25 s; active windows 4..7 and 9..10 overlap each other → one event
    p = [0.0] * 4 + [0.8] * 4 + [0.1] + [0.8] * 2 + [0.0] * 4
    assert run(p, hop=0.25, window=1.0) == [("Speech", 1.0, 3.5, 0.8)]


def test_events_sorted_by_start_across_labels() -> None:
    starts = np.arange(6) * 1.0
    probs = np.array([[0, 0.9], [0, 0.9], [0.9, 0], [0.9, 0], [0, 0], [0, 0.9]], dtype=np.float32)
    events = merge_events(starts, starts + 1.0, probs, LABELS)
    assert [(e.label, e.start, e.end) for e in events] == [
        ("Music", 0.0, 2.0),
        ("Speech", 2.0, 4.0),
        ("Music", 5.0, 6.0),
    ]
    assert all(isinstance(e.score, float) for e in events)


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        merge_events([0.0], [1.0], np.zeros((2, 2)), LABELS)
    with pytest.raises(ValueError):
        merge_events([0.0], [1.0], np.zeros((1, 3)), LABELS)
    with pytest.raises(ValueError):
        merge_events([0.0], [1.0], np.zeros((1, 2)), LABELS, on=0.3, off=0.5)
    assert merge_events([], [], np.zeros((0, 2)), LABELS) == []
