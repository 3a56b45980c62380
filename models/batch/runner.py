"""Run a batch: worker processes (each with its own engine, one torch thread) tag or embed files, the
calling process appends each finished file to the journal. Workers take groups of at most
:data:`~models.tagging.folder.GROUP` files (tagging decodes each group's files ahead in a thread and
tags short files together, :func:`models.batch.work.tag_records`); at most ``2 × workers`` groups are in
flight, so memory stays bounded whatever the number of files; files already in the journal are skipped.

``workers=1`` runs in this process (with the engine given, or one loaded here). Worker processes are
started with ``spawn`` (never ``fork`` a process that has run torch threads).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.batch.journal import Journal
from models.batch.work import TagOptions, embed_record, failed_record, file_key, tag_record, tag_records
from models.tagging.folder import GROUP

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchSpec:
    """What every worker needs to rebuild the engine and run the same work."""

    kind: str  # "tag" or "embed"
    pack: str | None  # pack folder (None: the default pack)
    window_s: float
    hop_s: float
    opts: TagOptions = field(default_factory=TagOptions)
    head: Any = None  # a loaded Head (tag only), sent to the workers with the spec
    threads: int = 1  # torch threads per worker


@dataclass
class BatchCounts:
    """Where a batch stands (what the progress display and the final summary show)."""

    total: int = 0  # files in this run, including those skipped as already done
    skipped: int = 0
    ok: int = 0
    warnings: int = 0
    failed: int = 0
    audio_s: float = 0.0  # audio processed in this run
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.skipped + self.ok + self.warnings + self.failed

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def count(self, rec: dict[str, Any]) -> None:
        status = rec.get("status")
        if status == "ok":
            self.ok += 1
        elif status == "warning":
            self.warnings += 1
        else:
            self.failed += 1
        self.audio_s += float(rec.get("duration") or 0.0)


def error_line(path: Path, exc: BaseException) -> str:
    """One line naming the file and the reason (``AudioError``/``CodesError`` already name the file)."""
    from models.audio import AudioError
    from models.codec.codes import CodesError

    if isinstance(exc, AudioError | CodesError):
        return str(exc).splitlines()[0]
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{path}: failed ({type(exc).__name__}: {reason})"


class Work:
    """One engine and the work of ``spec`` on one file (in a worker, an actor or this process)."""

    def __init__(self, spec: BatchSpec, engine: Any = None) -> None:
        from models.config import WindowConfig
        from models.tagging.engine import Engine

        self.spec = spec
        self.engine = engine or Engine.load(Path(spec.pack) if spec.pack else None, threads=spec.threads)
        self.window = WindowConfig(window_s=spec.window_s, hop_s=spec.hop_s)

    def __call__(self, path: Path) -> dict[str, Any]:
        try:
            if self.spec.kind == "embed":
                return embed_record(self.engine, path, self.window)
            return tag_record(self.engine, path, self.window, self.spec.head, self.spec.opts)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch: it is recorded
            return self._failed(path, exc)

    @staticmethod
    def _failed(path: Path, exc: BaseException) -> dict[str, Any]:
        log.debug("failed on %s", path, exc_info=exc)
        return failed_record(path, error_line(path, exc))

    def records(
        self, paths: Iterable[Path], cancel: Callable[[], bool] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The record of every path, in order: tagging decodes ahead and tags short files in groups
        (:func:`models.batch.work.tag_records`); embedding goes file by file. ``cancel()`` is checked
        before each file."""
        if self.spec.kind == "tag":
            yield from tag_records(
                self.engine, paths, self.window, self.spec.head, self.spec.opts, self._failed, cancel
            )
            return
        for p in paths:
            if cancel is not None and cancel():
                return
            yield self(p)


_WORK: Work | None = None


def _init_worker(spec: BatchSpec) -> None:
    global _WORK
    import torch

    torch.set_num_threads(max(1, spec.threads))
    _WORK = Work(spec)


def _run_group(paths: list[str]) -> list[dict[str, Any]]:
    assert _WORK is not None, "worker not initialised"
    return list(_WORK.records(Path(p) for p in paths))


def pending(files: Sequence[Path], journal: Journal, counts: BatchCounts) -> list[Path]:
    """The files not yet done (skipped ones are counted)."""
    todo = []
    for f in files:
        try:
            key = file_key(f)
        except OSError:
            todo.append(f)  # reported by name when it is read
            continue
        if journal.done(key):
            counts.skipped += 1
        else:
            todo.append(f)
    return todo


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_batch(
    spec: BatchSpec,
    files: Sequence[Path],
    journal: Journal,
    *,
    workers: int = 1,
    engine: Any = None,
    on_record: Callable[[dict[str, Any], BatchCounts], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> BatchCounts:
    """Process the files of ``files`` that the journal does not have yet; returns the counts.

    ``on_record(record, counts)`` is called in this process after each file is journalled. ``cancel()``
    is checked between files: no new file starts, those in flight finish and are journalled.
    """
    counts = BatchCounts(total=len(files))
    todo = pending(files, journal, counts)

    def finish(rec: dict[str, Any]) -> None:
        journal.add(rec)
        counts.count(rec)
        if on_record is not None:
            on_record(rec, counts)

    if not todo:
        return counts
    if workers <= 1 or len(todo) == 1:
        for rec in Work(spec, engine).records(todo, cancel):
            finish(rec)
        return counts
    ctx = multiprocessing.get_context("spawn")
    limit = 2 * workers
    size = max(1, min(GROUP, len(todo) // limit))  # groups small enough to keep every worker busy
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(spec,)) as pool:
        queue = iter(todo[i : i + size] for i in range(0, len(todo), size))
        running: dict[cf.Future[list[dict[str, Any]]], list[Path]] = {}
        try:
            while True:
                while len(running) < limit and not (cancel is not None and cancel()):
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    running[pool.submit(_run_group, [str(p) for p in nxt])] = nxt
                if not running:
                    break
                finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    paths = running.pop(fut)
                    try:
                        recs = fut.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker that died: its files are recorded
                        recs = [failed_record(p, error_line(p, exc)) for p in paths]
                    for rec in recs:
                        finish(rec)
        except BaseException:
            for fut in running:
                fut.cancel()
            raise
    return counts
