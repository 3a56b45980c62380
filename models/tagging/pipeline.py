"""Windowed tagging of live streams and files.

- :class:`RingBuffer`: a preallocated, lock-protected float32 ring written from the audio callback.
- :class:`StreamTagger`: live input at any rate / channel count → incremental resampling to the engine's
  rate → the newest complete window every hop (stale windows are skipped, never queued).
- :func:`tag_file`: a generator of :class:`~models.tagging.results.WindowResult` over a file, decoded in
  blocks;
  it holds one decoded block, one window buffer and one batch of windows, never the whole file.

Windows follow :mod:`models.tagging.windows` (starts 0, hop, 2·hop, …; a zero-padded window covers the tail;
a file shorter than one window gives one padded window). ``start``/``end`` are seconds of the file
(``end`` is clipped to the file's length for padded windows). The ``engine`` is any
:class:`~models.tagging.windows.EngineLike` (see ``models.tagging.engine.Engine``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.audio import StreamResampler, iter_audio, probe, sanitize, to_mono
from models.config import WindowConfig
from models.tagging.live_codes import LiveCodes, live_codes
from models.tagging.results import Progress, WindowResult
from models.tagging.windows import (
    CancelFlag,
    EngineLike,
    HeadLike,
    Windower,
    count_windows,
    is_cancelled,
    uses_codes,
    window_samples,
)

log = logging.getLogger(__name__)


class RingBuffer:
    """Fixed-capacity float32 ring of ``channels``-channel frames.

    ``write`` is safe to call from a real-time audio callback: it copies the block into the preallocated
    array under a short lock (O(block), no allocation for float32 input). Readers get copies.
    Sample indices are absolute: ``total`` counts every frame ever written.
    """

    def __init__(self, capacity: int, channels: int = 1) -> None:
        if capacity <= 0 or channels <= 0:
            raise ValueError("capacity and channels must be positive")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self._total = 0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        """Frames written since creation (or the last :meth:`clear`)."""
        return self._total

    def clear(self) -> None:
        with self._lock:
            self._total = 0

    def write(self, block: np.ndarray) -> None:
        """Append ``(n,)`` (mono rings) or ``(n, channels)`` frames; keeps only the newest ``capacity``."""
        b = np.asarray(block, dtype=np.float32)
        if b.ndim == 1:
            b = b[:, None]
        if b.ndim != 2 or b.shape[1] != self.channels:
            raise ValueError(f"block of shape {np.shape(block)} does not fit a {self.channels}-channel ring")
        n = b.shape[0]
        keep = b[-self.capacity :] if n > self.capacity else b
        m = keep.shape[0]
        with self._lock:
            pos = (self._total + n - m) % self.capacity
            first = min(m, self.capacity - pos)
            self._buf[pos : pos + first] = keep[:first]
            if m > first:
                self._buf[: m - first] = keep[first:]
            self._total += n

    def _copy(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) (absolute indices, already validated); caller holds the lock."""
        n = stop - start
        out = np.empty((n, self.channels), dtype=np.float32)
        pos = start % self.capacity
        first = min(n, self.capacity - pos)
        out[:first] = self._buf[pos : pos + first]
        if n > first:
            out[first:] = self._buf[: n - first]
        return out[:, 0] if self.channels == 1 else out

    def read_latest(self, n: int) -> tuple[np.ndarray, int]:
        """The newest ``min(n, available)`` frames (a copy, ``(k,)`` or ``(k, ch)``) and the end index."""
        with self._lock:
            end = self._total
            k = max(0, min(n, end, self.capacity))
            return self._copy(end - k, end), end

    def read_range(self, start: int, stop: int | None = None) -> tuple[np.ndarray, int]:
        """Frames from absolute index ``start`` to ``stop`` (default: newest) and the first index returned.

        Frames already overwritten are skipped: the returned start index is then larger than ``start``.
        """
        with self._lock:
            end = self._total if stop is None else min(stop, self._total)
            first = max(start, end - self.capacity, 0)
            if first >= end:
                return self._copy(end, end), end
            return self._copy(first, end), first


class StreamTagger:
    """Tags a live stream: ``push`` blocks in from the audio callback, ``process_latest`` from a worker.

    Input: float32 ``(n,)`` or ``(n, channels)`` at ``input_sr``. ``process_latest`` resamples what has
    arrived (soxr HQ, incremental), and once at least one hop of new audio is complete runs the engine
    on the newest window only. Codec packs with a streaming encoder encode each sample once, with the
    real past as context (:mod:`models.tagging.live_codes`), and tag the newest window of codes. If the
    worker fell behind by more than a window, the backlog is dropped (newest wins) and the resampler
    (and encoder) restart at the newest audio. Times are seconds of stream audio.
    """

    def __init__(
        self,
        engine: EngineLike,
        window: WindowConfig | None = None,
        input_sr: int = 48000,
        head: HeadLike | None = None,
        *,
        channels: int = 1,
        buffer_s: float = 10.0,
    ) -> None:
        self.engine = engine
        self.window = window or engine.window
        self.input_sr = int(input_sr)
        self.head = head
        self.sr = int(engine.sample_rate)
        self.win_n, self.hop_n = window_samples(self.window, self.sr)
        self._max_backlog = int(math.ceil((self.window.window_s + 0.25) * self.input_sr))
        capacity = max(int(buffer_s * self.input_sr), 2 * self._max_backlog)
        self.ring = RingBuffer(capacity, channels)
        self._win = RingBuffer(self.win_n)
        self._lock = threading.Lock()  # one process_latest at a time
        self._codes = live_codes(engine, self.win_n)  # codec packs: streamed codes, not audio windows
        self.reset()

    def reset(self) -> None:
        """Forget everything (e.g. after the input device changed)."""
        self.ring.clear()
        self._win.clear()
        self._read = 0  # next input frame to resample
        self._produced = 0  # engine-rate samples produced (stream clock)
        self._valid = 0  # consecutive valid samples in the window ring
        self._last_emit: int | None = None
        self._due: int | None = None  # codec packs: when the next result is due (stream clock)
        self._rs = StreamResampler(self.input_sr, self.sr)
        self.skipped_s = 0.0  # input seconds dropped because the worker fell behind
        if self._codes is not None:
            self._codes.restart(0)

    def _restart(self, produced: int) -> None:
        """Resample (and encode) afresh from stream-clock sample ``produced`` (input was dropped)."""
        self._rs = StreamResampler(self.input_sr, self.sr)
        self._produced = produced
        self._valid = 0
        self._due = None
        if self._codes is not None:
            self._codes.restart(produced)

    @property
    def codes(self) -> LiveCodes | None:
        """The streamed codes of a codec pack's live path (``None``: audio windows, e.g. mel packs)."""
        return self._codes

    def push(self, block: np.ndarray) -> None:
        """Append input frames (callback-safe: a copy into the ring buffer)."""
        self.ring.write(block)

    @property
    def stream_time(self) -> float:
        """Seconds of input received so far."""
        return self.ring.total / self.input_sr

    def _catch_up(self) -> None:
        total = self.ring.total
        if total - self._read > self._max_backlog:
            new_read = total - self._max_backlog
            self.skipped_s += (new_read - self._read) / self.input_sr
            self._read = new_read
            self._restart(round(new_read * self.sr / self.input_sr))
        x, first = self.ring.read_range(self._read, total)
        if first != self._read:  # overwritten while we were away
            self._restart(round(first * self.sr / self.input_sr))
        self._read = first + len(x)
        if len(x):
            out = self._rs.process(sanitize(to_mono(x)))
            if self._codes is not None:
                self._codes.push(out)
            else:
                self._win.write(out)
            self._produced += len(out)
            self._valid += len(out)

    def _due_frame_end(self, hop: int) -> int | None:
        """Codec packs: the stream-clock sample whose frame ends the next result (None before the first)."""
        return None if self._due is None else self._due - self._due % hop

    def _need(self) -> int:
        """Engine-rate samples still to come before the next result can be due (0: maybe now)."""
        if self._codes is not None:
            due = self._due_frame_end(self._codes.hop)
            return self._codes.missing if due is None else due - self._produced
        if self._valid < self.win_n:
            return self.win_n - self._valid
        return 0 if self._last_emit is None else self._last_emit + self.hop_n - self._produced

    def process_latest(self) -> WindowResult | None:
        """Tag the newest full window if at least one hop of new audio arrived since the last result.

        A poll that cannot produce a result (less new input than the next result needs) returns before
        resampling: the input is resampled in one piece when it can (the streaming resampler's output
        does not depend on how its input is cut), so frequent polls cost next to nothing."""
        with self._lock:
            pending = self.ring.total - self._read
            if pending <= self._max_backlog and pending * self.sr < self._need() * self.input_sr:
                return None
            self._catch_up()
            if self._codes is not None:
                return self._process_codes(self._codes)
            if self._valid < self.win_n:
                return None
            if self._last_emit is not None and self._produced - self._last_emit < self.hop_n:
                return None
            samples, _ = self._win.read_latest(self.win_n)
            end = self._produced
            self._last_emit = end
        probs, emb = self.engine.infer(samples[None, :])
        return self._result(end - self.win_n, end, probs, emb)

    def _process_codes(self, codes: LiveCodes) -> WindowResult | None:
        """Codec packs: tag the newest window of streamed codes once a hop of new frames is there."""
        end, hop = codes.end, codes.hop
        due = self._due_frame_end(hop)
        if not codes.ready or (due is not None and end < due):
            return None  # due: the next hop's end on the stream clock, tagged at the frame before it
        window = codes.window()
        if window is None:
            return None
        self._due = (end if self._due is None else self._due) + self.hop_n
        while self._due - self._due % hop <= end:  # the worker fell behind: skip to the next hop
            self._due += self.hop_n
        probs, emb = self.engine.infer_codes(window[None])  # type: ignore[attr-defined]
        return self._result(end - codes.width * codes.hop, end, probs, emb)

    def _result(self, start: int, end: int, probs: np.ndarray, emb: np.ndarray) -> WindowResult:
        head_probs = None
        if self.head is not None:
            head_probs = np.asarray(self.head.predict(emb), dtype=np.float32)[0]
        return WindowResult(
            start=start / self.sr,
            end=end / self.sr,
            probs=np.asarray(probs[0], dtype=np.float32),
            embedding=np.asarray(emb[0], dtype=np.float32),
            head_probs=head_probs,
        )


@dataclass
class TagStats:
    """Memory bookkeeping of one :func:`tag_file` run (all counts are samples or frames)."""

    frames_in: int = 0  # input frames decoded
    peak_block_frames: int = 0  # largest decoded input block (frames per channel)
    samples: int = 0  # samples at the engine rate
    peak_buffer_samples: int = 0  # most engine-rate samples held in the window buffer
    buffer_capacity: int = 0
    windows: int = 0
    truncated: bool = False  # the file ended before its header said (what decoded was tagged)
    frames_expected: int = 0  # input frames the header claims (0: unknown)


def tag_file(
    engine: EngineLike,
    path: str | os.PathLike[str],
    window: WindowConfig | None = None,
    head: HeadLike | None = None,
    progress: Callable[[Progress], Any] | None = None,
    cancel: CancelFlag = None,
    *,
    batch_size: int = 8,
    block_s: float = 5.0,
    stats: TagStats | None = None,
) -> Iterator[WindowResult]:
    """Yield one :class:`WindowResult` per window of ``path`` (see the module docstring for the windows).

    Decodes ``block_s`` seconds at a time, runs the engine on ``batch_size`` windows per call, reports
    ``progress`` after each batch and stops quietly (between batches) when ``cancel`` is set.
    Raises :class:`models.audio.AudioError` for unreadable files (possibly after some windows).
    Codec packs (:func:`models.tagging.windows.uses_codes`) encode the file once and window its codes
    (:func:`models.tagging.code_tagging.tag_audio_codes`: same windows, 4× less encoder work at a 0.25 s hop).
    """
    if uses_codes(engine):
        from models.tagging.code_tagging import tag_audio_codes

        yield from tag_audio_codes(
            engine, path, window, head, progress, cancel, batch_size=batch_size, stats=stats
        )
        return
    window = window or engine.window
    sr = int(engine.sample_rate)
    win_n, hop_n = window_samples(window, sr)
    info = probe(path)
    est_total = count_windows(math.ceil(info.frames * sr / info.sample_rate), win_n, hop_n)
    block_out = math.ceil(block_s * sr) + 1024
    wdw = Windower(win_n, hop_n, capacity=win_n + max(hop_n, block_out))
    batch = np.zeros((batch_size, win_n), dtype=np.float32)
    starts: list[int] = []
    ends: list[int] = []
    done = 0
    io_stats: dict[str, int] = {}
    st = stats if stats is not None else TagStats()
    st.buffer_capacity = wdw.capacity

    def run_batch() -> list[WindowResult]:
        nonlocal done
        k = len(starts)
        probs, emb = engine.infer(batch[:k])
        probs = np.asarray(probs, dtype=np.float32)
        emb = np.asarray(emb, dtype=np.float32)
        head_probs = np.asarray(head.predict(emb), dtype=np.float32) if head is not None else None
        out = [
            WindowResult(
                start=starts[i] / sr,
                end=ends[i] / sr,
                probs=probs[i].copy(),
                embedding=emb[i].copy(),
                head_probs=None if head_probs is None else head_probs[i].copy(),
            )
            for i in range(k)
        ]
        starts.clear()
        ends.clear()
        done += k
        st.windows = done
        if progress is not None:
            progress(Progress(done, max(est_total, done), os.fspath(path)))
        return out

    for block in iter_audio(path, sr, block_s, stats=io_stats):
        st.samples += len(block)
        for k, view in wdw.feed(block):
            start = wdw.start(k)
            batch[len(starts)] = view
            starts.append(start)
            ends.append(start + win_n)
            if len(starts) == batch_size:
                yield from run_batch()
                if is_cancelled(cancel):
                    return
        st.peak_buffer_samples = max(st.peak_buffer_samples, wdw.peak)
    st.frames_in = io_stats.get("frames_in", 0)
    st.peak_block_frames = io_stats.get("peak_block_frames", 0)
    st.truncated = bool(io_stats.get("truncated", 0))
    st.frames_expected = io_stats.get("frames_expected", 0)
    for k, view in wdw.finish(wdw.total):  # at most one: the padded tail (or the only window)
        batch[len(starts)] = view
        starts.append(wdw.start(k))
        ends.append(min(wdw.start(k) + win_n, wdw.total))
    if starts and not is_cancelled(cancel):
        yield from run_batch()
