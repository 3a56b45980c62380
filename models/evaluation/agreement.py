"""Teacher agreement of a tagging pack: how well its 527 outputs reproduce the teacher's tags.

Held-out clips: the corpus ``val`` split (``<corpus>/manifest.csv``) plus the ``test`` splits of the
shared probe sets. Teacher labels: teacher probability ≥ 0.5. Per source and overall:

- mAP: mean over classes with at least ``min_positives`` (5) teacher positives of sklearn's
  ``average_precision_score(teacher label, pack probability)``;
- top-1 agreement: fraction of clips where the pack's highest-scoring class is the teacher's;
- top-5 overlap: mean share of the teacher's five highest classes found among the pack's five highest;
- Music-or-Speech instead of neither: among clips whose teacher top class is neither Speech nor Music,
  the share where the pack's top class is one of them (the "everything is Music" failure);
- Music-or-Speech above the app's threshold: among clips where the teacher gives both Speech and Music
  less than the app's default event threshold (:data:`APP_THRESHOLD`, 0.3), the share where the pack
  gives either of them at least that (what a user sees as a false Music or Speech tag);
- per class (overall only): each scored class's AP, positives and the source holding most of them.

The **broad held-out set** is the corpus ``val`` split alone (sources ``corpus:*``): recordings held out
by recording from every corpus source (their augmented copies and event trains, sources ``*+aug`` and
``*+train``, are left out: they would count the same recording several times; so are mixtures, origin
``mixture``, whose parts are drawn across sources and may be training recordings), scored over all
classes with ≥ 5 teacher positives,
with its own per-class APs (``Agreement.broad``, ``Agreement.broad_per_class``).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.evaluation.tasks import Task

log = logging.getLogger(__name__)

THRESHOLD = 0.5
MIN_POSITIVES = 5
SPEECH, MUSIC = 0, 137  # AudioSet indices of "Speech" and "Music"
APP_THRESHOLD = 0.3  # the app's default event threshold (app.settings)
BROAD_PREFIX = "corpus:"
DERIVED_SUFFIXES = (
    "+aug",
    "+train",
)  # corpus sources derived from recordings (corpus_stretch): not scored twice
MIXTURE_ORIGIN = "mixture"  # corpus mixtures (corpus_render): their parts may be training recordings


@dataclass(frozen=True)
class AgreementScore:
    """mAP (None when no class has enough positives), top-1 rate, clips and classes scored."""

    map: float | None
    top1: float
    n_clips: int
    n_classes: int
    top5: float = 0.0
    ms_instead: float | None = None  # None when no clip's teacher top class is neither Speech nor Music
    ms_above: float | None = None  # None when the teacher gives Speech or Music >= 0.3 on every clip


@dataclass(frozen=True)
class ClassAgreement:
    """One scored class over all held-out clips: AudioSet index, AP, teacher positives, and the source
    holding most of those positives with its count."""

    index: int
    ap: float
    positives: int
    top_source: str
    top_source_positives: int


@dataclass(frozen=True)
class Agreement:
    overall: AgreementScore
    per_source: dict[str, AgreementScore]
    per_class: tuple[ClassAgreement, ...] = ()
    broad: AgreementScore | None = None
    broad_per_class: tuple[ClassAgreement, ...] = ()
    # the same clips cut into 2-s segments, each tagged on its own (models.evaluation.segments)
    broad_segments: AgreementScore | None = None
    broad_segments_per_class: tuple[ClassAgreement, ...] = ()


def heldout_clips(
    tasks: list[Task], corpus_dir: Path | None, max_corpus: int | None = None, drawn_only: bool = False
) -> list[tuple[Path, str]]:
    """(audio path, source name) of held-out clips: corpus ``val`` rows, then the tasks' ``test`` rows.

    ``drawn_only``: only the corpus recordings that the stable hash draw holds out
    (``models.training.corpus_split.drawn_by_hash``), so a pack trained on an earlier build of the corpus
    is never scored on its own training recordings.

    A clip shared by two tasks (FSDD digits and speaker) is listed once. The corpus manifest needs a
    ``split`` column and a ``clip``, ``file`` or ``path`` column (relative to the corpus folder or absolute);
    a ``source`` column names the source (default ``val``). An unreadable manifest is logged and skipped.
    """
    clips: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    if corpus_dir is not None:
        manifest = Path(corpus_dir) / "manifest.csv"
        try:
            with open(manifest, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as exc:
            log.warning(
                "%s: cannot read corpus manifest (%s); agreement uses the shared test splits only",
                manifest,
                exc,
            )
            rows = []
        from models.training.corpus_split import drawn_by_hash  # the split rules live with the corpus

        val = [
            r
            for r in rows
            if (r.get("split") or "").strip().lower() in ("val", "valid", "validation")
            and not (r.get("source") or "").endswith(DERIVED_SUFFIXES)  # copies of held-out recordings
            and (r.get("origin") or "") != MIXTURE_ORIGIN  # parts drawn across sources: not held out
            and (not drawn_only or drawn_by_hash(r))
        ]
        val.sort(key=lambda r: r.get("clip") or r.get("file") or r.get("path") or "")
        if max_corpus is not None and len(val) > max_corpus:  # evenly spaced: every source keeps its share
            val = [val[int(i)] for i in np.linspace(0, len(val) - 1, max_corpus).round().astype(int)]
        for r in val:
            rel = r.get("clip") or r.get("file") or r.get("path") or ""
            if not rel:
                continue
            p = Path(rel) if Path(rel).is_absolute() else Path(corpus_dir) / rel
            if p.is_file() and p not in seen:
                seen.add(p)
                clips.append((p, "corpus:" + (r.get("source") or "val")))
    for task in tasks:
        source = task.root.name
        for p, s in zip(task.paths, task.splits, strict=True):
            if s == "test" and p not in seen:
                seen.add(p)
                clips.append((p, source))
    return clips


def _class_aps(pack: np.ndarray, teacher: np.ndarray, min_positives: int) -> tuple[np.ndarray, list[float]]:
    """(indices of the classes with ≥ ``min_positives`` teacher positives, their APs)."""
    from sklearn.metrics import average_precision_score

    labels = teacher >= THRESHOLD
    keep = np.flatnonzero(labels.sum(axis=0) >= min_positives)
    return keep, [float(average_precision_score(labels[:, c], pack[:, c])) for c in keep]


def top5_overlap(pack: np.ndarray, teacher: np.ndarray) -> float:
    """Mean over clips of |top-5(pack) ∩ top-5(teacher)| / 5."""
    if not len(pack):
        return 0.0
    tp = np.argsort(-pack, axis=1)[:, :5]
    tt = np.argsort(-teacher, axis=1)[:, :5]
    return float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(tp, tt, strict=True)]))


def music_speech_instead(pack: np.ndarray, teacher: np.ndarray) -> float | None:
    """Share of the clips whose teacher top class is neither Speech nor Music where the pack's top class
    is Speech or Music (None when there is no such clip)."""
    neither = ~np.isin(teacher.argmax(axis=1), (SPEECH, MUSIC))
    if not neither.any():
        return None
    return float(np.isin(pack[neither].argmax(axis=1), (SPEECH, MUSIC)).mean())


def music_speech_above(
    pack: np.ndarray, teacher: np.ndarray, threshold: float = APP_THRESHOLD
) -> float | None:
    """Share of the clips where the teacher gives Speech and Music both less than ``threshold`` on which the
    pack gives either of them at least ``threshold`` (None when there is no such clip)."""
    neither = (teacher[:, [SPEECH, MUSIC]] < threshold).all(axis=1)
    if not neither.any():
        return None
    return float((pack[neither][:, [SPEECH, MUSIC]] >= threshold).any(axis=1).mean())


def score(pack: np.ndarray, teacher: np.ndarray, min_positives: int = MIN_POSITIVES) -> AgreementScore:
    """mAP, top-1, top-5 overlap and the Music/Speech-instead-of-neither rate of one set of rows."""
    keep, aps = _class_aps(pack, teacher, min_positives)
    top1 = float(np.mean(pack.argmax(axis=1) == teacher.argmax(axis=1))) if len(pack) else 0.0
    return AgreementScore(
        map=float(np.mean(aps)) if aps else None,
        top1=top1,
        n_clips=len(pack),
        n_classes=len(keep),
        top5=top5_overlap(pack, teacher),
        ms_instead=music_speech_instead(pack, teacher),
        ms_above=music_speech_above(pack, teacher),
    )


def score_per_class(
    pack: np.ndarray, teacher: np.ndarray, src: np.ndarray, min_positives: int = MIN_POSITIVES
) -> tuple[ClassAgreement, ...]:
    """Each class with ≥ ``min_positives`` teacher positives: AP and the source holding most of them."""
    keep, aps = _class_aps(pack, teacher, min_positives)
    out = []
    for c, ap in zip(keep, aps, strict=True):
        pos = teacher[:, c] >= THRESHOLD
        names, counts = np.unique(src[pos], return_counts=True)
        top = int(np.argmax(counts))  # ties: the first name in sorted order
        out.append(ClassAgreement(int(c), ap, int(pos.sum()), str(names[top]), int(counts[top])))
    return tuple(out)


def teacher_agreement(
    pack_probs: np.ndarray, teacher_probs: np.ndarray, sources: list[str], min_positives: int = MIN_POSITIVES
) -> Agreement:
    """Agreement of pack probs (N, 527) with teacher probs (N, 527) float, per source and overall."""
    pack_probs = np.asarray(pack_probs, np.float64)
    teacher_probs = np.asarray(teacher_probs, np.float64)
    if pack_probs.shape != teacher_probs.shape or pack_probs.shape[0] != len(sources):
        raise ValueError(
            f"shape mismatch: pack {pack_probs.shape}, teacher {teacher_probs.shape}, {len(sources)} sources"
        )
    src = np.asarray(sources)
    per = {
        s: score(pack_probs[src == s], teacher_probs[src == s], min_positives) for s in sorted(set(sources))
    }
    broad = np.char.startswith(src.astype(str), BROAD_PREFIX) if len(src) else np.zeros(0, bool)
    return Agreement(
        overall=score(pack_probs, teacher_probs, min_positives),
        per_source=per,
        per_class=score_per_class(pack_probs, teacher_probs, src, min_positives),
        broad=score(pack_probs[broad], teacher_probs[broad], min_positives) if broad.any() else None,
        broad_per_class=(
            score_per_class(pack_probs[broad], teacher_probs[broad], src[broad], min_positives)
            if broad.any()
            else ()
        ),
    )
