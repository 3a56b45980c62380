"""Qt-free helpers behind the Heads dialog: the list of heads (trained and drafts), editing example sets,
picking the windows of a time span (head events: ``models.heads.head_events``).

A *draft* is a head that has examples (``NAME.examples.safetensors``) but no trained file yet. Example
sets hold embeddings (N, D) float32 with one label per row, never audio (see ``models.heads.head_store``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.heads.head_cv import Calibration
from models.heads.head_edit import add_rows, remove_source, source_rows, span_rows  # noqa: F401 - helpers of the dialog
from models.heads.head_store import EXAMPLES_SUFFIX, ExampleSet, HeadStore, PackStamp, check_name
from models.heads.heads import BACKGROUND, HeadCard, HeadError


@dataclass(frozen=True)
class HeadEntry:
    """One row of the head list: a trained head (``card``), an unreadable file (``error``) or a draft."""

    name: str
    path: Path
    card: HeadCard | None = None
    error: str = ""
    draft: bool = False
    n_examples: int = 0

    def describe(self) -> str:
        """One line for the list: name, classes, accuracy (or the error / draft state)."""
        if self.error:
            return f"{self.name} — unreadable: {self.error}"
        if self.draft or self.card is None:
            return f"{self.name} — not trained yet ({self.n_examples} examples)"
        c = self.card
        return (
            f"{self.name} — {len(c.classes)} classes ({', '.join(c.classes)}), {c.kind}, {accuracy_text(c)}"
        )

    def tooltip(self) -> str:
        if self.error or self.card is None:
            return self.error or f"{self.path}: examples only; press Train to make the head"
        c = self.card
        counts = ", ".join(f"{n}: {k}" for n, k in zip(c.classes, c.example_counts, strict=False))
        far = "" if c.false_alarm_rate is None else f"\nfalse-alarm rate: {c.false_alarm_rate:g}"
        if c.calibration:
            far = f"\nthresholds: {Calibration.from_text(c.calibration).describe()}"
        return (
            f"{self.path}\nexamples: {counts}\npack: {c.pack_id[:12]}\nC: {c.c:g}{far}\ncreated: {c.created}"
        )


def accuracy_text(card: HeadCard) -> str:
    """The head's accuracy as the user should read it: cross-validated by recording when it was trained
    so; an older head's figure (windows of one file on both sides of the folds) is marked as such."""
    if card.cv_grouping == "recording":
        return f"accuracy by recording {card.cv_accuracy:.3f}"
    return f"accuracy {card.cv_accuracy:.3f} (over windows, optimistic: retrain for the by-recording figure)"


def class_rows(card: HeadCard, thresholds: Sequence[float]) -> list[tuple[str, str, str, str]]:
    """(class, threshold, precision, recall) per class, as text; "—" where not defined (background)."""

    def fmt(values: Sequence[float], j: int) -> str:
        return f"{values[j]:.2f}" if j < len(values) and values[j] >= 0 else "—"

    return [
        (name, "—" if name == BACKGROUND else f"{float(thresholds[j]):.2f}",
         fmt(card.class_precision, j), fmt(card.class_recall, j))
        for j, name in enumerate(card.classes)
    ]  # fmt: skip


def list_entries(store: HeadStore) -> list[HeadEntry]:
    """Trained heads (unreadable ones with their error) and drafts, sorted by name."""
    out = {h.name: HeadEntry(h.name, h.path, h.card, h.error) for h in store.list()}
    if store.root.is_dir():
        for p in store.root.glob(f"*{EXAMPLES_SUFFIX}"):
            name = p.name[: -len(EXAMPLES_SUFFIX)]
            if name in out:
                continue
            try:
                check_name(name)
                n = len(store.load_examples(name).label)
            except (HeadError, ValueError) as exc:
                out[name] = HeadEntry(name, p, error=str(exc))
                continue
            out[name] = HeadEntry(name, p, draft=True, n_examples=n)
    return [out[k] for k in sorted(out, key=str.lower)]


def _sources(ex: ExampleSet) -> list[str]:
    """Per-row sources, padded with "" (sets saved by ``encotag head train`` carry none)."""
    src = list(ex.sources)[: len(ex.label)]
    return src + [""] * (len(ex.label) - len(src))


def _dim(ex: ExampleSet) -> int:
    return int(ex.emb.shape[1]) if ex.emb.ndim == 2 else 0


def add_class(ex: ExampleSet, name: str) -> ExampleSet:
    """``ex`` with a new, empty class ``name`` (ValueError if it exists or is blank)."""
    name = name.strip()
    if not name:
        raise ValueError("a class needs a name")
    if name in ex.classes:
        raise ValueError(f"class '{name}' already exists")
    return replace(ex, classes=(*ex.classes, name), sources=tuple(_sources(ex)))


def keep_rows(ex: ExampleSet, keep: np.ndarray, classes: Sequence[str] | None = None) -> ExampleSet:
    """The rows where ``keep`` (N,) bool is true; labels re-mapped onto ``classes`` (by name)."""
    classes = tuple(ex.classes if classes is None else classes)
    remap = np.array([classes.index(c) if c in classes else -1 for c in ex.classes], np.int64)
    labels = remap[ex.label] if len(ex.label) else ex.label
    keep = np.asarray(keep, bool) & (labels >= 0)
    src = _sources(ex)
    emb = ex.emb[keep] if len(ex.label) else np.zeros((0, _dim(ex)), np.float32)
    rows = tuple(s for s, k in zip(src, keep, strict=True) if k)
    return replace(ex, classes=classes, emb=emb, label=labels[keep], sources=rows)


def remove_class(ex: ExampleSet, name: str) -> ExampleSet:
    """``ex`` without class ``name`` and its examples."""
    classes = tuple(c for c in ex.classes if c != name)
    return keep_rows(ex, np.ones(len(ex.label), bool), classes)


def clear_class(ex: ExampleSet, name: str) -> ExampleSet:
    """``ex`` with class ``name`` kept but its examples removed."""
    idx = ex.classes.index(name)
    return keep_rows(ex, ex.label != idx)


def rename_class(ex: ExampleSet, old: str, new: str) -> ExampleSet:
    new = new.strip()
    if not new:
        raise ValueError("a class needs a name")
    if new != old and new in ex.classes:
        raise ValueError(f"class '{new}' already exists")
    classes = tuple(new if c == old else c for c in ex.classes)
    return replace(ex, classes=classes, sources=tuple(_sources(ex)))


def add_examples(
    ex: ExampleSet, name: str, emb: np.ndarray, source: str | Sequence[str], pack: PackStamp | None
) -> ExampleSet:
    """``ex`` plus rows ``emb`` (n, D) float32 made by ``pack`` for class ``name`` (created if new);
    ``source`` is one string for all rows or one per row. Examples of another (or an unrecorded) pack
    are refused (``models.heads.head_store.ExamplePackError``, a ValueError)."""
    emb = np.atleast_2d(np.asarray(emb, np.float32))
    per_row = [source] * len(emb) if isinstance(source, str) else list(source)
    if len(per_row) != len(emb):
        raise ValueError(f"{len(per_row)} sources for {len(emb)} examples")
    if emb.size == 0:
        return ex if name in ex.classes else add_class(ex, name)
    ex.check_pack(pack)
    if len(ex.label) and _dim(ex) != emb.shape[1]:
        raise ValueError(
            f"these examples have {emb.shape[1]}-dim embeddings but the head's have {_dim(ex)} "
            "(made with another model pack?)"
        )
    return add_rows(ex, name, emb, per_row, pack)
