"""Background jobs of the Heads dialog: embedding example audio and training heads.

The GUI thread never runs torch. :class:`HeadJobRunner` owns one Python thread that loads its **own**
``Engine`` (same pack folder as the main window, loaded lazily on the first job and kept) and runs the
queued jobs one after another:

- :class:`EmbedJob`: files/folders (expanded recursively) or an audio array (a microphone recording)
  → one embedding per analysis window, using the main window's window/hop so the head sees the same
  windows it will be applied to;
- :class:`TrainJob`: ``models.heads.heads.train_head`` on an example set (progress and cancel), then an
  atomic save into the head store (corrections and merges are example edits followed by a TrainJob);
- :class:`OnnxJob`: ``models.heads.head_onnx.export_onnx`` (the head and its pack as one ONNX graph).

Results come back through the signals of the one job model (``app.gui.jobs``, queued to the GUI
thread): ``progress(job_id, Progress)`` and ``finished(job_id, JobOutcome)`` whose ``result`` is an
:class:`EmbedResult` or a :class:`TrainResult` (status DONE), or whose status is ERROR or CANCELLED.
A separate engine costs one more copy of the model in memory, but keeps the live
stream and file tagging of the inference worker undisturbed and makes the dialog independent of it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.gui.jobs import JobCancelledError, ThreadJobRunner
from models.config import WindowConfig
from models.tagging.results import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedJob:
    """Embed ``paths`` (files or folders) or ``audio`` (n,) float32 at ``sample_rate`` for ``class_name``."""

    head: str
    class_name: str
    paths: tuple[str, ...] = ()
    audio: np.ndarray | None = field(default=None, compare=False)
    sample_rate: int = 0
    source: str = ""  # recorded in the example set for audio jobs ("mic", …)
    keep_audio_dir: str | None = None  # opt-in: also save the recording there as FLAC (the source path)


@dataclass(frozen=True)
class TrainJob:
    """Train head ``head`` on ``examples`` (a ``head_store.ExampleSet``) and save it to ``store``."""

    head: str
    examples: Any
    store: Any  # models.heads.head_store.HeadStore
    kind: str = "logreg"
    false_alarm_rate: float = 0.01
    calibration: Any = None  # models.heads.head_cv.Calibration (None: false_alarm_rate)


@dataclass(frozen=True)
class OnnxJob:
    """Export head ``head`` of ``store`` with the pack as one ONNX graph to ``path`` (+ its JSON card)."""

    head: str
    store: Any
    path: str


@dataclass(frozen=True)
class OnnxResult:
    job: OnnxJob
    export: Any  # models.heads.head_onnx.OnnxExport


@dataclass(frozen=True)
class EmbedResult:
    """Window embeddings (N, D) float32, one source string per row, and one line per unreadable file;
    ``pack`` (``models.heads.head_store.PackStamp``) is the pack that made the embeddings."""

    job: EmbedJob
    emb: np.ndarray
    sources: tuple[str, ...]
    errors: tuple[str, ...]
    files: int
    pack: Any = None


@dataclass(frozen=True)
class TrainResult:
    job: TrainJob
    head: Any  # models.heads.heads.Head
    report: Any  # models.heads.heads.HeadReport
    path: Path


def keep_recording(
    folder: str | os.PathLike[str], class_name: str, audio: np.ndarray, sample_rate: int
) -> Path:
    """Save a recording (n,) or (n, ch) float32 as ``CLASS_YYYYmmdd-HHMMSS[_k].flac`` in ``folder``
    (atomic: written to a temporary name, then renamed)."""
    import time

    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in class_name) or "class"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stem}_{stamp}.flac"
    k = 1
    while path.exists():
        path = folder / f"{stem}_{stamp}_{k}.flac"
        k += 1
    tmp = folder / f".{path.name}.tmp"
    x = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
    sf.write(tmp, x, int(sample_rate), format="FLAC", subtype="PCM_24")
    os.replace(tmp, path)
    return path


class HeadJobRunner(ThreadJobRunner):
    """Head jobs run one after another on one background thread with its own Engine (module docstring).

    A :class:`~app.gui.jobs.JobRunner`: ``progress`` while embedding or training, then ``finished`` with a
    :class:`~app.gui.jobs.JobOutcome` whose ``result`` is an :class:`EmbedResult` or :class:`TrainResult`.
    """

    thread_name = "encotag-heads"

    def __init__(self, pack_path: str | None, window: WindowConfig | None = None) -> None:
        super().__init__()
        self.pack_path = pack_path
        self.window = window
        self.engine: Any = None

    @property
    def busy(self) -> set[int]:
        """Ids of the jobs queued or running."""
        return self.pending()

    # --- GUI thread -----------------------------------------------------------------------------------
    def submit(self, job: EmbedJob | TrainJob) -> int:
        """Queue ``job``; returns its id (results arrive through the signals)."""
        return self.put(job)

    def describe(self, job: Any) -> str:
        return f"{type(job).__name__} {getattr(job, 'head', '')}"

    def is_cancel(self, exc: BaseException) -> bool:
        from models.heads.heads import TrainingCancelledError

        return super().is_cancel(exc) or isinstance(exc, TrainingCancelledError)

    def is_expected(self, exc: BaseException) -> bool:
        """Bad input, not a bug: one line in the dialog and the log, no traceback (head files that fail
        their checks and unreadable audio included)."""
        from models.audio import AudioError
        from models.heads.head_onnx import OnnxExportError
        from models.heads.heads import HeadError

        return isinstance(exc, ValueError | OSError | HeadError | AudioError | OnnxExportError)

    def work(self, job_id: int, job: Any, cancel: threading.Event) -> EmbedResult | TrainResult | OnnxResult:
        """A function job (no partial results): embed, train or export; progress through ``progress``."""
        if isinstance(job, EmbedJob):
            return self._embed(job_id, job, cancel)
        if isinstance(job, OnnxJob):
            return self._onnx(job_id, job)
        return self._train(job_id, job, cancel)

    def _onnx(self, job_id: int, job: OnnxJob) -> OnnxResult:
        from models.heads.head_onnx import export_onnx

        engine = self._engine()
        self.progress.emit(job_id, Progress(0, 1, "exporting to ONNX (a minute or two)…"))
        head = job.store.load(job.head, pack_id=engine.info.pack_id, layout=engine.info.embedding_layout)
        return OnnxResult(job, export_onnx(engine, head, job.path, name=job.head))

    def _engine(self) -> Any:
        if self.engine is None:
            from models.tagging.engine import Engine

            self.engine = Engine.load(Path(self.pack_path) if self.pack_path else None)
            log.info("head jobs: pack %s loaded", self.engine.info.name)
        return self.engine

    def _embed_file(self, path: Path, cancel: threading.Event) -> np.ndarray:
        from models.tagging.pipeline import tag_file

        rows = [r.embedding for r in tag_file(self._engine(), path, window=self.window, cancel=cancel)]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)

    def _embed(self, job_id: int, job: EmbedJob, cancel: threading.Event) -> EmbedResult:
        from models.audio import list_audio_files
        from models.heads.head_data import embed_files
        from models.heads.head_store import PackStamp

        engine = self._engine()
        parts: list[np.ndarray] = []
        sources: list[str] = []
        errors: list[str] = []
        if job.audio is not None:
            parts.append(self._embed_audio(job.audio, job.sample_rate, cancel))
            source = job.source or "recording"
            if job.keep_audio_dir:
                source = os.fspath(
                    keep_recording(job.keep_audio_dir, job.class_name, job.audio, job.sample_rate)
                )
            sources += [source] * len(parts[-1])
            files = 0
        else:
            found = list_audio_files(job.paths)
            if not found:
                raise ValueError(f"no audio files in {', '.join(job.paths)}")
            files = len(found)
            per_file, errors = embed_files(
                engine,
                found,
                window=self.window,
                cancel=cancel,
                chunk_files=16,  # progress every 16 files
                progress=lambda p: self.progress.emit(job_id, Progress(p.done, p.total, "embedding files")),
            )
            for path, emb in zip(found, per_file, strict=False):
                parts.append(emb)
                sources += [os.fspath(path)] * len(emb)
        if cancel.is_set():
            raise JobCancelledError
        parts = [p for p in parts if len(p)]
        emb = np.concatenate(parts) if parts else np.zeros((0, engine.embedding_size), np.float32)
        return EmbedResult(job, emb, tuple(sources), tuple(errors), files, PackStamp.of(engine.info))

    def _embed_audio(self, audio: np.ndarray, sample_rate: int, cancel: threading.Event) -> np.ndarray:
        """A recording (n,) or (n, ch) float32 → window embeddings, through the same path as files."""

        import soundfile as sf

        from models.audio import to_mono

        x = to_mono(np.asarray(audio, np.float32))
        if x.size == 0:
            raise ValueError("the recording is empty")
        with tempfile.TemporaryDirectory(prefix="encotag-rec-") as tmp:
            path = Path(tmp) / "recording.wav"
            sf.write(path, x, int(sample_rate), subtype="FLOAT")
            return self._embed_file(path, cancel)

    def _train(self, job_id: int, job: TrainJob, cancel: threading.Event) -> TrainResult:
        from models.heads.head_cv import source_groups
        from models.heads.head_store import PackStamp
        from models.heads.heads import train_head

        engine = self._engine()
        ex = job.examples
        if len(ex.label) == 0:
            raise ValueError("add examples to the classes first")
        ex.check_pack(PackStamp.of(engine.info))  # ExamplePackError (a ValueError): shown in the dialog
        if ex.emb.shape[1] != engine.embedding_size:
            raise ValueError(
                f"the examples have {ex.emb.shape[1]}-dim embeddings but the model pack makes "
                f"{engine.embedding_size}-dim ones; clear them and add the examples again"
            )
        head, report = train_head(
            ex.emb,
            ex.label,
            ex.classes,
            name=job.head,
            kind=job.kind,
            pack_id=engine.info.pack_id,
            layout=engine.info.embedding_layout,
            false_alarm_rate=job.false_alarm_rate,
            calibration=job.calibration,
            groups=source_groups(ex.sources, ex.label),
            progress=lambda p: self.progress.emit(job_id, p),
            cancel=cancel.is_set,
        )
        path = job.store.save(head, job.head)
        return TrainResult(job, head, report, path)
