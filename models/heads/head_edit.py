"""Changing a trained head through its examples (Qt-free): corrections, merging, review, retraining.

- :func:`span_rows`: the analysis windows whose centres fall in a time span (a span of a file's
  timeline or of the live history).
- :func:`add_rows`: examples added to a class (created if new) with one source per row; the old
  examples of that class are kept. A correction ("that was not X") adds the span's windows to
  ``background`` (or to the class the user picks) with the span as their source.
- :func:`merge_sets`: two example sets of one pack → one set with the union of classes (same-named
  classes, ``background`` included, are combined).
- :func:`source_rows` / :func:`remove_source`: review the examples by where they came from and remove
  those of one source.
- :func:`retrain`: train a head on a set (cross-validated by recording, thresholds by the given
  calibration) and save head and examples in one file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from models.heads.head_cv import Calibration, source_groups
from models.heads.head_store import ExampleSet, HeadStore, PackStamp
from models.heads.heads import Head, HeadReport, train_head
from models.tagging.results import Progress


def span_rows(starts: np.ndarray, ends: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Indices of windows whose centre lies in [t0, t1] s; the nearest window if none does (empty if no
    windows)."""
    if len(starts) == 0:
        return np.zeros(0, np.int64)
    lo, hi = min(t0, t1), max(t0, t1)
    centres = 0.5 * (np.asarray(starts) + np.asarray(ends))
    idx = np.flatnonzero((centres >= lo) & (centres <= hi))
    if len(idx) == 0:
        idx = np.array([int(np.argmin(np.abs(centres - 0.5 * (lo + hi))))])
    return idx.astype(np.int64)


def span_source(name: str, t0: float, t1: float) -> str:
    """The source recorded for examples taken from a span: ``"<file or live> 1.00-2.50 s"``."""
    return f"{name} {t0:.2f}-{t1:.2f} s"


def padded_sources(ex: ExampleSet) -> tuple[str, ...]:
    """Per-row sources, padded with "" (older sets carry none)."""
    src = list(ex.sources)[: len(ex.label)]
    return tuple(src + [""] * (len(ex.label) - len(src)))


def add_rows(
    ex: ExampleSet, class_name: str, emb: np.ndarray, sources: str | Sequence[str], pack: PackStamp | None
) -> ExampleSet:
    """``ex`` plus rows ``emb`` (n, D) for ``class_name`` (created if new), one source per row (or one
    for all). Old examples are kept; another pack's examples are refused (``ExamplePackError``)."""
    emb = np.atleast_2d(np.asarray(emb, np.float32))
    per_row = [sources] * len(emb) if isinstance(sources, str) else list(sources)
    if len(per_row) != len(emb):
        raise ValueError(f"{len(per_row)} sources for {len(emb)} examples")
    base = replace(ex, sources=padded_sources(ex))
    out = base.add(class_name, emb, "", pack)
    return replace(out, sources=(*base.sources, *per_row))


def merge_sets(a: ExampleSet, b: ExampleSet) -> ExampleSet:
    """The examples of ``a`` and ``b`` (made by one pack) with the union of their classes."""
    if not len(b.label):
        return replace(a, classes=(*a.classes, *(c for c in b.classes if c not in a.classes)))
    a.check_pack(b.pack)  # ExamplePackError (a ValueError) for examples of another pack
    out = replace(a, sources=padded_sources(a))
    src_b = padded_sources(b)
    for j, name in enumerate(b.classes):
        rows = np.flatnonzero(b.label == j)
        out = add_rows(out, name, b.emb[rows], [src_b[i] for i in rows], b.pack) if len(rows) else out
    missing = tuple(c for c in b.classes if c not in out.classes)
    return replace(out, classes=(*out.classes, *missing))


def source_rows(ex: ExampleSet) -> list[tuple[str, str, int]]:
    """(class, source, number of examples) for every source of every class, in the order added."""
    counts: dict[tuple[str, str], int] = {}
    for lab, src in zip(ex.label, padded_sources(ex), strict=True):
        key = (ex.classes[int(lab)], src)
        counts[key] = counts.get(key, 0) + 1
    return [(c, s, n) for (c, s), n in counts.items()]


def remove_source(ex: ExampleSet, class_name: str, source: str) -> ExampleSet:
    """``ex`` without the examples of ``class_name`` that came from ``source`` (the class stays)."""
    if class_name not in ex.classes:
        raise ValueError(f"no class '{class_name}'")
    src = padded_sources(ex)
    drop = (ex.label == ex.classes.index(class_name)) & np.array([s == source for s in src], bool)
    if not drop.any():
        raise ValueError(f"no examples of '{class_name}' from {source!r}")
    keep = ~drop
    return replace(
        ex,
        emb=ex.emb[keep],
        label=ex.label[keep],
        sources=tuple(s for s, k in zip(src, keep, strict=True) if k),
    )


def retrain(
    store: HeadStore,
    name: str,
    examples: ExampleSet,
    *,
    kind: str = "logreg",
    calibration: Calibration | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[Head, HeadReport, Path]:
    """Train head ``name`` on ``examples`` (cross-validated by recording) and save head + examples in one
    file. The head records the pack that made the examples."""
    if not len(examples.label):
        raise ValueError("no examples to train on")
    if examples.pack is None:
        raise ValueError("the examples record no model pack: clear the classes and add the examples again")
    head, report = train_head(
        examples.emb,
        examples.label,
        examples.classes,
        name=name,
        kind=kind,
        pack_id=examples.pack.pack_id,
        groups=source_groups(padded_sources(examples), examples.label),
        calibration=calibration,
        progress=progress,
        cancel=cancel,
    )
    head = replace(head, card=replace(head.card, layout_hash=examples.pack.layout_hash))
    path = store.save(head, name, examples=examples)
    return head, report, path


def calibration_of(head: Head) -> Calibration:
    """The calibration a head was trained with (its card), for retraining it the same way."""
    return Calibration.from_text(head.card.calibration, head.card.false_alarm_rate)
