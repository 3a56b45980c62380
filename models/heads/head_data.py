"""Turning audio into head training examples, and scoring heads on labelled files (Qt-free).

Every analysis window of a file is one example (a file shorter than the pack's window gives one
padded window), so a recording of a few seconds yields several examples. A file-level prediction is
the class with the highest mean probability over the file's windows.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from models.audio import AudioError, list_audio_files, load_audio, probe
from models.config import WindowConfig
from models.heads.heads import Head
from models.tagging.code_tagging import ENCODE_BLOCK_S, code_windower
from models.tagging.pipeline import tag_file
from models.tagging.results import Progress
from models.tagging.windows import (
    CancelFlag,
    CodecEngineLike,
    EngineLike,
    Windower,
    is_cancelled,
    uses_codes,
    window_samples,
)

LONG_S = 10.0  # clips up to this long are decoded whole and batched; longer files are streamed
CHUNK_FILES = 64  # clips decoded and batched together (bounds memory: 64 × 10 s)
BATCH_WINDOWS = 64  # windows per tagger call


class _LongFileError(Exception):
    """Internal: this file is streamed through ``tag_file`` instead of decoded whole."""


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
    from models.safeio import InputFileError, read_regular

    folder = Path(folder)
    try:  # a regular file of at most 64 MiB: a FIFO or a device must not hang or fill memory
        text = read_regular(folder / "labels.csv", 64 << 20).decode("utf-8")
    except (InputFileError, UnicodeDecodeError) as exc:
        raise ValueError(f"{folder / 'labels.csv'}: cannot read ({exc})") from None
    rows = [r for r in csv.DictReader(io.StringIO(text)) if split is None or r.get("split") == split]
    if not rows:
        raise ValueError(f"{folder}: no rows for split {split!r}")
    if label_column not in rows[0]:
        raise ValueError(f"{folder}/labels.csv has no column {label_column!r}")
    labels = [r[label_column] for r in rows]
    return LabelledFiles(tuple(folder / r["file"] for r in rows), tuple(labels), tuple(sorted(set(labels))))


def _codec_of(engine: EngineLike) -> object | None:
    """The engine's codec when it tags through codes (as ``tag_file`` decides), else None."""
    return engine.codec if uses_codes(engine) else None  # type: ignore[attr-defined]


class _Batcher:
    """Collects analysis windows of many files and runs the engine on full batches of them."""

    def __init__(self, engine: EngineLike, use_codes: bool, batch: int) -> None:
        self.engine, self.use_codes, self.batch = engine, use_codes, max(1, batch)
        self.wins: list[np.ndarray] = []
        self.owner: list[int] = []
        self.rows: dict[int, list[np.ndarray]] = {}

    def add(self, i: int, windows: Sequence[np.ndarray]) -> None:
        self.rows.setdefault(i, [])
        for w in windows:
            self.wins.append(w)
            self.owner.append(i)
            if len(self.wins) >= self.batch:
                self.flush()

    def flush(self) -> None:
        if not self.wins:
            return
        x = np.stack(self.wins)
        if self.use_codes:
            _, emb = self.engine.infer_codes(x)  # type: ignore[attr-defined]
        else:
            _, emb = self.engine.infer(x)
        for i, e in zip(self.owner, np.asarray(emb, np.float32), strict=True):
            self.rows[i].append(e)
        self.wins.clear()
        self.owner.clear()


def _audio_windows(x: np.ndarray, win_n: int, hop_n: int) -> list[np.ndarray]:
    """``tag_file``'s windows of a whole clip (n,): starts 0, hop, …; the tail window zero-padded."""
    wdw = Windower(win_n, hop_n, capacity=len(x))
    wins = [w.copy() for _, w in wdw.feed(np.asarray(x, np.float32))]
    return wins + [w.copy() for _, w in wdw.finish(len(x))]


def embed_files(
    engine: EngineLike,
    files: Sequence[Path],
    *,
    window: WindowConfig | None = None,
    progress: Callable[[Progress], object] | None = None,
    cancel: CancelFlag = None,
    chunk_files: int = CHUNK_FILES,
    batch_windows: int = BATCH_WINDOWS,
) -> tuple[list[np.ndarray], list[str]]:
    """Window embeddings per file: a list of (n_windows_i, D) float32 arrays (the windows of
    :func:`models.tagging.pipeline.tag_file` with ``window``, default the pack's), and one error string per
    unreadable file (its entry is then an empty (0, D) array; the rest are still processed).

    Built for many short clips: clips up to ``LONG_S`` are decoded whole, ``chunk_files`` at a time;
    a codec pack encodes clips of equal length together (one batched encode, codes identical to a
    per-file encode), reuses the engine's cached codes of the silence that pads tail windows, and the
    tagger runs on ``batch_windows`` windows of several files at once. Longer files are streamed through
    ``tag_file``. The embeddings equal ``tag_file``'s (up to float rounding of the batched tagger). A
    cancel stops between chunks; the files not reached are then missing from the returned list.
    """
    window = window or engine.window
    sr = int(engine.sample_rate)
    win_n, hop_n = window_samples(window, sr)
    dim = int(getattr(engine, "embedding_size", 0))
    codec = _codec_of(engine)
    long_n = round(LONG_S * sr)
    if codec is not None:  # one encoder block, exactly as models.tagging.code_tagging.iter_codes cuts them
        hop = int(codec.hop_length)  # type: ignore[attr-defined]
        long_n = max(1, round(ENCODE_BLOCK_S * sr / hop)) * hop

    results: dict[int, np.ndarray] = {}
    errors: list[str] = []
    done = 0
    for c0 in range(0, len(files), max(1, chunk_files)):
        if is_cancelled(cancel):
            break
        chunk = range(c0, min(c0 + max(1, chunk_files), len(files)))
        batcher = _Batcher(engine, codec is not None, batch_windows)
        clips: dict[int, np.ndarray] = {}
        for i in chunk:
            try:
                info = probe(files[i])
                if info.frames * sr / max(1, info.sample_rate) > long_n + sr:
                    raise _LongFileError
                x = load_audio(files[i], sr)
                if len(x) > long_n:
                    raise _LongFileError
                clips[i] = x
            except _LongFileError:
                try:
                    rows = [r.embedding for r in tag_file(engine, files[i], window=window, cancel=cancel)]
                    results[i] = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
                except AudioError as exc:
                    errors.append(str(exc))
                    results[i] = np.zeros((0, dim), np.float32)
            except AudioError as exc:
                errors.append(str(exc))
                results[i] = np.zeros((0, dim), np.float32)
        if codec is None:
            for i, x in clips.items():
                batcher.add(i, _audio_windows(x, win_n, hop_n))
        else:
            codec_engine = cast(CodecEngineLike, engine)  # uses_codes(engine) said so
            by_len: dict[int, list[int]] = {}
            for i, x in clips.items():
                by_len.setdefault(len(x), []).append(i)
            for group in by_len.values():
                codes = codec_engine.encode(np.stack([clips[i] for i in group]))
                for i, c in zip(group, codes, strict=True):
                    cw = code_windower(codec_engine, win_n, hop_n, os.fspath(files[i]))
                    wins = [w.copy() for _, w in cw.feed(np.asarray(c, np.int64))]
                    wins += [w.copy() for _, w in cw.finish(len(clips[i]))]
                    batcher.add(i, wins)
        batcher.flush()
        for i in clips:
            rows = batcher.rows.get(i, [])
            results[i] = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
        done = chunk.stop
        if progress is not None:
            progress(Progress(done, len(files), os.fspath(files[chunk.stop - 1])))
    return [results[i] for i in range(done)], errors


def window_batch(x: np.ndarray, engine: EngineLike, window: WindowConfig | None = None) -> np.ndarray:
    """The analysis windows (n_windows, win_n) float32 of a whole decoded clip ``x`` (n,) at the
    engine's rate, as ``tag_file`` cuts them (the tail window zero-padded)."""
    win_n, hop_n = window_samples(window or engine.window, int(engine.sample_rate))
    return np.stack(_audio_windows(x, win_n, hop_n))


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
