"""Probe tasks: single-label classification sets described by a ``labels.csv``.

A task directory holds audio files and a ``labels.csv`` in the layout of ``../shared/data``
(columns ``file,label,split,source_file,license`` plus extras; ``split`` is ``train`` or ``test``).
The label may come from another column (FSDD speaker uses ``speaker``). Classes with fewer than
``min_per_class`` examples are dropped. A set with no ``test`` rows (or with a ``fold`` column) is
evaluated by stratified cross-validation folds instead of its train/test split.

Nothing here reads audio; :func:`load_task` only parses the CSV.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

DOMAINS = ("environment", "speech", "music")


class TaskError(Exception):
    """A task directory that cannot be used (missing or malformed ``labels.csv``)."""


@dataclass(frozen=True)
class Task:
    """One probe task.

    paths: audio file per example; labels: class name per example; splits: ``train``/``test`` per example.
    folds: 0 = use ``splits``; k > 0 = k stratified CV folds over all examples (``fold_ids`` gives the
    fold of each example, 0..k-1).
    """

    name: str
    domain: str
    root: Path
    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    splits: tuple[str, ...]
    folds: int = 0
    fold_ids: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.labels)))

    def describe(self) -> str:
        if self.folds:
            return f"{len(self)} clips, {len(self.classes)} classes, {self.folds}-fold CV"
        n_test = sum(s == "test" for s in self.splits)
        return f"{len(self)} clips ({len(self) - n_test} train / {n_test} test), {len(self.classes)} classes"


@dataclass(frozen=True)
class TaskSpec:
    """How to build a task from a data directory under the shared data root."""

    name: str
    directory: str
    domain: str
    label_column: str = "label"
    min_per_class: int = 2
    cv_folds: int = 5  # used only when the set has no test split


# The built-in tasks (every set in ../shared/data large enough for a probe); pitch is synthesized (pitch.py).
BUILTIN_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("fsdd_digits", "fsdd", "speech"),
    TaskSpec("fsdd_speaker", "fsdd", "speech", label_column="speaker"),
    TaskSpec("speech_commands", "speech_commands_test", "speech"),
    TaskSpec("ravdess_emotion", "ravdess_speech", "speech"),
    TaskSpec("donateacry", "donateacry", "environment"),
    TaskSpec("mod_sounds", "mod_sounds", "environment", min_per_class=5),
)
QUICK_TASKS = ("fsdd_digits", "fsdd_speaker", "speech_commands", "donateacry")


def _stratified_folds(labels: list[str], k: int, seed: int) -> list[int]:
    """Fold id (0..k-1) per example: each class dealt round-robin over the folds after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold = [0] * len(labels)
    offset = 0
    for cls in sorted(set(labels)):
        idx = [i for i, lab in enumerate(labels) if lab == cls]
        idx = [idx[j] for j in rng.permutation(len(idx))]
        for j, i in enumerate(idx):
            fold[i] = (j + offset) % k
        offset += len(idx)
    return fold


def load_task(
    root: Path,
    *,
    name: str | None = None,
    domain: str = "other",
    label_column: str = "label",
    min_per_class: int = 2,
    cv_folds: int = 5,
    seed: int = 0,
) -> Task:
    """Parse ``root/labels.csv`` into a :class:`Task`.

    Raises :class:`TaskError` naming the file and the reason when the CSV is missing or lacks a column.
    Files listed but missing on disk are an error too (a silently shorter task would skew results).
    """
    root = Path(root)
    csv_path = root / "labels.csv"
    if not csv_path.is_file():
        raise TaskError(f"{csv_path}: not found")
    if csv_path.stat().st_size > 64 << 20:
        raise TaskError(f"{csv_path}: too large (more than 64 MiB)")
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        for col in ("file", label_column):
            if col not in cols:
                raise TaskError(f"{csv_path}: no '{col}' column")
        rows = [r for r in reader if r.get("file") and r.get(label_column)]
    if not rows:
        raise TaskError(f"{csv_path}: no rows")
    counts = Counter(r[label_column] for r in rows)
    rows = [r for r in rows if counts[r[label_column]] >= min_per_class]
    if len({r[label_column] for r in rows}) < 2:
        raise TaskError(f"{csv_path}: fewer than 2 classes with >= {min_per_class} examples")
    rows.sort(key=lambda r: r["file"])
    missing = [r["file"] for r in rows if not (root / r["file"]).is_file()]
    if missing:
        raise TaskError(f"{root / missing[0]}: listed in labels.csv but missing ({len(missing)} missing)")
    labels = [r[label_column] for r in rows]
    splits = [(r.get("split") or "train").strip().lower() for r in rows]
    folds = 0
    fold_ids: list[int] = []
    if "fold" in cols and all(r.get("fold") for r in rows):
        names = sorted({r["fold"] for r in rows})
        fold_ids = [names.index(r["fold"]) for r in rows]
        folds = len(names)
    elif "test" not in splits:
        k = min(cv_folds, min(Counter(labels).values()))
        if k < 2:
            raise TaskError(f"{csv_path}: no test split and too few examples per class for CV")
        fold_ids = _stratified_folds(labels, k, seed)
        folds = k
    return Task(
        name=name or root.name,
        domain=domain,
        root=root,
        paths=tuple(root / r["file"] for r in rows),
        labels=tuple(labels),
        splits=tuple(splits),
        folds=folds,
        fold_ids=tuple(fold_ids),
    )


def builtin_tasks(data_root: Path, names: tuple[str, ...] | None = None, seed: int = 0) -> list[Task]:
    """The built-in tasks found under ``data_root`` (sets that are absent are skipped), in table order."""
    tasks = []
    for spec in BUILTIN_TASKS:
        if names is not None and spec.name not in names:
            continue
        root = Path(data_root) / spec.directory
        if not (root / "labels.csv").is_file():
            continue
        tasks.append(
            load_task(
                root,
                name=spec.name,
                domain=spec.domain,
                label_column=spec.label_column,
                min_per_class=spec.min_per_class,
                cv_folds=spec.cv_folds,
                seed=seed,
            )
        )
    return tasks


def subsample(task: Task, max_clips: int, seed: int = 0) -> Task:
    """A deterministic, class-stratified subset of at most ``max_clips`` examples (train and test alike).

    Every class keeps at least 2 examples per split part it had (so probes stay fittable). Tasks
    evaluated by CV folds are returned whole (they are small, and folds need every example).
    """
    if len(task) <= max_clips or task.folds:
        return task
    rng = np.random.default_rng(seed)
    frac = max_clips / len(task)
    keep: list[int] = []
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (lab, spl) in enumerate(zip(task.labels, task.splits, strict=True)):
        groups.setdefault((lab, spl), []).append(i)
    for key in sorted(groups):
        idx = groups[key]
        n = max(2, int(round(len(idx) * frac)))
        keep.extend(sorted(idx[j] for j in rng.permutation(len(idx))[:n]))
    keep.sort()
    return replace(
        task,
        paths=tuple(task.paths[i] for i in keep),
        labels=tuple(task.labels[i] for i in keep),
        splits=tuple(task.splits[i] for i in keep),
        fold_ids=tuple(task.fold_ids[i] for i in keep) if task.fold_ids else (),
    )
