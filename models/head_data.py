"""Turning audio into head training examples, and scoring heads on labelled files (Qt-free).

Every analysis window of a file is one example (a file shorter than the pack's window gives one
padded window), so a recording of a few seconds yields several examples. A file-level prediction is
the class with the highest mean probability over the file's windows.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.audio import AudioError, list_audio_files
from models.heads import Head
from models.pipeline import CancelFlag, EngineLike, is_cancelled, tag_file
from models.results import Progress


@dataclass(frozen=True)
class LabelledFiles:
    """Files with class names; ``classes`` fixes the label order."""

    files: tuple[Path, ...]
    labels: tuple[str, ...]
    classes: tuple[str, ...]

    def label_ids(self) -> np.ndarray:
        return np.array([self.classes.index(c) for c in self.labels], dtype=np.int64)


def from_class_args(pairs: Sequence[str]) -> LabelledFiles:
    """``["dog=a.wav", "dog=dir/", "cat=b.wav"]`` → labelled files (folders expanded recursively)."""
    files: list[Path] = []
    labels: list[str] = []
    classes: list[str] = []
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path:
            raise ValueError(f"expected CLASS=PATH, got {pair!r}")
        found = list_audio_files([path])
        if not found:
            raise ValueError(f"{path}: no audio files found for class {name!r}")
        name = name.strip()
        if name not in classes:
            classes.append(name)
        files += found
        labels += [name] * len(found)
    return LabelledFiles(tuple(files), tuple(labels), tuple(classes))


def from_labels_csv(
    folder: str | os.PathLike[str], split: str | None, label_column: str = "label"
) -> LabelledFiles:
    """A data-set folder with ``labels.csv`` (columns file, label, split, …) → labelled files of ``split``."""
    folder = Path(folder)
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if split is None or r.get("split") == split]
    if not rows:
        raise ValueError(f"{folder}: no rows for split {split!r}")
    if label_column not in rows[0]:
        raise ValueError(f"{folder}/labels.csv has no column {label_column!r}")
    labels = [r[label_column] for r in rows]
    return LabelledFiles(tuple(folder / r["file"] for r in rows), tuple(labels), tuple(sorted(set(labels))))


def embed_files(
    engine: EngineLike,
    files: Sequence[Path],
    *,
    progress: Callable[[Progress], object] | None = None,
    cancel: CancelFlag = None,
) -> tuple[list[np.ndarray], list[str]]:
    """Window embeddings per file: a list of (n_windows_i, D) float32 arrays, and one error string per
    unreadable file (its entry is then an empty (0, D) array; the rest are still processed)."""
    out: list[np.ndarray] = []
    errors: list[str] = []
    for i, path in enumerate(files):
        if is_cancelled(cancel):
            break
        try:
            emb = [r.embedding for r in tag_file(engine, path, cancel=cancel)]
        except AudioError as exc:
            errors.append(str(exc))
            emb = []
        out.append(np.stack(emb) if emb else np.zeros((0, 0), np.float32))
        if progress is not None:
            progress(Progress(i + 1, len(files), os.fspath(path)))
    return out, errors


def stack_examples(per_file: Sequence[np.ndarray], label_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-file window embeddings into (N, D) examples with one label per window."""
    keep = [i for i, e in enumerate(per_file) if len(e)]
    if not keep:
        raise ValueError("no readable examples")
    x = np.concatenate([per_file[i] for i in keep]).astype(np.float32)
    y = np.concatenate([np.full(len(per_file[i]), label_ids[i], np.int64) for i in keep])
    return x, y


def file_accuracy(head: Head, per_file: Sequence[np.ndarray], truth: Sequence[str]) -> float:
    """Fraction of files whose mean head probability over windows peaks at the true class."""
    hits = total = 0
    for emb, label in zip(per_file, truth, strict=True):
        if not len(emb):
            continue
        total += 1
        hits += int(head.classes[int(head.predict(emb).mean(axis=0).argmax())] == label)
    return hits / total if total else 0.0
