"""What one file turns into in a batch: ``tag_record`` (summary + events) and ``embed_record``.

Records are plain dicts (JSON-able except the embedding arrays), so they cross process boundaries and go
into the journal (:mod:`models.batch.journal`) unchanged. ``file_key`` is the resume key: absolute path,
size and modification time (ns).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.tagging.results import Event, Progress, WindowResult


@dataclass(frozen=True)
class TagOptions:
    """How ``encotag tag`` turns window probabilities into a summary and events."""

    top_k: int = 5
    threshold: float = 0.3
    min_duration: float = 0.25


@dataclass
class FileTags:
    path: Path
    duration: float
    starts: np.ndarray  # (N,) s
    ends: np.ndarray  # (N,) s
    probs: np.ndarray  # (N, C) float32
    head_probs: np.ndarray | None  # (N, K) float32
    truncated: str = ""  # "" or why only part of the file was tagged


def file_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """(absolute path, size, mtime_ns): a file is done when a record with this key is in the journal."""
    st = os.stat(path)
    return os.path.abspath(path), int(st.st_size), int(st.st_mtime_ns)


def _truncation_note(stats: Any) -> str:
    if not stats.truncated:
        return ""
    cut = "truncated: only the part that decoded was tagged"
    if stats.frames_expected and stats.frames_in:
        cut += f" ({100 * stats.frames_in / stats.frames_expected:.0f} % of what the header claims)"
    return cut


def tag_one(
    engine: Any, path: Path, window: Any, head: Any, progress: Callable[[Progress], Any] | None = None
) -> FileTags:
    """Run the pipeline over one file, keeping only times and probabilities (not embeddings).
    ``.ecodes`` files are tagged from their codes (:func:`models.tagging.code_tagging.tag_codes`)."""
    from models.tagging.pipeline import TagStats, tag_file

    stats = TagStats()
    if path.suffix.lower() == ".ecodes":
        from models.codec.codes import CodesError, check_stream, load_codes
        from models.tagging.code_tagging import tag_codes

        if engine.codec is None:
            raise CodesError(f"{path}: a code stream needs the codec pack that made it, not a mel pack")
        stream = load_codes(path, codec_id=engine.codec_id)
        check_stream(stream, engine.codec, int(engine.sample_rate), str(path))
        results = tag_codes(engine, stream, window, head)
    else:
        results = tag_file(engine, path, window=window, head=head, progress=progress, stats=stats)
    return file_tags(path, results, stats)


def file_tags(path: Path, results: Iterable[WindowResult], stats: Any) -> FileTags:
    """The times and probabilities of a file's window results (``stats``: its ``TagStats``)."""
    from models.audio import AudioError

    starts, ends, probs, head_rows = [], [], [], []
    for r in results:
        starts.append(r.start)
        ends.append(r.end)
        probs.append(r.probs)
        if r.head_probs is not None:
            head_rows.append(r.head_probs)
    if not probs:
        raise AudioError(path, "no audio to tag")
    return FileTags(
        path=path,
        duration=max(ends) if ends else 0.0,
        starts=np.asarray(starts),
        ends=np.asarray(ends),
        probs=np.stack(probs),
        head_probs=np.stack(head_rows) if head_rows else None,
        truncated=_truncation_note(stats),
    )


def file_events(ft: FileTags, labels: tuple[str, ...], head: Any, opts: TagOptions) -> list[Event]:
    """Hysteresis events of the tagger, and the head's events (models.heads.head_events: each class at its
    own threshold, background left out, labelled ``"<class> (head)"``), by start."""
    from models.tagging.events import merge_events

    events = merge_events(
        ft.starts, ft.ends, ft.probs, labels, on=opts.threshold, min_duration=opts.min_duration
    )
    if head is not None and ft.head_probs is not None:  # each class at its own threshold, no background
        from models.heads.head_events import head_events

        events += head_events(head, ft.starts, ft.ends, ft.head_probs, min_duration=opts.min_duration)
        events.sort(key=lambda e: (e.start, e.label))
    return events


def _base(path: Path, stat: tuple[int, int] | None = None) -> dict[str, Any]:
    """The record's key fields; ``stat`` (size, mtime_ns) if it was taken already (before reading)."""
    if stat is not None:
        full, (size, mtime) = os.path.abspath(path), stat
    else:
        try:
            full, size, mtime = file_key(path)
        except OSError:
            full, size, mtime = os.path.abspath(path), -1, -1
    return {"file": str(path), "key": full, "size": size, "mtime_ns": mtime}


def failed_record(path: Path, reason: str) -> dict[str, Any]:
    """A file that could not be processed (retried by the next run)."""
    return {**_base(path), "status": "failed", "error": reason, "duration": 0.0, "windows": 0}


def tag_record(engine: Any, path: Path, window: Any, head: Any, opts: TagOptions) -> dict[str, Any]:
    """Tag one file: ``{file, key, size, mtime_ns, status, error, duration, windows, top_labels,
    top_scores, top_trusted, n_events, pack_id, events: [[start, end, label, score, trusted], …]}``.
    Raises what :func:`tag_one` raises (the caller records the failure)."""
    rec = _base(path)  # stat before reading: a file changed while it is read is redone next time
    return _tag_fields(engine, rec, tag_one(engine, path, window, head), head, opts)


def _tag_fields(
    engine: Any, rec: dict[str, Any], ft: FileTags, head: Any, opts: TagOptions
) -> dict[str, Any]:
    labels, trusted = engine.labels, engine.info.trusted
    clip = ft.probs.mean(axis=0)
    top = np.argsort(-clip, kind="stable")[: opts.top_k]
    events = file_events(ft, labels, head, opts)
    index = {name: i for i, name in enumerate(labels)}
    rec.update(
        status="warning" if ft.truncated else "ok",
        error=ft.truncated,
        duration=float(ft.duration),
        windows=len(ft.starts),
        top_labels=[labels[i] for i in top],
        top_scores=[round(float(clip[i]), 6) for i in top],
        top_trusted=[bool(trusted[i]) for i in top],
        n_events=len(events),
        pack_id=engine.info.pack_id,
        events=[
            [
                round(float(e.start), 6),
                round(float(e.end), 6),
                e.label,
                round(float(e.score), 6),
                bool(trusted[index[e.label]]) if e.label in index else True,
            ]
            for e in events
        ],
    )
    return rec


def tag_records(
    engine: Any,
    paths: Iterable[Path],
    window: Any,
    head: Any,
    opts: TagOptions,
    on_error: Callable[[Path, Exception], dict[str, Any]],
    cancel: Callable[[], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`tag_record` of every path, in order, short files decoded ahead and tagged in groups
    (:func:`models.tagging.folder.tag_many`), the others one by one; a file that fails gives
    ``on_error(path, exc)``. ``cancel()`` is checked before each file."""
    from models.tagging.folder import tag_many
    from models.tagging.pipeline import TagStats

    for item in tag_many(engine, paths, window, head, cancel=cancel):
        try:
            if item.error is not None:
                raise item.error
            if item.results is None:  # a long file or a code stream: the streamed path
                yield tag_record(engine, item.path, window, head, opts)
                continue
            rec = _base(item.path, item.stat or (-1, -1))  # as stat'ed before it was read
            io = item.io
            stats = TagStats(
                frames_in=io.get("frames_in", 0),
                truncated=bool(io.get("truncated", 0)),
                frames_expected=io.get("frames_expected", 0),
            )
            yield _tag_fields(engine, rec, file_tags(item.path, item.results, stats), head, opts)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch: it is recorded
            yield on_error(item.path, exc)


def embed_record(engine: Any, path: Path, window: Any) -> dict[str, Any]:
    """Window embeddings of one file: the base fields plus ``times`` (N, 2) float64 and ``embedding``
    (N, D) float32 arrays."""
    from models.audio import AudioError
    from models.tagging.pipeline import TagStats, tag_file

    rec = _base(path)
    stats = TagStats()
    times, embs = [], []
    for r in tag_file(engine, path, window=window, stats=stats):
        times.append((r.start, r.end))
        embs.append(r.embedding)
    if not embs:
        raise AudioError(path, "no audio to embed")
    cut = "truncated: only the part that decoded was embedded" if stats.truncated else ""
    times_a = np.asarray(times, np.float64)
    rec.update(
        status="warning" if cut else "ok",
        error=cut,
        duration=float(times_a[:, 1].max()),
        windows=len(times),
        pack_id=engine.info.pack_id,
        times=times_a,
        embedding=np.stack(embs).astype(np.float32),
    )
    return rec
