"""Label-offset calibration of a distilled tagger (issue #24, "calibration").

A student distilled on a corpus rich in speech and music learns to put Speech or Music first when it is
in doubt. A constant offset added to the logit of a few labels (folded into the bias of the classifier's
last layer, :data:`HEAD_BIAS`, so packs and the app need nothing new) moves those labels down or up on
every input. It leaves each label's ranking across inputs, and so its average precision, the mAP and the
trusted labels, unchanged; it changes which label comes first, the top-5 and where a label crosses the
app's event threshold.

:func:`fit_label_offsets` chooses the offsets on *training* segments only (student logits against the
teacher's probabilities, 2-s segments ``(N, C)``): coordinate by coordinate over a grid, each offset
the one that maximises top-1 agreement with the teacher, ties going to the smallest change. Held-out
data never sees the fit; ``encotag eval`` measures its effect there.
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
) -> OffsetFit:
    """Offsets for ``labels`` maximising top-1 agreement of ``student_logits + offsets`` with the teacher
    (both ``(N, C)`` float; the teacher as probabilities); ``rounds`` passes of coordinate search."""
    if student_logits.shape != teacher_probs.shape or student_logits.ndim != 2:
        raise ValueError(f"shapes differ or are not (N, C): {student_logits.shape} {teacher_probs.shape}")
    if not labels or len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct class indices")
    x = student_logits.astype(np.float32)
    t_top = teacher_probs.argmax(axis=1)
    offsets = {c: 0.0 for c in labels}
    for _ in range(rounds):
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
    )


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
