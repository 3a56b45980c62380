"""Folders of short files: decode ahead in a thread, encode and tag several files per call.

:func:`tag_many` is what ``encotag tag FOLDER`` (``models.batch``) and the bench's folder row run:

- **decode ahead** (:class:`DecodeAhead`): a thread decodes and resamples the next files (``iter_audio``:
  soundfile and soxr release the GIL) into a queue of at most ``ahead`` files, while the calling thread
  encodes and tags. A file is decoded whole only if it is short (at most :data:`SHORT_S` seconds at the
  engine's rate, the encode block of :mod:`models.tagging.code_tagging`); memory is bounded by
  ``ahead + group`` short files whatever the number of files.
- **batching**: up to ``group`` decoded files are tagged together (:func:`tag_decoded`): codec packs
  encode them with :meth:`Engine.encode_many` (right-padded, each file's codes equal to its whole-signal
  encoding, i.e. what :func:`models.tagging.code_tagging.iter_codes` gives a file of one block), then the
  windows of all the files go through the tagger in batches; mel packs batch the audio windows.

Windows follow :mod:`models.tagging.windows` exactly as :func:`models.tagging.pipeline.tag_file` cuts
them, so each file's results equal ``tag_file``'s (probabilities within float rounding of other batch
sizes; ``tests/test_folder.py``). Long files, ``.ecodes`` streams and files that fail to decode come out
as :class:`FileItem` without results, in order: the caller runs its usual path on them (or records the
error).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.tagging.results import WindowResult
from models.tagging.windows import Windower, count_windows, uses_codes, window_samples

log = logging.getLogger(__name__)

SHORT_S = 10.0  # = models.tagging.code_tagging.ENCODE_BLOCK_S: one encode block
AHEAD = 8  # decoded files waiting in the queue
GROUP = 16  # files tagged together
MAX_GROUP_WINDOWS = 128  # windows of one group (mel packs hold their audio: 16 MB at 32 kHz)


@dataclass
class FileItem:
    """One input file on its way through :func:`tag_many`.

    ``audio``: mono float32 (n,) at the engine's rate (short files only, dropped once tagged);
    ``io``: the decoder's stats (``models.audio.iter_audio``); ``stat``: ``(size, mtime_ns)`` taken before
    reading (None if ``os.stat`` failed); ``error``: why it could not be decoded; ``results``: the window
    results once tagged (None: long file, code stream or error, for the caller's usual path)."""

    path: Path
    audio: np.ndarray | None = None
    io: dict[str, int] = field(default_factory=dict)
    stat: tuple[int, int] | None = None
    error: BaseException | None = None
    results: list[WindowResult] | None = None

    @property
    def n_samples(self) -> int:
        return 0 if self.audio is None else int(self.audio.shape[0])


def short_limit(engine: Any) -> int:
    """Samples at the engine's rate of the longest file decoded whole (a multiple of a codec's hop)."""
    sr = int(engine.sample_rate)
    hop = int(engine.codec.hop_length) if uses_codes(engine) else 1
    return max(1, round(SHORT_S * sr / hop)) * hop


def decode_one(path: Path, sr: int, limit: int) -> FileItem:
    """The whole file at ``sr`` if it has at most ``limit`` samples there; else no audio (a long file)."""
    from models.audio import iter_audio

    item = FileItem(Path(path))
    try:
        st = os.stat(path)
        item.stat = (int(st.st_size), int(st.st_mtime_ns))
    except OSError:
        pass
    if item.path.suffix.lower() == ".ecodes":
        return item
    parts: list[np.ndarray] = []
    total = 0
    try:
        blocks = iter_audio(path, sr, stats=item.io)
        for block in blocks:
            total += len(block)
            if total > limit:  # a long file: the caller streams it
                close = getattr(blocks, "close", None)
                if close is not None:
                    close()
                item.io.clear()
                return item
            parts.append(block)
    except Exception as exc:  # noqa: BLE001 - the caller records it (AudioError names the file)
        item.error = exc
        return item
    item.audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return item


class DecodeAhead:
    """Iterates :class:`FileItem` of ``paths`` in order, decoded by a thread at most ``ahead`` files ahead.

    ``peak`` is the most files that waited in the queue. Closing (or leaving a ``with`` block) stops the
    thread at its next file."""

    def __init__(self, paths: Iterable[Path], sr: int, limit: int, ahead: int = AHEAD) -> None:
        self._q: queue.Queue[FileItem | None] = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(
            target=self._run, args=(iter(paths), int(sr), int(limit)), name="encotag-decode", daemon=True
        )
        self._thread.start()

    def _put(self, item: FileItem | None) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
            except queue.Full:
                continue
            self.peak = max(self.peak, self._q.qsize())
            return True
        return False

    def _run(self, paths: Iterator[Path], sr: int, limit: int) -> None:
        try:
            for p in paths:
                if self._stop.is_set() or not self._put(decode_one(Path(p), sr, limit)):
                    return
        finally:
            self._put(None)

    def __iter__(self) -> Iterator[FileItem]:
        while True:
            item = self._q.get()
            if item is None:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> DecodeAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _windows(engine: Any, item: FileItem, codes: np.ndarray | None, win_n: int, hop_n: int) -> list:
    """``(k, window)`` of one file: code windows (codec packs) or audio windows, as ``tag_file`` cuts them."""
    if codes is not None:
        from models.tagging.code_tagging import code_windower

        cw = code_windower(engine, win_n, hop_n, str(item.path))
        out = [(k, w.copy()) for k, w in cw.feed(codes)]
        return out + [(k, w.copy()) for k, w in cw.finish(item.n_samples)]
    assert item.audio is not None
    wdw = Windower(win_n, hop_n, capacity=win_n + max(hop_n, item.n_samples))
    out = [(k, w.copy()) for k, w in wdw.feed(item.audio)]
    return out + [(k, w.copy()) for k, w in wdw.finish(wdw.total)]


def tag_decoded(engine: Any, items: list[FileItem], window: Any = None, head: Any = None) -> None:
    """Set ``results`` of decoded ``items`` (each with ``audio``): one encoder pass over the group (codec
    packs) and the windows of all the files through the tagger ``engine.batch_size`` at a time."""
    window = window or engine.window
    sr = int(engine.sample_rate)
    win_n, hop_n = window_samples(window, sr)
    codec = uses_codes(engine)
    for it in items:
        it.results = []
    if codec:  # no samples, no codes, no windows (as tag_file: the caller reports "no audio")
        items = [it for it in items if it.n_samples]
    codes = engine.encode_many([it.audio for it in items]) if codec else [None] * len(items)
    owners: list[tuple[int, int]] = []  # (item index, window k)
    wins: list[np.ndarray] = []
    for i, (it, c) in enumerate(zip(items, codes, strict=True)):
        for k, w in _windows(engine, it, c, win_n, hop_n):
            owners.append((i, k))
            wins.append(w)
    if not wins:
        return
    x = np.stack(wins)
    probs, emb = engine.infer_codes(x) if codec else engine.infer(x)
    probs, emb = np.asarray(probs, np.float32), np.asarray(emb, np.float32)
    head_probs = np.asarray(head.predict(emb), np.float32) if head is not None else None
    for row, (i, k) in enumerate(owners):
        it = items[i]
        start = k * hop_n
        it.results.append(  # type: ignore[union-attr]
            WindowResult(
                start=start / sr,
                end=min(start + win_n, max(it.n_samples, 1)) / sr,
                probs=probs[row],
                embedding=emb[row],
                head_probs=None if head_probs is None else head_probs[row],
            )
        )
    for it in items:
        it.audio = None  # tagged: the audio is no longer held


def tag_many(
    engine: Any,
    paths: Iterable[Path],
    window: Any = None,
    head: Any = None,
    *,
    ahead: int = AHEAD,
    group: int = GROUP,
    cancel: Any = None,
) -> Iterator[FileItem]:
    """:class:`FileItem` of every path, in order (module docstring): short files with ``results``, the
    others (long files, code streams, decoding errors) without, for the caller's usual path.
    ``cancel()`` (a callable) is checked before each file: then nothing more comes out (decoded files of
    an unfinished group included)."""
    window = window or engine.window
    win_n, hop_n = window_samples(window, int(engine.sample_rate))
    pending: list[FileItem] = []
    windows = 0

    def flush() -> Iterator[FileItem]:
        nonlocal windows
        if pending:
            try:
                tag_decoded(engine, pending, window, head)
            except Exception:  # noqa: BLE001 - one file's failure must not fail the group: one by one
                log.debug("group of %d files failed; tagging them one by one", len(pending), exc_info=True)
                for it in pending:
                    try:
                        tag_decoded(engine, [it], window, head)
                    except Exception as exc:  # noqa: BLE001 - recorded by the caller
                        it.results, it.audio, it.error = None, None, exc
            yield from pending
        pending.clear()
        windows = 0

    with DecodeAhead(paths, int(engine.sample_rate), short_limit(engine), ahead) as decoded:
        for item in decoded:
            if cancel is not None and cancel():  # the files of the group not tagged yet are left out
                return
            if item.audio is None:  # long, code stream or failed: in order, after what came before
                yield from flush()
                yield item
            else:
                pending.append(item)
                windows += count_windows(max(item.n_samples, 1), win_n, hop_n)
                if len(pending) >= group or windows >= MAX_GROUP_WINDOWS:
                    yield from flush()
        yield from flush()
