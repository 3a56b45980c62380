"""Personal heads: small classifiers on frozen Encotag embeddings, saved as safetensors + a JSON card.

A head maps scene embeddings ``(N, D)`` float32 (the pack's embedding layout) to class probabilities
``(N, K)`` float32 (softmax over the head's classes, which may include a background class).
Training standardises the embeddings and fits an L2-regularised multinomial logistic regression
(the default; C chosen by stratified k-fold cross-validation from a small grid, as in the reference
linear probe) or a one-hidden-layer MLP. Everything here is Qt-free; torch is used only for fitting.

File format (one ``.safetensors`` file): tensors ``mean``, ``scale``, ``thresholds`` and the model's
parameters (``w``, ``b`` for logreg; ``w1``, ``b1``, ``w2``, ``b2`` for the MLP); the safetensors
header metadata holds ``card`` (JSON, see :class:`HeadCard`) whose ``weights_sha256`` covers every tensor
and (format 2) every other card field.
Nothing is ever unpickled. Files are read and written by :mod:`models.heads.head_file`
(``save_head``, ``read_card``, ``load_head``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.heads.head_cv import BACKGROUND as BACKGROUND  # the name the app imports from here
from models.heads.head_cv import (
    Calibration,
    ClassFigures,
    choose_thresholds,
    class_figures,
    grouped_folds,
)
from models.heads.head_fit import fit, predict_raw, standardise, stratified_folds
from models.tagging.results import Progress

FORMAT_VERSION = 2  # 2: the checksum covers the card too (1 still read)
C_GRID = (0.01, 0.1, 1.0, 10.0)

ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


class HeadError(Exception):
    """A head file that cannot be used; the message is one line naming the file and the reason."""


class TrainingCancelledError(Exception):
    """Training was cancelled by the user."""


def layout_hash(layout: Sequence[tuple[str, int]] | Sequence[Sequence[Any]]) -> str:
    """Short hash of an embedding layout ((name, size), …) so heads can be matched to packs."""
    text = json.dumps([[str(n), int(s)] for n, s in layout])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HeadCard:
    """What a head says about itself (stored as JSON inside the file)."""

    name: str
    classes: tuple[str, ...]
    kind: str
    example_counts: tuple[int, ...]
    cv_accuracy: float
    c: float
    pack_id: str
    layout_hash: str
    embedding_size: int
    created: str
    format_version: int = FORMAT_VERSION
    weights_sha256: str = ""
    false_alarm_rate: float | None = None
    notes: tuple[str, ...] = ()
    # added after format 2 (head_file.LATE_FIELDS: out of the checksum while at their defaults):
    cv_grouping: str = ""  # "recording": folds never split a recording; "window" / "": windows of one file
    calibration: str = ""  # how the thresholds were chosen (Calibration.to_text())
    class_precision: tuple[float, ...] = ()  # per class at its threshold, cross-validated (-1: n/a)
    class_recall: tuple[float, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> HeadCard:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("card is not a JSON object")
        version = data.get("format_version")
        if version not in (1, FORMAT_VERSION) or isinstance(version, bool):
            raise ValueError(f"unsupported head format version {version!r}")
        for key in ("classes", "example_counts", "notes", "class_precision", "class_recall"):
            if not isinstance(data.get(key, ()), list | tuple):
                raise ValueError(f"card field {key} must be a list")
            data[key] = tuple(data.get(key, ()))
        return HeadCard(**data)


@dataclass(frozen=True)
class HeadReport:
    """Training outcome shown to the user."""

    cv_accuracy: float
    c: float
    confusion: np.ndarray  # (K, K) int, rows = true class, columns = predicted (cross-validated)
    classes: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    grouping: str = "window"  # "recording" when the folds kept every recording on one side
    per_class: tuple[ClassFigures, ...] = ()  # thresholds with cross-validated precision / recall


@dataclass(frozen=True)
class Head:
    """A trained head. ``params`` holds float32 arrays; ``thresholds`` (K,) per-class decision levels."""

    card: HeadCard
    mean: np.ndarray
    scale: np.ndarray
    params: dict[str, np.ndarray] = field(hash=False, compare=False)
    thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def classes(self) -> tuple[str, ...]:
        return self.card.classes

    def logits(self, emb: np.ndarray) -> np.ndarray:
        """``emb`` (N, D) or (D,) float → logits (N, K) float32."""
        x = (np.atleast_2d(np.asarray(emb, np.float32)) - self.mean) / self.scale
        if self.card.kind == "mlp":
            h = np.maximum(x @ self.params["w1"].T + self.params["b1"], 0.0)
            return (h @ self.params["w2"].T + self.params["b2"]).astype(np.float32)
        return (x @ self.params["w"].T + self.params["b"]).astype(np.float32)

    def predict(self, emb: np.ndarray) -> np.ndarray:
        """``emb`` (N, D) → softmax probabilities (N, K) float32."""
        z = self.logits(emb)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def detections(self, probs: np.ndarray) -> np.ndarray:
        """Boolean (N, K): probability at or above each class's calibrated threshold."""
        return np.atleast_2d(probs) >= self.thresholds


def _warnings(classes: Sequence[str], counts: np.ndarray) -> tuple[str, ...]:
    out = []
    for name, n in zip(classes, counts, strict=True):
        if n < 5:
            out.append(f"class '{name}' has only {n} example(s); add at least 5")
    if counts.min() > 0 and counts.max() / counts.min() > 5:
        out.append(f"classes are imbalanced ({int(counts.min())} to {int(counts.max())} examples)")
    return tuple(out)


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    classes: Sequence[str],
    *,
    name: str = "head",
    kind: str = "logreg",
    pack_id: str = "",
    layout: Sequence[tuple[str, int]] = (),
    c_grid: Sequence[float] = C_GRID,
    n_folds: int = 5,
    false_alarm_rate: float = 0.01,
    groups: np.ndarray | Sequence[int] | None = None,
    calibration: Calibration | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    seed: int = 0,
) -> tuple[Head, HeadReport]:
    """Fit a head on embeddings ``x`` (N, D) float32 with labels ``y`` (N,) in ``range(len(classes))``.

    C is chosen by ``n_folds``-fold cross-validation on the standardised training data: with ``groups``
    (N,) (one id per recording, ``models.heads.head_cv.source_groups``) the folds never split a
    recording, so windows of one file are never on both sides; without, folds are stratified over
    windows (fewer folds when a class has fewer examples). The reported accuracy, confusion table and
    per-class precision / recall are the cross-validated ones at the chosen C. Thresholds follow
    ``calibration`` (default: at most ``false_alarm_rate`` of the background examples fire a class).
    Raises :class:`TrainingCancelledError` if ``cancel()`` turns true, ``ValueError`` for unusable data.
    """
    if kind not in ("logreg", "mlp"):
        raise ValueError(f"unknown head kind {kind!r} (logreg or mlp)")
    cal = calibration or Calibration(false_alarm_rate=false_alarm_rate)
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64)
    k = len(classes)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError("need embeddings (N, D) and one label per embedding")
    if k < 2:
        raise ValueError("a head needs at least two classes (add a background class)")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinity")
    counts = np.bincount(y, minlength=k)
    if (counts == 0).any():
        empty = [classes[int(i)] for i in np.flatnonzero(counts == 0)]
        raise ValueError(f"no examples for class(es): {', '.join(empty)}")
    if groups is not None and len(groups) != len(y):
        raise ValueError(f"{len(groups)} group ids for {len(y)} examples")
    t0 = time.perf_counter()
    mean, scale = standardise(x)
    xs = (x - mean) / scale
    notes: list[str] = []
    if groups is None:
        folds = stratified_folds(y, max(2, min(n_folds, int(counts.min()))), seed)
        grouping = "window"
    else:
        folds, single = grouped_folds(y, np.asarray(groups), n_folds, seed)
        grouping = "recording"
        if single:
            names = ", ".join(f"'{classes[c]}'" for c in single)
            notes.append(
                f"{names}: examples from one recording only, cross-validated in time blocks of it "
                "(optimistic); add a second recording"
            )
    steps = len(c_grid) * len(folds) + 1
    done = 0
    grid = sorted(c_grid)
    oof = np.zeros((len(grid), len(y), k), np.float32)
    for test_idx in folds:  # C ascending inside each fold, warm-started from the previous C
        train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
        params: dict[str, np.ndarray] | None = None
        for j, c in enumerate(grid):
            if cancel is not None and cancel():
                raise TrainingCancelledError("head training cancelled")
            params = fit(xs[train_idx], y[train_idx], k, c, kind, params)
            oof[j, test_idx] = softmax(predict_raw(params, xs[test_idx], kind))
            done += 1
            if progress is not None:
                progress(Progress(done, steps, f"cross-validating C={c:g}"))
    best: tuple[float, int] | None = None
    for j in range(len(grid)):
        acc = float((oof[j].argmax(axis=1) == y).mean())
        if best is None or acc > best[0] + 1e-9:
            best = (acc, j)
    assert best is not None
    acc, jbest = best
    c, probs_cv = grid[jbest], oof[jbest]
    pred = probs_cv.argmax(axis=1)
    params = fit(xs, y, k, c, kind)
    if progress is not None:
        progress(Progress(steps, steps, "done"))
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y, pred), 1)
    thresholds, cal_warn = choose_thresholds(
        classes, y, probs_cv, softmax(predict_raw(params, xs, kind)), cal
    )
    figures = class_figures(classes, y, probs_cv, thresholds, cal.hop_s)
    card = HeadCard(
        name=name,
        classes=tuple(classes),
        kind=kind,
        example_counts=tuple(int(n) for n in counts),
        cv_accuracy=acc,
        c=float(c),
        pack_id=pack_id,
        layout_hash=layout_hash(layout) if layout else "",
        embedding_size=int(x.shape[1]),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        false_alarm_rate=cal.background_fraction() if cal.precision is None else None,
        cv_grouping=grouping,
        calibration=cal.to_text(),
        class_precision=tuple(round(f.precision, 6) for f in figures),
        class_recall=tuple(round(f.recall, 6) for f in figures),
    )
    head = Head(card=card, mean=mean, scale=scale, params=params, thresholds=thresholds)
    warnings = (*_warnings(classes, counts), *notes, *cal_warn)
    report = HeadReport(
        acc, float(c), confusion, tuple(classes), warnings, time.perf_counter() - t0, grouping, figures
    )
    return head, report
