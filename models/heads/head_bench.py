"""Head accuracy on a labelled data set next to the reference linear probe of ``encotag eval`` (Qt-free).

:func:`run_benchmark` takes a data-set folder in the ``../shared/data`` layout (``labels.csv`` with
``file``, a label column and ``split`` = ``train``/``test``) and a model pack, and measures:

- **head**: what a user gets — every analysis window of the ``train`` files is an example (the batched
  :func:`models.heads.head_data.embed_files`), a head is trained with :func:`models.heads.heads.train_head`,
  and the file-level accuracy on the ``test`` files is scored as ``encotag head eval`` scores it;
- **probe**: the reference linear probe of ``encotag eval`` (``models.evaluation.probe.probe_task``) on
  the whole-clip embeddings ``encotag eval`` computes (``PackEmbedder``, read from and written to the
  same embedding cache, so figures match ``docs/EVALUATION.md``);
- **head on the probe's embeddings**: ``train_head`` on exactly those whole-clip embeddings and split,
  so the head's training recipe is compared with the probe on the same inputs (issue: "within 1 point
  or above").
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.heads.head_data import embed_files, file_accuracy, stack_examples
from models.heads.heads import train_head
from models.tagging.results import Progress

StageProgress = Callable[[str, Progress], None]


@dataclass(frozen=True)
class BenchResult:
    """Figures of one data set and pack. Accuracies are fractions in [0, 1]; times in seconds."""

    data: str
    pack_name: str
    pack_id: str
    n_classes: int
    n_train: int  # readable train files
    n_test: int  # readable test files
    n_train_windows: int
    head_accuracy: float  # file-level, heads trained on window embeddings (the app's path)
    head_cv_accuracy: float  # cross-validated by file (folds never split a file)
    head_c: float
    embed_wall_s: float  # window embeddings of all train + test files
    embed_cpu_s: float
    train_s: float
    failed: int  # unreadable files (skipped)
    probe_accuracy: float | None = None  # encotag eval's probe, whole-clip embeddings
    probe_c: float | None = None
    head_on_clip_accuracy: float | None = None  # train_head on the same whole-clip embeddings
    probe_embed_wall_s: float | None = None  # whole-clip embeddings (0 when all came from the cache)
    head_window_cv_accuracy: float | None = None  # the same C, folds over windows (files split: optimistic)

    @property
    def head_vs_probe(self) -> float | None:
        """Head on the probe's embeddings minus the probe (≥ -0.01: "within 1 point or above")."""
        if self.probe_accuracy is None or self.head_on_clip_accuracy is None:
            return None
        return self.head_on_clip_accuracy - self.probe_accuracy


def run_benchmark(
    pack_dir: str | Path | None,
    data_dir: str | Path,
    *,
    label_column: str = "label",
    kind: str = "logreg",
    probe: bool = True,
    cache_root: str | Path | None = None,
    threads: int | None = None,
    progress: StageProgress | None = None,
    window_cv_check: bool = True,
) -> BenchResult:
    """Measure a head and the reference probe on ``data_dir``'s train/test split (see the module doc).

    ``pack_dir`` None: the default pack. ``cache_root``: ``encotag eval``'s embedding cache (None: no
    cache). Raises ``models.evaluation.tasks.TaskError`` / ``ValueError`` for unusable data sets.
    """
    from models.evaluation.tasks import load_task
    from models.tagging.engine import Engine

    data_dir = Path(data_dir)
    task = load_task(data_dir, label_column=label_column)
    if task.folds:
        raise ValueError(f"{data_dir}/labels.csv: needs 'train' and 'test' splits")
    classes = task.classes
    split = np.asarray(task.splits)
    tr_idx, te_idx = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    if not len(tr_idx) or not len(te_idx):
        raise ValueError(f"{data_dir}/labels.csv: needs 'train' and 'test' rows")
    engine = Engine.load(pack_dir, threads=threads)

    def stage(name: str) -> Callable[[Progress], None] | None:
        if progress is None:
            return None
        report = progress
        return lambda p: report(name, p)

    wall, cpu = time.perf_counter(), time.process_time()
    per_file, errors = embed_files(engine, list(task.paths), progress=stage("window embeddings"))
    embed_wall, embed_cpu = time.perf_counter() - wall, time.process_time() - cpu
    labels = np.array([classes.index(c) for c in task.labels], np.int64)
    train_files = [per_file[i] for i in tr_idx]
    x, y = stack_examples(train_files, labels[tr_idx])
    groups = np.concatenate([np.full(len(e), i, np.int64) for i, e in enumerate(train_files) if len(e)])
    head, report = train_head(
        x,
        y,
        classes,
        name=data_dir.name,
        kind=kind,
        pack_id=engine.info.pack_id,
        layout=engine.info.embedding_layout,
        groups=groups,
        progress=stage("training"),
    )
    window_cv = window_cv_accuracy(x, y, len(classes), report.c, kind) if window_cv_check else None
    test_files = [per_file[i] for i in te_idx]
    result = BenchResult(
        data=data_dir.name,
        pack_name=engine.info.name,
        pack_id=engine.info.pack_id,
        n_classes=len(classes),
        n_train=sum(1 for i in tr_idx if len(per_file[i])),
        n_test=sum(1 for e in test_files if len(e)),
        n_train_windows=len(y),
        head_accuracy=file_accuracy(head, test_files, [task.labels[i] for i in te_idx]),
        head_cv_accuracy=report.cv_accuracy,
        head_window_cv_accuracy=window_cv,
        head_c=report.c,
        embed_wall_s=embed_wall,
        embed_cpu_s=embed_cpu,
        train_s=report.seconds,
        failed=len(errors),
    )
    if not probe:
        return result
    return _probe(result, pack_dir, task, cache_root, kind, stage("clip embeddings"))


def window_cv_accuracy(x: np.ndarray, y: np.ndarray, k: int, c: float, kind: str, n_folds: int = 5) -> float:
    """Accuracy at ``c`` with folds over windows (stratified, files split across folds): what the head
    reported before folds were grouped by file; kept to show how optimistic it is."""
    from models.heads.head_fit import fit, predict_raw, standardise, stratified_folds

    mean, scale = standardise(x)
    xs = (x - mean) / scale
    pred = np.zeros(len(y), np.int64)
    for test_idx in stratified_folds(y, n_folds):
        train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
        params = fit(xs[train_idx], y[train_idx], k, c, kind)
        pred[test_idx] = predict_raw(params, xs[test_idx], kind).argmax(axis=1)
    return float(np.mean(pred == y))


def _probe(
    result: BenchResult,
    pack_dir: str | Path | None,
    task: object,
    cache_root: str | Path | None,
    kind: str,
    progress: Callable[[Progress], None] | None,
) -> BenchResult:
    """``result`` plus the figures on whole-clip embeddings as ``encotag eval`` makes them: its probe,
    and a head trained on the same embeddings and split."""
    from models.evaluation.cache import EmbeddingCache
    from models.evaluation.embedders import PackEmbedder
    from models.evaluation.probe import probe_task
    from models.evaluation.runner import embed_paths
    from models.evaluation.tasks import Task

    assert isinstance(task, Task)
    embedder = PackEmbedder(Path(pack_dir) if pack_dir is not None else None)
    t0 = time.perf_counter()
    cache = EmbeddingCache(Path(cache_root) if cache_root is not None else None)
    got = embed_paths(embedder, list(task.paths), cache, progress)["scene"]
    seconds = time.perf_counter() - t0
    ok = [i for i, p in enumerate(task.paths) if got.get(p) is not None]
    sub = dataclasses.replace(
        task,
        paths=tuple(task.paths[i] for i in ok),
        labels=tuple(task.labels[i] for i in ok),
        splits=tuple(task.splits[i] for i in ok),
    )
    x = np.stack([got[p].embedding for p in sub.paths]).astype(np.float32)  # type: ignore[union-attr]
    ref = probe_task(x, sub)
    classes = sub.classes
    y = np.array([classes.index(c) for c in sub.labels], np.int64)
    test = np.asarray(sub.splits) == "test"
    head, _ = train_head(x[~test], y[~test], classes, name=sub.name, kind=kind)
    acc = float(np.mean(head.predict(x[test]).argmax(axis=1) == y[test]))
    return dataclasses.replace(
        result,
        probe_accuracy=ref.accuracy,
        probe_c=ref.chosen_c[0],
        head_on_clip_accuracy=acc,
        probe_embed_wall_s=seconds,
    )
