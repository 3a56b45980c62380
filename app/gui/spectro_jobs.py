"""Spectrogram jobs, off the GUI thread: a :class:`~app.gui.jobs.JobRunner` on its own Python thread.

- :class:`FileSpectrogramJob`: a whole file (``progress`` while decoding; the outcome's ``result`` is an
  :class:`~app.gui.state.spectrogram.Spectrogram`).
- :class:`LiveSpectrogramJob`: the live input; a generator that reads the new samples of the live tap's
  display ring every :data:`LIVE_POLL_S` and yields ``LiveChunk``s of columns until it is cancelled.

The window keeps two runners (files, live), so a live job never holds up the files. No torch here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.gui.jobs import JobCancelledError, ThreadJobRunner
from app.gui.state.spectrogram import SpectrogramBuilder, SpectrogramCancelledError, file_spectrogram
from models.tagging.results import Progress

log = logging.getLogger(__name__)

LIVE_POLL_S = 0.05


@dataclass(frozen=True)
class FileSpectrogramJob:
    path: Path
    view_id: int  # the FileView's job id


@dataclass(frozen=True)
class LiveSpectrogramJob:
    tap: Any  # app.gui.state.live.LiveTap


@dataclass(frozen=True)
class LiveChunk:
    """New live columns (k, bands) dB, ``dt`` seconds apart, with the band edges (Hz)."""

    db: np.ndarray
    dt: float
    edges: np.ndarray


class SpectrogramRunner(ThreadJobRunner):
    """Runs spectrogram jobs one after another on a daemon thread (started on the first job)."""

    def __init__(self, name: str = "encotag-spectrogram") -> None:
        super().__init__()
        self.name = name
        self.thread_name = name

    # --- jobs ---------------------------------------------------------------------------------------------
    def describe(self, job: Any) -> str:
        return (
            f"spectrogram of {job.path.name}" if isinstance(job, FileSpectrogramJob) else "live spectrogram"
        )

    def is_cancel(self, exc: BaseException) -> bool:
        return isinstance(exc, JobCancelledError | SpectrogramCancelledError)

    def is_expected(self, exc: BaseException) -> bool:
        from models.audio import AudioError

        return isinstance(exc, AudioError | ValueError | OSError)

    def work(self, job_id: int, job: Any, cancel: threading.Event) -> Any:
        if isinstance(job, FileSpectrogramJob):

            def report(done: float, total: float) -> None:
                self.progress.emit(job_id, Progress(int(done * 10), max(1, int(total * 10))))

            return file_spectrogram(job.path, cancel, report)
        return self._live(job.tap, cancel)

    def _live(self, tap: Any, cancel: threading.Event) -> Iterator[LiveChunk]:
        builder = SpectrogramBuilder(tap.sample_rate)
        dt = builder.hop / builder.sample_rate
        _, pos = tap.display.read_latest(0)
        while not cancel.wait(LIVE_POLL_S):
            x, first = tap.display.read_range(pos)
            if x.size == 0:
                continue
            pos = first + x.shape[0]
            cols = builder.push(x if x.ndim == 1 else x.mean(axis=1))
            if cols.shape[0]:
                yield LiveChunk(cols, dt, builder.edges)
        raise JobCancelledError
