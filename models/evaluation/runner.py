"""One evaluation run: embed every clip once per embedder (cached), probe every task, teacher agreement.

:func:`evaluate` is what ``encotag eval`` calls; it is deterministic given the embeddings (seeded folds
and solvers), and embeddings are deterministic given the weights (single-threaded torch recommended).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from models.evaluation.agreement import Agreement, teacher_agreement
from models.evaluation.cache import EmbeddingCache, Entry
from models.evaluation.embedders import ClipError, Embedder, load_clip
from models.evaluation.probe import C_GRID, ProbeResult, probe_task
from models.evaluation.segments import broad_segment_agreement
from models.evaluation.tasks import Task
from models.tagging.results import Progress

log = logging.getLogger(__name__)

ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class EmbedderResult:
    """One row of the report.

    probes: task name → result; failed: task name → clips that could not be embedded (left out);
    seconds_per_hour: embedding CPU time (process CPU seconds) per hour of audio (None if every clip came
    from a cache written without timings); agreement: teacher agreement for tagging packs other than the
    teacher.
    """

    name: str
    id: str
    embedding_size: int
    has_tags: bool
    is_teacher: bool
    seconds_per_hour: float | None
    probes: dict[str, ProbeResult]
    failed: dict[str, int] = field(default_factory=dict)
    agreement: Agreement | None = None
    reference: str | None = None


def embed_paths(
    embedder: Embedder,
    paths: list[Path],
    cache: EmbeddingCache,
    progress: ProgressFn | None = None,
) -> dict[str, dict[Path, Entry | None]]:
    """view key → path → whole-clip entry (None for a clip that failed: logged with its reason).

    A clip is computed (one pass for all views) only when some view is missing from the cache.
    """
    out: dict[str, dict[Path, Entry | None]] = {v.key: {} for v in embedder.views}
    total = len(paths)
    label = embedder.views[0].name
    for i, path in enumerate(paths):
        got = {v.key: cache.get(v.id, path) for v in embedder.views}
        if any(e is None for e in got.values()):
            try:
                audio = load_clip(path, embedder.sample_rate)
                t0 = time.process_time()  # CPU time: robust to other processes sharing the CPU
                result = embedder.embed(audio)
                seconds = time.process_time() - t0
            except (ClipError, ValueError, RuntimeError) as exc:
                log.error("%s", exc if isinstance(exc, ClipError) else f"{path}: {exc}")
                got = {k: None for k in got}
            else:
                for v in embedder.views:
                    emb, probs = result[v.key]
                    if emb.shape != (v.embedding_size,):
                        raise RuntimeError(
                            f"{v.name}: embedding shape {emb.shape}, expected ({v.embedding_size},)"
                        )
                    got[v.key] = Entry(emb, probs, seconds, audio.shape[0] / embedder.sample_rate)
                    cache.put(v.id, path, got[v.key])  # type: ignore[arg-type]
        for k, e in got.items():
            out[k][path] = e
        if progress is not None:
            progress(Progress(i + 1, total, f"{label}: embedding"))
    return out


def evaluate(
    embedders: list[Embedder],
    tasks: list[Task],
    cache: EmbeddingCache,
    *,
    teacher_id: str | None = None,
    heldout: list[tuple[Path, str]] | None = None,
    seed: int = 0,
    cs: tuple[float, ...] = C_GRID,
    progress: ProgressFn | None = None,
    segments: bool = True,
) -> list[EmbedderResult]:
    """Probe every task with every view of every embedder; teacher agreement on ``heldout`` for tagging
    views (and, with ``segments``, on the 2-s segments of its broad part). Returns one row per view.

    teacher_id: the view ``id`` whose probabilities are the reference labels (must be among the views
    for agreement to be computed).
    """
    heldout = heldout or []
    all_paths: list[Path] = []
    seen: set[Path] = set()
    for task in tasks:
        for p in task.paths:
            if p not in seen:
                seen.add(p)
                all_paths.append(p)
    entries: dict[str, dict[Path, Entry | None]] = {}
    rows = []
    for emb in embedders:
        paths = list(all_paths)
        if heldout and any(v.has_tags for v in emb.views):
            paths += [p for p, _ in heldout if p not in seen]
        per_view = embed_paths(emb, paths, cache, progress)
        for view in emb.views:
            entries[view.id] = got = per_view[view.key]
            probes: dict[str, ProbeResult] = {}
            failed: dict[str, int] = {}
            for task in tasks:
                ok = np.asarray([got.get(p) is not None for p in task.paths])
                failed[task.name] = int((~ok).sum())
                sub = _select(task, ok)
                if progress is not None:
                    progress(Progress(0, 0, f"{view.name}: probing {task.name}"))
                try:
                    x = np.stack([got[p].embedding for p in sub.paths])  # type: ignore[union-attr]
                    probes[task.name] = probe_task(x, sub, cs=cs, seed=seed)
                except ValueError as exc:
                    log.error("%s: %s: probe failed: %s", view.name, task.name, exc)
            done = [e for e in got.values() if e is not None]
            duration = sum(e.duration for e in done)
            seconds = sum(e.seconds for e in done)
            rows.append(
                EmbedderResult(
                    name=view.name,
                    id=view.id,
                    embedding_size=view.embedding_size,
                    has_tags=view.has_tags,
                    is_teacher=view.id == teacher_id,
                    seconds_per_hour=3600.0 * seconds / duration if duration > 0 and seconds > 0 else None,
                    probes=probes,
                    failed=failed,
                    reference=view.reference,
                )
            )
    if teacher_id is None or teacher_id not in entries or not heldout:
        return rows
    teach = entries[teacher_id]
    owner = {v.id: emb for emb in embedders for v in emb.views}
    out = []
    for row in rows:
        if row.has_tags and not row.is_teacher:
            got = entries[row.id]
            use = [(p, s) for p, s in heldout if got.get(p) is not None and teach.get(p) is not None]
            if use:
                pack_probs = np.stack([got[p].probs for p, _ in use])  # type: ignore[union-attr,misc]
                teacher_probs = np.stack([teach[p].probs for p, _ in use])  # type: ignore[union-attr,misc]
                agreement = teacher_agreement(pack_probs, teacher_probs, [s for _, s in use])
                if segments and hasattr(owner[row.id], "engine") and hasattr(owner[teacher_id], "engine"):
                    seg = broad_segment_agreement(owner[row.id], owner[teacher_id], use, cache, progress)
                    if seg is not None:
                        agreement = replace(agreement, broad_segments=seg[0], broad_segments_per_class=seg[1])
                row = replace(row, agreement=agreement)
        out.append(row)
    return out


def _select(task: Task, ok: np.ndarray) -> Task:
    """``task`` without the clips where ``ok`` is False."""
    if ok.all():
        return task
    from dataclasses import replace

    idx = np.flatnonzero(ok)
    return replace(
        task,
        paths=tuple(task.paths[i] for i in idx),
        labels=tuple(task.labels[i] for i in idx),
        splits=tuple(task.splits[i] for i in idx),
        fold_ids=tuple(task.fold_ids[i] for i in idx) if task.fold_ids else (),
    )
