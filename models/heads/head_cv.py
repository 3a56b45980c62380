"""Cross-validation by recording and per-class threshold calibration of personal heads (Qt-free, numpy).

- :func:`source_groups`: one group per recording. Windows of one file overlap in time, so a head's
  accuracy is estimated with folds that keep every recording on one side (:func:`grouped_folds`); the
  windows of a span of a file (``"path 2.00-4.00 s"``) belong to that file's group, so a correction
  made on a file never tests the head on windows it was trained on.
- :class:`Calibration`: how the per-class thresholds are chosen — a fraction of background windows
  (``false_alarm_rate``), false alarms per hour of background audio (``per_hour``, needs the hop), or a
  target precision on held-out (cross-validated) examples (``precision``).
- :func:`choose_thresholds` and :func:`class_figures`: the thresholds, and the precision / recall per
  class they give on the cross-validated (held-out) probabilities.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BACKGROUND = "background"
_SPAN = re.compile(r"^(?P<src>.+) -?\d+(?:\.\d+)?--?\d+(?:\.\d+)? s$")
# sources that do not name one recording (older sets): their rows are grouped by contiguous runs
_AMBIGUOUS = {"", "mic", "recording", "span", "live"}


def recording_of(source: str) -> str:
    """The recording an example came from: the file of a file span (``"a.wav 1.00-2.00 s"`` → ``a.wav``);
    any other source (a file, a live span, a dated microphone recording) is its own recording."""
    m = _SPAN.match(source)
    if m and not m["src"].startswith("live"):
        return m["src"]
    return source


def source_groups(sources: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """Group id (N,) int64 per example: examples of one recording share one. Sources that name no
    recording (``""``, ``"mic"`` of older sets) are grouped by runs of consecutive rows with the same
    source and label (one recording was added at a time)."""
    labels = np.asarray(labels)
    src = list(sources)[: len(labels)] + [""] * max(0, len(labels) - len(sources))
    ids: dict[object, int] = {}
    out = np.zeros(len(labels), np.int64)
    run = 0
    for i, s in enumerate(src):
        if s in _AMBIGUOUS:
            if i and (src[i - 1] != s or labels[i - 1] != labels[i]):
                run += 1
            key: object = ("run", s, run)
        else:
            key = recording_of(s)
        out[i] = ids.setdefault(key, len(ids))
    return out


def _majority(y: np.ndarray, g: np.ndarray, k: int) -> np.ndarray:
    return np.array([np.bincount(y[g == j], minlength=k).argmax() for j in range(int(g.max()) + 1)])


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int = 0
) -> tuple[list[np.ndarray], list[int]]:
    """Folds that never split a group: ``(test-index arrays, classes cut into time blocks)``.

    A group counts for its majority class; the groups of each class are dealt to the folds largest
    first, each to the fold holding the fewest rows of that class, so every fold gets a group of every
    class. The number of folds is the smallest number of groups of a class (2 to ``n_folds``). A class
    with only one recording cannot be held out by recording: its rows are cut into contiguous blocks
    (row order is time order within a recording) and its index is returned in the second list.
    """
    y = np.asarray(y, np.int64)
    g = np.unique(np.asarray(groups), return_inverse=True)[1].astype(np.int64).ravel()
    k = int(y.max()) + 1
    major = _majority(y, g, k)
    present = np.flatnonzero(np.bincount(y, minlength=k))
    single = [int(c) for c in present if np.sum(major == c) < 2]
    if single:
        row_class = major[g]
        g = g.copy()
        nxt = int(g.max()) + 1
        for c in single:
            rows = np.flatnonzero(row_class == c)
            for block in np.array_split(rows, max(1, min(n_folds, len(rows)))):
                g[block] = nxt
                nxt += 1
        g = np.unique(g, return_inverse=True)[1].astype(np.int64).ravel()
        major = _majority(y, g, k)
    n = max(2, min(n_folds, int(min(np.sum(major == c) for c in present))))
    rng = np.random.default_rng(seed)
    sizes = np.bincount(g)
    fold_of = np.zeros(len(sizes), np.int64)
    for cls in present:
        ids = np.flatnonzero(major == cls)
        rng.shuffle(ids)
        ids = ids[np.argsort(-sizes[ids], kind="stable")]
        load = np.zeros(n, np.int64)
        for j in ids:
            f = int(np.argmin(load))
            fold_of[j] = f
            load[f] += sizes[j]
    folds = [np.flatnonzero(fold_of[g] == f) for f in range(n)]
    return [f for f in folds if len(f)], single


@dataclass(frozen=True)
class Calibration:
    """How per-class thresholds are chosen (thresholds are never below 0.5).

    Without ``precision``: with a ``background`` class, each other class fires on at most
    ``false_alarm_rate`` of the background windows — or, with ``per_hour``, on at most that many
    windows per hour of background audio at hop ``hop_s`` — both on the training examples and in
    cross-validation. With ``precision``: each class's threshold is the lowest one whose precision on
    the cross-validated (held-out) probabilities reaches it.
    """

    false_alarm_rate: float = 0.01
    per_hour: float | None = None
    hop_s: float | None = None
    precision: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.false_alarm_rate <= 1.0:
            raise ValueError("false-alarm rate must be in [0, 1]")
        if self.per_hour is not None and (self.per_hour < 0 or not self.hop_s or self.hop_s <= 0):
            raise ValueError("false alarms per hour need a rate >= 0 and the hop in seconds")
        if self.precision is not None and not 0.0 < self.precision <= 1.0:
            raise ValueError("target precision must be in (0, 1]")

    def background_fraction(self) -> float:
        """The fraction of background windows allowed to fire a class."""
        if self.per_hour is not None and self.hop_s:
            return min(1.0, self.per_hour * self.hop_s / 3600.0)
        return self.false_alarm_rate

    def to_text(self) -> str:
        """The card's form (``far=0.01``, ``per_hour=2;hop=0.25``, ``precision=0.9``)."""
        if self.precision is not None:
            return f"precision={self.precision:g}"
        if self.per_hour is not None:
            return f"per_hour={self.per_hour:g};hop={self.hop_s:g}"
        return f"far={self.false_alarm_rate:g}"

    @staticmethod
    def from_text(text: str, default_rate: float | None = None) -> Calibration:
        """The calibration a card records (``to_text``); ``default_rate`` for cards that record none."""
        try:
            f = {k: float(v) for k, _, v in (p.partition("=") for p in text.split(";") if p)}
            if "precision" in f:
                return Calibration(precision=f["precision"])
            if "per_hour" in f:
                return Calibration(per_hour=f["per_hour"], hop_s=f.get("hop"))
            if "far" in f:
                return Calibration(false_alarm_rate=f["far"])
        except ValueError:
            pass
        return Calibration(false_alarm_rate=0.01 if default_rate is None else default_rate)

    def describe(self) -> str:
        if self.precision is not None:
            return f"precision {self.precision:g} on held-out examples"
        if self.per_hour is not None:
            return f"{self.per_hour:g} false alarms per hour of background (hop {self.hop_s:g} s)"
        return f"false-alarm rate {self.false_alarm_rate:g} of background windows"


@dataclass(frozen=True)
class ClassFigures:
    """One class at its threshold, on the cross-validated probabilities (-1: not defined)."""

    name: str
    threshold: float
    precision: float
    recall: float
    false_alarms_per_hour: float | None = None  # on the background examples (needs the hop)


def _above_top(values: np.ndarray, allowed: int) -> float:
    """The lowest float32 level at which at most ``allowed`` of ``values`` are >= it."""
    if allowed >= len(values):
        return 0.0
    v = np.sort(np.asarray(values, np.float32))[::-1][allowed]
    return float(np.nextafter(np.float32(v), np.float32(2.0)))


def _precision_threshold(p: np.ndarray, hit: np.ndarray, target: float) -> tuple[float, bool]:
    """The lowest level >= 0.5 at which the rows >= it reach ``target`` precision; (level, reached)."""
    order = np.argsort(-p, kind="stable")
    ps, tp = p[order], np.cumsum(hit[order])
    last = np.flatnonzero(np.append(ps[1:] != ps[:-1], True))  # the end of each block of equal values
    prec = tp[last] / (last + 1)
    ok = (ps[last] >= 0.5) & (prec >= target)
    if ok.any():
        return float(ps[last[np.flatnonzero(ok)[-1]]]), True
    cand = np.flatnonzero(ps[last] >= 0.5)
    if not len(cand):
        return 0.5, False
    return float(ps[last[cand[int(np.argmax(prec[cand]))]]]), False


def choose_thresholds(
    classes: Sequence[str], y: np.ndarray, oof: np.ndarray, fitted: np.ndarray, cal: Calibration
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-class thresholds (K,) float32 and warnings, from the cross-validated probabilities ``oof``
    (N, K) and those of the head fitted on all examples ``fitted`` (N, K); see :class:`Calibration`."""
    k = len(classes)
    thr = np.full(k, 0.5, np.float32)
    warnings: list[str] = []
    bg = classes.index(BACKGROUND) if BACKGROUND in classes else None
    y = np.asarray(y)
    for j in range(k):
        if j == bg:
            continue
        if cal.precision is not None:
            t, reached = _precision_threshold(oof[:, j], y == j, cal.precision)
            if not reached:
                warnings.append(f"class '{classes[j]}' does not reach precision {cal.precision:g}")
            thr[j] = max(0.5, t)
        elif bg is not None:
            rows = y == bg
            allowed = int(np.floor(cal.background_fraction() * rows.sum() + 1e-9))
            thr[j] = max(0.5, _above_top(oof[rows, j], allowed), _above_top(fitted[rows, j], allowed))
    return np.minimum(thr, 1.0).astype(np.float32), tuple(warnings)


def class_figures(
    classes: Sequence[str], y: np.ndarray, oof: np.ndarray, thresholds: np.ndarray, hop_s: float | None
) -> tuple[ClassFigures, ...]:
    """Precision, recall (and false alarms per hour of background, with ``hop_s``) of each class at
    ``thresholds`` on the cross-validated probabilities ``oof`` (N, K)."""
    y = np.asarray(y)
    bg = classes.index(BACKGROUND) if BACKGROUND in classes else None
    out = []
    for j, name in enumerate(classes):
        t = float(thresholds[j])
        if j == bg:
            out.append(ClassFigures(name, t, -1.0, -1.0))
            continue
        fired = oof[:, j] >= t
        tp = int(np.sum(fired & (y == j)))
        prec = tp / int(fired.sum()) if fired.any() else -1.0
        rec = tp / int(np.sum(y == j)) if np.any(y == j) else -1.0
        fah = None
        if bg is not None and hop_s and np.any(y == bg):
            fah = float(np.mean(fired[y == bg])) * 3600.0 / hop_s
        out.append(ClassFigures(name, t, float(prec), float(rec), fah))
    return tuple(out)
