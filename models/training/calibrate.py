"""Label-offset calibration of a distilled tagger (issue #24, "calibration").

A student distilled on a corpus rich in speech and music learns to put Speech or Music first when it is
in doubt. A constant offset added to the logit of a few labels (folded into the bias of the classifier's
last layer, :data:`HEAD_BIAS`, so packs and the app need nothing new) moves those labels down or up on
every input. It leaves each label's ranking across inputs, and so its average precision, the mAP and the
trusted labels, unchanged; it changes which label comes first, the top-5 and where a label crosses the
app's event threshold.

:func:`fit_label_offsets` chooses the offsets on a fitting set of 2-s segments (student logits against
the teacher's probabilities, ``(N, C)``): coordinate by coordinate over a grid, each offset the one that
maximises top-1 agreement with the teacher, ties going to the smallest change. With ``max_instead`` it
searches one or two offsets jointly instead: the highest top-1 agreement among the grid points whose
"label instead of another" rate (:func:`instead_rate`) is at most ``max_instead``.

Which segments it is fitted on is the caller's choice (``encotag train calibrate --fit-on``): training
segments, or held-out recordings that the evaluation does not use. A student is less often wrong on what it
trained on, so offsets fitted there do not carry over to new sound (docs/TRAINING.md, session 19); the
evaluation's own recordings never enter the fit, and ``encotag eval`` measures its effect there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

HEAD_BIAS = "net.classifier.5.bias"
DEFAULT_GRID = tuple(float(x) for x in np.round(np.arange(-3.0, 1.01, 0.1), 2))


@dataclass(frozen=True)
class OffsetFit:
    """Offsets (logit units) of ``labels`` (class indices) and the top-1 agreement and
    "label instead of another" rate on the fitting segments, before and after."""

    labels: tuple[int, ...]
    offsets: tuple[float, ...]
    n_segments: int
    top1_before: float
    top1_after: float
    instead_before: float | None
    instead_after: float | None
    max_instead: float | None = None  # the cap of a constrained fit (None: top-1 alone)


def top1_agreement(student_logits: np.ndarray, teacher_top: np.ndarray) -> float:
    """Share of rows ``(N, C)`` whose student argmax is the teacher's (``teacher_top``, ``(N,)``)."""
    return float(np.mean(student_logits.argmax(axis=1) == teacher_top)) if len(teacher_top) else 0.0


def instead_rate(student_top: np.ndarray, teacher_top: np.ndarray, labels: Sequence[int]) -> float | None:
    """Among rows whose teacher top class is none of ``labels``, the share whose student top class is one
    of them (None when there is no such row): the "Music or Speech instead of neither" rate of
    ``encotag eval`` for ``labels = (Speech, Music)``."""
    other = ~np.isin(teacher_top, labels)
    return float(np.isin(student_top[other], labels).mean()) if other.any() else None


def fit_label_offsets(
    student_logits: np.ndarray,
    teacher_probs: np.ndarray,
    labels: Sequence[int],
    grid: Sequence[float] = DEFAULT_GRID,
    rounds: int = 2,
    max_instead: float | None = None,
) -> OffsetFit:
    """Offsets for ``labels`` maximising top-1 agreement of ``student_logits + offsets`` with the teacher
    (both ``(N, C)`` float; the teacher as probabilities); ``rounds`` passes of coordinate search, or with
    ``max_instead`` (a share, 0-1) the joint search of :func:`_capped_offsets` (one or two labels)."""
    if student_logits.shape != teacher_probs.shape or student_logits.ndim != 2:
        raise ValueError(f"shapes differ or are not (N, C): {student_logits.shape} {teacher_probs.shape}")
    if not labels or len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct class indices")
    if max_instead is not None and (len(labels) > 2 or not 0.0 <= max_instead <= 1.0):
        raise ValueError("a capped fit takes one or two labels and a cap between 0 and 1")
    x = student_logits.astype(np.float32)
    t_top = teacher_probs.argmax(axis=1)
    offsets = {c: 0.0 for c in labels}
    if max_instead is not None:
        offsets = _capped_offsets(x, t_top, list(labels), grid, max_instead)
    for _ in range(rounds if max_instead is None else 0):
        for c in labels:
            rest = x.copy()
            for o, v in offsets.items():
                if o != c:
                    rest[:, o] += v
            rest[:, c] = -np.inf
            best_other, other_arg = rest.max(axis=1), rest.argmax(axis=1)
            col = x[:, c]
            scored = [
                (float(np.mean(np.where(col + v > best_other, c, other_arg) == t_top)), -abs(v), v)
                for v in grid
            ]
            offsets[c] = max(scored)[2]
    shifted = x.copy()
    for c, v in offsets.items():
        shifted[:, c] += v
    return OffsetFit(
        labels=tuple(labels),
        offsets=tuple(offsets[c] for c in labels),
        n_segments=len(x),
        top1_before=top1_agreement(x, t_top),
        top1_after=top1_agreement(shifted, t_top),
        instead_before=instead_rate(x.argmax(axis=1), t_top, labels),
        instead_after=instead_rate(shifted.argmax(axis=1), t_top, labels),
        max_instead=max_instead,
    )


def _capped_offsets(
    x: np.ndarray, t_top: np.ndarray, labels: list[int], grid: Sequence[float], cap: float
) -> dict[int, float]:
    """Every grid point of one or two offsets, jointly: the highest top-1 agreement among the points whose
    instead rate is at most ``cap`` (ties to the smallest total change); when no point reaches the cap, the
    lowest rate (then the highest agreement). Rows whose teacher top class is one of ``labels`` count in
    the agreement only; a row's top class is the best of the shifted labels and of the rest."""
    rest = x.copy()
    rest[:, labels] = -np.inf
    best_rest, rest_arg = rest.max(axis=1), rest.argmax(axis=1)
    cols = [x[:, c] for c in labels]
    other = ~np.isin(t_top, labels)
    n_other = max(int(other.sum()), 1)
    pts = [(v,) for v in grid] if len(labels) == 1 else [(a, b) for a in grid for b in grid]
    best: tuple[float, ...] | None = None
    for pt in pts:
        score = np.stack([best_rest] + [col + v for col, v in zip(cols, pt, strict=True)])
        which = score.argmax(axis=0)  # 0: the rest, i: labels[i - 1]
        top = np.where(which == 0, rest_arg, np.asarray(labels)[np.maximum(which - 1, 0)])
        rate = float(np.sum(other & (which > 0))) / n_other
        key = (rate <= cap, -rate if rate > cap else 0.0, float(np.mean(top == t_top)), -sum(map(abs, pt)))
        if best is None or key > best[:4]:
            best = (*key, *pt)
    assert best is not None
    return dict(zip(labels, (float(v) for v in best[4:]), strict=True))


def apply_offsets(state: dict[str, Tensor], fit: OffsetFit) -> dict[str, Tensor]:
    """A copy of a tagger state dict with ``fit``'s offsets added to :data:`HEAD_BIAS`."""
    if HEAD_BIAS not in state:
        raise ValueError(f"not a tagger state dict: no {HEAD_BIAS}")
    bias = state[HEAD_BIAS].detach().clone()
    if max(fit.labels) >= bias.shape[0]:
        raise ValueError(f"label {max(fit.labels)} outside the {bias.shape[0]} classes")
    for c, v in zip(fit.labels, fit.offsets, strict=True):
        bias[c] += v
    return {**state, HEAD_BIAS: bias}
