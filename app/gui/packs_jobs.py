"""Background jobs of the Model menu: list the installed packs, fetch a pack, tag a file with a second pack.

:class:`PackJobRunner` is a :class:`~app.gui.jobs.JobRunner` on one Python thread (the GUI thread never
reads manifests, downloads or runs torch). Its jobs:

- :class:`ScanJob`: the installed packs' summaries (``models.packs.catalog``), result a tuple of
  ``PackSummary`` and whether the official codec is in the cache;
- :class:`FetchJob`: a known pack (``models.packs.fetch.ensure_known_pack``) or, with ``key`` ==
  :data:`CODEC_KEY`, the official EnCodec 24 kHz weights; ``progress`` in bytes, cancellable (a
  cancelled or corrupt download leaves nothing behind); result the pack folder (or the codec cache);
- :class:`CompareJob`: tag a file with another pack (its own Engine, kept for the next compare of the
  same pack): yields a :class:`CompareStart` (that pack's name and labels), then
  :class:`~app.gui.state.series.ResultBatch` es, with ``progress`` in windows.

A failed fetch (offline, corrupt) is an expected error: one line for the user (it names the file, the
URL and where to put the file by hand), no traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.gui.jobs import JobCancelledError, JobGen, ThreadJobRunner
from app.gui.state.series import ResultBatch
from models.config import WindowConfig
from models.tagging.results import Progress, WindowResult

log = logging.getLogger(__name__)

CODEC_KEY = "encodec-24khz"
BATCH_INTERVAL_S = 0.2


@dataclass(frozen=True)
class ScanJob:
    packs_root: Path
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchJob:
    key: str  # a models.packs.fetch.KNOWN_PACKS key, or CODEC_KEY
    packs_root: Path
    downloads: Path
    urls: tuple[tuple[str, str], ...] = ()  # file name (or CODEC_KEY: base URL) -> URL (tests: local)


@dataclass(frozen=True)
class CompareJob:
    path: Path  # the audio file
    pack: str | None  # the second pack's folder (None: the shipped pack)
    window: WindowConfig


@dataclass(frozen=True)
class CompareStart:
    """First item of a compare job: the second pack's name and labels."""

    name: str
    labels: tuple[str, ...]


class PackJobRunner(ThreadJobRunner):
    """Runs the Model menu's jobs one after another on one background thread (module docstring)."""

    thread_name = "encotag-packs"

    def __init__(self) -> None:
        super().__init__()
        self._engines: dict[str | None, Any] = {}

    def describe(self, job: Any) -> str:
        if isinstance(job, FetchJob):
            return f"fetch {job.key}"
        if isinstance(job, CompareJob):
            return f"compare {job.path.name} with {job.pack or 'the shipped pack'}"
        return "list packs"

    def is_cancel(self, exc: BaseException) -> bool:
        from models.download import FetchCancelled

        return super().is_cancel(exc) or isinstance(exc, FetchCancelled)

    def is_expected(self, exc: BaseException) -> bool:
        from models.audio import AudioError
        from models.codec.official import CodecUnavailable
        from models.download import FetchError
        from models.packs.pack import PackError
        from models.tagging.engine import EngineError

        return isinstance(exc, FetchError | CodecUnavailable | PackError | EngineError | AudioError | OSError)

    def work(self, job_id: int, job: Any, cancel: threading.Event) -> Any:
        if isinstance(job, FetchJob):
            return self._fetch(job_id, job, cancel)
        if isinstance(job, CompareJob):
            return self._compare(job_id, job, cancel)
        from models.codec.official import is_cached
        from models.packs.catalog import installed_packs

        return tuple(installed_packs(job.packs_root, job.extra)), is_cached()

    def _fetch(self, job_id: int, job: FetchJob, cancel: threading.Event) -> Path:
        def progress(done: int, total: int) -> None:
            self.progress.emit(job_id, Progress(done, total, job.key))

        if job.key == CODEC_KEY:
            from models.codec.official import BASE_URL, default_cache_dir, official_codec

            official_codec(progress, cancel=cancel, base_url=dict(job.urls).get(CODEC_KEY, BASE_URL))
            return default_cache_dir()
        from models.packs.fetch import ensure_known_pack

        return ensure_known_pack(job.key, job.packs_root, job.downloads, progress=progress, cancel=cancel,
                                 urls=dict(job.urls))  # fmt: skip

    def _engine(self, pack: str | None) -> Any:
        if pack not in self._engines:
            from models.tagging.engine import Engine

            self._engines.clear()  # one second engine at a time (memory)
            self._engines[pack] = Engine.load(Path(pack) if pack else None)  # torch's threads untouched
        return self._engines[pack]

    def _compare(self, job_id: int, job: CompareJob, cancel: threading.Event) -> JobGen:
        from models.tagging.pipeline import tag_file

        engine = self._engine(job.pack)
        yield CompareStart(engine.info.name, tuple(engine.info.labels))
        pending: list[WindowResult] = []
        last = time.perf_counter()

        def progress(p: Progress) -> None:
            self.progress.emit(job_id, p)

        for result in tag_file(engine, job.path, window=job.window, progress=progress, cancel=cancel):
            pending.append(result)
            if time.perf_counter() - last >= BATCH_INTERVAL_S:
                yield ResultBatch.from_results(pending)
                pending, last = [], time.perf_counter()
            if cancel.is_set():
                raise JobCancelledError
        if pending:
            yield ResultBatch.from_results(pending)
        return None
